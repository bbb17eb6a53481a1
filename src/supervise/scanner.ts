/**
 * The Scanner: s6-svscan inside t6-svscan. It owns the scan directory, keeps one
 * Supervisor per service directory (and one per `log/`), holds the service→logger pipes
 * so neither side's restart loses a byte, obeys `.s6-svscan/control` and the divertible
 * signals, and reaps every child, known or orphan (s6-spec/svscan.md).
 *
 * Lifecycle: `Scanner.open()` sets up `.s6-svscan/` (lock, control FIFO) and scans; the
 * scanner then runs until a terminate/quit/abort, when `done` resolves with what to exec
 * next (`.s6-svscan/finish`). It never exits the process itself: the CLI does.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { O_CREAT, O_NONBLOCK, O_RDWR, O_WRONLY, close, mkfifo, open, pipe, reserveFds, tryLock } from '../sys/fd.ts';
import { spawn as sysSpawn, spawnAsync as sysSpawnAsync, kill as sysKill } from '../sys/spawn.ts';
import { describeError, errorCode } from '../sys/errors.ts';
import { isSvscanCommand } from '../s6/control.ts';
import { tainNow } from '../s6/tai.ts';
import { Reaper } from './reaper.ts';
import { readSetting } from '../s6/servicedir.ts';
import { CATCHALL_SERVICE } from '../s6/initctl.ts';
import { OneshotRunner } from './runner.ts';
import { Logging, type PipeClient } from './logging.ts';
import { realServicedir } from './realdir.ts';
import { Waiters, controlRequest } from './waiter.ts';
import { Supervisor, SupervisorSetupError, type SupervisorHost, type SupervisorStdio, type TimerHandle } from './supervisor.ts';
import { FsSupervisorFiles } from './servicefiles.ts';

/** The name of the catch-all logger service, which is never itself logged. */
export const CATCHALL_LOGGER = CATCHALL_SERVICE;

/** Divertible signals: a `.s6-svscan/SIG<NAME>` script replaces the built-in action. */
export const DIVERTIBLE_SIGNALS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGPWR', 'SIGWINCH'] as const;
/** Signals the scanner acts on. */
export type ScannerSignal = (typeof DIVERTIBLE_SIGNALS)[number] | 'SIGALRM' | 'SIGABRT';

const BUILTIN: Record<ScannerSignal, string> = {
  SIGHUP: 'h', SIGINT: 't', SIGTERM: 't', SIGQUIT: 'q', SIGUSR1: '', SIGUSR2: '', SIGPWR: '', SIGWINCH: '',
  SIGALRM: 'a', SIGABRT: 'b',
};

/** How the scanner ended, and what the caller should exec (s6-svscan execs `.s6-svscan/finish`). */
export interface ScannerExit {
  reason: 'terminate' | 'quit' | 'abort';
  /** Absolute path of `.s6-svscan/finish` if it exists, else undefined (exit 0). */
  finish: string | undefined;
}

/** Options of t6-svscan. */
export interface ScannerOptions {
  scandir: string;
  /** Rescan every so many ms (-t); 0 = only on demand. */
  rescanMs?: number;
  /** Maximum number of supervisors (-c); a service and its logger take one each. */
  maxServices?: number;
  /** Console holder fd given to the catch-all logger as stderr (-X); in-process, where the catch-all's alerts go. */
  consoleFd?: number;
  /** Copy every line of every service without a logger to stdout as `name: line` (t6-svscan -1; logging.ts). */
  consoleSink?: boolean;
  report(level: 'info' | 'warning' | 'error', message: string): void;
  /** Every fd above 2 of this process is close-on-exec: spawns may skip closing fds in the child. */
  allCloexec?: boolean;
  /** Observer for every event byte of every service (JSON event streams build on it). */
  onEvent?(service: string, event: string): void;
  /** Scan dir entries that are not services (t6-linux-init's shutdownd FIFO directory). */
  notServices?: ReadonlySet<string>;
  /** Built-in signal actions that replace s6-svscan's when no `.s6-svscan/SIG<NAME>` exists. */
  signalActions?: Partial<Record<ScannerSignal, () => void>>;
}

/** Thrown by Scanner.open when the scan directory cannot be taken; `exitCode` as s6-svscan's. */
export class ScannerSetupError extends Error {
  override name = 'ScannerSetupError';
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}

interface Slot {
  /** `foo` or `foo/log`. */
  name: string;
  sup: Supervisor | undefined;
  /** Monotonic ms of the last supervisor start (restarts are at least 1 s apart). */
  lastStart: number;
  restart: TimerHandle | undefined;
}

interface ServiceEntry {
  key: string;
  name: string;
  active: boolean;
  main: Slot;
  log: Slot | undefined;
  /** [read, write]: the producer→logger pipe, held by the scanner for the entry's life. */
  pipe: [number, number] | undefined;
  /** Who reads the pipe inside t6-svscan: an in-process logger (`log/t6-log`) or a console sink. */
  reader: PipeClient | undefined;
  writeClosed: boolean;
  /** The scan dir entry this service's stdout feeds (its servicedir's `producer-for`), if any. */
  producerFor: string | undefined;
}

/** A pipeline pipe, held by the scanner and keyed by the consumer's scan dir name. */
interface Pipeline {
  read: number;
  /** undefined once every producer is gone for good (so the consumer can reach EOF). */
  write: number | undefined;
}

const SUPERVISOR_RETRY_MS = 10_000;
const SCAN_RETRY_MS = 3_000;

/** s6-svscan as an object. */
export class Scanner {
  readonly scandir: string;
  readonly reaper: Reaper;
  readonly done: Promise<ScannerExit>;
  #opts: ScannerOptions;
  #services = new Map<string, ServiceEntry>();
  #pipelines = new Map<string, Pipeline>();
  #bySupervisor = new Map<Supervisor, { entry: ServiceEntry; slot: Slot }>();
  #lockFd = -1;
  #control: net.Socket | undefined;
  #runner: OneshotRunner | undefined;
  #rescanTimer: NodeJS.Timeout | undefined;
  #retryScan: NodeJS.Timeout | undefined;
  #controlRetry: NodeJS.Timeout | undefined;
  #ending: ScannerExit['reason'] | undefined;
  #unsupervised = false;
  #resolve!: (exit: ScannerExit) => void;
  #host: SupervisorHost;
  #maxServices: number;
  #logging: Logging;
  /** Control-and-wait requests from the runner socket (t6-rc's longrun transitions). */
  #waiters: Waiters;

  private constructor(opts: ScannerOptions) {
    this.#opts = opts;
    this.scandir = path.resolve(opts.scandir);
    this.#maxServices = opts.maxServices ?? 1000;
    this.reaper = new Reaper((err) => opts.report('error', `internal error after reaping a child: ${describeError(err)}`));
    this.done = new Promise((resolve) => { this.#resolve = resolve; });
    this.#waiters = new Waiters((ms, fn) => {
      const t = setTimeout(() => this.#guard('control wait', fn), ms);
      return { cancel: () => clearTimeout(t) };
    });
    this.#host = {
      spawn: (spawnOpts, onExit) => {
        // t6-svscan marks all its fds close-on-exec at start (markAllCloexec in the CLI).
        const pid = sysSpawn({ ...spawnOpts, allCloexec: opts.allCloexec === true });
        this.reaper.watch(pid, onExit);
        return pid;
      },
      kill: (pid, signal) => {
        try {
          sysKill(pid, signal);
        } catch (err) {
          opts.report('warning', `unable to send signal ${signal} to ${pid}: ${describeError(err)}`);
        }
      },
      monotonicMs: () => performance.now(),
      now: tainNow,
      setTimer: (ms, fn) => {
        const t = setTimeout(() => this.#guard('timer', fn), ms);
        return { cancel: () => clearTimeout(t) };
      },
      report: opts.report,
      files: new FsSupervisorFiles(),
      exited: (sup) => this.#supervisorExited(sup),
      event: (sup, event) => {
        if (event.includes('d')) this.#serviceDied(sup);
        this.#waiters.event(sup, event);
        opts.onEvent?.(sup.name, event);
      },
    };
    this.#logging = new Logging({
      scandir: this.scandir,
      report: (level, message) => opts.report(level, message),
      ...(opts.consoleFd === undefined ? {} : { consoleFd: opts.consoleFd }),
      consoleSink: opts.consoleSink === true,
      waitPid: (pid) => new Promise((resolve) => this.reaper.watch(pid, resolve)),
      guard: (what, fn) => this.#guard(what, fn),
      monotonicMs: () => performance.now(),
    });
  }

  /**
   * Takes the scan directory (s6-svscan's startup): `.s6-svscan/` with its lock and control
   * FIFO, then `beforeFirstScan` (where -d readiness is written), then the first scan. Throws ScannerSetupError (exit 100 if another scanner runs
   * there or the directory is not usable, 111 for a system error). An in-process catch-all
   * logger (`s6-svscan-log/t6-log`) is started before the first scan.
   */
  static open(opts: ScannerOptions, beforeFirstScan?: (scanner: Scanner) => void): Scanner {
    const scanner = new Scanner(opts);
    scanner.#setUp();
    scanner.#logging.openCatchAll(CATCHALL_LOGGER);
    // s6-svscan's -d readiness means "the control FIFO listens", and comes before the first scan.
    beforeFirstScan?.(scanner);
    scanner.scan();
    if ((opts.rescanMs ?? 0) > 0) {
      scanner.#rescanTimer = setInterval(() => scanner.#guard('rescan', () => scanner.scan()), opts.rescanMs);
    }
    return scanner;
  }

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

  /** Names of the services known, with their supervisors (for status tools and tests). */
  supervisors(): Supervisor[] {
    return [...this.#bySupervisor.keys()];
  }

  /** Applies scanner control bytes in order (as written to `.s6-svscan/control`). */
  command(bytes: string): void {
    let unknown = 0;
    let sample = '';
    for (const ch of bytes) {
      if (!isSvscanCommand(ch)) {
        if (unknown++ === 0) sample = ch;
        continue;
      }
      switch (ch) {
        case 'z': this.reaper.reap(); break;
        case 'a': this.scan(); break;
        case 'h': this.scan(); this.#prune(false); break;
        case 'n': this.#prune(false); break;
        case 'N': this.#prune(true); break;
        case 't': case 'i': this.#terminate('terminate'); break;
        case 'q': this.#terminate('quit'); break;
        case 'b': this.#terminate('abort'); break;
      }
    }
    if (unknown > 0) {
      const shown = JSON.stringify(sample);
      this.#opts.report('warning', `${path.join(this.scandir, '.s6-svscan/control')}: ignored ${unknown} unknown control byte${unknown === 1 ? '' : 's'} (first: ${shown})`);
    }
  }

  /** A signal to the scanner: runs `.s6-svscan/SIG<NAME>` if it exists, else the built-in action. */
  signal(sig: ScannerSignal): void {
    if ((DIVERTIBLE_SIGNALS as readonly string[]).includes(sig)) {
      const script = path.join(this.scandir, '.s6-svscan', sig);
      try {
        const pid = sysSpawn({ path: script, argv: [`.s6-svscan/${sig}`], cwd: this.scandir, newSession: false });
        this.reaper.watch(pid, () => {});
        return;
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') this.#opts.report('warning', `unable to spawn ${script}: ${describeError(err)} - using the built-in action`);
      }
    }
    const action = this.#opts.signalActions?.[sig];
    if (action !== undefined) {
      this.#guard(sig, action);
      return;
    }
    const builtin = BUILTIN[sig];
    if (builtin !== '') this.command(builtin);
  }

  /** One scan of the scan directory (s6-svscan §3): new services get supervisors, vanished ones turn inactive. */
  scan(): void {
    if (this.#ending !== undefined || this.#unsupervised) return;
    let names: string[];
    try {
      names = fs.readdirSync(this.scandir);
    } catch (err) {
      this.#opts.report('warning', `unable to read ${this.scandir}: ${describeError(err)} - retrying in ${SCAN_RETRY_MS / 1000} seconds`);
      this.#scheduleScanRetry();
      return;
    }
    const seen = new Set<string>();
    let retry = false;
    // Problems are gathered and reported once per scan, so that a scan dir full of junk
    // gives a few clear lines instead of thousands.
    const unstatable: string[] = [];
    const tooMany: string[] = [];
    const found: ServiceEntry[] = [];
    for (const name of names) {
      if (name.startsWith('.') || this.#opts.notServices?.has(name) === true) continue;
      const dir = path.join(this.scandir, name);
      let st: fs.Stats;
      try {
        st = fs.statSync(dir);
      } catch (err) {
        const code = errorCode(err);
        unstatable.push(`${name} (${code === 'ENOENT' ? 'dangling symbolic link' : describeError(err)})`);
        retry = true;
        continue;
      }
      if (!st.isDirectory()) continue;
      if (name === CATCHALL_LOGGER && this.#logging.hasCatchAll) { this.#logging.rescanCatchAll(); continue; }
      const key = `${st.dev}:${st.ino}`;
      seen.add(key);
      let entry = this.#services.get(key);
      if (entry === undefined) {
        entry = { key, name, active: true, main: newSlot(name), log: undefined, pipe: undefined, reader: undefined, writeClosed: false, producerFor: undefined };
        this.#services.set(key, entry);
      }
      entry.name = name;
      entry.active = true;
      if (entry.log === undefined && entry.reader === undefined && name !== CATCHALL_LOGGER) {
        // The kind of logger is settled when the service is first seen (as s6's log/ supervisor).
        const kind = this.#logging.loggerKind(dir);
        if (kind !== 'none' || this.#logging.consoleSink) {
          try {
            entry.pipe = pipe();
            entry.writeClosed = false;
            if (kind === 'external') entry.log = newSlot(`${name}/log`);
            else entry.reader = kind === 'inproc' ? this.#logging.logger(name, dir, entry.pipe[0]) : this.#logging.sink(name, entry.pipe[0]);
          } catch (err) {
            this.#opts.report('warning', `unable to create the logger pipe for ${dir}: ${describeError(err)}`);
            retry = true;
            continue;
          }
        }
      } else entry.reader?.rescan();
      const producerFor = readSetting(dir, 'producer-for');
      if (producerFor.problem !== undefined) this.#opts.report('warning', producerFor.problem);
      entry.producerFor = producerFor.value;
      found.push(entry);
    }
    // Every supervisor holds a few fds (lock, control, readiness and logger pipes): make
    // room for them in one step rather than one table growth after another.
    reserveFds(256 + 4 * (this.#bySupervisor.size + 2 * found.length));
    // Real paths of the directories the entries' links point into, for this scan only.
    const realParents = new Map<string, string>();
    // Pipelines first, so that both ends exist before either side starts.
    this.#updatePipelines();
    for (const entry of found) {
      for (const slot of slots(entry)) {
        if (slot.sup !== undefined) {
          // A supervisor told to exit has closed its stdio on purpose; leave it so.
          if (slot.sup.state === 'up' || slot.sup.state === 'down' || slot.sup.state === 'finish') slot.sup.setStdio(this.#stdioFor(entry, slot));
        }
        else if (this.#startSlot(entry, slot, realParents) === 'too-many') tooMany.push(slot.name);
      }
    }
    if (unstatable.length > 0) {
      this.#opts.report('warning', `unable to stat ${unstatable.length} entr${unstatable.length === 1 ? 'y' : 'ies'} of ${this.scandir}: ${listSome(unstatable)} - retrying in ${SCAN_RETRY_MS / 1000} seconds`);
    }
    if (tooMany.length > 0) {
      this.#opts.report('warning', `not supervising ${tooMany.length} service director${tooMany.length === 1 ? 'y' : 'ies'} of ${this.scandir}: too many services (the limit is ${this.#maxServices}; raise it with -c): ${listSome(tooMany)}`);
    }
    for (const entry of this.#services.values()) {
      if (seen.has(entry.key)) continue;
      entry.active = false;
      for (const slot of slots(entry)) {
        slot.restart?.cancel();
        slot.restart = undefined;
      }
      this.#forgetIfDead(entry);
    }
    if (retry) this.#scheduleScanRetry();
  }

  // ---- internals -------------------------------------------------------------------------

  #setUp(): void {
    try {
      if (!fs.statSync(this.scandir).isDirectory()) throw new ScannerSetupError(`${this.scandir} is not a directory`, 100);
    } catch (err) {
      if (err instanceof ScannerSetupError) throw err;
      throw new ScannerSetupError(`unable to use ${this.scandir}: ${describeError(err)}`, 111);
    }
    try {
      this.#setUpControl();
    } catch (err) {
      if (err instanceof ScannerSetupError) throw err;
      // A read-only or full scan dir: supervise anyway (signals still work), and set up
      // the control FIFO once the filesystem allows. pid 1 must not give up here.
      this.#opts.report('warning', `${describeError(err)} - running without ${path.join(this.scandir, '.s6-svscan/control')}; retrying every ${SCAN_RETRY_MS / 1000} seconds`);
      this.#retryControl();
    }
  }

  #retryControl(): void {
    this.#controlRetry = setTimeout(() => {
      this.#controlRetry = undefined;
      if (this.#ending !== undefined) return;
      try {
        this.#setUpControl();
        this.#opts.report('info', `${path.join(this.scandir, '.s6-svscan/control')} is listening`);
      } catch (err) {
        if (err instanceof ScannerSetupError) this.#opts.report('error', err.message);
        else this.#retryControl();
      }
    }, SCAN_RETRY_MS);
  }

  /** `.s6-svscan/` with its lock and control FIFO. Throws ScannerSetupError if another scanner runs there, Error otherwise. */
  #setUpControl(): void {
    const ctl = path.join(this.scandir, '.s6-svscan');
    try {
      fs.mkdirSync(ctl, { mode: 0o700 });
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw new Error(`unable to create ${ctl}: ${describeError(err)}`);
      if (!isDirectory(ctl)) throw new ScannerSetupError(`${ctl} exists and is not a directory`, 100);
    }
    const lockPath = path.join(ctl, 'lock');
    if (this.#lockFd < 0) {
      try {
        this.#lockFd = open(lockPath, O_WRONLY | O_CREAT | O_NONBLOCK, 0o600);
      } catch (err) {
        throw new Error(`unable to open ${lockPath}: ${describeError(err)}`);
      }
      if (!tryLock(this.#lockFd, lockPath)) {
        close(this.#lockFd);
        this.#lockFd = -1;
        throw new ScannerSetupError(`another instance of t6-svscan or s6-svscan is already running on ${this.scandir} (${lockPath} is locked)`, 100);
      }
    }
    const controlPath = path.join(ctl, 'control');
    let readFd = -1;
    try {
      mkfifo(controlPath, 0o600);
      // Read-write: the reader, and the writer that keeps it from seeing EOF, in one fd.
      readFd = open(controlPath, O_RDWR | O_NONBLOCK);
    } catch (err) {
      if (errorCode(err) === 'EEXIST') throw new ScannerSetupError(`${controlPath} exists and is not a FIFO`, 100);
      throw new Error(`unable to set up ${controlPath}: ${describeError(err)}`);
    }
    this.#listenRunner(ctl);
    const control = new net.Socket({ fd: readFd, readable: true, writable: false });
    control.on('data', (chunk: Buffer) => this.#guard('control', () => this.command(chunk.toString('latin1'))));
    control.on('error', (err) => this.#opts.report('error', `${controlPath}: ${describeError(err)}`));
    this.#control = control;
  }

  /** The built-in oneshot runner on `.s6-svscan/run` (see runner.ts); a failure only costs oneshots. */
  #listenRunner(ctl: string): void {
    if (this.#runner !== undefined) return;
    const socketPath = path.join(ctl, 'run');
    try {
      this.#runner = OneshotRunner.listen(socketPath, {
        spawn: this.#host.spawn,
        // Oneshots start off the event loop: posix_spawn holds its caller until the child
        // has exec'd, and t6-rc hands over hundreds at once.
        spawnAsync: (spawnOpts, onExit) => {
          const settle = this.reaper.expect();
          return sysSpawnAsync({ ...spawnOpts, allCloexec: this.#opts.allCloexec === true }).then(
            (pid) => { settle(pid, onExit); return pid; },
            (err: unknown) => { settle(undefined); throw err; },
          );
        },
        kill: this.#host.kill,
        report: this.#opts.report,
        output: () => this.#logging.catchAllFd,
        scan: () => {
          this.#guard('scan', () => this.scan());
          return this.#supervised();
        },
        control: (req, done) => controlRequest((dir) => this.#supervisorOf(dir), this.#waiters, req, done),
      });
    } catch (err) {
      this.#opts.report('warning', `unable to listen on ${socketPath}: ${describeError(err)} - oneshots cannot run`);
    }
  }

  /**
   * The supervisor of a directory, found by its identity (one stat: scan dir entries are
   * keyed by device and inode) rather than by resolving the path component by component;
   * a logger's directory, not keyed, by its real path.
   */
  #supervisorOf(dir: string): Supervisor | undefined {
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    if (st === undefined) return undefined;
    const sup = this.#services.get(`${st.dev}:${st.ino}`)?.main.sup;
    if (sup !== undefined) return sup;
    const real = fs.realpathSync.native(dir);
    return this.supervisors().find((s) => s.dir === real);
  }

  /** Scan dir entries (and loggers, as `name/log`) that have a supervisor now. */
  #supervised(): string[] {
    const out: string[] = [];
    for (const { entry, slot } of this.#bySupervisor.values()) {
      if (entry.active) out.push(slot === entry.main ? entry.name : `${entry.name}/log`);
    }
    return out;
  }

  /** Starts the slot's supervisor if it should run and may; says 'too-many' when the -c limit stops it. */
  #startSlot(entry: ServiceEntry, slot: Slot, realParents = new Map<string, string>()): 'too-many' | undefined {
    if (slot.sup !== undefined || slot.restart !== undefined || !entry.active || this.#ending !== undefined) return undefined;
    const wait = slot.lastStart + 1000 - performance.now();
    if (slot.lastStart > 0 && wait > 0) {
      slot.restart = this.#host.setTimer(wait, () => { slot.restart = undefined; this.#restartSlot(entry, slot); });
      return undefined;
    }
    if (this.#bySupervisor.size >= this.#maxServices) return 'too-many';
    const stdio = this.#stdioFor(entry, slot);
    slot.lastStart = performance.now();
    try {
      // Resolved once, as s6-supervise chdir()s into it: removing or renaming the scan dir's
      // link later must not pull the directory out from under a running supervisor.
      const dir = realServicedir(this.scandir, slot.name, realParents);
      slot.sup = Supervisor.open(slot.name, dir, this.#host, stdio);
      this.#bySupervisor.set(slot.sup, { entry, slot });
    } catch (err) {
      const why = err instanceof SupervisorSetupError ? err.message : describeError(err);
      this.#opts.report('warning', `unable to supervise ${path.join(this.scandir, slot.name)}: ${why} - retrying in ${SUPERVISOR_RETRY_MS / 1000} seconds`);
      slot.restart = this.#host.setTimer(SUPERVISOR_RETRY_MS, () => { slot.restart = undefined; this.#restartSlot(entry, slot); });
    }
    return undefined;
  }

  #restartSlot(entry: ServiceEntry, slot: Slot): void {
    if (this.#startSlot(entry, slot) === 'too-many') {
      this.#opts.report('warning', `not supervising ${path.join(this.scandir, slot.name)}: too many services (the limit is ${this.#maxServices}; raise it with -c)`);
    }
  }

  /** Where a slot's run gets stdin/stdout/stderr: its logger pipe, its pipeline pipes, the catch-all. */
  #stdioFor(entry: ServiceEntry, slot: Slot): SupervisorStdio {
    const stdio: SupervisorStdio = {};
    const catchAll = this.#logging.catchAllFd;
    if (catchAll !== undefined) stdio.stderr = catchAll;
    if (slot !== entry.main) {
      if (entry.pipe !== undefined) stdio.stdin = entry.pipe[0];
      return stdio;
    }
    if (entry.pipe === undefined && catchAll !== undefined) stdio.stdout = catchAll;
    if (entry.pipe !== undefined && !entry.writeClosed) {
      stdio.stdout = entry.pipe[1];
      if (entry.reader?.takesStderr === true) stdio.stderr = entry.pipe[1];
    }
    const out = entry.producerFor === undefined ? undefined : this.#pipelines.get(entry.producerFor);
    if (out?.write !== undefined) stdio.stdout = out.write;
    const input = this.#pipelines.get(entry.name);
    if (input !== undefined) stdio.stdin = input.read;
    if (entry.name === CATCHALL_LOGGER && this.#opts.consoleFd !== undefined) stdio.stderr = this.#opts.consoleFd;
    return stdio;
  }

  /**
   * Makes the pipeline pipes match the scan dir: one pipe per consumer named in some
   * active service's `producer-for` (several producers share it: a funnel). A pipe lives as
   * long as a producer or its consumer is known, so either side restarts without losing a byte.
   */
  #updatePipelines(): void {
    const wanted = new Set<string>();
    const known = new Set<string>();
    for (const entry of this.#services.values()) {
      known.add(entry.name);
      if (entry.producerFor !== undefined) wanted.add(entry.producerFor);
    }
    for (const name of wanted) {
      if (this.#pipelines.has(name)) continue;
      try {
        const [read, write] = pipe();
        this.#pipelines.set(name, { read, write });
      } catch (err) {
        this.#opts.report('warning', `unable to create the pipeline pipe to ${path.join(this.scandir, name)}: ${describeError(err)}`);
      }
    }
    for (const [name, p] of this.#pipelines) {
      if (wanted.has(name) || known.has(name)) continue;
      close(p.read);
      if (p.write !== undefined) close(p.write);
      this.#pipelines.delete(name);
    }
  }

  /** After a producer ended for good: once no producer of that pipeline runs, drop our write end (EOF for the consumer). */
  #releasePipelineWrite(entry: ServiceEntry): void {
    const name = entry.producerFor;
    const p = name === undefined ? undefined : this.#pipelines.get(name);
    if (p?.write === undefined) return;
    for (const other of this.#services.values()) {
      if (other.producerFor === name && other.main.sup !== undefined) return;
    }
    close(p.write);
    p.write = undefined;
  }

  #supervisorExited(sup: Supervisor): void {
    const owner = this.#bySupervisor.get(sup);
    if (owner === undefined) return;
    this.#bySupervisor.delete(sup);
    const { entry, slot } = owner;
    slot.sup = undefined;
    if (this.#ending !== undefined || !entry.active) {
      // The producer is gone for good: drop our write end so its logger can reach EOF.
      if (slot === entry.main) {
        this.#closeWriteEnd(entry);
        this.#releasePipelineWrite(entry);
      }
      this.#forgetIfDead(entry);
      if (this.#ending !== undefined) this.#maybeFinish();
      return;
    }
    this.#restartSlot(entry, slot); // at once, or 1 s after its previous start
  }

  /** A service's process died: its console sink flushes a held partial line. */
  #serviceDied(sup: Supervisor): void {
    const owner = this.#bySupervisor.get(sup);
    if (owner !== undefined && owner.slot === owner.entry.main) owner.entry.reader?.serviceDied();
  }

  #closeWriteEnd(entry: ServiceEntry): void {
    if (entry.pipe === undefined || entry.writeClosed) return;
    close(entry.pipe[1]);
    entry.writeClosed = true;
    entry.log?.sup?.setStdio({ stdin: entry.pipe[0] });
  }

  #forgetIfDead(entry: ServiceEntry): void {
    if (entry.active && this.#ending === undefined) return;
    if (entry.main.sup === undefined) this.#closeWriteEnd(entry);
    if (slots(entry).some((s) => s.sup !== undefined)) return;
    for (const slot of slots(entry)) slot.restart?.cancel();
    if (entry.reader !== undefined) {
      // Drains the pipe now (synchronously), writes the rest in the background.
      void entry.reader.close();
      entry.reader = undefined;
    }
    if (entry.pipe !== undefined) {
      close(entry.pipe[0]);
      this.#closeWriteEnd(entry);
      entry.pipe = undefined;
    }
    this.#services.delete(entry.key);
    if (this.#ending === undefined) this.#updatePipelines();
  }

  /** Stops the supervisors of inactive services: services get 'term', loggers 'hup' (or 'term' with N). */
  #prune(loggersToo: boolean): void {
    for (const entry of this.#services.values()) {
      if (entry.active) continue;
      entry.main.sup?.request('term');
      entry.log?.sup?.request(loggersToo ? 'term' : 'hup');
      this.#forgetIfDead(entry);
    }
  }

  /**
   * Shutdown's "unsupervise everything" (s6-linux-init-shutdownd hides every entry, then
   * sends `d`): every service is brought down for good and its supervisor let go, loggers
   * included; the scan dir is never read again. The control FIFO and the oneshot runner
   * stay, and the scanner does not end: pid 1 carries on into stage 4.
   */
  unsuperviseAll(): void {
    this.#unsupervised = true;
    if (this.#rescanTimer !== undefined) clearInterval(this.#rescanTimer);
    if (this.#retryScan !== undefined) clearTimeout(this.#retryScan);
    for (const entry of this.#services.values()) {
      entry.active = false;
      for (const slot of slots(entry)) {
        slot.restart?.cancel();
        slot.restart = undefined;
      }
    }
    this.#prune(true);
  }

  #terminate(reason: ScannerExit['reason']): void {
    if (this.#ending !== undefined && reason !== 'abort') return;
    this.#ending = reason;
    if (this.#rescanTimer !== undefined) clearInterval(this.#rescanTimer);
    if (this.#retryScan !== undefined) clearTimeout(this.#retryScan);
    if (this.#controlRetry !== undefined) clearTimeout(this.#controlRetry);
    const entries = [...this.#services.values()];
    for (const entry of entries) {
      for (const slot of slots(entry)) {
        slot.restart?.cancel();
        slot.restart = undefined;
      }
    }
    if (reason !== 'abort') {
      for (const entry of entries) {
        entry.main.sup?.request('term');
        entry.log?.sup?.request(reason === 'quit' ? 'term' : 'hup');
        if (entry.main.sup === undefined) this.#closeWriteEnd(entry);
      }
    }
    this.#maybeFinish();
  }

  #maybeFinish(): void {
    if (this.#ending === undefined) return;
    if (this.#ending !== 'abort' && this.#bySupervisor.size > 0) return;
    this.#control?.destroy();
    this.#control = undefined;
    this.#runner?.close();
    this.#runner = undefined;
    for (const entry of this.#services.values()) {
      if (entry.reader !== undefined) {
        void entry.reader.close();
        entry.reader = undefined;
      }
      if (entry.pipe !== undefined) {
        close(entry.pipe[0]);
        this.#closeWriteEnd(entry);
        entry.pipe = undefined;
      }
    }
    for (const p of this.#pipelines.values()) {
      close(p.read);
      if (p.write !== undefined) close(p.write);
    }
    this.#pipelines.clear();
    const finish = path.join(this.scandir, '.s6-svscan', 'finish');
    const exit: ScannerExit = { reason: this.#ending, finish: fs.existsSync(finish) ? finish : undefined };
    // In-process loggers write and sync what they hold first (bounded: a full disk must not hang the end).
    void this.#logging.closeAll().then(() => this.#resolve(exit), () => this.#resolve(exit));
  }

  /** Releases the scan directory lock (after `done`, before exec'ing finish or exiting). */
  releaseLock(): void {
    if (this.#lockFd >= 0) close(this.#lockFd);
    this.#lockFd = -1;
  }

  #scheduleScanRetry(): void {
    if (this.#retryScan !== undefined || this.#ending !== undefined) return;
    this.#retryScan = setTimeout(() => {
      this.#retryScan = undefined;
      this.#guard('rescan', () => this.scan());
    }, SCAN_RETRY_MS);
  }

  /** Runs a callback so that nothing it throws can reach the event loop (pid 1 must not die). */
  #guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#opts.report('error', `internal error in ${what}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    }
  }
}

/** The first few items of a list, and how many more. */
function listSome(items: string[], max = 5): string {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}

function newSlot(name: string): Slot {
  return { name, sup: undefined, lastStart: 0, restart: undefined };
}

function slots(entry: ServiceEntry): Slot[] {
  return entry.log === undefined ? [entry.main] : [entry.main, entry.log];
}

function isDirectory(p: string): boolean {
  try {
    // Mostly absent (a service without log/): no exception for that, it costs more than the stat.
    return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
}
