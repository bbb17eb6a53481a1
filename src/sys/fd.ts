/** File descriptors the way an init needs them: pipes, FIFOs, fcntl locks, raw non-blocking I/O. */
import fs from 'node:fs';
import { c, errno } from './libc.ts';
import { SysError } from './errors.ts';

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_NONBLOCK = 0o4000;
export const O_DIRECTORY = 0o200000;
export const O_CLOEXEC = 0o2000000;

const F_DUPFD_CLOEXEC = 1030;
const F_GETFL = 3;
const F_SETFL = 4;
const F_GETLK = 5;
const F_OFD_SETLK = 37;
const F_RDLCK = 0;
const F_WRLCK = 1;
const F_UNLCK = 2;

/** A pipe: [read end, write end], both close-on-exec. */
export function pipe(nonblocking = false): [number, number] {
  const fds = new Int32Array(2);
  if (c.pipe2(fds, O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0)) !== 0) throw new SysError('pipe2', errno());
  return [fds[0]!, fds[1]!];
}

/** Creates a FIFO; an existing FIFO is fine, anything else at that path is an error. */
export function mkfifo(path: string, mode: number): void {
  if (c.mkfifo(path, mode) === 0) return;
  const e = errno();
  if (e === 17 /* EEXIST */ && fs.lstatSync(path).isFIFO()) return;
  throw new SysError('mkfifo', e, path, e === 17 ? 'exists and is not a FIFO' : undefined);
}

/** open(2) with exactly the flags given plus O_CLOEXEC. Throws SysError. */
export function open(path: string, flags: number, mode = 0o644): number {
  const fd = c.open(path, flags | O_CLOEXEC, mode);
  if (fd < 0) throw new SysError('open', errno(), path);
  return fd;
}

/**
 * open(2) that answers a missing file with undefined instead of an exception: settings
 * files are mostly absent, and building an Error (with its stack) for each costs more than
 * the system call, on the path that restarts a dead service.
 */
export function openIfExists(path: string, flags: number): number | undefined {
  const fd = c.open(path, flags | O_CLOEXEC, 0);
  if (fd >= 0) return fd;
  const e = errno();
  if (e === 2 /* ENOENT */ || e === 20 /* ENOTDIR */) return undefined;
  throw new SysError('open', e, path);
}

/** Closes an fd, ignoring errors (the fd is gone either way). */
export function close(fd: number): void {
  c.close(fd);
}

/** A close-on-exec duplicate of fd (F_DUPFD_CLOEXEC): same open file, a second number to own. */
export function dupCloexec(fd: number): number {
  const n = c.fcntl(fd, F_DUPFD_CLOEXEC, 'int', 3);
  if (n < 0) throw new SysError('fcntl', errno(), `F_DUPFD_CLOEXEC ${fd}`);
  return n;
}

/** dup2 for the process itself (pid 1 rearranging its own 0–2). */
export function dup2(from: number, to: number): void {
  if (c.dup2(from, to) < 0) throw new SysError('dup2', errno(), `${from}→${to}`);
}

/** Whether `fd` is open. */
export function isOpen(fd: number): boolean {
  return c.fcntl(fd, 1 /* F_GETFD */, 'int', 0) >= 0;
}

/** Sets or clears O_NONBLOCK on an fd. */
export function setNonblocking(fd: number, on: boolean): void {
  const flags = c.fcntl(fd, F_GETFL, 'int', 0);
  if (flags < 0) throw new SysError('fcntl', errno(), `F_GETFL ${fd}`);
  const next = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  if (c.fcntl(fd, F_SETFL, 'int', next) < 0) throw new SysError('fcntl', errno(), `F_SETFL ${fd}`);
}

function flock(type: number): Buffer {
  const buf = Buffer.alloc(32); // struct flock: l_type@0 l_whence@2 l_start@8 l_len@16 l_pid@24
  buf.writeInt16LE(type, 0);
  buf.writeInt16LE(0, 2); // SEEK_SET, whole file (start 0, len 0)
  return buf;
}

/**
 * Takes a non-blocking exclusive open-file-description lock on fd. OFD locks belong to the
 * open file, so another fd on the same file (a stray readFileSync) does not drop them, and
 * s6's F_GETLK probe from another process sees them. Returns false if someone holds it.
 */
export function tryLock(fd: number, path?: string): boolean {
  if (c.fcntl(fd, F_OFD_SETLK, 'void *', flock(F_WRLCK)) === 0) return true;
  const e = errno();
  if (e === 11 /* EAGAIN */ || e === 13 /* EACCES */) return false;
  throw new SysError('fcntl', e, path, undefined);
}

/** Is the file locked by someone else? (s6_svc_ok's F_GETLK probe with a read lock.) */
export function isLocked(fd: number, path?: string): boolean {
  const buf = flock(F_RDLCK);
  if (c.fcntl(fd, F_GETLK, 'void *', buf) < 0) throw new SysError('fcntl', errno(), path);
  // OFD locks have the open file as owner, so this probe sees them even from the process
  // that holds them (classic record locks would be invisible to their own process).
  return buf.readInt16LE(0) !== F_UNLCK;
}

/** Reads whatever is available from a non-blocking fd; returns null on EAGAIN, an empty buffer on EOF. */
export function readNonblocking(fd: number, size = 4096): Buffer | null {
  const buf = Buffer.allocUnsafe(size);
  try {
    const n = fs.readSync(fd, buf, 0, size, null);
    return buf.subarray(0, n);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return null;
    throw err;
  }
}
