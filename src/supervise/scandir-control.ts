/**
 * The scan directory's own control files and signals (s6-spec/svscan.md): `.s6-svscan/`
 * with its lock (held for the scanner's life, so two scanners never share a scan
 * directory), its control FIFO (read byte by byte, as s6-svscan does), and t6's oneshot
 * runner socket; and the divertible signals, which run `.s6-svscan/SIG<NAME>` when it
 * exists and the built-in action otherwise.
 *
 * A scan directory that cannot hold these files (read-only, full) is supervised anyway —
 * pid 1 must not give up — and the files are set up again every few seconds; the control
 * FIFO is never served without the lock held.
 */
import path from 'node:path';
import { errorCode, strerror } from '../sys/errors.ts';
import type { Listening, ScannerHost } from './scanner-host.ts';
import type { RunnerHost } from './runner.ts';
import type { EventLog } from './events.ts';
import type { TimerHandle } from './supervisor.ts';
import { EXIT } from '../s6/exit.ts';

/** Divertible signals: a `.s6-svscan/SIG<NAME>` script replaces the built-in action. */
export const DIVERTIBLE_SIGNALS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGPWR', 'SIGWINCH'] as const;
/** Signals the scanner acts on. */
export type ScannerSignal = (typeof DIVERTIBLE_SIGNALS)[number] | 'SIGALRM' | 'SIGABRT';
/** Every signal the scanner acts on, divertible ones first. */
export const SCANNER_SIGNALS: readonly ScannerSignal[] = [...DIVERTIBLE_SIGNALS, 'SIGALRM', 'SIGABRT'];

/** s6-svscan's built-in action for each signal, as scanner control bytes ('' = none). */
export const BUILTIN_SIGNAL_COMMANDS: Record<ScannerSignal, string> = {
  SIGHUP: 'h', SIGINT: 't', SIGTERM: 't', SIGQUIT: 'q', SIGUSR1: '', SIGUSR2: '', SIGPWR: '', SIGWINCH: '',
  SIGALRM: 'a', SIGABRT: 'b',
};

/** Thrown when the scan directory cannot be taken; `exitCode` as s6-svscan's. */
export class ScannerSetupError extends Error {
  override name = 'ScannerSetupError';
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** How long to wait before setting up `.s6-svscan/` again after a failure. */
export const CONTROL_RETRY_MS = 3_000;

/** What the control part works with. */
export interface ControlContext {
  scandir: string;
  host: ScannerHost;
  report(level: 'info' | 'warning' | 'error', message: string): void;
  /** Control bytes read from the FIFO. */
  command(bytes: string): void;
  /** The runner's view of the scanner (built when the runner starts listening). */
  runnerHost(): RunnerHost;
  /** The tree's event log, served on `.s6-svscan/events` (event-server.ts); absent: not served. */
  events?: EventLog;
  /** Runs a callback so that nothing it throws reaches the event loop. */
  guard(what: string, fn: () => void): void;
}

/** `.s6-svscan/`: lock, control FIFO, runner socket. */
export class ScandirControl {
  readonly #ctx: ControlContext;
  readonly #dir: string;
  #lockFd = -1;
  /** The control FIFO's fd while it is read (owned by `#reading`). */
  #controlFd = -1;
  #reading: { close(): void } | undefined;
  #runner: Listening | undefined;
  #events: Listening | undefined;
  #retry: TimerHandle | undefined;

  constructor(ctx: ControlContext) {
    this.#ctx = ctx;
    this.#dir = path.join(ctx.scandir, '.s6-svscan');
  }

  /** The control FIFO's path. */
  get controlPath(): string { return path.join(this.#dir, 'control'); }

  /** True while the control FIFO is served (the lock is held then). */
  get listening(): boolean { return this.#reading !== undefined; }

  /**
   * s6-svscan's start: the scan directory must be a directory (else ScannerSetupError 100,
   * or 111 if it cannot be looked at), and no other scanner may hold its lock (100). Any
   * other failure degrades: supervision goes on, the files are retried.
   */
  open(): void {
    const { files } = this.#ctx.host;
    let isDir: boolean;
    try {
      isDir = files.stat(this.#ctx.scandir).isDirectory;
    } catch (err) {
      throw new ScannerSetupError(`unable to use ${this.#ctx.scandir}: ${strerror(err)}`, EXIT.system);
    }
    if (!isDir) throw new ScannerSetupError(`${this.#ctx.scandir} is not a directory`, EXIT.usage);
    try {
      this.#setUp();
    } catch (err) {
      if (err instanceof ScannerSetupError) throw err;
      this.#ctx.report('warning', `${strerror(err)} - running without ${this.controlPath}; retrying every ${CONTROL_RETRY_MS / 1000} seconds`);
      this.#scheduleRetry();
    }
  }

  /** The runner's in-process requests, while it listens. */
  get runnerRequest(): Listening['request'] {
    const runner = this.#runner;
    return runner?.request === undefined ? undefined : (line, reply) => runner.request!(line, reply);
  }

  /** No more set-up retries (supervision is ending; what is served goes on being served). */
  cancelRetry(): void {
    this.#retry?.cancel();
    this.#retry = undefined;
  }

  /** Stops serving the FIFO and the runner, and any retry; the lock stays (releaseLock). */
  close(): void {
    this.cancelRetry();
    this.#reading?.close();
    this.#reading = undefined;
    this.#runner?.close();
    this.#runner = undefined;
    this.#events?.close();
    this.#events = undefined;
  }

  /**
   * Re-exec: the FIFO is no longer read (bytes written now wait in it for the next image)
   * and the runner stops listening; the lock's fd and a duplicate of the FIFO's are returned.
   */
  handOver(): { lockFd: number; controlFd?: number } {
    const controlFd = this.#reading === undefined ? undefined : this.#ctx.host.files.dup(this.#controlFd);
    this.close();
    const lockFd = this.#lockFd;
    this.#lockFd = -1;
    return { lockFd, ...(controlFd === undefined ? {} : { controlFd }) };
  }

  /** The next image: the lock and FIFO handed over are served again (a missing FIFO is set up, retried if need be). */
  resume(lockFd: number, controlFd: number | undefined): void {
    this.#lockFd = lockFd;
    if (controlFd === undefined) { this.open(); return; }
    this.#listenRunner();
    this.#listenEvents();
    this.#serveFifo(controlFd);
  }

  /** Releases the scan directory's lock (after the end, before exec'ing finish or exiting). */
  releaseLock(): void {
    if (this.#lockFd >= 0) this.#ctx.host.files.close(this.#lockFd);
    this.#lockFd = -1;
  }

  /**
   * A divertible signal's script: runs `.s6-svscan/SIG<NAME>` if it exists and says true;
   * false when there is none (or it cannot run: reported), so the built-in action applies.
   */
  runSignalScript(sig: ScannerSignal): boolean {
    if (!(DIVERTIBLE_SIGNALS as readonly string[]).includes(sig)) return false;
    const script = path.join(this.#dir, sig);
    try {
      this.#ctx.host.spawn({ path: script, argv: [`.s6-svscan/${sig}`], cwd: this.#ctx.scandir, newSession: false }, () => {});
      return true;
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') this.#ctx.report('warning', `unable to spawn ${script}: ${strerror(err)} - using the built-in action`);
      return false;
    }
  }

  #scheduleRetry(): void {
    this.#retry = this.#ctx.host.setTimer(CONTROL_RETRY_MS, () => {
      this.#retry = undefined;
      this.#ctx.guard('control set-up', () => {
        try {
          this.#setUp();
          this.#ctx.report('info', `${this.controlPath} is listening`);
        } catch (err) {
          if (err instanceof ScannerSetupError) this.#ctx.report('error', err.message);
          else this.#scheduleRetry();
        }
      });
    });
  }

  /** `.s6-svscan/` with its lock and control FIFO. Throws ScannerSetupError if another scanner runs there, Error otherwise. */
  #setUp(): void {
    const { files } = this.#ctx.host;
    try {
      files.mkdir(this.#dir, 0o700);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw new Error(`unable to create ${this.#dir}: ${strerror(err)}`);
      if (files.statIfExists(this.#dir)?.isDirectory !== true) throw new ScannerSetupError(`${this.#dir} exists and is not a directory`, EXIT.usage);
    }
    this.#takeLock();
    const controlPath = this.controlPath;
    let readFd: number;
    try {
      files.mkfifo(controlPath, 0o600);
      readFd = files.openFifo(controlPath);
    } catch (err) {
      if (errorCode(err) === 'EEXIST') throw new ScannerSetupError(`${controlPath} exists and is not a FIFO`, EXIT.usage);
      throw new Error(`unable to set up ${controlPath}: ${strerror(err)}`);
    }
    this.#listenRunner();
    this.#listenEvents();
    this.#serveFifo(readFd);
  }

  #serveFifo(readFd: number): void {
    this.#controlFd = readFd;
    this.#reading = this.#ctx.host.files.readFifo(readFd,
      (chunk) => this.#ctx.guard('control', () => this.#ctx.command(chunk.toString('latin1'))),
      (err) => this.#ctx.report('error', `${this.controlPath}: ${strerror(err)}`));
  }

  /** Holds `.s6-svscan/lock` (kept across retries once held). A lock that cannot be tried is not held: the fd is closed. */
  #takeLock(): void {
    if (this.#lockFd >= 0) return;
    const { files } = this.#ctx.host;
    const lockPath = path.join(this.#dir, 'lock');
    let fd: number;
    try {
      fd = files.openLockFile(lockPath);
    } catch (err) {
      throw new Error(`unable to open ${lockPath}: ${strerror(err)}`);
    }
    let locked: boolean;
    try {
      locked = files.tryLock(fd, lockPath);
    } catch (err) {
      files.close(fd);
      throw new Error(`unable to lock ${lockPath}: ${strerror(err)}`);
    }
    if (!locked) {
      files.close(fd);
      throw new ScannerSetupError(`another instance of t6-svscan or s6-svscan is already running on ${this.#ctx.scandir} (${lockPath} is locked)`, EXIT.usage);
    }
    this.#lockFd = fd;
  }

  /** The built-in oneshot runner on `.s6-svscan/run` (see runner.ts); a failure only costs oneshots. */
  #listenRunner(): void {
    if (this.#runner !== undefined) return;
    const socketPath = path.join(this.#dir, 'run');
    try {
      this.#runner = this.#ctx.host.listenRunner(socketPath, this.#ctx.runnerHost());
    } catch (err) {
      this.#ctx.report('warning', `unable to listen on ${socketPath}: ${strerror(err)} - oneshots cannot run`);
    }
  }

  /** The event stream on `.s6-svscan/events`; a failure only costs the stream. */
  #listenEvents(): void {
    const { events } = this.#ctx;
    if (this.#events !== undefined || events === undefined || this.#ctx.host.listenEvents === undefined) return;
    const socketPath = path.join(this.#dir, 'events');
    try {
      this.#events = this.#ctx.host.listenEvents(socketPath, events, (level, message) => this.#ctx.report(level, message));
    } catch (err) {
      this.#ctx.report('warning', `unable to listen on ${socketPath}: ${strerror(err)} - no event stream`);
    }
  }
}
