/**
 * Files reached through a directory fd held open, never through a symbolic link: how a root
 * process works in a directory that someone else can write (a logdir given to a log user).
 *
 * Every name given to the `…At` calls is one component of the directory. Opening asks the
 * kernel to follow no link at all: openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
 * where the kernel has it (Linux 5.6), otherwise openat(2) with O_NOFOLLOW, which is the
 * same for a single component. Every open is O_NONBLOCK (a FIFO put in a file's place must
 * not hang the caller in open) and O_NOCTTY. `openFileAt` then looks at what it opened
 * (fstat) and refuses anything but a regular file, and, when asked, a file with more than
 * one link: a hard link to a file elsewhere would make the caller write into that file.
 *
 * `openDirectory` turns a configured path into a directory fd. It follows a symbolic link
 * only where the directory that holds the link belongs to root and nobody else may write
 * in it (so only root can have put the link there): a path through someone else's
 * directory (a sticky /tmp, a user's home) cannot be bent elsewhere by its owner.
 */
import fs from 'node:fs';
import { c, errno } from './libc.ts';
import { SysError } from './errors.ts';

const O_RDONLY = 0;
const O_CREAT = 0o100;
const O_NOCTTY = 0o400;
const O_NONBLOCK = 0o4000;
const O_DIRECTORY = 0o200000;
const O_NOFOLLOW = 0o400000;
const O_CLOEXEC = 0o2000000;
const O_PATH = 0o10000000;
const AT_FDCWD = -100;
const F_GETFL = 3;
const F_SETFL = 4;
const ENOENT = 2;
const EEXIST = 17;
const ENOTDIR = 20;
const ELOOP = 40;
const RESOLVE_NO_SYMLINKS = 0x04;
const RESOLVE_BENEATH = 0x08;
/** openat2's number: the same on every architecture (it is newer than the unified table). */
const SYS_OPENAT2 = 437;
/** Symbolic links followed while resolving one path (the kernel's own limit, MAXSYMLINKS). */
const MAX_LINKS = 40;
/** Bytes read per getdents64 call: a few hundred names at a time. */
const DENTS_BUFFER = 32 * 1024;

/** Why `openFileAt` refused a file it opened. */
export type UnsafeReason = 'not-regular' | 'linked';

/** A file that was opened but is not safe to use: not a regular file, or linked elsewhere too. */
export class UnsafeFileError extends Error {
  override name = 'UnsafeFileError';
  readonly reason: UnsafeReason;
  readonly path: string;
  constructor(path: string, reason: UnsafeReason, what: string) {
    // The message is the reason of an s6-shaped line: `unable to open X: <message>`.
    super(reason === 'not-regular' ? `Not a regular file (${what})` : `Has ${what} hard links (refusing to write through a link)`);
    this.reason = reason;
    this.path = path;
  }
}

let openat2: boolean | undefined;
/** Whether the kernel has openat2 (asked once: a seccomp filter may also refuse it). */
export function haveOpenat2(): boolean {
  if (openat2 === undefined) {
    const fd = c.syscall(SYS_OPENAT2, 'int', AT_FDCWD, 'const char *', '/', 'void *', openHow(O_PATH | O_CLOEXEC, 0, 0), 'size_t', 24);
    openat2 = fd >= 0;
    if (fd >= 0) c.close(fd);
  }
  return openat2;
}

/** Takes openat2 (true, where the kernel has it) or openat with O_NOFOLLOW (false): tests check both paths. */
export function useOpenat2(on: boolean): void {
  openat2 = undefined;
  if (on) haveOpenat2();
  else openat2 = false;
}

/** struct open_how: flags, mode, resolve (three u64). */
function openHow(flags: number, mode: number, resolve: number): Buffer {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  return how;
}

/** What `name` names in a message: the directory's path joined to it when the caller gave one. */
function shown(dirPath: string | undefined, name: string): string {
  return dirPath === undefined ? name : `${dirPath}/${name}`;
}

/**
 * Opens `name` in the directory `dirfd` without following any link (close-on-exec,
 * non-blocking, no controlling terminal). Throws SysError: ELOOP for a link.
 */
export function openAt(dirfd: number, name: string, flags: number, mode = 0, dirPath?: string): number {
  // openat2 refuses any flag O_PATH does not use (openat ignores them).
  const all = flags | O_NOFOLLOW | O_CLOEXEC | ((flags & O_PATH) === 0 ? O_NOCTTY | O_NONBLOCK : 0);
  let fd: number;
  if (haveOpenat2()) {
    const how = openHow(all, (flags & O_CREAT) !== 0 ? mode : 0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
    fd = c.syscall(SYS_OPENAT2, 'int', dirfd, 'const char *', name, 'void *', how, 'size_t', 24);
  } else {
    fd = c.openat(dirfd, name, all, mode);
  }
  if (fd < 0) throw new SysError('open', errno(), shown(dirPath, name));
  return fd;
}

/**
 * openAt, then fstat of what was opened: anything but a regular file (a FIFO, a directory,
 * a device put there) is closed and refused, and so is a file with more than one link when
 * `singleLink` is asked (a root writer: the other name could be any file). Throws
 * SysError or UnsafeFileError.
 */
export function openFileAt(dirfd: number, name: string, flags: number, mode: number, opts: { singleLink: boolean; dirPath?: string }): number {
  const fd = openAt(dirfd, name, flags, mode, opts.dirPath);
  let st: fs.Stats;
  try {
    st = fs.fstatSync(fd);
  } catch (err) {
    c.close(fd);
    throw err;
  }
  let refusal: UnsafeFileError | undefined;
  if (!st.isFile()) refusal = new UnsafeFileError(shown(opts.dirPath, name), 'not-regular', fileKind(st));
  else if (opts.singleLink && st.nlink > 1) refusal = new UnsafeFileError(shown(opts.dirPath, name), 'linked', String(st.nlink));
  if (refusal === undefined) {
    // O_NONBLOCK was for the open (a FIFO); a regular file's users should not see it.
    const fl = c.fcntl(fd, F_GETFL, 'int', 0);
    if (fl >= 0 && (fl & O_NONBLOCK) !== 0) c.fcntl(fd, F_SETFL, 'int', fl & ~O_NONBLOCK);
    return fd;
  }
  c.close(fd);
  throw refusal;
}

/** What kind of file this is, in words (for a refusal). */
function fileKind(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a plain file';
}

/** lstat of `name` in `dirfd` (a link is described, not followed); undefined if it does not exist. */
export function statAt(dirfd: number, name: string, dirPath?: string): fs.Stats | undefined {
  let fd: number;
  try {
    // O_PATH with O_NOFOLLOW opens a link itself; fstat on it is lstat.
    fd = openAt(dirfd, name, O_PATH, 0, dirPath);
  } catch (err) {
    if (err instanceof SysError && err.errno === ENOENT) return undefined;
    throw err;
  }
  try {
    return fs.fstatSync(fd);
  } finally {
    c.close(fd);
  }
}

/** mkdirat(2); false if something of that name exists already. Throws SysError. */
export function mkdirAt(dirfd: number, name: string, mode: number, dirPath?: string): boolean {
  if (c.mkdirat(dirfd, name, mode) === 0) return true;
  const e = errno();
  if (e === EEXIST) return false;
  throw new SysError('mkdir', e, shown(dirPath, name));
}

/** unlinkat(2) of a non-directory (a link is removed, never its target). Throws SysError. */
export function unlinkAt(dirfd: number, name: string, dirPath?: string): void {
  if (c.unlinkat(dirfd, name, 0) !== 0) throw new SysError('unlink', errno(), shown(dirPath, name));
}

/** renameat(2) within one directory. Throws SysError. */
export function renameAt(dirfd: number, from: string, to: string, dirPath?: string): void {
  if (c.renameat(dirfd, from, dirfd, to) !== 0) throw new SysError('rename', errno(), shown(dirPath, from));
}

/** linkat(2) within one directory, not following `from` if it is a link. Throws SysError. */
export function linkAt(dirfd: number, from: string, to: string, dirPath?: string): void {
  if (c.linkat(dirfd, from, dirfd, to, 0) !== 0) throw new SysError('link', errno(), shown(dirPath, from));
}

/** The target of the symbolic link `name` in `dirfd`. Throws SysError. */
export function readlinkAt(dirfd: number, name: string, dirPath?: string): string {
  const buf = Buffer.alloc(4096);
  const n = c.readlinkat(dirfd, name, buf, buf.length);
  if (n < 0) throw new SysError('readlink', errno(), shown(dirPath, name));
  return buf.toString('utf8', 0, n);
}

/** The names in the directory `dirfd` (without `.` and `..`), read through a fresh fd. Throws SysError. */
export function listAt(dirfd: number, dirPath?: string): string[] {
  const fd = openAt(dirfd, '.', O_RDONLY | O_DIRECTORY, 0, dirPath);
  const names: string[] = [];
  const buf = Buffer.alloc(DENTS_BUFFER);
  try {
    for (;;) {
      const n = c.getdents64(fd, buf, buf.length);
      if (n < 0) throw new SysError('getdents64', errno(), dirPath);
      if (n === 0) return names;
      // struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name NUL-terminated.
      for (let at = 0; at < n;) {
        const reclen = buf.readUInt16LE(at + 16);
        const end = buf.indexOf(0, at + 19);
        const name = buf.toString('utf8', at + 19, end < 0 || end > at + reclen ? at + reclen : end);
        if (name !== '.' && name !== '..') names.push(name);
        at += reclen;
      }
    }
  } finally {
    c.close(fd);
  }
}

/** Whether only root can change the entries of the directory `fd`: root's, and writable by nobody else. */
function rootsOnly(fd: number): boolean {
  const st = fs.fstatSync(fd);
  return st.uid === 0 && (st.mode & 0o022) === 0;
}

/** open(2) of a directory by path, as a starting point (O_PATH: only search permission is needed). */
function openStart(path: string, shownPath: string): number {
  const fd = c.openat(AT_FDCWD, path, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) throw new SysError('open', errno(), shownPath);
  return fd;
}

/**
 * Opens the directory `dirPath` (O_RDONLY, close-on-exec), resolving it one component at a
 * time: a symbolic link is followed only where it sits in a directory that only root can
 * change (see the header); elsewhere it is refused with ELOOP. The last component is made
 * (mkdirat, `createMode`) when it is missing and a mode is given. Throws SysError.
 */
export function openDirectory(dirPath: string, createMode?: number): number {
  let fd = openStart(dirPath.startsWith('/') ? '/' : '.', dirPath);
  const parts = dirPath.split('/').filter((p) => p !== '' && p !== '.');
  let links = 0;
  let created = false;
  try {
    while (parts.length > 0) {
      const name = parts.shift()!;
      const next = c.openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
      if (next >= 0) {
        c.close(fd);
        fd = next;
        continue;
      }
      const e = errno();
      if (e === ENOENT && parts.length === 0 && createMode !== undefined && !created) {
        created = true;
        mkdirAt(fd, name, createMode, dirPath);
        parts.unshift(name);
        continue;
      }
      // O_NOFOLLOW | O_DIRECTORY on a link fails with ELOOP or ENOTDIR: is it one?
      if (e !== ELOOP && e !== ENOTDIR) throw new SysError('open', e, dirPath);
      if (statAt(fd, name)?.isSymbolicLink() !== true) throw new SysError('open', e, dirPath);
      if (!rootsOnly(fd) || ++links > MAX_LINKS) throw new SysError('open', ELOOP, dirPath);
      const target = readlinkAt(fd, name, dirPath);
      parts.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
      if (target.startsWith('/')) {
        c.close(fd);
        fd = -1;
        fd = openStart('/', dirPath);
      }
    }
    const dir = c.openat(fd, '.', O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dir < 0) throw new SysError('open', errno(), dirPath);
    return dir;
  } finally {
    if (fd >= 0) c.close(fd);
  }
}
