/**
 * The reaper: on every SIGCHLD, waitpid(-1, WNOHANG) until nothing is left, so every child
 * — ours or an orphan re-parented to us — is collected. One class for every process of t6
 * that reaps its own children:
 *
 * - t6-svscan (and pid 1): watched pids get their wait status delivered; the others are
 *   orphans of the machine and are dropped — pid 1 inherits every orphan, and keeping their
 *   statuses would grow without end. It also knows when no child at all is left, which for
 *   pid 1 means no process is left on the machine (shutdown waits for exactly that).
 * - a small process such as t6-log, which starts children (processors) and asks for their
 *   status later: with `keepUnwatched`, the status of a child reaped before anyone asked is
 *   kept until `waitPid` asks for it.
 *
 * A spawn whose pid comes later (spawnAsync) is covered by `expect`: meanwhile, unwatched
 * statuses are kept, since one of them may be that child's.
 */
import { reapAllStatus, spawn, spawnAsync, type Reaped, type SpawnOptions } from './spawn.ts';

/** How a Reaper is set up. */
export interface ReaperOptions {
  /**
   * Called with what an exit callback threw; the reaper goes on with the others. Default:
   * thrown again once the reap is over, an uncaught exception.
   */
  onError?: (err: unknown) => void;
  /**
   * Keep the status of every child reaped while nobody watches it, until `waitPid` asks
   * (default false). Only for a process whose children are all its own: never pid 1.
   */
  keepUnwatched?: boolean;
  /** waitpid(-1, WNOHANG) until nothing is left (tests pass a fake; default: the real one). */
  reapAll?: () => { reaped: Reaped[]; childless: boolean };
}

/** Collects dead children and hands their statuses to whoever started them. */
export class Reaper {
  #watched = new Map<number, (wstat: number) => void>();
  #childless = false;
  #onChildless = new Set<() => void>();
  #onError: (err: unknown) => void;
  #keepUnwatched: boolean;
  #reapAll: () => { reaped: Reaped[]; childless: boolean };
  /** Spawns under way whose pid is not known yet (spawnAsync): for each, the reap count when it began. */
  #expecting: number[] = [];
  /**
   * Statuses of children reaped unwatched and kept (keepUnwatched, or a spawn under way),
   * with the reap count when each came. Bounded: without keepUnwatched, one is dropped once
   * every spawn under way began after it was reaped (it cannot be theirs), so pid 1 keeps
   * only the orphans reaped during the spawns under way, however long some spawn or other is.
   */
  #kept = new Map<number, { wstat: number; at: number }>();
  /** Children reaped unwatched so far (orders #kept against the spawns under way). */
  #reapCount = 0;

  constructor(opts: ReaperOptions = {}) {
    this.#onError = opts.onError ?? ((err) => queueMicrotask(() => { throw err; }));
    this.#keepUnwatched = opts.keepUnwatched === true;
    this.#reapAll = opts.reapAll ?? reapAllStatus;
  }

  /** Calls `onExit` with the wait status when `pid` is reaped (at once if its status was kept). */
  watch(pid: number, onExit: (wstat: number) => void): void {
    const kept = this.#kept.get(pid);
    if (kept !== undefined) {
      this.#kept.delete(pid);
      this.#deliver(onExit, kept.wstat);
      return;
    }
    this.#watched.set(pid, onExit);
    this.#childless = false;
  }

  /**
   * The wait status of `pid`, once it has exited and been reaped. With `keepUnwatched`,
   * also for a child reaped before this was asked.
   */
  waitPid(pid: number): Promise<number> {
    return new Promise((resolve) => this.watch(pid, resolve));
  }

  /**
   * For a spawn whose pid comes later (spawnAsync: the child runs, and may even die and be
   * reaped, before its pid reaches the event loop). Until the returned function is called,
   * unwatched children's statuses are kept; calling it with the pid watches that pid, or
   * delivers its status at once if it is already dead. With undefined: the spawn failed.
   */
  expect(): (pid: number | undefined, onExit?: (wstat: number) => void) => void {
    const began = this.#reapCount;
    this.#expecting.push(began);
    let settled = false;
    return (pid, onExit) => {
      if (settled) return;
      settled = true;
      this.#expecting.splice(this.#expecting.indexOf(began), 1);
      if (pid !== undefined && onExit !== undefined) this.watch(pid, onExit);
      if (this.#keepUnwatched) return;
      // Those reaped before every spawn still under way began: orphans, dropped.
      const oldest = Math.min(...this.#expecting); // Infinity when none is under way
      for (const [keptPid, { at }] of this.#kept) {
        if (at >= oldest) break; // kept in the order reaped
        this.#kept.delete(keptPid);
      }
    };
  }

  /** Resolves once a reap finds no child left (at once if none is left now). */
  untilChildless(): Promise<void> {
    this.reap();
    if (this.#childless) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => { this.#onChildless.delete(done); resolve(); };
      this.#onChildless.add(done);
    });
  }

  /** Reaps everything that has died; called on SIGCHLD (and whenever in doubt: it never blocks). */
  reap(): void {
    const { reaped, childless } = this.#reapAll();
    for (const { pid, wstat } of reaped) {
      const onExit = this.#watched.get(pid);
      if (onExit === undefined) {
        if (this.#keepUnwatched || this.#expecting.length > 0) this.#kept.set(pid, { wstat, at: this.#reapCount++ });
        continue;
      }
      this.#watched.delete(pid);
      this.#deliver(onExit, wstat);
    }
    // A callback may have started a child since waitpid said ECHILD, or one may be starting.
    this.#childless = childless && this.#watched.size === 0 && this.#expecting.length === 0;
    if (this.#childless) for (const fn of [...this.#onChildless]) fn();
  }

  #deliver(onExit: (wstat: number) => void, wstat: number): void {
    try {
      onExit(wstat);
    } catch (err) {
      this.#onError(err);
    }
  }
}

/** Spawns whose children `reaper` watches: what a process that starts and reaps its own children hands out. */
export interface ReapedSpawns {
  spawn(opts: SpawnOptions, onExit: (wstat: number) => void): number;
  /** Off the event loop (spawnAsync); the child may die before its pid comes (Reaper.expect). */
  spawnAsync(opts: SpawnOptions, onExit: (wstat: number) => void): Promise<number>;
}

/** spawn and spawnAsync, each child watched by `reaper`; `allCloexec`: every fd above 2 is close-on-exec already. */
export function reapedSpawns(reaper: Reaper, allCloexec = false): ReapedSpawns {
  return {
    spawn: (opts, onExit) => {
      const pid = spawn({ ...opts, allCloexec });
      reaper.watch(pid, onExit);
      return pid;
    },
    spawnAsync: (opts, onExit) => {
      const settle = reaper.expect();
      return spawnAsync({ ...opts, allCloexec }).then(
        (pid) => { settle(pid, onExit); return pid; },
        (err: unknown) => { settle(undefined); throw err; },
      );
    },
  };
}
