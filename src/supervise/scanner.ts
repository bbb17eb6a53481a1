/**
 * The Scanner: s6-svscan inside t6-svscan (s6-spec/svscan.md). It owns the scan directory
 * and keeps one Supervisor per service directory, and one per `log/`.
 *
 * The model: a scan reads the directory; each service directory (links followed, dot-names
 * skipped) is an entry of the ServiceTable, known by its device and inode; a new entry
 * gets its pipes (plumbing.ts) and its supervisors; an entry no longer seen turns inactive
 * and is stopped on a prune. A supervisor that ends while its entry is active is started
 * again — at once, or one second after its previous start. Around that core:
 * `.s6-svscan/` and the signals (scandir-control.ts), the end of supervision (ending.ts),
 * logging inside the process (logging.ts), and the oneshot runner with its control-and-
 * wait requests (runner.ts, waiter.ts). The outside world comes through a ScannerHost.
 *
 * Lifecycle: `Scanner.open()` takes the scan directory and scans; the scanner then runs
 * until a terminate/quit/abort, when `done` resolves with what to exec next. It never
 * exits the process itself.
 */
import path from 'node:path';
import { errorCode, strerror, bugText } from '../sys/errors.ts';
import { isSvscanCommand } from '../s6/control.ts';
import { CATCHALL_SERVICE } from '../s6/initctl.ts';
import type { Reaper } from '../sys/reaper.ts';
import { Logging } from './logging.ts';
import { Waiters, controlRequest } from './waiter.ts';
import type { RunnerHost } from './runner.ts';
import { SupervisorSetupError, type Supervisor, type SupervisorHost, type TimerHandle } from './supervisor.ts';
import { systemScannerHost, reportingKill, type LocalRunner, type ScannerHost } from './scanner-host.ts';
import { BUILTIN_SIGNAL_COMMANDS, SCANNER_SIGNALS, ScandirControl, type ScannerSignal } from './scandir-control.ts';
import { prepareHandOver, restoreScanner, snapshotScanner, type ReexecContext } from './reexec.ts';
import type { ScannerSnapshot } from './handover.ts';
import { Plumbing } from './plumbing.ts';
import { Ending, type ScannerExit } from './ending.ts';
import { ServiceTable, cancelRestarts, listSome, slotPath, slots, type ServiceEntry, type Slot } from './slots.ts';
import { followMoves } from './follow.ts';
import type { ScannerOptions } from './scanner-options.ts';
import { ServiceEvents } from './service-events.ts';
import { scannerMetrics } from './scanner-metrics.ts';
import { SocketNotifyHub, notifyAddress, type NotifyHandOver } from './notify-hub.ts';

export { DIVERTIBLE_SIGNALS, SCANNER_SIGNALS, ScannerSetupError, type ScannerSignal } from './scandir-control.ts';
export type { ScannerExit } from './ending.ts';
export type { ScannerOptions } from './scanner-options.ts';

/** How long a service directory that could not be supervised waits before the next try. */
export const SUPERVISOR_RETRY_MS = 10_000;
/** How long a scan that met an unreadable entry waits before the next scan. */
export const SCAN_RETRY_MS = 3_000;
/** Restarts of one slot's supervisor are at least this far apart. */
const RESTART_SPACING_MS = 1_000;
/** Services supervised at once without -c (s6-svscan's default): the scan table, supervisors and loggers grow with it, not with the scan directory. */
export const DEFAULT_MAX_SERVICES = 1000;

/** s6-svscan as an object. */
export class Scanner {
  readonly scandir: string;
  readonly #opts: ScannerOptions;
  readonly #host: ScannerHost;
  readonly #maxServices: number;
  readonly #table = new ServiceTable();
  readonly #supervisorHost: SupervisorHost;
  readonly #logging: Logging;
  readonly #plumbing: Plumbing;
  readonly #control: ScandirControl;
  readonly #ending: Ending;
  /** Control-and-wait requests from the runner socket (t6-rc's longrun transitions). */
  readonly #waiters: Waiters;
  #rescanTimer: TimerHandle | undefined;
  #retryScan: TimerHandle | undefined;
  /** Signals that came while handing over (re-exec), for the next image; undefined otherwise. */
  #deferredSignals: ScannerSignal[] | undefined;

  /** sd_notify for the services with flag-sd-notify (bound on first use). */
  readonly #notifyHub: SocketNotifyHub;
  private constructor(opts: ScannerOptions, notify?: NotifyHandOver) {
    this.#opts = opts;
    this.scandir = path.resolve(opts.scandir);
    this.#maxServices = opts.maxServices ?? DEFAULT_MAX_SERVICES;
    const report = opts.report;
    const host = opts.host ?? systemScannerHost({
      allCloexec: opts.allCloexec === true,
      onReapError: (err) => report('error', `internal error after reaping a child: ${strerror(err)}`),
    });
    this.#host = host;
    const guardedTimer = (what: string) => (ms: number, fn: () => void): TimerHandle => host.setTimer(ms, () => this.#guard(what, fn));
    this.#waiters = new Waiters(guardedTimer('control wait'));
    const records = opts.events === undefined ? undefined : new ServiceEvents(opts.events);
    this.#notifyHub = new SocketNotifyHub({ address: notifyAddress(this.scandir), report, monotonicMs: host.monotonicMs }, notify);
    this.#supervisorHost = {
      spawn: host.spawn, kill: reportingKill(host, report), watch: host.watch,
      monotonicMs: host.monotonicMs, now: host.now,
      setTimer: guardedTimer('timer'),
      report,
      files: host.supervisorFiles, notifyHub: this.#notifyHub,
      exited: (sup) => this.#supervisorExited(sup),
      event: (sup, event, detail) => {
        records?.supervisor(sup, event, detail);
        if (event.includes('d')) this.#serviceDied(sup);
        this.#waiters.event(sup, event);
      },
    };
    this.#logging = new Logging({
      scandir: this.scandir,
      report,
      ...(opts.consoleFd === undefined ? {} : { consoleFd: opts.consoleFd }),
      consoleSink: opts.consoleSink === true,
      waitPid: (pid) => host.reaper.waitPid(pid),
      guard: (what, fn) => this.#guard(what, fn),
      monotonicMs: host.monotonicMs,
      now: host.now,
      loggerBlocked: (service, blocked, forMs) => opts.events?.publish({ kind: blocked ? 'logger-blocked' : 'logger-resumed', service, blockedMs: Math.round(forMs) }),
    });
    this.#plumbing = new Plumbing({
      scandir: this.scandir, table: this.#table, files: host.files, logging: this.#logging,
      consoleFd: opts.consoleFd, report,
    });
    this.#control = new ScandirControl({
      scandir: this.scandir, host, report,
      command: (bytes) => this.command(bytes),
      runnerHost: () => this.#runnerHost(),
      guard: (what, fn) => this.#guard(what, fn),
      ...(opts.events === undefined ? {} : { events: opts.events }),
    });
    this.#ending = new Ending({
      scandir: this.scandir, table: this.#table, plumbing: this.#plumbing, control: this.#control,
      logging: this.#logging, files: host.files,
      stopTimers: () => this.#stopTimers(),
    });
  }

  /**
   * Takes the scan directory (s6-svscan's startup): `.s6-svscan/` with its lock and control
   * FIFO, the in-process catch-all logger (`s6-svscan-log/t6-log`) if asked for, then
   * `beforeFirstScan` (where -d readiness is written: the control FIFO listens), then the
   * first scan. Throws ScannerSetupError (exit 100 if another scanner runs there or the
   * directory is not usable, 111 for a system error).
   */
  static open(opts: ScannerOptions, beforeFirstScan?: (scanner: Scanner) => void): Scanner {
    const scanner = new Scanner(opts);
    scanner.#control.open();
    scanner.#logging.openCatchAll(CATCHALL_SERVICE);
    beforeFirstScan?.(scanner);
    scanner.scan();
    scanner.#armRescan();
    return scanner;
  }

  /** Re-exec, this image's side (reexec.ts): logs, control files, supervisors; inert after. Throws if ending. */
  async handOver(): Promise<ScannerSnapshot> {
    if (this.#ending.closed || this.#deferredSignals !== undefined) throw new Error('supervision is ending, or a re-exec is already under way');
    this.#deferredSignals = [];
    const ctx = this.#reexecContext();
    const notify = this.#notifyHub.handOver();
    const snap = snapshotScanner(ctx, await prepareHandOver(ctx), this.#host.monotonicMs());
    const events = this.#opts.events?.snapshot();
    return { ...snap, signals: this.#deferredSignals, ...(events === undefined ? {} : { events }), ...(notify === undefined ? {} : { notify }) };
  }

  /** The next image's scanner, carrying on from `snap` taken `elapsedMs` ago, then a scan. */
  static resume(opts: ScannerOptions, snap: ScannerSnapshot, elapsedMs: number): Scanner {
    if (snap.events !== undefined) opts.events?.restore(snap.events);
    const scanner = new Scanner(opts, snap.notify);
    restoreScanner(scanner.#reexecContext(), snap, CATCHALL_SERVICE, elapsedMs);
    scanner.scan();
    scanner.#armRescan();
    for (const sig of snap.signals as ScannerSignal[]) if (SCANNER_SIGNALS.includes(sig)) scanner.signal(sig);
    return scanner;
  }

  #reexecContext(): ReexecContext {
    return {
      scandir: this.scandir, table: this.#table, plumbing: this.#plumbing, logging: this.#logging,
      control: this.#control, host: this.#host, supervisorHost: this.#supervisorHost, report: this.#opts.report,
      stopTimers: () => this.#stopTimers(),
    };
  }

  #stopTimers(): void {
    this.#rescanTimer?.cancel();
    this.#retryScan?.cancel();
    this.#rescanTimer = this.#retryScan = undefined;
    this.#notifyHub.close();
  }

  /** Collects every child, known or orphan: its `reap()` is for SIGCHLD. */
  get reaper(): Reaper { return this.#host.reaper; }

  /** Resolves once the scanner has ended (terminate, quit, abort) with what to exec next. */
  get done(): Promise<ScannerExit> { return this.#ending.done; }

  /** The catch-all pipe's write end (close-on-exec, owned by the scanner), for a stage-2 child's stdout and stderr; undefined without an in-process catch-all. */
  get catchAllFd(): number | undefined { return this.#logging.catchAllFd; }

  /** One of pid 1's own messages (a whole line): into the catch-all log, else to the console (-X fd, else fd 2). */
  log(line: string): void { this.#logging.log(line); }

  /**
   * Reads everything readable from every in-process logger's pipe (the catch-all's too),
   * writes and fsyncs every logdir; resolves after `timeoutMs` at the latest (a full disk),
   * having told the console what was not written. For just before reboot(2).
   */
  flushLogs(timeoutMs?: number): Promise<void> { return this.#logging.flushLogs(timeoutMs); }

  /** The supervisors running now. */
  supervisors(): Supervisor[] { return this.#table.supervisors(); }

  /** Applies scanner control bytes in order (as written to `.s6-svscan/control`); unknown ones are counted and reported once. */
  command(bytes: string): void {
    let unknown = 0;
    let sample = '';
    for (const ch of bytes) {
      const extra = this.#opts.extraCommands?.[ch];
      if (extra !== undefined) { this.#guard(`control ${ch}`, extra); continue; }
      if (!isSvscanCommand(ch)) {
        if (unknown++ === 0) sample = ch;
        continue;
      }
      switch (ch) {
        case 'z': this.#host.reaper.reap(); break;
        case 'a': this.scan(); break;
        case 'h': this.scan(); this.#ending.prune(false); break;
        case 'n': this.#ending.prune(false); break;
        case 'N': this.#ending.prune(true); break;
        case 't': case 'i': this.#ending.terminate('terminate'); break;
        case 'q': this.#ending.terminate('quit'); break;
        case 'b': this.#ending.terminate('abort'); break;
      }
    }
    if (unknown > 0) {
      this.#opts.report('warning', `${this.#control.controlPath}: ignored ${unknown} unknown control byte${unknown === 1 ? '' : 's'} (first: ${JSON.stringify(sample)})`);
    }
  }

  /** A signal to the scanner: runs `.s6-svscan/SIG<NAME>` if it exists, else the built-in action. */
  signal(sig: ScannerSignal): void {
    if (this.#deferredSignals !== undefined) { this.#deferredSignals.push(sig); return; }
    if (this.#control.runSignalScript(sig)) return;
    const action = this.#opts.signalActions?.[sig];
    if (action !== undefined) this.#guard(sig, action);
    else if (BUILTIN_SIGNAL_COMMANDS[sig] !== '') this.command(BUILTIN_SIGNAL_COMMANDS[sig]);
  }

  /**
   * Shutdown's "unsupervise everything" (s6-linux-init-shutdownd's way): every service is
   * brought down for good and its supervisor let go, loggers included; the scan dir is never
   * read again. The control FIFO and the oneshot runner stay; the scanner does not end.
   */
  unsuperviseAll(): void { this.#ending.unsuperviseAll(); }

  /** Releases the scan directory lock (after `done`, before exec'ing finish or exiting). */
  releaseLock(): void { this.#control.releaseLock(); }

  /** One scan of the scan directory (s6-svscan §3): new services get supervisors, vanished ones turn inactive. */
  scan(): void {
    if (this.#ending.closed || this.#deferredSignals !== undefined) return;
    const { files } = this.#host;
    let names: string[];
    try {
      names = files.readdir(this.scandir);
    } catch (err) {
      this.#opts.report('warning', `unable to read ${this.scandir}: ${strerror(err)} - retrying in ${SCAN_RETRY_MS / 1000} seconds`);
      this.#scheduleScanRetry();
      return;
    }
    const seen = new Set<string>();
    const { found, unstatable, retry } = this.#readEntries(names, seen);
    // Real paths of the directories the entries' links point into, for this scan only.
    const realParents = new Map<string, string>();
    const followed = followMoves({ scandir: this.scandir, files, report: this.#opts.report }, found, realParents);
    // Every supervisor holds a few fds (lock, control, readiness and logger pipes): make
    // room for them in one step rather than one table growth after another.
    files.reserveFds(256 + 4 * (this.#table.running + 2 * found.length));
    // Pipelines first, so that both ends exist before either side starts.
    this.#plumbing.updatePipelines();
    const tooMany = this.#startEntries(found, realParents);
    // Problems are gathered and reported once per scan: a scan dir full of junk gives a few clear lines.
    if (unstatable.length > 0) this.#opts.report('warning', `unable to stat ${unstatable.length} entr${unstatable.length === 1 ? 'y' : 'ies'} of ${this.scandir}: ${listSome(unstatable)} - retrying in ${SCAN_RETRY_MS / 1000} seconds`);
    if (tooMany.length > 0) {
      this.#opts.report('warning', `not supervising ${tooMany.length} service director${tooMany.length === 1 ? 'y' : 'ies'} of ${this.scandir}: too many services (the limit is ${this.#maxServices}; raise it with -c): ${listSome(tooMany)}`);
    }
    for (const entry of [...this.#table.entries()]) {
      if (seen.has(entry.key)) continue;
      entry.active = false;
      cancelRestarts(entry);
      this.#ending.forgetIfDead(entry);
    }
    if (retry || !followed) this.#scheduleScanRetry();
  }

  // ---- internals -------------------------------------------------------------------------

  /** The entries a scan found (each made known, with its logger pipe and `producer-for`); `seen` gets their keys. */
  #readEntries(names: string[], seen: Set<string>): { found: ServiceEntry[]; unstatable: string[]; retry: boolean } {
    const { files } = this.#host;
    const found: ServiceEntry[] = [];
    const unstatable: string[] = [];
    let retry = false;
    for (const name of names) {
      if (name.startsWith('.') || this.#opts.notServices?.has(name) === true) continue;
      const dir = path.join(this.scandir, name);
      let st;
      try {
        st = files.stat(dir);
      } catch (err) {
        unstatable.push(`${name} (${errorCode(err) === 'ENOENT' ? 'dangling symbolic link' : strerror(err)})`);
        retry = true;
        continue;
      }
      if (!st.isDirectory) continue;
      if (name === CATCHALL_SERVICE && this.#logging.hasCatchAll) { this.#logging.rescanCatchAll(); continue; }
      const key = `${st.dev}:${st.ino}`;
      seen.add(key);
      const entry = this.#table.entry(key, name);
      if (!this.#plumbing.attachLogger(entry, dir)) { retry = true; continue; }
      const producerFor = files.readSetting(dir, 'producer-for');
      if (producerFor.problem !== undefined) this.#opts.report('warning', producerFor.problem);
      entry.producerFor = producerFor.value;
      found.push(entry);
    }
    return { found, unstatable, retry };
  }

  /** Starts the supervisors the found entries lack, updates the stdio of those running; returns the slots the -c limit kept out. */
  #startEntries(found: ServiceEntry[], realParents: Map<string, string>): string[] {
    const tooMany: string[] = [];
    for (const entry of found) {
      for (const slot of slots(entry)) {
        const sup = slot.sup;
        if (sup === undefined) {
          if (this.#startSlot(entry, slot, realParents) === 'too-many') tooMany.push(slotPath(entry, slot));
        } else if (sup.state === 'up' || sup.state === 'down' || sup.state === 'finish') {
          // A supervisor told to exit has closed its stdio on purpose; leave it so.
          sup.setStdio(this.#plumbing.stdioFor(entry, slot));
        }
      }
    }
    return tooMany;
  }

  /** Starts the slot's supervisor if it should run and may; says 'too-many' when the -c limit stops it. */
  #startSlot(entry: ServiceEntry, slot: Slot, realParents = new Map<string, string>()): 'too-many' | undefined {
    if (slot.sup !== undefined || slot.restart !== undefined || !entry.active || this.#ending.ending) return undefined;
    const wait = slot.lastStart + RESTART_SPACING_MS - this.#host.monotonicMs();
    if (slot.lastStart > 0 && wait > 0) {
      slot.restart = this.#supervisorHost.setTimer(wait, () => { slot.restart = undefined; this.#restartSlot(entry, slot); });
      return undefined;
    }
    if (this.#table.running >= this.#maxServices) return 'too-many';
    const stdio = this.#plumbing.stdioFor(entry, slot);
    slot.lastStart = this.#host.monotonicMs();
    const name = slotPath(entry, slot); // where it is now: the entry may have been renamed
    try {
      // Resolved once, as s6-supervise chdir()s into it: removing or renaming the scan dir's
      // link later must not pull the directory out from under a running supervisor.
      const dir = this.#host.files.realServicedir(this.scandir, name, realParents);
      this.#table.attach(this.#host.openSupervisor(slot.name, dir, this.#supervisorHost, stdio), entry, slot);
    } catch (err) {
      const why = err instanceof SupervisorSetupError ? err.message : strerror(err);
      this.#opts.report('warning', `unable to supervise ${path.join(this.scandir, name)}: ${why} - retrying in ${SUPERVISOR_RETRY_MS / 1000} seconds`);
      slot.restart = this.#supervisorHost.setTimer(SUPERVISOR_RETRY_MS, () => { slot.restart = undefined; this.#restartSlot(entry, slot); });
    }
    return undefined;
  }

  #restartSlot(entry: ServiceEntry, slot: Slot): void {
    if (this.#startSlot(entry, slot) !== 'too-many') return;
    this.#opts.report('warning', `not supervising ${path.join(this.scandir, slotPath(entry, slot))}: too many services (the limit is ${this.#maxServices}; raise it with -c)`);
  }

  #supervisorExited(sup: Supervisor): void {
    const owner = this.#table.detach(sup);
    if (owner === undefined) return;
    const { entry, slot } = owner;
    if (this.#ending.ending || !entry.active) {
      // The producer is gone for good: drop our write ends so its logger and consumer can reach EOF.
      if (slot === entry.main) this.#plumbing.producerGone(entry);
      this.#ending.forgetIfDead(entry);
      this.#ending.maybeFinish();
      return;
    }
    this.#restartSlot(entry, slot); // at once, or 1 s after its previous start
  }

  /** A service's process died: its console sink flushes a held partial line. */
  #serviceDied(sup: Supervisor): void {
    const owner = this.#table.owner(sup);
    if (owner !== undefined && owner.slot === owner.entry.main) owner.entry.reader?.serviceDied();
  }

  /** The runner's requests and scans for a service manager in this process (pid 1's t6-rc). */
  local(): LocalRunner {
    return {
      scan: () => {
        this.#guard('scan', () => this.scan());
        return this.#table.supervisedNames();
      },
      request: this.#control.runnerRequest,
    };
  }

  /** What the oneshot runner needs from the scanner. */
  #runnerHost(): RunnerHost {
    return {
      spawn: this.#host.spawn, spawnAsync: this.#host.spawnAsync, kill: this.#supervisorHost.kill, report: this.#opts.report,
      output: () => this.#logging.catchAllFd,
      scan: () => this.local().scan(),
      control: (req, done) => controlRequest((dir) => this.#supervisorOf(dir), this.#waiters, req, done),
      ...(this.#opts.events === undefined ? {} : { publish: (e) => this.#opts.events?.publish(e) }),
      metrics: () => scannerMetrics(this.#logging.metrics(), this.#opts.events, this.#table.supervisors().length, this.#notifyHub.counters),
    };
  }

  /** The supervisor of a directory: by identity (one stat; entries are keyed by dev:ino), a logger's by real path. */
  #supervisorOf(dir: string): Supervisor | undefined {
    const { files } = this.#host;
    const st = files.statIfExists(dir);
    if (st === undefined) return undefined;
    const sup = this.#table.get(`${st.dev}:${st.ino}`)?.main.sup;
    if (sup !== undefined) return sup;
    const real = files.realpath(dir);
    return this.#table.supervisors().find((s) => s.dir === real);
  }

  #armRescan(): void {
    const every = this.#opts.rescanMs ?? 0;
    if (every <= 0 || this.#ending.closed) return;
    this.#rescanTimer = this.#host.setTimer(every, () => {
      this.#rescanTimer = undefined;
      this.#guard('rescan', () => this.scan());
      this.#armRescan();
    });
  }

  #scheduleScanRetry(): void {
    if (this.#retryScan !== undefined || this.#ending.ending) return;
    this.#retryScan = this.#host.setTimer(SCAN_RETRY_MS, () => {
      this.#retryScan = undefined;
      this.#guard('rescan', () => this.scan());
    });
  }

  /** Runs a callback so that nothing it throws can reach the event loop (pid 1 must not die). */
  #guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#opts.report('error', `internal error in ${what}: ${bugText(err)}`);
    }
  }
}
