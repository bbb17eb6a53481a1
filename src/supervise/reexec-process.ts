/**
 * Re-exec as a process: t6-svscan replaces its own image with a fresh start of the same
 * program (the files on disk now: this is how t6 is upgraded), keeping its pid, its
 * children and the fds the hand-over names. Triggers: the `R` control byte (t6-svscanctl
 * -R), and faults — an uncaught exception, an unhandled rejection, the heap near its
 * limit — after which the state in memory is not trusted to go on; it is never a silent
 * carry-on. Faults that come back within a minute of each other more than a few times stop
 * the automatic re-exec (a loop of re-execs helps no one), which is reported.
 *
 * If execve fails, the same image carries on from the snapshot it just made (reexec.ts).
 */
import type { PerformanceObserver } from 'node:perf_hooks';
import { execve, currentEnv } from '../sys/spawn.ts';
import { close } from '../sys/fd.ts';
import { releaseHandedOver } from '../sys/lockkeeper.ts';
import { withoutSnapshotFlags } from '../sys/snapshot.ts';
import { strerror } from '../sys/errors.ts';
import { HANDOVER_ENV, HANDOVER_VERSION, monotonicNowMs, ownFds, writeHandover, type Handover, type ScannerSnapshot } from './handover.ts';

/** A re-exec for a fault is done when the heap in use passes this share of V8's limit after a full GC. */
export const HEAP_REEXEC_SHARE = 0.85;
/** At most this many automatic re-execs within FAULT_WINDOW_MS; then faults are only reported. */
const FAULT_REEXECS_MAX = 3;
const FAULT_WINDOW_MS = 60_000;
/** Environment variable carrying the recent automatic re-execs (monotonic ms), across images. */
const FAULTS_ENV = 'T6_REEXEC_FAULTS';

/** What a re-exec needs from t6-svscan. */
export interface ReexecDriver {
  /** Hands the scanner over (Scanner.handOver); rejects if it cannot be now. */
  handOver(): Promise<ScannerSnapshot>;
  /** The exec failed: carry on in this image from the snapshot. */
  carryOn(snap: ScannerSnapshot, elapsedMs: number): void;
  report(level: 'info' | 'warning' | 'error', message: string): void;
}

/** One t6-svscan's re-execs. */
export class Reexec {
  readonly #driver: ReexecDriver;
  #busy = false;
  #faults: number[];
  #gcObserver: PerformanceObserver | undefined;

  constructor(driver: ReexecDriver, env: NodeJS.ProcessEnv = process.env) {
    this.#driver = driver;
    this.#faults = (env[FAULTS_ENV] ?? '').split(',').filter((t) => t !== '').map(Number).filter(Number.isFinite);
    delete env[FAULTS_ENV];
  }

  /** Re-executes now (unless one is under way). Resolves only if the exec did not happen. */
  async request(reason: string): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      await this.#reexec(reason);
    } finally {
      this.#busy = false;
    }
  }

  /** A fault: re-exec, unless faults come back too often (then say so, and go on). */
  fault(reason: string): void {
    const now = monotonicNowMs();
    this.#faults = this.#faults.filter((t) => now - t < FAULT_WINDOW_MS);
    if (this.#faults.length >= FAULT_REEXECS_MAX) {
      this.#driver.report('error', `${reason} - not re-executing: ${this.#faults.length} re-execs for faults in the last ${FAULT_WINDOW_MS / 1000} seconds already; carrying on`);
      return;
    }
    this.#faults.push(now);
    this.#driver.report('error', `${reason} - re-executing to start from a clean state`);
    void this.request(reason);
  }

  /** Watches the heap after every full GC: near V8's limit, a re-exec gives the memory back. */
  watchHeap(): void {
    // Loaded here, not at the bundle's start: neither module is needed before the services run.
    const v8 = process.getBuiltinModule('node:v8');
    const { PerformanceObserver, constants: perfConstants } = process.getBuiltinModule('node:perf_hooks');
    const limit = v8.getHeapStatistics().heap_size_limit;
    this.#gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
        if (kind !== perfConstants.NODE_PERFORMANCE_GC_MAJOR) continue;
        const used = v8.getHeapStatistics().used_heap_size;
        if (used > HEAP_REEXEC_SHARE * limit) this.fault(`the heap holds ${Math.round(used / 1048576)} MB of its ${Math.round(limit / 1048576)} MB limit`);
      }
    });
    this.#gcObserver.observe({ entryTypes: ['gc'] });
  }

  /** Stops watching the heap (the tree has ended). */
  stop(): void {
    this.#gcObserver?.disconnect();
    this.#gcObserver = undefined;
  }

  async #reexec(reason: string): Promise<void> {
    let snap: ScannerSnapshot;
    try {
      snap = await this.#driver.handOver();
    } catch (err) {
      this.#driver.report('warning', `not re-executing (${reason}): ${strerror(err)}`);
      return;
    }
    const doc: Handover = { version: HANDOVER_VERSION, writtenAtMs: monotonicNowMs(), reason, scanner: snap };
    let fd: number;
    try {
      fd = writeHandover(doc);
    } catch (err) {
      this.#driver.report('error', `unable to write the re-exec state: ${strerror(err)} - carrying on in this image`);
      ownFds(snap);
      releaseHandedOver();
      this.#driver.carryOn(snap, monotonicNowMs() - doc.writtenAtMs);
      return;
    }
    const script = process.argv[1];
    const argv = [process.argv0, ...withoutSnapshotFlags(process.execArgv), ...(script === undefined ? [] : [script]), ...process.argv.slice(2)];
    const env = [...currentEnv().filter((kv) => !kv.startsWith(`${HANDOVER_ENV}=`) && !kv.startsWith(`${FAULTS_ENV}=`)), `${HANDOVER_ENV}=${fd}`];
    if (this.#faults.length > 0) env.push(`${FAULTS_ENV}=${this.#faults.join(',')}`);
    const err = execve(process.execPath, argv, env);
    close(fd);
    ownFds(snap);
    // The parked locks handed over are still held by this image's lock keeper: released,
    // for the supervisors carrying on here to lock their files again.
    releaseHandedOver();
    this.#driver.report('error', `unable to re-execute ${process.execPath}: ${strerror(err)} - carrying on in this image`);
    this.#driver.carryOn(snap, monotonicNowMs() - doc.writtenAtMs);
  }
}
