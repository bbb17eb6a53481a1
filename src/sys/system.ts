/** Whole-process and whole-machine calls: subreaper, limits, umask, mount, reboot, sync. */
import fs from 'node:fs';
import { c, errno } from './libc.ts';
import { SysError } from './errors.ts';

const PR_SET_CHILD_SUBREAPER = 36;
const PR_SET_NAME = 15;

/** Makes this process the reaper of its descendants' orphans (when it is not pid 1). */
export function setChildSubreaper(): void {
  if (c.prctl(PR_SET_CHILD_SUBREAPER, 'unsigned long', 1, 'unsigned long', 0, 'unsigned long', 0, 'unsigned long', 0) !== 0) {
    throw new SysError('prctl', errno(), 'PR_SET_CHILD_SUBREAPER');
  }
}

/** Sets the thread name shown by ps (at most 15 bytes). */
export function setProcessName(name: string): void {
  const buf = Buffer.alloc(16);
  buf.write(name.slice(0, 15));
  c.prctl(PR_SET_NAME, 'void *', buf, 'unsigned long', 0, 'unsigned long', 0, 'unsigned long', 0);
}

/** This process's pid as the kernel sees it (process.pid agrees; this one needs no Node state). */
export function getpid(): number {
  return c.getpid();
}

/** Starts a new session with this process as leader. */
export function setsid(): void {
  if (c.setsid() < 0) throw new SysError('setsid', errno());
}

/** Sets the file creation mask and returns the previous one. */
export function umask(mask: number): number {
  return c.umask(mask);
}

/** Resource limit numbers (x86_64). */
export const RLIMIT = { CPU: 0, FSIZE: 1, DATA: 2, STACK: 3, CORE: 4, NPROC: 6, NOFILE: 7, MEMLOCK: 8, AS: 9 } as const;
/** RLIM_INFINITY as a bigint. */
export const RLIM_INFINITY = 0xffffffffffffffffn;

/** Reads a resource limit. */
export function getrlimit(resource: number): { soft: bigint; hard: bigint } {
  const buf = Buffer.alloc(16);
  if (c.getrlimit(resource, buf) !== 0) throw new SysError('getrlimit', errno(), String(resource));
  return { soft: buf.readBigUInt64LE(0), hard: buf.readBigUInt64LE(8) };
}

/** Sets a resource limit. */
export function setrlimit(resource: number, soft: bigint, hard: bigint): void {
  const buf = Buffer.alloc(16);
  buf.writeBigUInt64LE(soft, 0);
  buf.writeBigUInt64LE(hard, 8);
  if (c.setrlimit(resource, buf) !== 0) throw new SysError('setrlimit', errno(), String(resource));
}

/** The most any process may raise RLIMIT_NOFILE to (/proc/sys/fs/nr_open); undefined without /proc. */
export function maxOpenFilesLimit(): number | undefined {
  try {
    const n = Number(fs.readFileSync('/proc/sys/fs/nr_open', 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Mount flags (x86_64 Linux). */
export const MS = { RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, REMOUNT: 0x20, BIND: 0x1000, MOVE: 0x2000 } as const;

/** mount(2). */
export function mount(source: string, target: string, fstype: string, flags: number, data = ''): void {
  if (c.mount(source, target, fstype, flags, data === '' ? null : data) !== 0) throw new SysError('mount', errno(), target);
}

/** umount2(2); flags: 1 MNT_FORCE, 2 MNT_DETACH. */
export function umount(target: string, flags = 0): void {
  if (c.umount2(target, flags) !== 0) throw new SysError('umount2', errno(), target);
}

/** reboot(2) commands. */
export const RB = { AUTOBOOT: 0x1234567, HALT_SYSTEM: 0xcdef0123 | 0, POWER_OFF: 0x4321fedc, ENABLE_CAD: 0x89abcdef | 0, DISABLE_CAD: 0 } as const;

/** reboot(2): halts, powers off or reboots the machine (returns only on failure). */
export function reboot(cmd: number): void {
  if (c.reboot(cmd) !== 0) throw new SysError('reboot', errno());
}

const KDSIGACCEPT = 0x4b4e;

/**
 * Asks the kernel to send `signal` to this process on a keyboard request (Alt-ArrowUp on
 * a virtual console), as s6-linux-init does with SIGWINCH. Needs /dev/tty0.
 */
export function acceptKeyboardRequests(signal: number): void {
  const fd = c.open('/dev/tty0', 0o400 /* O_RDONLY | O_NOCTTY */ | 0o2000000 /* O_CLOEXEC */, 0);
  if (fd < 0) throw new SysError('open', errno(), '/dev/tty0');
  try {
    if (c.ioctl(fd, KDSIGACCEPT, 'long', signal) < 0) throw new SysError('ioctl', errno(), 'KDSIGACCEPT /dev/tty0');
  } finally {
    c.close(fd);
  }
}

/** sync(2). */
export function sync(): void {
  c.sync();
}

const MADV_PAGEOUT = 21;

/**
 * Gives back the resident pages of this program's own executable (Node's text and
 * read-only data) that start-up touched and steady running does not need. They are clean
 * and file-backed, so the kernel could drop them under pressure anyway; pages still in use
 * fault back in on their next touch. Returns how many bytes were advised (0 if the kernel
 * lacks MADV_PAGEOUT, Linux < 5.4, or the executable lives in memory: tmpfs, ramfs).
 */
export function pageOutExecutable(): number {
  // On a tmpfs or ramfs (an initramfs) the executable's pages are memory with nowhere to
  // go: paging them out would only cost time, and a boot is when time is dear.
  try {
    const type = fs.statfsSync(process.execPath).type;
    if (type === 0x01021994 /* TMPFS_MAGIC */ || type === 0x858458f6 /* RAMFS_MAGIC */) return 0;
  } catch {
    return 0;
  }
  let maps: string;
  try {
    maps = fs.readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return 0;
  }
  let advised = 0;
  for (const line of maps.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (r-x|r--)p \S+ \S+ \S+\s+(\S.*)$/.exec(line);
    if (m === null || m[4] !== process.execPath) continue;
    const start = BigInt(`0x${m[1]}`);
    const length = BigInt(`0x${m[2]}`) - start;
    if (c.madvise(start, length, MADV_PAGEOUT) === 0) advised += Number(length);
  }
  return advised;
}
