/**
 * t6-svscan's process around the Scanner: what the supervision tree's root does as a
 * process, as pid 1 or not. It makes itself a child subreaper (when not pid 1), marks every
 * inherited fd close-on-exec, routes the signals and SIGCHLD to the scanner (a signal that
 * comes while the scan directory is being taken is kept and acted on right after), writes
 * `-d` readiness once the control FIFO listens, and, when the scanner ends, says what to
 * do next: exec `.s6-svscan/finish`, or exit 0. Its caller (the CLI) does that, and prints.
 *
 * pid 1 must not die: an exception that escapes every guard ends in a re-exec with hand-over
 * (reexec-process.ts), which the state is rebuilt by; never in a death or a silent carry-on.
 */
import fs from 'node:fs';
import { getrlimit, getpid, pageOutExecutable, RLIMIT, setChildSubreaper, setProcessName } from '../sys/system.ts';
import { markAllCloexec, nodeOwnFds } from '../sys/spawn.ts';
import { enableSpawner } from '../sys/spawner.ts';
import { enableLockKeeper } from '../sys/lockkeeper.ts';
import { raiseFdLimit } from './fdlimit.ts';
import { reserveFdsInBackground } from '../sys/fd.ts';
import { Scanner, SCANNER_SIGNALS, type ScannerOptions, type ScannerSignal } from './scanner.ts';
import { monotonicNowMs, takeHandover, type Handover } from './handover.ts';
import { Reexec } from './reexec-process.ts';
import { EventLog } from './events.ts';
import { strerror, bugText } from '../sys/errors.ts';

/** How the tree is run. */
export interface SvscanConfig {
  scandir: string;
  rescanMs: number;
  maxServices: number;
  /** -d: an fd to write a newline to once the control FIFO listens; it is closed then. */
  notifyFd?: number;
  consoleFd?: number;
  /** -1: every line of every service without a logger to stdout, prefixed with its name. */
  consoleSink?: boolean;
  /** Scan dir entries that are not services. */
  notServices?: ReadonlySet<string>;
  /** Built-in signal actions replacing s6-svscan's (when no `.s6-svscan/SIG<NAME>` exists). */
  signalActions?: ScannerOptions['signalActions'];
  /** Called once the first scan is done (`resumed`: by an image that re-executed): t6-linux-init starts stage 2 here. */
  started?(scanner: Scanner, resumed: boolean): void;
  /** Why a re-exec may not happen now (pid 1 in stage 2 or shutting down), or undefined. */
  reexecRefusal?(): string | undefined;
  /** Resolves when the process must end before the scanner does (a container's halt). */
  interrupt?: Promise<SvscanEnd>;
  /** Messages before the scanner can take them (start-up): whole lines, for stderr. */
  early(line: string): void;
  /** The tree's event log, when the caller publishes into it too (pid 1's shutdown stages); default: a new one. */
  events?: EventLog;
}

/** What to do once the tree has ended. */
export type SvscanEnd =
  /** Exec `path` (`.s6-svscan/finish`) with argv [argv0], in `cwd`. */
  | { kind: 'exec'; path: string; argv0: string; cwd: string }
  | { kind: 'exit'; code: number };

/** Start-up is over this long after the first scan: the executable pages only start-up needed go back. */
const PAGE_OUT_AFTER_MS = 1000;

/**
 * Runs the supervision tree until the scanner ends (or `interrupt` resolves). Throws
 * ScannerSetupError when the scan directory cannot be taken.
 */
export async function serveScandir(cfg: SvscanConfig): Promise<SvscanEnd> {
  // Once the scanner is open its messages go through scanner.log (into the catch-all log if
  // there is one); before, to the caller's early channel.
  let scanner: Scanner | undefined;
  const report = (level: string, message: string): void => {
    const line = `t6-svscan: ${level}: ${message}`;
    if (scanner !== undefined) scanner.log(line);
    else cfg.early(line);
  };
  const resumed = readHandover(report);
  const events = cfg.events ?? new EventLog(monotonicNowMs);
  let endTree!: (end: SvscanEnd) => void;
  const ended = new Promise<SvscanEnd>((resolve) => { endTree = resolve; });
  // Whichever scanner runs (a re-exec that failed makes a new one) says when the tree ends.
  const adopt = (s: Scanner): void => {
    scanner = s;
    void s.done.then((exit) => {
      if (scanner !== s) return;
      s.releaseLock();
      endTree(exit.finish === undefined ? { kind: 'exit', code: 0 } : { kind: 'exec', path: exit.finish, argv0: '.s6-svscan/finish', cwd: cfg.scandir });
    });
  };
  const reexec = new Reexec({
    handOver: () => {
      const refusal = cfg.reexecRefusal?.();
      return refusal === undefined ? scanner!.handOver() : Promise.reject(new Error(refusal));
    },
    carryOn: (snap, elapsedMs) => adopt(Scanner.resume(scannerOptions(), snap, elapsedMs)),
    report,
  });
  const onUncaught = (err: Error): void => reexec.fault(`uncaught exception: ${bugText(err)}`);
  const onRejection = (err: unknown): void => reexec.fault(`unhandled rejection: ${bugText(err)}`);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);
  prepareProcess(cfg, report, resumed !== undefined);

  // Handlers first: with no handler, SIGTERM would kill a t6-svscan that is not pid 1.
  const { pending, release } = routeSignals(() => scanner);
  const scannerOptions = (): ScannerOptions => optionsFor(cfg, report, reexec, events);
  try {
    if (resumed !== undefined) {
      adopt(Scanner.resume(scannerOptions(), resumed.scanner, monotonicNowMs() - resumed.writtenAtMs));
      events.publish({ kind: 'scanner', phase: 're-executed', reason: resumed.reason });
      report('info', `re-executed (${resumed.reason}): carrying on with ${scanner!.supervisors().length} supervisors after ${Math.round(monotonicNowMs() - resumed.writtenAtMs)} ms`);
    } else {
      events.publish({ kind: 'scanner', phase: 'started' });
      adopt(Scanner.open(scannerOptions(), (opened) => {
        // From here on (the first scan included) messages go into the catch-all log.
        scanner = opened;
        notifyReady(cfg.notifyFd, report);
      }));
    }
  } catch (err) {
    release();
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onRejection);
    throw err;
  }
  scanner!.reaper.reap();
  cfg.started?.(scanner!, resumed !== undefined);
  for (const sig of pending.splice(0)) scanner!.signal(sig);
  reexec.watchHeap();
  // pid 1 lives for months: give back the executable pages only start-up needed.
  setTimeout(() => pageOutExecutable(), PAGE_OUT_AFTER_MS).unref();

  const end = await (cfg.interrupt === undefined ? ended : Promise.race([ended, cfg.interrupt]));
  reexec.stop();
  release();
  return end;
}

/** Fds held before services are spawned from the spawner thread (below: it does not pay its start). */
const SPAWNER_MIN_FDS = 1024;
/**
 * Share of the soft RLIMIT_NOFILE at which supervise/lock fds start being parked in the
 * lock keeper's table (sys/lockkeeper.ts). The keeper is a Node worker (its own V8 isolate:
 * about 9 MB of PSS measured here), worth it only for a tree that would otherwise run out
 * of fds: a tree under half the limit is far from it (20,000 here: about 3,000 services pay
 * nothing). At half, locks then leave the table as fast as they come, and the other half
 * holds what cannot be parked (control FIFOs, readiness and logger pipes).
 */
const LOCK_KEEPER_SHARE = 0.5;

/** The process-wide set-up: subreaper, name, close-on-exec everywhere, fd limit and room in the fd table. */
function prepareProcess(cfg: SvscanConfig, report: (level: string, message: string) => void, resumed: boolean): void {
  if (getpid() !== 1) {
    try { setChildSubreaper(); } catch (err) { report('warning', `unable to become a subreaper: ${strerror(err)}`); }
  }
  setProcessName('t6-svscan');
  // Whatever we inherited above fd 2 must not reach services (-d and -X fds are passed
  // explicitly where they belong); from here on every fd of ours is close-on-exec.
  markAllCloexec();
  // Past this many fds, services are spawned from a thread with a table of its own: a spawn
  // from this one copies every fd into the child (sys/spawner.ts). T6_SPAWNER_MIN_FDS: tests.
  const minFds = Number(process.env['T6_SPAWNER_MIN_FDS'] ?? SPAWNER_MIN_FDS);
  // -d and -X are t6's, not Node's: the spawner must not keep a copy (a reader waits for EOF).
  const keep = new Map([...nodeOwnFds].filter(([fd]) => fd !== cfg.notifyFd && fd !== cfg.consoleFd));
  if (minFds >= 0) enableSpawner({ minFds, keep, report: (message) => report('warning', message) });
  const keeperEnv = process.env['T6_LOCK_KEEPER_MIN_FDS'];
  const keeperMin = keeperEnv === undefined ? undefined : Number(keeperEnv);
  // Said once: an image that re-executed tries again (the limit may be raised since), quietly.
  const limitWarning = raiseFdLimit(cfg.maxServices, keeperMin === undefined || keeperMin >= 0);
  if (limitWarning !== undefined && !resumed) report('warning', limitWarning);
  let limit = 65536;
  try { limit = Number(getrlimit(RLIMIT.NOFILE).soft); } catch { /* as if 65,536 */ }
  // T6_LOCK_KEEPER_MIN_FDS: tests (negative: never park).
  const lockMin = keeperMin ?? Math.floor(limit * LOCK_KEEPER_SHARE);
  if (lockMin >= 0) enableLockKeeper({ minFds: lockMin, keep, report: (message) => report('warning', message) });
  // Room in the fd table for every supervisor's few fds, grown once and off the event loop
  // (see reserveFds): not one stall after another while the first thousand services start.
  reserveFdsInBackground(Math.min(256 + 4 * cfg.maxServices, 65536, limit));
}

/** Signals to the scanner (kept in `pending` until there is one), SIGCHLD to its reaper. */
function routeSignals(current: () => Scanner | undefined): { pending: ScannerSignal[]; release(): void } {
  const pending: ScannerSignal[] = [];
  const onSignal = new Map<ScannerSignal, () => void>();
  for (const sig of SCANNER_SIGNALS) {
    const handler = (): void => { const scanner = current(); if (scanner === undefined) pending.push(sig); else scanner.signal(sig); };
    onSignal.set(sig, handler);
    process.on(sig, handler);
  }
  const onChild = (): void => current()?.reaper.reap();
  process.on('SIGCHLD', onChild);
  return {
    pending,
    release: () => {
      for (const [sig, handler] of onSignal) process.off(sig, handler);
      process.off('SIGCHLD', onChild);
    },
  };
}

/** The scanner's options: the configuration, plus t6's own control bytes (R: re-exec; X: a fault, for tests only). */
function optionsFor(cfg: SvscanConfig, report: ScannerOptions['report'], reexec: Reexec, events: EventLog): ScannerOptions {
  return {
    scandir: cfg.scandir, rescanMs: cfg.rescanMs, maxServices: cfg.maxServices, report, allCloexec: true, events,
    consoleSink: cfg.consoleSink === true,
    ...(cfg.consoleFd === undefined ? {} : { consoleFd: cfg.consoleFd }),
    ...(cfg.notServices === undefined ? {} : { notServices: cfg.notServices }),
    ...(cfg.signalActions === undefined ? {} : { signalActions: cfg.signalActions }),
    extraCommands: {
      R: () => { void reexec.request('requested on the control FIFO'); },
      // T6_TEST_HOOKS=1 only: a throw outside every guard, as a bug would.
      ...(process.env['T6_TEST_HOOKS'] === '1' ? { X: () => { setImmediate(() => { throw new Error('fault injected by a test (control byte X)'); }); } } : {}),
    },
  };
}

/** The previous image's hand-over, if this process is a re-exec; a bad one is reported and ignored. */
function readHandover(report: (level: string, message: string) => void): Handover | undefined {
  try {
    return takeHandover();
  } catch (err) {
    report('error', `unable to read the re-exec state: ${strerror(err)} - starting afresh`);
    return undefined;
  }
}

/** -d: the newline that says the control FIFO listens, then the fd is closed. */
function notifyReady(fd: number | undefined, report: (level: string, message: string) => void): void {
  if (fd === undefined) return;
  try { fs.writeSync(fd, '\n'); } catch (err) { report('warning', `unable to write to fd ${fd}: ${strerror(err)}`); }
  try { fs.closeSync(fd); } catch { /* already closed */ }
}
