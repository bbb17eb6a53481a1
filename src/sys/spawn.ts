/**
 * Starting and reaping processes: posix_spawn with a new session, an empty signal mask and
 * every signal reset to its default (Node ignores SIGPIPE; that must not reach services),
 * and waitpid(-1) for every child, known or orphan. Never child_process: libuv's reaper
 * and ours would steal each other's children.
 */
import fs from 'node:fs';
import { c, errno } from './libc.ts';
import { SysError, toError } from './errors.ts';
import { SIGNALS } from './signals.ts';
import { asUserArgv, type Identity } from './identity.ts';
import { spawnThroughSpawner, type SpawnerRequest } from './spawner.ts';
import { internalFdIdentity } from './fdthread.ts';

const EINTR = 4;

const POSIX_SPAWN_SETSIGDEF = 0x4;
const POSIX_SPAWN_SETSIGMASK = 0x8;
const POSIX_SPAWN_SETSID = 0x80;
const CLONE_NEWPID = 0x20000000;
const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const F_DUPFD_CLOEXEC = 1030;
const F_GETFD = 1;
const F_SETFD = 2;
const O_RDWR = 2;
const WNOHANG = 1;

let sigsets: { empty: Buffer; full: Buffer } | undefined;
/** The empty and the full signal set, made on first use (so that loading this module calls no libc). */
function signalSets(): { empty: Buffer; full: Buffer } {
  if (sigsets === undefined) {
    const empty = Buffer.alloc(128);
    const full = Buffer.alloc(128);
    c.sigemptyset(empty);
    c.sigfillset(full);
    sigsets = { empty, full };
  }
  return sigsets;
}

/** Where one fd of the child comes from: a parent fd, or /dev/null. */
export type FdSource = number | 'null';

/** How to start a process. */
export interface SpawnOptions {
  /** Program to execute (absolute, or relative to `cwd`). */
  path: string;
  /** Full argv, argv[0] included. */
  argv: readonly string[];
  /** Environment as `NAME=value` strings; default: this process's environment. */
  env?: readonly string[];
  /** Working directory of the child. */
  cwd?: string;
  /** Working directory of the child, as a directory fd (fchdir: a path could be renamed meanwhile). */
  cwdFd?: number;
  /**
   * Run the program as this user (uid, gid, no supplementary groups), through a step that
   * drops to it and execs the program (sys/identity.ts). `path` must be absolute.
   */
  user?: Identity;
  /** Child fd → where it comes from. fds above 2 not listed are closed; 0–2 are inherited (or /dev/null if closed here) unless listed. */
  fds?: ReadonlyMap<number, FdSource>;
  /** Start the child as leader of a new session (default true). */
  newSession?: boolean;
  /** Search the PATH of `env` for `path` when it has no slash, as execvp would (default false). */
  searchPath?: boolean;
  /**
   * Leave the closing of unlisted fds to close-on-exec instead of closing them in the child
   * before exec (default false). Only for a caller whose every fd above 2 is close-on-exec
   * (t6-svscan makes sure of it at start): posix_spawn holds the parent until the child
   * execs, and closing a thousand inherited fds there costs the parent ~0.3 ms per spawn,
   * while close-on-exec happens after the parent is let go.
   */
  allCloexec?: boolean;
  /**
   * Start the child as pid 1 of a new pid namespace (s6's `flag-newpidns`). `spawn` only:
   * the namespace of new children is chosen per thread, and spawnAsync spawns from a
   * worker thread. Needs CAP_SYS_ADMIN: without it the spawn fails (EPERM), as s6's does.
   */
  newPidNamespace?: boolean;
}

let envCache: { source: NodeJS.ProcessEnv; list: string[]; keys: number } | undefined;

/**
 * This process's environment as a `NAME=value` list. Reading process.env costs a getenv
 * per variable, so the list is kept and rebuilt only when the variable count changes (t6
 * sets no variables while running; services get the environment t6 started with).
 */
export function currentEnv(): string[] {
  const keys = Object.keys(process.env).length;
  if (envCache === undefined || envCache.source !== process.env || envCache.keys !== keys) {
    const list: string[] = [];
    for (const [name, value] of Object.entries(process.env)) if (value !== undefined) list.push(`${name}=${value}`);
    envCache = { source: process.env, list, keys };
  }
  return envCache.list;
}

/** Starts a process and returns its pid; throws SysError (ENOENT, EACCES, ENOEXEC…) if it cannot run. */
export function spawn(opts: SpawnOptions): number {
  opts = searched(userStep(opts));
  return opts.newPidNamespace === true ? spawnInNewPidNamespace(opts) : spawnHere(opts);
}

/** `opts` with the step that runs the program as `opts.user`, if one is asked. */
function userStep(opts: SpawnOptions): SpawnOptions {
  if (opts.user === undefined) return opts;
  const keep = [...(opts.fds?.keys() ?? [])].filter((fd) => fd > 2);
  return { ...opts, ...asUserArgv(opts.user, opts.path, opts.argv, keep), user: undefined, searchPath: false };
}

/**
 * `opts` with its program found in the PATH of the environment it gets, when asked
 * (`searchPath`) and it has no slash: as execvp in the child would. posix_spawnp would
 * search this process's own PATH instead.
 */
function searched(opts: SpawnOptions): SpawnOptions {
  if (opts.searchPath !== true) return opts;
  return { ...opts, path: findInPath(opts.path, opts.env ?? currentEnv()), searchPath: false };
}

/** glibc's search path when PATH is unset (confstr _CS_PATH). */
export const DEFAULT_PATH = '/bin:/usr/bin';

/**
 * The file `name` names, searched in the PATH of `env` (an empty entry is the current
 * directory) when it has no slash. Throws a SysError as exec would: ENOENT when found
 * nowhere, EACCES when found only not executable.
 */
export function findInPath(name: string, env: readonly string[]): string {
  if (name.includes('/')) return name;
  const pathVar = env.findLast((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  let denied = false;
  for (const dir of pathVar.split(':')) {
    const file = dir === '' ? `./${name}` : `${dir.replace(/\/+$/, '')}/${name}`;
    try {
      if (!fs.statSync(file).isFile()) continue;
    } catch {
      continue;
    }
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      denied = true;
    }
  }
  throw new SysError('spawn', denied ? 13 /* EACCES */ : 2 /* ENOENT */, name);
}

function spawnHere(opts: SpawnOptions): number {
  if (opts.allCloexec === true) {
    const pid = spawnThroughSpawner(spawnerRequest(opts));
    if (pid !== undefined) return pid;
  }
  const p = prepare(opts);
  try {
    const pid = [0];
    const rc = p.call(pid, opts.path, p.fileActions, p.attr, p.argv, p.env);
    if (rc !== 0) throw new SysError('spawn', rc, opts.path);
    return pid[0]!;
  } finally {
    p.release();
  }
}

/** `opts` as the spawner takes it: every child fd named, 0–2 included (inherited, or /dev/null when closed here). */
function spawnerRequest(opts: SpawnOptions): SpawnerRequest {
  const fds: [number, number | null][] = [];
  for (let fd = 0; fd <= 2; fd++) {
    if (!opts.fds?.has(fd)) fds.push([fd, c.fcntl(fd, F_GETFD, 'int', 0) >= 0 ? fd : null]);
  }
  for (const [target, source] of opts.fds ?? []) fds.push([target, source === 'null' ? null : source]);
  return {
    path: opts.path, argv: opts.argv, env: opts.env ?? currentEnv(), fds, newSession: opts.newSession !== false,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }), ...(opts.cwdFd === undefined ? {} : { cwdFd: opts.cwdFd }),
  };
}

/**
 * spawn as pid 1 of a new pid namespace. unshare(CLONE_NEWPID) changes where this thread's
 * next children are born, not the namespace of this process (nor of its other threads);
 * right after the spawn, setns() on a saved /proc/self/ns/pid puts it back, so every later
 * child is born in our own namespace again.
 */
function spawnInNewPidNamespace(opts: SpawnOptions): number {
  const own = c.open('/proc/self/ns/pid', O_RDONLY | O_CLOEXEC, 0);
  if (own < 0) throw new SysError('open', errno(), '/proc/self/ns/pid');
  try {
    if (c.unshare(CLONE_NEWPID) !== 0) throw new SysError('unshare', errno(), 'CLONE_NEWPID');
    let pid: number | undefined;
    let failure: unknown;
    try {
      pid = spawnHere(opts);
    } catch (err) {
      failure = err;
    }
    if (c.setns(own, CLONE_NEWPID) !== 0) {
      const err = new SysError('setns', errno(), '/proc/self/ns/pid');
      // Not back in our namespace (it cannot happen with the right to unshare): report the
      // spawn as failed rather than leave a child nobody will know about.
      if (pid !== undefined) c.kill(pid, SIGNALS.KILL);
      throw err;
    }
    if (pid === undefined) throw failure;
    return pid;
  } finally {
    c.close(own);
  }
}

/**
 * spawn on a libuv worker thread. posix_spawn holds its caller until the child has
 * exec'd (glibc's is a vfork): here that is a worker, and the event loop goes on
 * meanwhile. The child may have exited, and been reaped by waitpid(-1), before this
 * resolves: see Reaper.expect.
 */
export function spawnAsync(opts: SpawnOptions): Promise<number> {
  try {
    opts = searched(userStep(opts));
  } catch (err) {
    return Promise.reject(toError(err));
  }
  return new Promise((resolve, reject) => {
    if (opts.newPidNamespace === true) {
      reject(new SysError('spawn', 22 /* EINVAL */, opts.path, 'a new pid namespace needs the synchronous spawn'));
      return;
    }
    const start = (): void => {
      let p: Prepared;
      try {
        p = prepare(opts);
      } catch (err) {
        reject(err);
        startNext();
        return;
      }
      const pid = new Int32Array(1);
      const call = p.call as unknown as { async(...args: unknown[]): void };
      asyncSpawns++;
      try {
        call.async(pid, opts.path, p.fileActions, p.attr, p.argv, p.env, (err: unknown, rc: number) => {
          asyncSpawns--;
          p.release();
          if (err !== null && err !== undefined) reject(toError(err));
          else if (rc !== 0) reject(new SysError('spawn', rc, opts.path));
          else resolve(pid[0]!);
          startNext();
        });
      } catch (err) {
        asyncSpawns--;
        p.release();
        reject(err);
        startNext();
      }
    };
    if (asyncSpawns < MAX_ASYNC_SPAWNS) start();
    else waiting.push(start);
  });
}

// koffi queues a bounded number of asynchronous calls (256), each with its own stack and
// heap, and the worker threads are few: past a handful under way, spawns wait their turn
// here, in order. (The fds a spawn names must stay open until it is done.) The queue is
// bounded by the callers: t6-svscan's runner has at most MAX_SPAWNING spawns under way.
const MAX_ASYNC_SPAWNS = 8;
let asyncSpawns = 0;
const waiting: (() => void)[] = [];

function startNext(): void {
  if (asyncSpawns < MAX_ASYNC_SPAWNS) waiting.shift()?.();
}

interface Prepared {
  fileActions: Buffer;
  attr: Buffer;
  argv: (string | null)[];
  env: (string | null)[];
  call: (typeof c)['posix_spawn'];
  release(): void;
}

/** posix_spawn's file actions and attributes for `opts`; `release` frees them (after the call). */
function prepare(opts: SpawnOptions): Prepared {
  const fileActions = Buffer.alloc(80);
  const attr = Buffer.alloc(336);
  c.fa_init(fileActions);
  c.attr_init(attr);
  const copies: number[] = [];
  const release = (): void => {
    for (const fd of copies) c.close(fd);
    c.fa_destroy(fileActions);
    c.attr_destroy(attr);
  };
  try {
    let flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (opts.newSession !== false) flags |= POSIX_SPAWN_SETSID;
    c.attr_setflags(attr, flags);
    const sets = signalSets();
    c.attr_setsigmask(attr, sets.empty);
    c.attr_setsigdefault(attr, sets.full);
    if (opts.cwd !== undefined) c.fa_addchdir(fileActions, opts.cwd);
    if (opts.cwdFd !== undefined) c.fa_addfchdir(fileActions, opts.cwdFd);
    let maxTarget = 2;
    // Node marks its own fds 0–2 close-on-exec; a child inherits them only through an
    // explicit dup2 onto themselves (which clears the flag in the child). A closed one
    // becomes /dev/null, so a service never starts with a hole at 0, 1 or 2.
    for (let fd = 0; fd <= 2; fd++) {
      if (opts.fds?.has(fd)) continue;
      if (c.fcntl(fd, F_GETFD, 'int', 0) >= 0) c.fa_adddup2(fileActions, fd, fd);
      else c.fa_addopen(fileActions, fd, '/dev/null', O_RDWR, 0);
    }
    if (opts.fds !== undefined) {
      for (const target of opts.fds.keys()) maxTarget = Math.max(maxTarget, target);
      // A source that is also some target could be overwritten by an earlier dup2 in the
      // child; give such sources a fresh number above every target first (in the parent).
      for (const [target, source] of opts.fds) {
        if (source === 'null') {
          c.fa_addopen(fileActions, target, '/dev/null', O_RDWR, 0);
          continue;
        }
        let from = source;
        if (source !== target && opts.fds.has(source)) {
          from = c.fcntl(source, F_DUPFD_CLOEXEC, 'int', maxTarget + 1);
          if (from < 0) throw new SysError('fcntl', errno(), `F_DUPFD_CLOEXEC ${source}`);
          copies.push(from);
        }
        // dup2 onto itself clears FD_CLOEXEC in glibc's posix_spawn (since 2.29).
        c.fa_adddup2(fileActions, from, target);
      }
    }
    if (opts.allCloexec !== true) c.fa_addclosefrom(fileActions, maxTarget + 1);
    return {
      fileActions,
      attr,
      argv: [...opts.argv, null],
      env: [...(opts.env ?? currentEnv()), null],
      call: opts.searchPath === true && !opts.path.includes('/') ? c.posix_spawnp : c.posix_spawn,
      release,
    };
  } catch (err) {
    release();
    throw err;
  }
}

/** One reaped child: its pid and raw 16-bit wait status (as s6 stores it). */
export interface Reaped {
  pid: number;
  wstat: number;
}

/**
 * Reaps every child that has exited, without blocking (in reaping order), and says whether
 * the process has no children left at all (waitpid said ECHILD). Reaper (reaper.ts) calls it.
 */
export function reapAllStatus(): { reaped: Reaped[]; childless: boolean } {
  const reaped: Reaped[] = [];
  const status = [0];
  for (;;) {
    const pid = c.waitpid(-1, status, WNOHANG);
    if (pid === 0) return { reaped, childless: false };
    // -1: ECHILD (no children at all) or EINTR (try again).
    if (pid < 0) {
      if (errno() === EINTR) continue;
      return { reaped, childless: true };
    }
    reaped.push({ pid, wstat: status[0]! & 0xffff });
  }
}

/** Sends a signal; returns false (instead of throwing) when the process is already gone. */
export function kill(pid: number, signal: number): boolean {
  if (c.kill(pid, signal) === 0) return true;
  const e = errno();
  if (e === 3 /* ESRCH */) return false;
  throw new SysError('kill', e, String(pid));
}

/**
 * Replaces this process image (used by pid 1 to hand over, and by finish/crash). Returns
 * only on failure. fds 0–2 go to the new program: Node marks them close-on-exec.
 */
export function execve(path: string, argv: readonly string[], env?: readonly string[]): SysError {
  for (let fd = 0; fd <= 2; fd++) c.fcntl(fd, F_SETFD, 'int', 0);
  c.execve(path, [...argv, null], [...(env ?? currentEnv()), null]);
  return new SysError('execve', errno(), path);
}

/** close_range(2), the same number on x86_64 and arm64; CLOSE_RANGE_CLOEXEC is Linux 5.11+. */
const SYS_CLOSE_RANGE = 436;
const CLOSE_RANGE_CLOEXEC = 1 << 2;
/** Without /proc, the fds looked at one by one (Node's own are among them). */
const LOW_FDS = 64;

/**
 * Marks every fd above 2 of this process close-on-exec (those inherited from whoever
 * started us included), so that spawns with `allCloexec` leak nothing, and notes Node's
 * own (nodeOwnFds). The fds are listed from /proc; without it (pid 1 at boot), the first
 * 64 are looked at one by one, where Node's own are (it made them at its start), and one
 * close_range marks all the others at once where the kernel has CLOSE_RANGE_CLOEXEC (else
 * it is fd by fd up to 1,024). Returns how many fds it changed one by one.
 */
export function markAllCloexec(): number {
  let changed = 0;
  nodeOwnFds.clear();
  let names: string[];
  try {
    names = fs.readdirSync('/proc/self/fd');
  } catch {
    const rest = c.syscall(SYS_CLOSE_RANGE, 'uint32', LOW_FDS, 'uint32', 0xffffffff, 'uint32', CLOSE_RANGE_CLOEXEC) === 0;
    names = Array.from({ length: rest ? LOW_FDS : 1024 }, (_v, i) => String(i));
  }
  for (const name of names) {
    const fd = Number(name);
    if (!(fd > 2)) continue;
    const flags = c.fcntl(fd, F_GETFD, 'int', 0);
    if (flags < 0) continue;
    if ((flags & 1) !== 0) {
      const id = internalFdIdentity(fd);
      if (id !== undefined) nodeOwnFds.set(fd, id);
      continue;
    }
    if (c.fcntl(fd, F_SETFD, 'int', flags | 1) === 0) changed++;
  }
  return changed;
}

/**
 * The fds markAllCloexec found close-on-exec already and of the kinds Node's internals are
 * (pipes and anonymous inodes: its event loops, libuv's signal pipe), each with the identity
 * of its file: the spawner thread (spawner.ts) keeps its copies of those that are still
 * the same file when it starts, and closes every other (t6's, inherited, or a number reused).
 */
export const nodeOwnFds = new Map<number, string>();
