/**
 * The lock keeper: where t6-svscan parks the fds of its `supervise/lock` files once its fd
 * table fills. Each supervisor holds its lock's fd for life, only so that the lock stays
 * held; RLIMIT_NOFILE bounds the fds of one table, and with two or three fds per service
 * a table of 20,000 held fewer than 7,000 services.
 *
 * The lock is an open-file-description lock (fd.ts tryLock): it belongs to the open file,
 * not to an fd or a process, and stays held while any fd table anywhere still refers to that
 * open file. The keeper is a thread of this process with a table of its own (fdthread.ts);
 * a lock fd moves there (the keeper copies it with pidfd_getfd, then this thread closes its
 * own), and closing a parked lock is a request to the keeper. Both are answered before they
 * return (Atomics.wait), so a lock is released exactly when its holder is closed, as if it
 * were in this table: a service removed and at once added again finds its lock free.
 *
 * Small trees pay nothing: the keeper starts only once a new lock's fd number reaches
 * `minFds` (fds are allocated lowest first, so as many are open), and then parks every
 * lock held, old and new.
 *
 * Failure: a keeper that cannot start, or does not answer, is given up once and reported;
 * locks stay in this table from then on, and those it had parked are taken again here
 * once its thread has ended (the thread's table, and with it the locks, go at its end).
 * Nothing here throws.
 *
 * Re-exec: the keeper's table does not survive execve. A parked lock hands over no fd (the
 * next image opens and locks the file again, after a short window without the lock); if
 * the exec fails, releaseHandedOver lets this image take them again.
 */
import type { Worker } from 'node:worker_threads';
import { O_CREAT, O_NONBLOCK, O_WRONLY, close, open, tryLock } from './fd.ts';
import { strerror } from './errors.ts';
import { askFdThread, startFdThread, stopFdThread, type FdThread } from './fdthread.ts';

/** What enableLockKeeper takes. */
export interface LockKeeperOptions {
  report(message: string): void;
  /** Start the keeper once a lock's fd number reaches this. */
  minFds: number;
  /** Node's own fds (see enableSpawner): every other fd is t6's and the keeper closes its copy at start. */
  keep: ReadonlyMap<number, string>;
}

const ANSWER_TIMEOUT_MS = 10_000;
/** The last wait before a lock lost with the keeper is given up (the waits before: 1, 2, 4… ms). */
const RELOCK_LAST_DELAY_MS = 2048;
/** The flags supervise/lock is opened with (servicefiles.ts), to take a lock again. */
const LOCK_OPEN_FLAGS = O_WRONLY | O_CREAT | O_NONBLOCK;

/** Where one held lock's fd is: in this table (`fd`), parked in the keeper's (`parked`), or lost with a keeper that failed (both -1). */
interface Place {
  fd: number;
  parked: number;
  readonly path: string;
  readonly closeFd: (fd: number) => void;
}

let enabled: LockKeeperOptions | undefined;
let running: FdThread | undefined;
let broken = false;
/** Every lock held now (closed or handed over ones leave). */
const live = new Map<HeldLock, Place>();
/** Keeper fds of parked locks handed over to a re-exec: released by execve, or by releaseHandedOver. */
let handedOver: number[] = [];

/** A file locked for as long as this is held (a supervisor's `supervise/lock`). */
export class HeldLock {
  /** The locked file. */
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  /** This thread's fd of the lock; undefined while it is parked in the keeper (or closed). */
  get fd(): number | undefined {
    const fd = live.get(this)?.fd ?? -1;
    return fd >= 0 ? fd : undefined;
  }

  /** Whether the fd is parked in the keeper's table. */
  get parked(): boolean {
    return (live.get(this)?.parked ?? -1) >= 0;
  }

  /** Releases the lock, now (a parked one too: the keeper has closed it when this returns). Idempotent. */
  close(): void {
    const p = live.get(this);
    if (p === undefined) return;
    live.delete(this);
    if (p.fd >= 0) p.closeFd(p.fd);
    if (p.parked >= 0) unpark([p.parked]);
  }

  /**
   * Re-exec: gives up this holder. Returns this thread's fd, still open and locked, to keep
   * across execve; undefined when the lock is parked (execve ends the keeper and releases
   * it: the next image locks the file again) or lost.
   */
  handOver(): number | undefined {
    const p = live.get(this);
    if (p === undefined) return undefined;
    live.delete(this);
    if (p.parked >= 0) handedOver.push(p.parked);
    return p.fd >= 0 ? p.fd : undefined;
  }
}

/**
 * Holds `fd`, open on `path` and locked (tryLock), as a HeldLock: parked in the keeper if it
 * runs, or if this fd's number says the table is full enough to start it. `closeFd` closes
 * an fd of this table (tests inject faults there).
 */
export function holdLock(fd: number, path: string, closeFd: (fd: number) => void = close): HeldLock {
  const held = new HeldLock(path);
  live.set(held, { fd, parked: -1, path, closeFd });
  if (running !== undefined) park([held]);
  else if (enabled !== undefined && !broken && fd >= enabled.minFds && start()) park([...live.keys()]);
  return held;
}

/**
 * Lets lock fds be parked once a lock's fd number reaches `minFds`. `keep`: Node's own fds.
 * `report` gets the one message that says why locks stay in this table.
 */
export function enableLockKeeper(opts: LockKeeperOptions): void {
  enabled = opts;
}

/** The keeper's thread while it runs (tests end it to play a failure). */
export function lockKeeperThread(): Worker | undefined {
  return running?.worker;
}

/** The exec after a hand-over failed: parked locks handed over are released, for this image to lock them again. */
export function releaseHandedOver(): void {
  const fds = handedOver;
  handedOver = [];
  if (fds.length > 0 && running !== undefined) unpark(fds);
}

function start(): boolean {
  try {
    const t: FdThread = startFdThread('lock-keeper', WORKER_BODY, enabled!.keep, (why, ended) => { if (running === t) giveUp(why, ended); });
    running = t;
    return true;
  } catch (err) {
    giveUp(`unable to start the lock keeper thread: ${strerror(err)}`, true);
    return false;
  }
}

/** Moves the fds of these locks (those still in this table) into the keeper's table. */
function park(locks: HeldLock[]): void {
  const places = locks.map((h) => live.get(h)).filter((p): p is Place => p !== undefined && p.fd >= 0 && p.parked < 0);
  if (places.length === 0 || running === undefined) return;
  const asked = askFdThread(running, { op: 'park', fds: places.map((p) => p.fd) }, ANSWER_TIMEOUT_MS);
  if (asked === 'timed-out') { giveUp(`the lock keeper did not answer within ${ANSWER_TIMEOUT_MS / 1000} seconds`, false); return; }
  const got = asked === 'too-big' ? [] : asked.answer;
  const copies = Array.isArray(got) && got.length === places.length ? got : [];
  let failed = 0;
  places.forEach((p, i) => {
    const n: unknown = copies[i];
    if (typeof n !== 'number' || n < 0) { failed++; return; }
    // The keeper's copy refers to the same open file: closing ours keeps the lock.
    p.closeFd(p.fd);
    p.fd = -1;
    p.parked = n;
  });
  if (failed > 0) giveUp(`the lock keeper could not take ${failed} of ${places.length} lock fds`, false);
}

/** Closes these fds of the keeper's table (their locks are released when it answers). */
function unpark(fds: number[]): void {
  if (running === undefined) return;
  const asked = askFdThread(running, { op: 'close', fds }, ANSWER_TIMEOUT_MS);
  if (asked === 'timed-out') giveUp(`the lock keeper did not answer within ${ANSWER_TIMEOUT_MS / 1000} seconds`, false);
}

/**
 * Gives the keeper up for good (reported once): locks stay in this table from now on. The
 * ones it had parked are released when its thread ends (at once if `ended`), and taken
 * again here then.
 */
function giveUp(why: string, ended: boolean): void {
  const t = running;
  running = undefined;
  broken = true;
  const lost = [...live.values()].filter((p) => p.parked >= 0);
  for (const p of lost) p.parked = -1;
  handedOver = [];
  enabled?.report(`${why} - supervise/lock fds stay in the main fd table from now on${lost.length > 0 ? `; locking again the ${lost.length} it held` : ''}`);
  if (t === undefined || ended) { relock(lost); return; }
  t.worker.once('exit', () => relock(lost));
  stopFdThread(t);
}

/**
 * Opens and locks again, in this table, the files of locks lost with the keeper (those still
 * held). A thread's fd table is freed a little after Node says it ended (its join returns
 * before the kernel closes its files): a lock still held is tried again, after 1, 2, 4… ms,
 * for about four seconds, and only then reported.
 */
function relock(lost: Place[], delayMs = 1): void {
  const failed: [Place, unknown][] = [];
  const still = new Set(live.values());
  for (const p of lost) {
    if (!still.has(p) || p.fd >= 0) continue;
    let fd = -1;
    try {
      fd = open(p.path, LOCK_OPEN_FLAGS, 0o644);
      if (!tryLock(fd, p.path)) throw new Error('locked by another process');
      p.fd = fd;
    } catch (err) {
      if (fd >= 0) close(fd);
      failed.push([p, err]);
    }
  }
  if (failed.length === 0) return;
  if (delayMs <= RELOCK_LAST_DELAY_MS) {
    setTimeout(() => relock(failed.map(([p]) => p), delayMs * 2), delayMs).unref();
    return;
  }
  const some = failed.slice(0, 3).map(([p, err]) => `${p.path} (${strerror(err)})`);
  enabled?.report(`unable to lock again ${failed.length} supervise/lock files the lock keeper held: ${some.join(', ')}${failed.length > 3 ? ', …' : ''}`);
}

/** The worker's part (fdthread.ts runs it): park (copy fds from the main table, answer their numbers here) and close. */
const WORKER_BODY = String.raw`
// 0, 1 and 2 closed at start (t6's stdio) are /dev/null again: a parked lock must not be
// the fd a stray write to stderr (a fatal error's message) lands in.
const openNull = f('int open(const char *path, int flags, int mode)');
for (let fd = 0; fd < 3; fd++) if (c.fcntl(fd, 1, 0) < 0) openNull('/dev/null', 2 | 0o2000000, 0);
function handle(req) {
  if (req.op === 'park') return req.fds.map(getfd);
  if (req.op === 'close') { for (const fd of req.fds) c.close(fd); return true; }
  return null;
}
`;
