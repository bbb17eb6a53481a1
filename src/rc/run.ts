/**
 * t6-rc's work on a live state, for the t6-rc command and for pid 1 (t6-linux-init -r runs
 * the boot and shutdown changes inside itself, with no Node start for either).
 *
 * Locks as s6-rc's: LIVE/lock exclusively to change the state, shared to read it (so a
 * reader never sees a change half made), and the database's lock shared; both are taken
 * before the state is read, so two changes never work from one state, and released when
 * the work is done. Failures are typed errors; `rcExitCode` gives each its exit code.
 */
import path from 'node:path';
import { EXIT } from '../s6/exit.ts';
import { DbError } from './db.ts';
import { Change, UnknownServiceError, select, type Say, type TransitionObserver } from './engine.ts';
import { LiveError, initLive, lockDb, lockLive, openLive, type Live } from './live.ts';
import { readWithoutWriter } from './read-view.ts';
import { strerror } from '../sys/errors.ts';
import type { LocalRunner } from '../supervise/scanner-host.ts';
import { type BootTimings, TimingRecorder } from './timings.ts';
import { saveRecord } from './timings-store.ts';
import { kernelLogRecord } from '../sys/kmsg.ts';
import { monotonicMs } from '../sys/clock.ts';

/** The live state, read under its locks; `unlock` releases them. */
export interface LockedState {
  state: Live;
  unlock(): void;
}

/**
 * Takes LIVE/lock (shared to read, exclusive to change) and the database's lock (shared),
 * then reads the live state. `block`: wait for the locks instead of failing. Throws LiveError.
 */
export async function openLocked(live: string, block: boolean, shared: boolean): Promise<LockedState> {
  const unlocks: (() => void)[] = [];
  const unlock = (): void => { for (const u of unlocks.splice(0).reverse()) u(); };
  try {
    unlocks.push(await lockLive(live, block, shared));
    unlocks.push(await lockDb(path.join(live, 'compiled'), block));
    return { state: openLive(live), unlock };
  } catch (err) {
    unlock();
    throw err;
  }
}

/**
 * The live state for a reader (list, listall, diff), as openLocked(…, shared) gives it, but
 * without taking the locks when no writer is at work: a lock needs the native addon, which
 * is most of a short command's own time. A writer marks LIVE/lock while it holds it
 * (live.ts lockLive): with the mark, the locks are taken as usual (the reader fails or
 * waits, as s6-rc's); without it, the state is read and kept only if neither `state`
 * (replaced whole on every write) nor `compiled` (switched by t6-rc-update) moved
 * meanwhile, which is the state a locked reader would have seen at that instant. No
 * t6 writer changes a database in use (t6-rc-compile writes a new directory), so the
 * database's lock needs no test. Throws LiveError.
 */
export async function openForReading(live: string, block: boolean): Promise<LockedState> {
  const unlocked = readWithoutWriter(live, () => openLive(live));
  return unlocked === undefined ? openLocked(live, block, true) : { state: unlocked, unlock: () => {} };
}

/** What a change is asked to do (t6-rc's options). */
export interface ChangeRequest {
  live: string;
  names: readonly string[];
  /** -a: add every service that is up to the selection. */
  addUp: boolean;
  up: boolean;
  prune: boolean;
  /** -D: essential services go down too. */
  stopEssentials: boolean;
  /** -b: wait for the locks. */
  block: boolean;
  dryRun: boolean;
  timeoutMs: number;
  /** --settle: the settle time of every longrun started without an up-settle of its own (engine.ts). */
  settleMs?: number;
  verbosity: number;
  /** pid 1's own t6-rc: the scanner's runner in this process (no socket). */
  local?: LocalRunner['request'];
  /** pid 1's boot change: recorded as the boot, with what came before it. */
  boot?: BootTimings;
  /** Told of every transition too (a progress display), beside the boot analysis' recorder. */
  observer?: TransitionObserver;
}

/** A change under way: `abort()` launches nothing more; `done` resolves with the exit code once the locks are released. */
export interface RunningChange {
  abort(): void;
  readonly aborted: boolean;
  readonly done: Promise<number>;
}

/** Starts a change of the live state. Throws LiveError, UnknownServiceError. */
export async function startChange(req: ChangeRequest, say: Say): Promise<RunningChange> {
  const { state, unlock } = await openLocked(req.live, req.block, req.dryRun);
  let selection: Set<number>;
  try {
    selection = select(state, req.names, req.addUp);
  } catch (err) {
    unlock();
    throw err;
  }
  // Every change that does something is recorded for boot analysis (LIVE/timings/).
  const recorder = req.dryRun ? undefined : new TimingRecorder(state, { kind: req.boot === undefined ? 'change' : 'boot', names: req.names, up: req.up, prune: req.prune });
  const observers = [recorder?.observer, req.observer].filter((o) => o !== undefined);
  const change = new Change(state, selection, { ...req, ...(observers.length === 0 ? {} : { observer: fanOut(observers) }) }, say);
  const done = change.done.then((code) => {
    if (recorder !== undefined) saveTimings(req, recorder, code, say);
    return code;
  }).finally(unlock);
  return { abort: () => change.abort(), get aborted() { return change.aborted; }, done };
}

/** One observer telling several, in order. */
function fanOut(list: TransitionObserver[]): TransitionObserver {
  if (list.length === 1) return list[0]!;
  return {
    planned: (n, nameOf) => { for (const o of list) o.planned?.(n, nameOf); },
    requested: (i, up, at) => { for (const o of list) o.requested(i, up, at); },
    spawned: (i, up, pid, at) => { for (const o of list) o.spawned?.(i, up, pid, at); },
    ended: (i, up, failure, at) => { for (const o of list) o.ended(i, up, failure, at); },
  };
}

/** The `Run /sbin/init` line of the kernel's log (any init path: `/init` is an initramfs's). */
const KERNEL_RUNS_INIT = /^Run (\S+) as init process/;

/** When the kernel started its first user process, and which program that was. */
function kernelRunsInit(): { kernelInit?: number; kernelInitPath?: string } {
  const rec = kernelLogRecord(KERNEL_RUNS_INIT);
  return rec === undefined ? {} : { kernelInit: rec.ms, kernelInitPath: KERNEL_RUNS_INIT.exec(rec.message)?.[1] ?? '/sbin/init' };
}

/** Writes a change's record; a failure to write it is a warning, not the change's failure. */
function saveTimings(req: ChangeRequest, recorder: TimingRecorder, code: number, say: Say): void {
  try {
    const boot = req.boot === undefined ? undefined : { ...req.boot, ...(req.boot.kernel ? kernelRunsInit() : {}) };
    saveRecord(req.live, boot === undefined ? 'change' : 'boot', (seq) => recorder.record(code, seq, boot));
  } catch (err) {
    say.warn(`unable to record the change's timings in ${req.live}/timings: ${strerror(err)}`);
  }
}

/** The exit code of a t6-rc failure (LiveError, UnknownServiceError, DbError); undefined for anything else. */
export function rcExitCode(err: unknown): number | undefined {
  if (err instanceof LiveError) return err.exitCode;
  if (err instanceof UnknownServiceError) return EXIT.unknownName;
  if (err instanceof DbError) return EXIT.invalidDb;
  return undefined;
}

/** t6-rc's messages at a verbosity: `prog: info|warning|fatal: text`, each a whole line to `line`. */
export function sayAt(verbosity: number, prog: string, line: (text: string) => void): Say {
  return {
    info: (t) => { if (verbosity >= 2) line(`${prog}: info: ${t}`); },
    warn: (t) => { if (verbosity >= 1) line(`${prog}: warning: ${t}`); },
    fatal: (t) => line(`${prog}: fatal: ${t}`),
  };
}

/**
 * The service manager as pid 1 runs it (t6-linux-init -r): at boot what
 * `t6-rc-init -c COMPILED -l LIVE SCANDIR` then `t6-rc -v2 -up change RUNLEVEL` do, at
 * shutdown what `t6-rc -v2 -bDa change` does, with their messages; each resolves with the
 * exit code the command would have had.
 */
export function pid1ServiceManager(opts: { compiled: string; live: string; scandir: string; bootTimeoutMs?: number; verbosity?: number }): {
  boot(runlevel: string, log: (line: string) => void, local?: LocalRunner, timings?: BootTimings): Promise<number>;
  shutdown(log: (line: string) => void, local?: LocalRunner): Promise<number>;
} {
  const verbosity = opts.verbosity ?? 2;
  const change = async (req: Omit<ChangeRequest, 'live' | 'dryRun' | 'timeoutMs' | 'verbosity'>, log: (line: string) => void, timeoutMs = 0): Promise<number> => {
    const say = sayAt(verbosity, 't6-rc', log);
    try {
      const running = await startChange({ ...req, live: opts.live, dryRun: false, timeoutMs, verbosity }, say);
      return await running.done;
    } catch (err) {
      say.fatal(strerror(err));
      return rcExitCode(err) ?? EXIT.system;
    }
  };
  return {
    boot: async (runlevel, log, local, timings) => {
      const initStart = monotonicMs();
      try {
        await initLive({ compiled: opts.compiled, live: opts.live, prefix: '', scandir: opts.scandir, timeoutMs: 0, block: false, dereference: false, local });
      } catch (err) {
        log(`t6-rc-init: fatal: ${strerror(err)}`);
        return rcExitCode(err) ?? EXIT.system;
      }
      // t6-rc-init is the last step before the change: the analysis shows it with stage 1's.
      const boot: BootTimings = { stages: [...timings?.stages ?? [], { name: 't6-rc-init', start: initStart, end: monotonicMs() }], kernel: timings?.kernel ?? false };
      return change({ names: [runlevel], addUp: false, up: true, prune: true, stopEssentials: false, block: false, local: local?.request, boot }, log, opts.bootTimeoutMs ?? 0);
    },
    shutdown: (log, local) => change({ names: [], addUp: true, up: false, prune: false, stopEssentials: true, block: true, local: local?.request }, log),
  };
}
