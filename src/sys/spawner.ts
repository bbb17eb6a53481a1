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
import { askFdThread, lowestFreeFd, startFdThread, stopFdThread, type FdThread } from './fdthread.ts';
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

const F_DUPFD_CLOEXEC = 1030;
const SPAWN_TIMEOUT_MS = 10_000;

/** What enableSpawner takes. */
export interface SpawnerOptions {
  report(message: string): void;
  /** Start the spawner once the table holds this many fds. */
  minFds: number;
  /** Node's own fds, by number, with their identity (internalFdIdentity) when they were found. */
  keep: ReadonlyMap<number, string>;
}

let enabled: SpawnerOptions | undefined;
let running: FdThread | undefined;
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
  if (r !== undefined) stopFdThread(r);
}

/**
 * Spawns through the spawner and returns the pid; throws SysError as posix_spawn would.
 * Returns undefined when the spawner is not wanted, or not usable: the caller spawns itself.
 */
export function spawnThroughSpawner(req: SpawnerRequest): number | undefined {
  const r = running ?? startIfWorthIt();
  if (r === undefined) return undefined;
  const asked = askFdThread(r, req, SPAWN_TIMEOUT_MS);
  if (asked === 'too-big') return undefined;
  if (asked === 'timed-out') {
    // The child may yet be started: its pid is unknown, and it is reaped as an orphan.
    giveUp(`the spawner did not answer within ${SPAWN_TIMEOUT_MS / 1000} seconds`);
    throw new SysError('spawn', 110 /* ETIMEDOUT */, req.path, 'the spawner thread did not answer');
  }
  const [pid, err] = Array.isArray(asked.answer) ? asked.answer as [number, number] : [0, 5 /* EIO */];
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
function startIfWorthIt(): FdThread | undefined {
  if (enabled === undefined || broken || lowestFreeFd() < enabled.minFds) return undefined;
  try {
    const t: FdThread = startFdThread('spawner', WORKER_BODY, enabled.keep, (why) => { if (running === t) giveUp(why); });
    running = t;
  } catch (err) {
    giveUp(`unable to start the spawner thread: ${err instanceof Error ? err.message : String(err)}`);
  }
  return running;
}

/**
 * The worker's part (fdthread.ts runs it): posix_spawn with the fds copied from the main
 * table, answered with [pid, 0] or [0, errno].
 */
const WORKER_BODY = String.raw`
const sp = {
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
};
const empty = Buffer.alloc(128), full = Buffer.alloc(128);
sp.sigempty(empty);
sp.sigfill(full);
function spawn(req) {
  const fa = Buffer.alloc(80), attr = Buffer.alloc(336), owned = [], got = new Map();
  sp.faInit(fa);
  sp.attrInit(attr);
  try {
    let maxTarget = 2;
    for (const [t] of req.fds) maxTarget = Math.max(maxTarget, t);
    // The main table's fd, copied into ours above every target (a dup2 must not overwrite it).
    const take = (fd) => {
      if (got.has(fd)) return got.get(fd);
      const n = getfd(fd);
      if (n < 0) throw -n;
      owned.push(n);
      let m = n;
      if (n <= maxTarget) {
        m = c.fcntl(n, ${F_DUPFD_CLOEXEC}, maxTarget + 1);
        if (m < 0) throw koffi.errno();
        owned.push(m);
      }
      got.set(fd, m);
      return m;
    };
    sp.attrFlags(attr, 0x4 | 0x8 | (req.newSession ? 0x80 : 0));
    sp.attrMask(attr, empty);
    sp.attrDefault(attr, full);
    if (req.cwd !== undefined) sp.faChdir(fa, req.cwd);
    if (req.cwdFd !== undefined) sp.faFchdir(fa, take(req.cwdFd));
    for (const [t, s] of req.fds) {
      if (s === null) sp.faOpen(fa, t, '/dev/null', 2, 0);
      else sp.faDup2(fa, take(s), t);
    }
    const pid = [0];
    const rc = sp.spawn(pid, req.path, fa, attr, [...req.argv, null], [...req.env, null]);
    return rc === 0 ? [pid[0], 0] : [0, rc];
  } catch (e) {
    return [0, typeof e === 'number' ? e : 5];
  } finally {
    for (const fd of owned) c.close(fd);
    sp.faDestroy(fa);
    sp.attrDestroy(attr);
  }
}
const handle = spawn;
`;
