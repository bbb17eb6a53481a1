/**
 * A spare fd, held open on /dev/null from the start, for the writes that must not fail
 * when the fd table is full (EMFILE) or the system's is (ENFILE): `supervise/status`, the
 * events to `event/` listeners, the death tally. Each of those needs one fd at a time
 * (open, write, close), so one spare slot is enough: when such a write fails for lack of
 * an fd, the spare is closed, the write runs again in the slot it left, and the spare is
 * opened again after. Nothing is paid while fds are plentiful.
 *
 * JavaScript runs one thing at a time, so nothing on the event loop takes the slot between
 * the close and the write; a libuv worker thread could (an asynchronous fs call), and then
 * the write fails as it would have without a spare, and is retried by its owner.
 */
import { O_CLOEXEC, O_RDONLY, close, open } from './fd.ts';
import { errorCode } from './errors.ts';

/** Whether `err` says that no fd could be had: EMFILE (this process) or ENFILE (the system). */
export function isFdShortage(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'EMFILE' || code === 'ENFILE';
}

/** The fd calls of a reserve (tests replace them to play a full table). */
export interface ReserveCalls {
  openSpare(): number;
  close(fd: number): void;
}

const SYSTEM_CALLS: ReserveCalls = {
  openSpare: () => open('/dev/null', O_RDONLY | O_CLOEXEC),
  close,
};

/** One spare fd, spent and taken back around a write that ran out of fds. */
export class FdReserve {
  readonly #calls: ReserveCalls;
  #fd = -1;

  /** Opens the spare now: at start, while fds are still to be had. */
  constructor(calls: ReserveCalls = SYSTEM_CALLS) {
    this.#calls = calls;
    this.#take();
  }

  /** Whether the spare is held (false after a slot was lost to someone else, until it comes back). */
  get held(): boolean {
    return this.#fd >= 0;
  }

  /**
   * Runs `fn` (synchronous); if it throws EMFILE or ENFILE and the spare is held, runs it
   * once more in the spare's slot. Throws what the last attempt threw.
   */
  run<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (!isFdShortage(err) || this.#fd < 0) throw err;
    }
    return this.spend(fn);
  }

  /** Runs `fn` (synchronous) with the spare's slot free, then takes the slot back. */
  spend<T>(fn: () => T): T {
    if (this.#fd >= 0) {
      this.#calls.close(this.#fd);
      this.#fd = -1;
    }
    try {
      return fn();
    } finally {
      this.#take();
    }
  }

  /** Closes the spare for good (a supervisor tree that ends). */
  close(): void {
    if (this.#fd >= 0) this.#calls.close(this.#fd);
    this.#fd = -1;
  }

  #take(): void {
    try {
      this.#fd = this.#calls.openSpare();
    } catch {
      this.#fd = -1; // the table is full: the next spend tries again
    }
  }
}
