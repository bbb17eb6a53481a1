/** File descriptors the way an init needs them: pipes, FIFOs, fcntl locks, raw non-blocking I/O. */
import fs from 'node:fs';
import { c, errno } from './libc.ts';
import { SysError, toError } from './errors.ts';

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_CLOEXEC = 0o2000000;

const F_DUPFD_CLOEXEC = 1030;
const F_GETFL = 3;
const F_SETFL = 4;
const F_GETLK = 5;
const F_OFD_SETLK = 37;
const F_OFD_SETLKW = 38;
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

let reserved = 0;

/**
 * Grows this process's fd table at once to hold at least `count` fds. Linux grows the
 * table in powers of two, and in a multithreaded process (Node always is) each growth
 * waits for an RCU grace period: 5–15 ms here, paid 4 or 5 times by a process that opens
 * its thousandth fd one at a time. One early growth pays it once. Best effort: a limit
 * below `count` just leaves the table as it is.
 */
export function reserveFds(count: number): void {
  if (count <= reserved) return;
  // F_DUPFD_CLOEXEC takes the lowest free fd at or above its argument: never one in use.
  // Any open fd will do as the source; 0, 1 or 2 is open in all but odd set-ups.
  for (const source of [0, 1, 2]) {
    const fd = c.fcntl(source, F_DUPFD_CLOEXEC, 'int', count - 1);
    if (fd < 0) continue;
    c.close(fd);
    reserved = count;
    return;
  }
}

/**
 * reserveFds on a libuv worker thread: the grace period is waited for there, not on the
 * event loop. For a daemon at start-up, long before it holds many fds. `done` runs on the
 * event loop once the table has grown (or could not).
 */
export function reserveFdsInBackground(count: number, done?: () => void): void {
  if (count <= reserved) { done?.(); return; }
  // koffi's asynchronous form of a bound function: the same arguments, then a callback.
  const fcntlAsync = (c.fcntl_int as unknown as { async(...args: unknown[]): void }).async;
  fcntlAsync(0, F_DUPFD_CLOEXEC, count - 1, (err: unknown, fd: number) => {
    if (err === null && fd >= 0) {
      c.close(fd);
      reserved = Math.max(reserved, count);
    }
    done?.();
  });
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

/**
 * Marks `fd` close-on-exec or clears the mark. Cleared, the fd survives an execve: how
 * t6-svscan hands its held fds to its next image.
 */
export function setCloexec(fd: number, on: boolean): void {
  const flags = c.fcntl(fd, 1 /* F_GETFD */, 'int', 0);
  if (flags < 0) throw new SysError('fcntl', errno(), `F_GETFD ${fd}`);
  const next = on ? flags | 1 : flags & ~1;
  if (next !== flags && c.fcntl(fd, 2 /* F_SETFD */, 'int', next) < 0) throw new SysError('fcntl', errno(), `F_SETFD ${fd}`);
}

/** An anonymous memory file (memfd_create), close-on-exec unless `keepOnExec`. */
export function memfdCreate(name: string, keepOnExec = false): number {
  const fd = c.memfd_create(name, keepOnExec ? 0 : 1 /* MFD_CLOEXEC */);
  if (fd < 0) throw new SysError('memfd_create', errno(), name);
  return fd;
}

/** Moves an fd's offset back to the start of its file (lseek SEEK_SET 0). */
export function rewind(fd: number): void {
  if (c.lseek(fd, 0, 0) < 0) throw new SysError('lseek', errno(), `fd ${fd}`);
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

/** tryLock's shared form (F_RDLCK; the fd must be open for reading): false if someone holds it exclusively. */
export function tryLockShared(fd: number, path?: string): boolean {
  if (c.fcntl(fd, F_OFD_SETLK, 'void *', flock(F_RDLCK)) === 0) return true;
  const e = errno();
  if (e === 11 /* EAGAIN */ || e === 13 /* EACCES */) return false;
  throw new SysError('fcntl', e, path, undefined);
}

/**
 * Waits for an OFD lock (exclusive, or shared) without polling and without blocking the
 * event loop: the blocking F_OFD_SETLKW runs on a libuv worker thread. Rejects with
 * SysError (EDEADLK, EINTR…) if the wait fails.
 */
export function lockWait(fd: number, shared: boolean, path?: string): Promise<void> {
  const buf = flock(shared ? F_RDLCK : F_WRLCK);
  const fcntlAsync = (c.fcntl_ptr as unknown as { async(...args: unknown[]): void }).async;
  return new Promise((resolve, reject) => {
    fcntlAsync(fd, F_OFD_SETLKW, buf, (err: unknown, r: number) => {
      void buf; // kept alive until the call returns
      if (err !== null && err !== undefined) reject(toError(err));
      else if (r === 0) resolve();
      // errno belongs to the worker thread: not readable from here.
      else reject(new Error(`unable to lock ${path ?? `fd ${fd}`}: fcntl F_OFD_SETLKW failed`));
    });
  });
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

/** Reads at most `size` bytes, waiting for them (the fd is made blocking first); an empty buffer on EOF. Throws (EBADF…). */
export function readBlocking(fd: number, size: number): Buffer {
  setNonblocking(fd, false);
  const buf = Buffer.alloc(size);
  const n = fs.readSync(fd, buf, 0, size, null);
  return buf.subarray(0, n);
}

/**
 * Lets the fds this process was started with survive an execve, as a program run in front
 * of another (t6-setuidgid) must: a run script's notification-fd, a socket it was handed.
 * Node marks every inherited fd close-on-exec when it starts, and opens its own among them,
 * so they are told apart by kind: Node's are anonymous inodes (its event loops, eventfds,
 * io_uring) and pipes whose two ends are both here (libuv's signal pipe); everything else
 * above 2 (files, sockets, FIFOs, a lone pipe end) is cleared of close-on-exec. Returns
 * those fds. Without /proc it does nothing (and says so by returning undefined).
 */
export function keepInheritedFds(): number[] | undefined {
  let names: string[];
  try {
    names = fs.readdirSync('/proc/self/fd');
  } catch {
    return undefined;
  }
  const targets = new Map<number, string>();
  for (const name of names) {
    const fd = Number(name);
    if (!(fd > 2)) continue;
    try { targets.set(fd, fs.readlinkSync(`/proc/self/fd/${fd}`)); } catch { /* the listing's own fd, gone */ }
  }
  const pipeCount = new Map<string, number>();
  for (const target of targets.values()) if (target.startsWith('pipe:')) pipeCount.set(target, (pipeCount.get(target) ?? 0) + 1);
  const kept: number[] = [];
  for (const [fd, target] of targets) {
    if (target.startsWith('anon_inode:') || (pipeCount.get(target) ?? 0) > 1) continue;
    try {
      setCloexec(fd, false);
      kept.push(fd);
    } catch { /* closed meanwhile */ }
  }
  return kept.sort((a, b) => a - b);
}
