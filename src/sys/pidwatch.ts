/**
 * Watching processes that are not our children for their exit, without polling. SIGCHLD and
 * waitpid only tell a parent about its children; a t6-svscan that adopts the services of a
 * predecessor that was killed is not their parent, yet must know at once when one dies.
 *
 * How: each watched process gets a pidfd (pidfd_open(2), Linux 5.3), which becomes readable
 * when the process exits. All pidfds sit in one epoll set, and one epoll_wait blocks on a
 * libuv worker thread (koffi's asynchronous call); its callback, on the event loop, hands
 * each exit to its watcher and starts the next wait. A pidfd stays readable once its
 * process is dead (level-triggered), so it leaves the set before the next wait starts.
 *
 * An eventfd in the set wakes the waiting thread early: when the last watch goes, or on
 * close(). Nothing is waited for while nothing is watched, so an idle watcher holds no
 * thread and keeps no event loop alive; while something is watched, the pending wait keeps
 * the process alive (as a child's handle would) and occupies one of libuv's worker threads.
 *
 * Each watch has its own token in the epoll data, never reused: a wait's results may reach
 * the event loop after an unwatch freed a pidfd's number and a new watch took it, and they
 * must not be taken for the new process's exit.
 */
import fs from 'node:fs';
import { c, errno } from './libc.ts';
import { SysError, toError } from './errors.ts';
import { procStartTime } from './proc.ts';

/** pidfd_open's number: the same on every architecture since Linux 5.1's unified table (but alpha). */
const SYS_PIDFD_OPEN = 434;
const EPOLL_CLOEXEC = 0o2000000;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLLIN = 0x1;
const ESRCH = 3;
const EINTR = 4;
/** struct epoll_event: packed on x86_64 (u32 events @0, u64 data @4); naturally aligned elsewhere. */
const EVENT_SIZE = process.arch === 'x64' ? 12 : 16;
const DATA_OFFSET = process.arch === 'x64' ? 4 : 8;
/**
 * Exits taken per wake: bounds the buffer the worker writes into. More ready at once costs
 * one more wait each 64, not a lost exit: a dead process's pidfd stays ready.
 */
const MAX_EVENTS_PER_WAKE = 64;
/** The eventfd's token in the epoll data; watches count from 1. */
const WAKER_TOKEN = 0;

/** How a PidWatcher is set up. */
export interface PidWatcherOptions {
  /**
   * Called with what an exit callback threw (the others are still called), and with a
   * failed wait, after which the watcher is closed. Default: thrown again in a microtask,
   * an uncaught exception.
   */
  onError?: (err: unknown) => void;
}

interface Watch {
  readonly pid: number;
  readonly pidfd: number;
  readonly token: number;
  readonly onExit: () => void;
}

// koffi's asynchronous form of a bound function: the same arguments, then a callback.
type AsyncFn = { async(...args: unknown[]): void };

/** Tells of the exit of processes that need not be our children (see the file's header). */
export class PidWatcher {
  #byPid = new Map<number, Watch>();
  #byToken = new Map<number, Watch>();
  #nextToken = WAKER_TOKEN + 1;
  /** The epoll set and its waker, opened on the first watch; -1 before and after. */
  #epfd = -1;
  #waker = -1;
  /** An epoll_wait is under way on a worker thread (it writes into #events meanwhile). */
  #waiting = false;
  #closed = false;
  #events = Buffer.alloc(EVENT_SIZE * MAX_EVENTS_PER_WAKE);
  /** epoll_ctl's argument: never #events, which a waiting thread may be writing. */
  #ctlEvent = Buffer.alloc(EVENT_SIZE);
  #onError: (err: unknown) => void;

  constructor(opts: PidWatcherOptions = {}) {
    this.#onError = opts.onError ?? ((err) => queueMicrotask(() => { throw err; }));
  }

  /** How many processes are watched. */
  get size(): number {
    return this.#byPid.size;
  }

  /**
   * Calls `onExit` once, on the event loop, when process `pid` has exited (a zombie counts
   * as exited). False, and nothing is watched, if there is no such process (ESRCH) or, when
   * `startTime` is given, if the process under that pid is not the one that started then
   * (procStartTime): a recorded pid whose number was reused. Throws SysError for anything
   * else (EMFILE…), and if `pid` is watched already or the watcher is closed.
   */
  watch(pid: number, onExit: () => void, startTime?: bigint): boolean {
    if (this.#closed) throw new Error('PidWatcher: watch after close');
    if (this.#byPid.has(pid)) throw new Error(`PidWatcher: pid ${pid} is watched already`);
    this.#open();
    const pidfd = c.syscall(SYS_PIDFD_OPEN, 'int', pid, 'uint32', 0);
    if (pidfd < 0) {
      const e = errno();
      if (e === ESRCH) return false;
      throw new SysError('pidfd_open', e, String(pid));
    }
    // Checked after the pidfd is open: if the start time matches now, the pidfd was opened
    // on that same process (its pid cannot have been reused while it was alive).
    if (startTime !== undefined && procStartTime(pid) !== startTime) {
      c.close(pidfd);
      return false;
    }
    const watch: Watch = { pid, pidfd, token: this.#nextToken++, onExit };
    if (!this.#control(EPOLL_CTL_ADD, pidfd, watch.token)) {
      const e = errno();
      c.close(pidfd);
      throw new SysError('epoll_ctl', e, String(pid));
    }
    this.#byPid.set(pid, watch);
    this.#byToken.set(watch.token, watch);
    try {
      this.#arm();
    } catch (err) {
      // koffi refused the call (its queue of asynchronous calls is full): nothing watched.
      this.#forget(watch);
      c.close(pidfd);
      throw err;
    }
    return true;
  }

  /** Stops watching `pid`: its callback will not be called, even for an exit already seen. */
  unwatch(pid: number): void {
    const watch = this.#byPid.get(pid);
    if (watch === undefined) return;
    this.#forget(watch);
    c.close(watch.pidfd);
    if (this.#byPid.size === 0) this.#wake();
  }

  /**
   * The pidfd of a watched process, for a caller that needs it for more (waitid(P_PIDFD)
   * on a child, pidfd_send_signal). Owned by the watcher: open until the watch ends, which
   * is after its onExit has returned.
   */
  pidfd(pid: number): number | undefined {
    return this.#byPid.get(pid)?.pidfd;
  }

  /** Ends every watch (no callback is called) and releases the fds; the watcher is done. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const watch of [...this.#byPid.values()]) {
      this.#forget(watch);
      c.close(watch.pidfd);
    }
    // A waiting thread holds the epoll fd: it is closed once that wait has returned.
    if (this.#waiting) this.#wake();
    else this.#closeSet();
  }

  #open(): void {
    if (this.#epfd >= 0) return;
    const epfd = c.epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) throw new SysError('epoll_create1', errno());
    const waker = c.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (waker < 0) {
      const e = errno();
      c.close(epfd);
      throw new SysError('eventfd', e);
    }
    this.#epfd = epfd;
    this.#waker = waker;
    if (!this.#control(EPOLL_CTL_ADD, waker, WAKER_TOKEN)) {
      const e = errno();
      this.#closeSet();
      throw new SysError('epoll_ctl', e, 'eventfd');
    }
  }

  #control(op: number, fd: number, token: number): boolean {
    this.#ctlEvent.writeUInt32LE(EPOLLIN, 0);
    this.#ctlEvent.writeBigUInt64LE(BigInt(token), DATA_OFFSET);
    return c.epoll_ctl(this.#epfd, op, fd, this.#ctlEvent) === 0;
  }

  /** Out of the maps and the epoll set; the caller closes the pidfd. */
  #forget(watch: Watch): void {
    this.#byPid.delete(watch.pid);
    this.#byToken.delete(watch.token);
    // Explicitly: a copy of the pidfd (dup, a child that inherited it) would keep it in the set.
    c.epoll_ctl(this.#epfd, EPOLL_CTL_DEL, watch.pidfd, null);
  }

  /** Starts the wait on a worker thread, unless one is under way or nothing is watched. */
  #arm(): void {
    if (this.#waiting || this.#closed || this.#byPid.size === 0) return;
    (c.epoll_wait as unknown as AsyncFn).async(this.#epfd, this.#events, MAX_EVENTS_PER_WAKE, -1,
      (err: unknown, ready: number) => this.#woke(err, ready));
    this.#waiting = true;
  }

  /** Ends a wait under way early (the waker's counter goes up; the wait returns). */
  #wake(): void {
    if (!this.#waiting) return;
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    fs.writeSync(this.#waker, one);
  }

  /** A wait returned, on the event loop: hand over the exits, then wait again. */
  #woke(err: unknown, ready: number): void {
    this.#waiting = false;
    if (this.#closed) {
      this.#closeSet();
      return;
    }
    if (err !== null && err !== undefined) return this.#fail(toError(err));
    if (ready < 0) {
      // errno is the worker's: koffi restores it for this callback.
      const e = errno();
      if (e !== EINTR) return this.#fail(new SysError('epoll_wait', e));
    }
    const exited: Watch[] = [];
    for (let i = 0; i < ready; i++) {
      const token = Number(this.#events.readBigUInt64LE(i * EVENT_SIZE + DATA_OFFSET));
      if (token === WAKER_TOKEN) this.#drainWaker();
      else {
        const watch = this.#byToken.get(token);
        if (watch !== undefined) exited.push(watch);
      }
    }
    for (const watch of exited) this.#deliver(watch);
    this.#arm();
  }

  #deliver(watch: Watch): void {
    // An earlier callback of the same wake may have unwatched it (or closed the watcher).
    if (this.#byToken.get(watch.token) !== watch) return;
    this.#forget(watch);
    try {
      watch.onExit();
    } catch (err) {
      this.#onError(err);
    } finally {
      c.close(watch.pidfd);
    }
  }

  #drainWaker(): void {
    try {
      fs.readSync(this.#waker, Buffer.alloc(8));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }

  #fail(err: Error): void {
    this.close();
    this.#onError(err);
  }

  #closeSet(): void {
    if (this.#epfd >= 0) c.close(this.#epfd);
    if (this.#waker >= 0) c.close(this.#waker);
    this.#epfd = -1;
    this.#waker = -1;
  }
}
