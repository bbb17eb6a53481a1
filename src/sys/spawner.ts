/**
 * Spawning from a thread with a small fd table. posix_spawn's clone copies the calling
 * thread's whole fd table into the child, and the child's exec then closes every copy
 * (close-on-exec): with t6-svscan's two or three fds per service, each spawn costs
 * O(services) in the parent and more in the child, a cold start O(services²).
 *
 * The spawner is one worker thread of this process (no other process: DESIGN.md decision 1)
 * that took a private fd table (unshare(CLONE_FILES)) and closed in it every fd of t6's: it
 * holds only Node's own start-up fds, its event loop's and a pidfd of this process. For each
 * spawn it copies the fds the child needs from the main table (pidfd_getfd: the same open
 * files, not reopened), calls posix_spawn, closes them again and answers with the pid. The
 * main thread waits for the answer (Atomics.wait) as it waited for posix_spawn itself.
 *
 * Only spawns of a process whose every fd above 2 is close-on-exec (`allCloexec`) come
 * here, and only once the table is big enough to be worth it. Any failure of the spawner
 * (it cannot start, it does not answer) is reported once and spawns go on in this thread.
 */
import fs from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { c, koffiPath } from './libc.ts';
import { SysError } from './errors.ts';

/** What a spawn through the spawner needs: everything resolved (program path, every child fd). */
export interface SpawnerRequest {
  path: string;
  argv: readonly string[];
  env: readonly string[];
  cwd?: string;
  cwdFd?: number;
  /** [child fd, fd of this process or null for /dev/null], 0–2 included. */
  fds: [number, number | null][];
  newSession: boolean;
}

const IDLE = 4;
const REQUEST = 1;
const REPLY = 2;
const QUIT = 3;
const FAILED = 5;
const F_DUPFD_CLOEXEC = 1030;
/** Bytes for one request (JSON); a bigger one is spawned in this thread. */
const REQUEST_BYTES = 1 << 20;
const START_TIMEOUT_MS = 10_000;
const SPAWN_TIMEOUT_MS = 10_000;

interface Running {
  worker: Worker;
  ctl: Int32Array;
  bytes: Uint8Array;
}

/** What enableSpawner takes. */
export interface SpawnerOptions {
  report(message: string): void;
  /** Start the spawner once the table holds this many fds. */
  minFds: number;
  /** Node's own fds, by number, with their identity (internalFdIdentity) when they were found. */
  keep: ReadonlyMap<number, string>;
}

let enabled: SpawnerOptions | undefined;
let running: Running | undefined;
let broken = false;

/**
 * Lets spawns of this process go through the spawner once its fd table holds `minFds`
 * fds. `keep`: the fds that are Node's own (close-on-exec before t6 touched the table, see
 * markAllCloexec); every other fd is t6's and the spawner closes its copy. `report` gets
 * the one message that says why spawns go on without it.
 */
export function enableSpawner(opts: SpawnerOptions): void {
  enabled = opts;
}

/** Stops the spawner (spawns go on in this thread). */
export function stopSpawner(): void {
  const r = running;
  running = undefined;
  enabled = undefined;
  if (r === undefined) return;
  Atomics.store(r.ctl, 0, QUIT);
  Atomics.notify(r.ctl, 0);
  void r.worker.terminate();
}

/**
 * Spawns through the spawner and returns the pid; throws SysError as posix_spawn would.
 * Returns undefined when the spawner is not wanted, or not usable: the caller spawns itself.
 */
export function spawnThroughSpawner(req: SpawnerRequest): number | undefined {
  const r = running ?? startIfWorthIt();
  if (r === undefined) return undefined;
  const json = Buffer.from(JSON.stringify(req));
  if (json.length > r.bytes.length) return undefined;
  r.bytes.set(json);
  Atomics.store(r.ctl, 1, json.length);
  Atomics.store(r.ctl, 0, REQUEST);
  Atomics.notify(r.ctl, 0);
  if (Atomics.wait(r.ctl, 0, REQUEST, SPAWN_TIMEOUT_MS) === 'timed-out' && Atomics.load(r.ctl, 0) === REQUEST) {
    // The child may yet be started: its pid is unknown, and it is reaped as an orphan.
    giveUp(`the spawner did not answer within ${SPAWN_TIMEOUT_MS / 1000} seconds`);
    throw new SysError('spawn', 110 /* ETIMEDOUT */, req.path, 'the spawner thread did not answer');
  }
  const pid = Atomics.load(r.ctl, 2);
  const err = Atomics.load(r.ctl, 3);
  Atomics.store(r.ctl, 0, IDLE);
  Atomics.notify(r.ctl, 0);
  if (err !== 0) throw new SysError('spawn', err, req.path);
  return pid;
}

function giveUp(why: string): void {
  const report = enabled?.report;
  stopSpawner();
  broken = true;
  report?.(`${why} - spawning from the main thread from now on (each spawn copies the whole fd table)`);
}

/** Starts the spawner if it is enabled and the fd table is big enough; undefined if not. */
function startIfWorthIt(): Running | undefined {
  if (enabled === undefined || broken || lowestFreeFd() < enabled.minFds) return undefined;
  try {
    running = start(enabled.keep);
  } catch (err) {
    giveUp(`unable to start the spawner thread: ${err instanceof Error ? err.message : String(err)}`);
  }
  return running;
}

/** The lowest free fd: t6's fds are dense, so about how many are open. */
function lowestFreeFd(): number {
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
    return fs.readdirSync('/proc/self/fd').map(Number).filter((fd) => Number.isInteger(fd));
  } catch {
    const out: number[] = [];
    for (let fd = 0; fd < 65536; fd++) if (c.fcntl(fd, 1 /* F_GETFD */, 'int', 0) >= 0) out.push(fd);
    return out;
  }
}

/** Starts the worker and waits until it has its own table. Throws why it could not. */
function start(keep: ReadonlyMap<number, string>): Running {
  const sab = new SharedArrayBuffer(16 + REQUEST_BYTES);
  const ctl = new Int32Array(sab, 0, 4);
  // Every fd of t6's now: the worker closes its copy of each. The main thread waits below,
  // so it opens none meanwhile; the worker's own event loop fds come after this list.
  const close = openFds().filter((fd) => keep.get(fd) === undefined || keep.get(fd) !== internalFdIdentity(fd));
  // Loaded on first use: most trees never hold enough fds to start the spawner.
  const { Worker } = process.getBuiltinModule('node:worker_threads');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { sab, koffiPath: koffiPath(), close }, stdout: false, stderr: false });
  worker.unref();
  worker.on('error', (err) => { if (running?.worker === worker) giveUp(`the spawner thread failed: ${err.message}`); });
  worker.on('exit', () => { if (running?.worker === worker) giveUp('the spawner thread ended'); });
  const until = performance.now() + START_TIMEOUT_MS;
  let state = Atomics.load(ctl, 0);
  while (state !== IDLE && state !== FAILED && performance.now() < until) {
    Atomics.wait(ctl, 0, state, Math.max(1, until - performance.now()));
    state = Atomics.load(ctl, 0);
  }
  if (state !== IDLE) {
    void worker.terminate();
    if (state === FAILED) throw new SysError('spawner', Atomics.load(ctl, 3), undefined, 'unshare or pidfd_open failed in the spawner thread');
    throw new Error(`no answer within ${START_TIMEOUT_MS / 1000} seconds`);
  }
  return { worker, ctl, bytes: new Uint8Array(sab, 16) };
}

/**
 * The worker's code (CommonJS, self-contained: it loads koffi itself). It may not throw out
 * of its loop: an answer is owed for every request.
 */
const WORKER_SOURCE = String.raw`(() => {
const { workerData } = require('node:worker_threads');
const { sab, koffiPath, close } = workerData;
const ctl = new Int32Array(sab, 0, 4);
const bytes = new Uint8Array(sab, 16);
const koffi = require(koffiPath);
const lib = koffi.load('libc.so.6');
const f = (p) => lib.func(p);
const c = {
  spawn: f('int posix_spawn(_Out_ int *pid, const char *path, void *fa, void *attr, const char **argv, const char **envp)'),
  faInit: f('int posix_spawn_file_actions_init(void *fa)'),
  faDestroy: f('int posix_spawn_file_actions_destroy(void *fa)'),
  faDup2: f('int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)'),
  faOpen: f('int posix_spawn_file_actions_addopen(void *fa, int fd, const char *path, int flags, uint32 mode)'),
  faChdir: f('int posix_spawn_file_actions_addchdir_np(void *fa, const char *path)'),
  faFchdir: f('int posix_spawn_file_actions_addfchdir_np(void *fa, int fd)'),
  attrInit: f('int posix_spawnattr_init(void *attr)'),
  attrDestroy: f('int posix_spawnattr_destroy(void *attr)'),
  attrFlags: f('int posix_spawnattr_setflags(void *attr, short flags)'),
  attrMask: f('int posix_spawnattr_setsigmask(void *attr, void *set)'),
  attrDefault: f('int posix_spawnattr_setsigdefault(void *attr, void *set)'),
  sigempty: f('int sigemptyset(void *set)'),
  sigfill: f('int sigfillset(void *set)'),
  unshare: f('int unshare(int flags)'),
  close: f('int close(int fd)'),
  dupAbove: f('int fcntl(int fd, int cmd, int arg)'),
  getpid: f('int getpid()'),
  syscall: f('long syscall(long number, ...)'),
};
const fail = (e) => { Atomics.store(ctl, 3, e); Atomics.store(ctl, 0, ${FAILED}); Atomics.notify(ctl, 0); };
// CLONE_FILES: from here on this thread has a table of its own; t6's fds in it are closed.
if (c.unshare(0x400) !== 0) return fail(koffi.errno());
for (const fd of close) c.close(fd);
const pidfd = Number(c.syscall(434, 'int', c.getpid(), 'uint32', 0));
if (pidfd < 0) return fail(koffi.errno());
const empty = Buffer.alloc(128), full = Buffer.alloc(128);
c.sigempty(empty);
c.sigfill(full);
function spawn(req) {
  const fa = Buffer.alloc(80), attr = Buffer.alloc(336), owned = [], got = new Map();
  c.faInit(fa);
  c.attrInit(attr);
  try {
    let maxTarget = 2;
    for (const [t] of req.fds) maxTarget = Math.max(maxTarget, t);
    // The main table's fd, copied into ours above every target (a dup2 must not overwrite it).
    const take = (fd) => {
      if (got.has(fd)) return got.get(fd);
      const n = Number(c.syscall(438, 'int', pidfd, 'int', fd, 'uint32', 0));
      if (n < 0) throw koffi.errno();
      owned.push(n);
      let m = n;
      if (n <= maxTarget) {
        m = c.dupAbove(n, ${F_DUPFD_CLOEXEC}, maxTarget + 1);
        if (m < 0) throw koffi.errno();
        owned.push(m);
      }
      got.set(fd, m);
      return m;
    };
    c.attrFlags(attr, 0x4 | 0x8 | (req.newSession ? 0x80 : 0));
    c.attrMask(attr, empty);
    c.attrDefault(attr, full);
    if (req.cwd !== undefined) c.faChdir(fa, req.cwd);
    if (req.cwdFd !== undefined) c.faFchdir(fa, take(req.cwdFd));
    for (const [t, s] of req.fds) {
      if (s === null) c.faOpen(fa, t, '/dev/null', 2, 0);
      else c.faDup2(fa, take(s), t);
    }
    const pid = [0];
    const rc = c.spawn(pid, req.path, fa, attr, [...req.argv, null], [...req.env, null]);
    return rc === 0 ? [pid[0], 0] : [0, rc];
  } catch (e) {
    return [0, typeof e === 'number' ? e : 5];
  } finally {
    for (const fd of owned) c.close(fd);
    c.faDestroy(fa);
    c.attrDestroy(attr);
  }
}
Atomics.store(ctl, 0, ${IDLE});
Atomics.notify(ctl, 0);
for (;;) {
  const state = Atomics.load(ctl, 0);
  if (state === ${QUIT}) break;
  // Asleep until a request (and after an answer, until it is taken): never a busy loop.
  if (state !== ${REQUEST}) { Atomics.wait(ctl, 0, state); continue; }
  let answer;
  try {
    answer = spawn(JSON.parse(Buffer.from(bytes.subarray(0, Atomics.load(ctl, 1))).toString()));
  } catch {
    answer = [0, 22];
  }
  Atomics.store(ctl, 2, answer[0]);
  Atomics.store(ctl, 3, answer[1]);
  Atomics.store(ctl, 0, ${REPLY});
  Atomics.notify(ctl, 0);
}
})();
`;
