/**
 * The reaper: on every SIGCHLD, waitpid(-1, WNOHANG) until nothing is left, so every child
 * — ours or an orphan re-parented to us — is collected. Watched pids get their wait status
 * delivered; the rest are only counted. It also knows when no child at all is left, which
 * for pid 1 means no process is left on the machine (shutdown waits for exactly that).
 */
import { reapAllStatus } from '../sys/spawn.ts';

/** Collects dead children and hands their statuses to whoever started them. */
export class Reaper {
  #watched = new Map<number, (wstat: number) => void>();
  #orphans = 0;
  #childless = false;
  #onChildless = new Set<() => void>();
  #onError: (err: unknown) => void;
  /** Spawns under way whose pid is not known yet (spawnAsync). */
  #expecting = 0;
  /** Children reaped, unwatched, while such a spawn was under way: maybe one of those. */
  #early = new Map<number, number>();

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  /** Calls `onExit` with the wait status when `pid` is reaped. */
  watch(pid: number, onExit: (wstat: number) => void): void {
    this.#watched.set(pid, onExit);
    this.#childless = false;
  }

  /**
   * For a spawn whose pid comes later (spawnAsync: the child runs, and may even die and be
   * reaped, before its pid reaches the event loop). Until the returned function is called,
   * unwatched children's statuses are kept; calling it with the pid watches that pid, or
   * delivers its status at once if it is already dead. With undefined: the spawn failed.
   */
  expect(): (pid: number | undefined, onExit?: (wstat: number) => void) => void {
    this.#expecting++;
    let settled = false;
    return (pid, onExit) => {
      if (settled) return;
      settled = true;
      this.#expecting--;
      if (pid !== undefined && onExit !== undefined) {
        const wstat = this.#early.get(pid);
        if (wstat === undefined) this.watch(pid, onExit);
        else {
          this.#early.delete(pid);
          try {
            onExit(wstat);
          } catch (err) {
            this.#onError(err);
          }
        }
      }
      if (this.#expecting === 0) {
        this.#orphans += this.#early.size;
        this.#early.clear();
      }
    };
  }

  /** How many unwatched children (orphans, signal scripts) have been reaped. */
  get orphansReaped(): number {
    return this.#orphans;
  }

  /** How many watched children are still alive. */
  get watching(): number {
    return this.#watched.size;
  }

  /** Whether the last reap found no child left at all. */
  get childless(): boolean {
    return this.#childless;
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
    const { reaped, childless } = reapAllStatus();
    for (const { pid, wstat } of reaped) {
      const onExit = this.#watched.get(pid);
      if (onExit === undefined) {
        if (this.#expecting > 0) this.#early.set(pid, wstat);
        else this.#orphans++;
        continue;
      }
      this.#watched.delete(pid);
      try {
        onExit(wstat);
      } catch (err) {
        this.#onError(err);
      }
    }
    // A callback may have started a child since waitpid said ECHILD, or one may be starting.
    this.#childless = childless && this.#watched.size === 0 && this.#expecting === 0;
    if (this.#childless) for (const fn of [...this.#onChildless]) fn();
  }
}
