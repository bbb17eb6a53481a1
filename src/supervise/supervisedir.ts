/**
 * One service's `supervise/` and `event/` as its Supervisor keeps them: the lock and the
 * control FIFO held for the supervisor's whole life, `supervise/status` written before each
 * event (`commit`, the one publishing step), the death tally, and the degraded mode.
 *
 * Degraded mode: when `supervise/` cannot be set up (a read-only or full /run), the
 * service runs all the same, without control files; the set-up is retried every 2 seconds
 * (every half second when fds ran out: the status must be right soon after they come
 * back) and the status written as soon as it succeeds. A status write that fails is
 * retried every second, with one warning when it starts failing and one line when it
 * works again. Events that could not reach a listener for lack of fds are owed to it
 * (s6/fifodir.ts) and sent, in order, by a retry that writes a pending status first.
 * Nothing here throws once `open` has returned.
 */
import path from 'node:path';
import { type SupervisorStatus } from '../s6/status.ts';
import { type Tain } from '../s6/tai.ts';
import { OwedEvents } from '../s6/fifodir.ts';
import { deathFromWstat } from '../s6/deathtally.ts';
import { type ControlReader, type HeldSuperviseDir, type SupervisorFiles, SupervisorSetupError } from './servicefiles.ts';
import type { HeldFds } from './handover.ts';
import { strerror } from '../sys/errors.ts';
import { isFdShortage } from '../sys/fdreserve.ts';

const STATUS_RETRY_MS = 1_000;
const FILES_RETRY_MS = 2_000;
/** Set-up retry when fds ran out: the status is right at most this long after they return. */
const FD_SHORTAGE_RETRY_MS = 500;
/** Retry of events owed to listeners for lack of fds: a waiter learns of them this late at most. */
const EVENT_RETRY_MS = 200;

/** A cancellable timer. */
export interface TimerHandle {
  cancel(): void;
}

/** What a SuperviseDir needs from its Supervisor and the host. */
export interface SuperviseDirOptions {
  /** The service's name (for messages). */
  name: string;
  /** The service directory, as found (moveTo follows a rename). */
  dir: string;
  files: SupervisorFiles;
  /** The status record to write, as it is now. */
  status: () => SupervisorStatus;
  /** Bytes read from the control FIFO. */
  onControl: (bytes: string) => void;
  /** Events just sent (status already written). */
  onEvent: (events: string) => void;
  report: (level: 'info' | 'warning' | 'error', message: string) => void;
  setTimer: (ms: number, fn: () => void) => TimerHandle;
}

/** The supervise/ directory of one Supervisor. */
export class SuperviseDir {
  #opts: SuperviseDirOptions;
  /** The service directory's real path now. */
  #dir: string;
  #held: HeldSuperviseDir | undefined;
  /** false while supervise/ could not be set up (degraded: no control FIFO, no status file). */
  #ready = true;
  #filesRetry: TimerHandle | undefined;
  #statusDirty = false;
  #statusRetry: TimerHandle | undefined;
  #statusFailing = false;
  /** Events not yet delivered for lack of fds, with their retry. */
  #owed = new OwedEvents();
  #eventRetry: TimerHandle | undefined;
  #closed = false;

  constructor(opts: SuperviseDirOptions) {
    this.#opts = opts;
    this.#dir = opts.dir;
  }

  /**
   * Sets up event/ and supervise/ (lock, control FIFO, empty death tally). Throws
   * SupervisorSetupError only when another supervisor holds the lock; any other failure
   * is a warning and the degraded mode.
   */
  open(resetDeathTally = true): void {
    try {
      this.#setUp(resetDeathTally);
    } catch (err) {
      if (!(err instanceof SupervisorSetupError) || err.busy) throw err;
      // A read-only or full /run must not keep the service from running: supervise it
      // without its control files, and set them up as soon as the filesystem allows.
      this.#ready = false;
      const retryMs = isFdShortage(err) ? FD_SHORTAGE_RETRY_MS : FILES_RETRY_MS;
      this.#opts.report('warning', `${err.message} - running ${this.#opts.name} without its control files; retrying every ${retryMs / 1000} seconds`);
      this.#retryFiles(retryMs);
    }
  }

  /** Writes status (atomically, before any event) and then sends `events`, one write per byte group. */
  commit(events?: string): void {
    this.#writeStatus();
    if (events !== undefined) this.notify(events);
  }

  /** Sends `events` to event/ listeners and to the observer, without a status write (s6's `x`). */
  notify(events: string): void {
    const owing = !this.#owed.empty;
    this.#opts.files.notify(this.#dir, events, this.#owed);
    this.#opts.onEvent(events);
    if (!owing && !this.#owed.empty) {
      this.#opts.report('warning', `unable to notify every listener of ${path.join(this.#dir, 'event')}: ${strerror(this.#owed.lastError)} - retrying every ${EVENT_RETRY_MS / 1000} seconds`);
    }
    this.#retryOwedEvents();
  }

  /** Records which process `run` is (pid and start time) for a successor that may adopt it; best effort. */
  recordStart(pid: number): void {
    if (!this.#ready) return;
    try {
      this.#opts.files.recordStart(this.#dir, pid);
    } catch { /* only adoption needs it: without it, a successor starts the service afresh */ }
  }

  /** Appends a death to supervise/death_tally (keeping `max` records); a failure is a warning. */
  recordDeath(stamp: Tain, wstat: number, max: number): void {
    if (!this.#ready || max === 0) return;
    try {
      this.#opts.files.recordDeath(this.#dir, deathFromWstat(stamp, wstat), max);
    } catch (err) {
      this.#opts.report('warning', `unable to update ${path.join(this.#dir, 'supervise', 'death_tally')}: ${strerror(err)}`);
    }
  }

  /** The service directory's real path now. */
  get dir(): string {
    return this.#dir;
  }

  /**
   * The service directory was renamed to `dir`: the fds held in it (lock, control FIFO)
   * are still good, and every later use goes there. A status write that failed meanwhile
   * (the old path was gone) is done now rather than at its retry.
   */
  moveTo(dir: string): void {
    this.#dir = dir;
    if (this.#statusDirty && !this.#closed) this.#writeStatus();
  }

  /** Whether supervise/ is set up (the death tally is kept only then). */
  get ready(): boolean {
    return this.#ready;
  }

  /** Re-exec: retries cancelled, the control FIFO no longer read; its fd and the lock's are returned still open (undefined in degraded mode). */
  handOver(): HeldFds | undefined {
    const held = this.#held;
    this.#held = undefined;
    this.close();
    return held?.handOver();
  }

  /** The next image's side: serves the fds handed over; with none (degraded mode, or an adoption), sets up afresh, keeping the death tally. */
  resume(fds: HeldFds | undefined): void {
    if (fds === undefined) { this.open(false); return; }
    this.#held = this.#opts.files.resumeHeld(this.#dir, fds, this.#controlReader());
    // A parked lock is taken again by the next image; someone may have taken it in between.
    if (this.#held.unlocked !== undefined) this.#opts.report('error', `${this.#held.unlocked} - ${this.#opts.name} may be supervised twice; stop one of them`);
  }

  /** The next image, the supervisor whole again: bytes written to the control FIFO during the exec are acted on now. */
  takeWaitingControl(): void {
    this.#held?.takeWaiting();
  }

  /** The end: retries cancelled (but that of owed events: the last ones are owed too), control FIFO and lock released. */
  close(): void {
    this.#closed = true;
    this.#statusRetry?.cancel();
    this.#statusRetry = undefined;
    this.#filesRetry?.cancel();
    this.#filesRetry = undefined;
    this.#held?.close();
    this.#held = undefined;
  }

  #setUp(resetDeathTally: boolean): void {
    this.#held = this.#opts.files.setUp(this.#dir, resetDeathTally, this.#controlReader());
  }

  #controlReader(): ControlReader {
    return {
      onBytes: this.#opts.onControl,
      onError: (err) => this.#opts.report('error', `${this.#opts.name}: control FIFO: ${strerror(err)}`),
    };
  }

  #retryFiles(ms: number): void {
    this.#filesRetry = this.#opts.setTimer(ms, () => {
      this.#filesRetry = undefined;
      if (this.#closed) return;
      try {
        this.#setUp(false);
      } catch (err) {
        if (err instanceof SupervisorSetupError && err.busy) {
          this.#opts.report('error', `${err.message} - ${this.#opts.name} is now supervised twice; stop one of them`);
          return;
        }
        this.#retryFiles(isFdShortage(err) ? FD_SHORTAGE_RETRY_MS : FILES_RETRY_MS);
        return;
      }
      this.#ready = true;
      this.#opts.report('info', `${path.join(this.#dir, 'supervise')} is set up: ${this.#opts.name} can be controlled again`);
      this.#writeStatus();
    });
  }

  #writeStatus(): void {
    if (!this.#ready) return;
    const file = path.join(this.#dir, 'supervise', 'status');
    try {
      this.#opts.files.writeStatus(this.#dir, this.#opts.status());
      this.#statusDirty = false;
      if (this.#statusFailing) {
        this.#statusFailing = false;
        this.#opts.report('info', `${file} is being written again`);
      }
    } catch (err) {
      this.#statusDirty = true;
      if (!this.#statusFailing) {
        this.#statusFailing = true;
        this.#opts.report('warning', `unable to write ${file}: ${strerror(err)} - the service goes on; retrying every second`);
      }
      if (this.#statusRetry === undefined) {
        this.#statusRetry = this.#opts.setTimer(STATUS_RETRY_MS, () => {
          this.#statusRetry = undefined;
          if (this.#statusDirty && !this.#closed) this.#writeStatus();
        });
      }
    }
  }

  /** While events are owed, retries them: a pending status first, as every event follows its status. */
  #retryOwedEvents(): void {
    if (this.#owed.empty || this.#eventRetry !== undefined) return;
    this.#eventRetry = this.#opts.setTimer(EVENT_RETRY_MS, () => {
      this.#eventRetry = undefined;
      if (this.#statusDirty && !this.#closed) this.#writeStatus();
      this.#opts.files.notify(this.#dir, '', this.#owed);
      if (this.#owed.empty) this.#opts.report('info', `${path.join(this.#dir, 'event')}: every listener has its events again`);
      this.#retryOwedEvents();
    });
  }
}
