/**
 * The reaper: on every SIGCHLD, waitpid(-1, WNOHANG) until nothing is left, so every child
 * — ours or an orphan re-parented to us — is collected. Watched pids get their wait status
 * delivered; the rest are only counted.
 */
import { reapAll } from '../sys/spawn.ts';

/** Collects dead children and hands their statuses to whoever started them. */
export class Reaper {
  #watched = new Map<number, (wstat: number) => void>();
  #orphans = 0;
  #onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  /** Calls `onExit` with the wait status when `pid` is reaped. */
  watch(pid: number, onExit: (wstat: number) => void): void {
    this.#watched.set(pid, onExit);
  }

  /** How many unwatched children (orphans, signal scripts) have been reaped. */
  get orphansReaped(): number {
    return this.#orphans;
  }

  /** How many watched children are still alive. */
  get watching(): number {
    return this.#watched.size;
  }

  /** Reaps everything that has died; called on SIGCHLD (and whenever in doubt: it never blocks). */
  reap(): void {
    for (const { pid, wstat } of reapAll()) {
      const onExit = this.#watched.get(pid);
      if (onExit === undefined) {
        this.#orphans++;
        continue;
      }
      this.#watched.delete(pid);
      try {
        onExit(wstat);
      } catch (err) {
        this.#onError(err);
      }
    }
  }
}
