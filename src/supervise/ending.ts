/**
 * How supervision ends, for part or all of the scan directory (s6-spec/svscan.md):
 *
 * - **Prune** (`-n`, `-N`, and `-h` after its rescan): the supervisors of entries the last
 *   scan did not see are told to end — services brought down ('term'), loggers let go once
 *   their input ends ('hup'; 'term' with `-N`).
 * - **Terminate** (`-t`, `-q`; `-b` aborts at once): every supervisor is told to end;
 *   once the last is gone, the control files close, the in-process loggers write and sync
 *   what they hold, and `done` says what to exec next (`.s6-svscan/finish`).
 * - **Unsupervise everything** (shutdown, s6-linux-init-shutdownd's way): every service
 *   brought down for good and its supervisor let go, but the scanner does not end: pid 1
 *   carries on into stage 4.
 *
 * An entry is forgotten once it is inactive (or supervision ends) and none of its
 * supervisors is left: its pipes close, and its in-process logger writes out what it holds.
 */
import path from 'node:path';
import type { Logging } from './logging.ts';
import type { Plumbing } from './plumbing.ts';
import type { ScandirControl } from './scandir-control.ts';
import type { ScannerFiles } from './scanner-host.ts';
import { cancelRestarts, slots, type ServiceEntry, type ServiceTable } from './slots.ts';

/** How the scanner ended, and what the caller should exec (s6-svscan execs `.s6-svscan/finish`). */
export interface ScannerExit {
  reason: 'terminate' | 'quit' | 'abort';
  /** Absolute path of `.s6-svscan/finish` if it exists, else undefined (exit 0). */
  finish: string | undefined;
}

/** What the ending works with. */
export interface EndingContext {
  scandir: string;
  table: ServiceTable;
  plumbing: Plumbing;
  control: ScandirControl;
  logging: Logging;
  files: ScannerFiles;
  /** Stops the scanner's own timers (periodic rescan, scan retry). */
  stopTimers(): void;
}

/** The ending of one scanner. */
export class Ending {
  readonly done: Promise<ScannerExit>;
  readonly #ctx: EndingContext;
  #reason: ScannerExit['reason'] | undefined;
  #unsupervised = false;
  #resolve!: (exit: ScannerExit) => void;

  constructor(ctx: EndingContext) {
    this.#ctx = ctx;
    this.done = new Promise((resolve) => { this.#resolve = resolve; });
  }

  /** Supervision is ending: no scan, no (re)start. */
  get ending(): boolean { return this.#reason !== undefined; }

  /** The scan directory is no longer read (ending, or everything unsupervised). */
  get closed(): boolean { return this.#reason !== undefined || this.#unsupervised; }

  /** Stops the supervisors of inactive entries: services get 'term', loggers 'hup' (or 'term' with `loggersToo`). */
  prune(loggersToo: boolean): void {
    for (const entry of [...this.#ctx.table.entries()]) {
      if (entry.active) continue;
      entry.main.sup?.request('term');
      entry.log?.sup?.request(loggersToo ? 'term' : 'hup');
      this.forgetIfDead(entry);
    }
  }

  /** Every entry inactive and pruned, loggers included; the scan directory is never read again. */
  unsuperviseAll(): void {
    this.#unsupervised = true;
    this.#ctx.stopTimers();
    for (const entry of this.#ctx.table.entries()) {
      entry.active = false;
      cancelRestarts(entry);
    }
    this.prune(true);
  }

  /** Ends supervision ('abort': at once, services left running). A second terminate is ignored; abort always wins. */
  terminate(reason: ScannerExit['reason']): void {
    if (this.#reason !== undefined && reason !== 'abort') return;
    this.#reason = reason;
    this.#ctx.stopTimers();
    this.#ctx.control.cancelRetry();
    const entries = [...this.#ctx.table.entries()];
    for (const entry of entries) cancelRestarts(entry);
    if (reason !== 'abort') {
      for (const entry of entries) {
        entry.main.sup?.request('term');
        entry.log?.sup?.request(reason === 'quit' ? 'term' : 'hup');
        if (entry.main.sup === undefined) this.#ctx.plumbing.closeWriteEnd(entry);
      }
    }
    this.maybeFinish();
  }

  /** Forgets `entry` if it is inactive (or supervision ends) and none of its supervisors is left. */
  forgetIfDead(entry: ServiceEntry): void {
    if (entry.active && this.#reason === undefined) return;
    if (entry.main.sup === undefined) this.#ctx.plumbing.closeWriteEnd(entry);
    if (slots(entry).some((s) => s.sup !== undefined)) return;
    cancelRestarts(entry);
    this.#ctx.plumbing.release(entry);
    this.#ctx.table.delete(entry);
    if (this.#reason === undefined) this.#ctx.plumbing.updatePipelines();
  }

  /** Once ending and no supervisor is left (or aborting): close everything, write the logs, resolve `done`. */
  maybeFinish(): void {
    const reason = this.#reason;
    if (reason === undefined) return;
    if (reason !== 'abort' && this.#ctx.table.running > 0) return;
    this.#ctx.control.close();
    this.#ctx.plumbing.releaseAll();
    const finish = path.join(this.#ctx.scandir, '.s6-svscan', 'finish');
    const exit: ScannerExit = { reason, finish: this.#ctx.files.exists(finish) ? finish : undefined };
    // In-process loggers write and sync what they hold first (bounded: a full disk must not hang the end).
    void this.#ctx.logging.closeAll().then(() => this.#resolve(exit), () => this.#resolve(exit));
  }
}
