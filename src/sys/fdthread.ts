/**
 * A worker thread of this process (no other process: DESIGN.md decision 1) with an fd
 * table of its own: the spawner (spawner.ts) and the lock keeper (lockkeeper.ts) are two.
 *
 * At start the worker takes a private table (unshare(CLONE_FILES): a copy of this process's)
 * and closes in it every fd of t6's, so that it holds none of t6's files: only Node's own
 * start-up fds, its event loop's and a pidfd of this process, through which it copies fds
 * from the main table (pidfd_getfd: the same open files, not reopened).
 *
 * The main thread talks to it by one request and one answer at a time, both JSON in a
 * shared buffer, and waits for the answer (Atomics.wait): a request is as synchronous as
 * the system call it stands for. The worker sleeps in Atomics.wait between requests.
 */
import fs from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { c, koffiPath } from './libc.ts';
import { SysError } from './errors.ts';

const REQUEST = 1;
const REPLY = 2;
const QUIT = 3;
const IDLE = 4;
const FAILED = 5;
const F_DUPFD_CLOEXEC = 1030;
/** Bytes for one request or one answer (JSON). */
const MESSAGE_BYTES = 1 << 20;
const START_TIMEOUT_MS = 10_000;

/** A running fd thread. */
export interface FdThread {
  readonly worker: Worker;
  readonly ctl: Int32Array;
  readonly bytes: Uint8Array;
}

/** What a request came to. */
export type FdThreadAnswer = { answer: unknown } | 'too-big' | 'timed-out';

/** The lowest free fd: t6's fds are dense, so about how many are open. */
export function lowestFreeFd(): number {
  for (const source of [0, 1, 2]) {
    const fd = c.fcntl(source, F_DUPFD_CLOEXEC, 'int', 0);
    if (fd < 0) continue;
    c.close(fd);
    return fd;
  }
  return 0;
}

/**
 * `dev:ino` of a pipe or an anonymous inode (eventfd, epoll, io_uring: their mode has no
 * file type), the kinds of fds Node keeps for itself; undefined for any other fd.
 */
export function internalFdIdentity(fd: number): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.fstatSync(fd);
  } catch {
    return undefined;
  }
  const type = st.mode & fs.constants.S_IFMT;
  return type === fs.constants.S_IFIFO || type === 0 ? `${st.dev}:${st.ino}:${type}` : undefined;
}

/** This process's open fds (/proc, else probed up to the soft limit's usual bound). */
function openFds(): number[] {
  try {
    // The listing names the fd it was read through, closed by now: a number the worker's
    // event loop may take next, which the worker would then close under it (an abort at its end).
    return fs.readdirSync('/proc/self/fd').map(Number).filter((fd) => Number.isInteger(fd) && c.fcntl(fd, 1 /* F_GETFD */, 'int', 0) >= 0);
  } catch {
    const out: number[] = [];
    for (let fd = 0; fd < 65536; fd++) if (c.fcntl(fd, 1 /* F_GETFD */, 'int', 0) >= 0) out.push(fd);
    return out;
  }
}

/**
 * Starts a worker running `body` (worker.ts's source: it defines `handle(request)`, which
 * returns the answer, and may use `koffi`, `f` (declares a libc function), `c`, `pidfd`)
 * and waits until it has its own table. `keep`: Node's own fds (see markAllCloexec); every
 * other fd is t6's and the worker closes its copy. `onGone` runs if the worker fails
 * (`ended` false: its 'exit' is yet to come) or ends. Throws why it could not start.
 */
export function startFdThread(name: string, body: string, keep: ReadonlyMap<number, string>, onGone: (why: string, ended: boolean) => void): FdThread {
  const sab = new SharedArrayBuffer(16 + MESSAGE_BYTES);
  const ctl = new Int32Array(sab, 0, 4);
  // Every fd of t6's now: the worker closes its copy of each. The main thread waits below,
  // so it opens none meanwhile; the worker's own event loop fds come after this list.
  const close = openFds().filter((fd) => keep.get(fd) === undefined || keep.get(fd) !== internalFdIdentity(fd));
  // Loaded on first use: most trees never need a thread of their own.
  const { Worker } = process.getBuiltinModule('node:worker_threads');
  const worker = new Worker(workerSource(body), { eval: true, name, workerData: { sab, koffiPath: koffiPath(), close }, stdout: false, stderr: false });
  worker.unref();
  worker.on('error', (err) => onGone(`the ${name} thread failed: ${err.message}`, false));
  worker.on('exit', () => onGone(`the ${name} thread ended`, true));
  const until = performance.now() + START_TIMEOUT_MS;
  let state = Atomics.load(ctl, 0);
  while (state !== IDLE && state !== FAILED && performance.now() < until) {
    Atomics.wait(ctl, 0, state, Math.max(1, until - performance.now()));
    state = Atomics.load(ctl, 0);
  }
  if (state !== IDLE) {
    void worker.terminate();
    if (state === FAILED) throw new SysError(name, Atomics.load(ctl, 3), undefined, `unshare or pidfd_open failed in the ${name} thread`);
    throw new Error(`no answer within ${START_TIMEOUT_MS / 1000} seconds`);
  }
  return { worker, ctl, bytes: new Uint8Array(sab, 16) };
}

/** One request, waited for up to `timeoutMs`; 'timed-out' leaves the thread unusable (stop it). Never throws. */
export function askFdThread(t: FdThread, request: unknown, timeoutMs: number): FdThreadAnswer {
  const json = Buffer.from(JSON.stringify(request));
  if (json.length > t.bytes.length) return 'too-big';
  t.bytes.set(json);
  Atomics.store(t.ctl, 1, json.length);
  Atomics.store(t.ctl, 0, REQUEST);
  Atomics.notify(t.ctl, 0);
  if (Atomics.wait(t.ctl, 0, REQUEST, timeoutMs) === 'timed-out' && Atomics.load(t.ctl, 0) === REQUEST) return 'timed-out';
  let answer: unknown = null;
  try {
    answer = JSON.parse(Buffer.from(t.bytes.subarray(0, Atomics.load(t.ctl, 1))).toString());
  } catch { /* a garbled answer is no answer: null */ }
  Atomics.store(t.ctl, 0, IDLE);
  Atomics.notify(t.ctl, 0);
  return { answer };
}

/** Stops the thread (its fd table goes with it). */
export function stopFdThread(t: FdThread): void {
  Atomics.store(t.ctl, 0, QUIT);
  Atomics.notify(t.ctl, 0);
  void t.worker.terminate();
}

/**
 * The worker's code (CommonJS, self-contained: it loads koffi itself) around `body`. It may
 * not throw out of its loop: an answer is owed for every request.
 */
function workerSource(body: string): string {
  return String.raw`(() => {
const { workerData } = require('node:worker_threads');
const { sab, koffiPath, close } = workerData;
const ctl = new Int32Array(sab, 0, 4);
const bytes = new Uint8Array(sab, 16);
const koffi = require(koffiPath);
const lib = koffi.load('libc.so.6');
const f = (p) => lib.func(p);
const c = {
  unshare: f('int unshare(int flags)'),
  close: f('int close(int fd)'),
  fcntl: f('int fcntl(int fd, int cmd, int arg)'),
  getpid: f('int getpid()'),
  syscall: f('long syscall(long number, ...)'),
};
const fail = (e) => { Atomics.store(ctl, 3, e); Atomics.store(ctl, 0, ${FAILED}); Atomics.notify(ctl, 0); };
// CLONE_FILES: from here on this thread has a table of its own; t6's fds in it are closed.
if (c.unshare(0x400) !== 0) return fail(koffi.errno());
for (const fd of close) c.close(fd);
const pidfd = Number(c.syscall(434, 'int', c.getpid(), 'uint32', 0));
if (pidfd < 0) return fail(koffi.errno());
/** The main table's fd, copied into this one (pidfd_getfd, close-on-exec); a negative errno if not. */
const getfd = (fd) => { const n = Number(c.syscall(438, 'int', pidfd, 'int', fd, 'uint32', 0)); return n < 0 ? -koffi.errno() : n; };
${body}
Atomics.store(ctl, 0, ${IDLE});
Atomics.notify(ctl, 0);
for (;;) {
  const state = Atomics.load(ctl, 0);
  if (state === ${QUIT}) break;
  // Asleep until a request (and after an answer, until it is taken): never a busy loop.
  if (state !== ${REQUEST}) { Atomics.wait(ctl, 0, state); continue; }
  let answer;
  try {
    answer = handle(JSON.parse(Buffer.from(bytes.subarray(0, Atomics.load(ctl, 1))).toString()));
  } catch {
    answer = null;
  }
  let out = Buffer.from(JSON.stringify(answer ?? null));
  if (out.length > bytes.length) out = Buffer.from('null');
  bytes.set(out);
  Atomics.store(ctl, 1, out.length);
  Atomics.store(ctl, 0, ${REPLY});
  Atomics.notify(ctl, 0);
}
})();
`;
}
