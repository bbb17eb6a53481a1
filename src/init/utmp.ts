/**
 * utmp and wtmp without libc: who is logged in (for `shutdown -a`), the warning to each of
 * their terminals (wall), and the RUN_LVL record halt/poweroff/reboot append to wtmp.
 *
 * The files are arrays of glibc's `struct utmp`, 384 bytes on x86_64 and aarch64 (the
 * 64-bit glibc ABIs keep 32-bit times in this struct for compatibility):
 *
 *   0 ut_type (short, padded to 4)   4 ut_pid   8 ut_line[32]   40 ut_id[4]
 *   44 ut_user[32]   76 ut_host[256]   332 ut_exit (2 shorts)   336 ut_session
 *   340 ut_tv.tv_sec   344 ut_tv.tv_usec   348 ut_addr_v6[4]   364 unused[20]
 *
 * A missing utmp means nobody is logged in; a missing wtmp means nobody keeps one.
 */
import fs from 'node:fs';
import os from 'node:os';
import { readAccountDb } from './legacy-accounts.ts';

/** Size of one record. */
export const UTMP_RECORD_SIZE = 384;
/** glibc's _PATH_UTMP. */
export const DEFAULT_UTMP = '/var/run/utmp';
/** glibc's _PATH_WTMP. */
export const DEFAULT_WTMP = '/var/log/wtmp';
/** ut_type values used here. */
export const UT_TYPE = { RUN_LVL: 1, BOOT_TIME: 2, USER_PROCESS: 7 } as const;

/** One utmp record, decoded. */
export interface UtmpEntry {
  type: number;
  pid: number;
  line: string;
  id: string;
  user: string;
  host: string;
}

/** A NUL-terminated string in a fixed field. */
function field(buf: Buffer, offset: number, size: number): string {
  const raw = buf.subarray(offset, offset + size);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? size : nul).toString('utf8');
}

/** Decodes a utmp/wtmp file's bytes; a trailing partial record is ignored. */
export function decodeUtmp(buf: Buffer): UtmpEntry[] {
  const entries: UtmpEntry[] = [];
  for (let off = 0; off + UTMP_RECORD_SIZE <= buf.length; off += UTMP_RECORD_SIZE) {
    entries.push({
      type: buf.readInt16LE(off),
      pid: buf.readInt32LE(off + 4),
      line: field(buf, off + 8, 32),
      id: field(buf, off + 40, 4),
      user: field(buf, off + 44, 32),
      host: field(buf, off + 76, 256),
    });
  }
  return entries;
}

/** The USER_PROCESS entries of a utmp file (none if it does not exist). Throws other errors. */
export function loggedInUsers(utmpPath: string = DEFAULT_UTMP): UtmpEntry[] {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(utmpPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return decodeUtmp(buf).filter((e) => e.type === UT_TYPE.USER_PROCESS && e.user !== '');
}

/** A terminal line that names a device under /dev (`tty1`, `pts/3`), not a way out of it. */
function safeLine(line: string): boolean {
  return line !== '' && !line.startsWith('/') && !line.split('/').includes('..');
}

/**
 * Writes `text` to the terminal of every logged-in user, best effort: each is opened
 * non-blocking and written once; a terminal that is gone, full or refuses is skipped.
 * Returns how many terminals took the whole text. `devDir` is for tests.
 */
export function wall(text: string, opts: { utmpPath?: string; devDir?: string } = {}): number {
  let users: UtmpEntry[];
  try {
    users = loggedInUsers(opts.utmpPath);
  } catch {
    return 0; // an unreadable utmp: nobody to tell
  }
  const data = Buffer.from(text);
  const flags = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY;
  let reached = 0;
  for (const line of new Set(users.map((u) => u.line))) {
    if (!safeLine(line)) continue;
    let fd: number;
    try {
      fd = fs.openSync(`${opts.devDir ?? '/dev'}/${line}`, flags);
    } catch {
      continue;
    }
    try {
      if (fs.writeSync(fd, data) === data.length) reached++;
    } catch { /* full or hung up: this terminal misses the warning */ }
    fs.closeSync(fd);
  }
  return reached;
}

/** The session id of this process (from /proc; 0 if unknown). */
function sessionId(): number {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[3]) || 0;
  } catch {
    return 0;
  }
}

/** The wtmp record halt/poweroff/reboot leave: RUN_LVL, line `~`, user `reboot` or `shutdown`. */
export function encodeRunLevelRecord(user: 'reboot' | 'shutdown', nowMs: number, pid = process.pid, host = os.hostname()): Buffer {
  return encodeTildeRecord(UT_TYPE.RUN_LVL, user, nowMs, pid, host);
}

/** The record of the boot, as sysvinit's init writes it: BOOT_TIME, line `~`, user `reboot`. */
export function encodeBootRecord(bootMs: number, pid = process.pid, host = os.hostname()): Buffer {
  return encodeTildeRecord(UT_TYPE.BOOT_TIME, 'reboot', bootMs, pid, host);
}

function encodeTildeRecord(type: number, user: string, nowMs: number, pid: number, host: string): Buffer {
  const buf = Buffer.alloc(UTMP_RECORD_SIZE);
  buf.writeInt16LE(type, 0);
  buf.writeInt32LE(pid, 4);
  buf.write('~', 8, 32, 'utf8');
  buf.write(user, 44, 32, 'utf8');
  buf.write(host, 76, 255, 'utf8'); // at most 255: the field stays NUL-terminated
  buf.writeInt32LE(sessionId(), 336);
  const sec = Math.floor(nowMs / 1000);
  buf.writeInt32LE(sec | 0, 340);
  buf.writeInt32LE(Math.floor((nowMs - sec * 1000) * 1000), 344);
  return buf;
}

/**
 * Appends one record to wtmp, as updwtmp does: only if the file exists (returns false if
 * not). Throws on other errors.
 */
export function appendWtmp(record: Buffer, wtmpPath: string = DEFAULT_WTMP): boolean {
  let fd: number;
  try {
    fd = fs.openSync(wtmpPath, fs.constants.O_WRONLY | fs.constants.O_APPEND | SAFE_OPEN);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  try {
    mustBeFile(fd, wtmpPath);
    fs.writeSync(fd, record);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/**
 * How utmp and wtmp are opened. pid 1 writes them as root, and /var/log may be another's to
 * write in (group syslog on some systems): a link planted there is not followed, and a FIFO
 * never blocks the open (a FIFO without a reader would hang pid 1); mustBeFile refuses it.
 */
const SAFE_OPEN = fs.constants.O_NOCTTY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

function mustBeFile(fd: number, file: string): void {
  if (!fs.fstatSync(fd).isFile()) throw Object.assign(new Error(`${file} is not a regular file`), { code: 'EFTYPE' });
}

/**
 * Starts utmp at boot, as a distribution's init does: a fresh file (its folder, /run, is a
 * new tmpfs) holding the boot record, root's and group utmp's (0664), so that login and
 * sshd record sessions and `who`, `who -b` and `uptime` answer. Without it glibc's writers
 * never create the file and nobody is ever logged in. Returns false if `utmpPath`'s folder
 * does not exist (a system without /var/run keeps no utmp). Throws other errors.
 */
export function startUtmp(bootMs: number, opts: { utmpPath?: string; groupPath?: string } = {}): boolean {
  const file = opts.utmpPath ?? DEFAULT_UTMP;
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | SAFE_OPEN, 0o664);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  try {
    mustBeFile(fd, file);
    fs.fchmodSync(fd, 0o664);
    const gid = readAccountDb('/etc/passwd', opts.groupPath ?? '/etc/group').groups.get('utmp');
    if (gid !== undefined) fs.fchownSync(fd, 0, gid);
    fs.writeSync(fd, encodeBootRecord(bootMs));
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/**
 * The boot's record in wtmp (`last` shows it as `reboot   system boot`), as sysvinit's init
 * leaves it once it can: wtmp is on the root filesystem, read-only until the boot's
 * services have checked it. Returns false if wtmp does not exist or is still read-only.
 * Throws other errors.
 */
export function recordBootInWtmp(bootMs: number, wtmpPath: string = DEFAULT_WTMP): boolean {
  try {
    return appendWtmp(encodeBootRecord(bootMs), wtmpPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EROFS') return false;
    throw err;
  }
}
