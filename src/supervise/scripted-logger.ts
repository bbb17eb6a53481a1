/**
 * A scripted logger: an s6-log engine inside t6-svscan on a service's logger pipe, its
 * script read from a file (a service's `log/t6-log`, or the catch-all's), which holds
 * t6-log's arguments one per line (format: src/log/scriptfile.ts).
 *
 * The scanner holds the service→logger pipe; its read end is read from the event loop and
 * fed to the engine by a LogDriver: when the engine refuses more (full disk, rotation
 * behind), reading stops and the service's write(2) blocks. A rescan that finds the file
 * changed reloads it: reading pauses, the partial line is taken out, the old engine writes
 * and syncs everything, the new one starts with the partial line — nothing lost or torn.
 * If the old engine fails to end, that is reported and the new one starts all the same.
 * A file that does not parse is reported (naming the file and the problem) and the previous
 * script keeps running; with no previous script the output is held in the pipe (the
 * service blocks once it is full) until the file is fixed and the scan directory rescanned.
 * A logdir that cannot be opened is retried every 10 seconds.
 *
 * What the logger needs from t6-svscan comes in a ScriptedLoggerContext; it never sees the
 * hub that made it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LogDriver } from '../log/driver.ts';
import { Logger, type LoggerHost } from '../log/engine.ts';
import { PipeReader } from '../log/input.ts';
import { LogdirError } from '../log/logdir.ts';
import { parseScriptFile, ScriptFileError, type ScriptFile } from '../log/scriptfile.ts';
import { type Tain } from '../s6/tai.ts';
import { strerror } from '../sys/errors.ts';
import { dupCloexec } from '../sys/fd.ts';

const RETRY_OPEN_MS = 10_000;

/** What every logger of one t6-svscan shares (given by the hub). */
export interface LoggerEnv {
  /** t6-svscan's report: trouble with a script file, reloads. */
  report(level: 'info' | 'warning' | 'error', message: string): void;
  /** Runs a timer's callback so that nothing it throws reaches the event loop. */
  guard(what: string, fn: () => void): void;
  /** The wait status of a child (the processors of `!` directives). */
  waitPid(pid: number): Promise<number>;
  /** Monotonic milliseconds (deadlines). */
  monotonicMs(): number;
  /** The real-time clock as TAI64N, read at each call (the `t`/`T` stamps, archive names). */
  now(): Tain;
  /** The mode of the files the engines create: 0o666 less t6-svscan's umask. */
  readonly mask: number;
  /** One read buffer for every pipe read (each reader copies what it keeps). */
  readonly readBuffer: Buffer;
}

/** What one scripted logger needs: the shared environment and where its engine's output goes. */
export interface ScriptedLoggerContext {
  readonly env: LoggerEnv;
  /** The engine's warnings (a logdir in trouble). */
  warn(message: string): void;
  /** The engine's `2` output, formatted. */
  alert(data: Buffer): void;
  /** The engine's `1` output (whole lines); false: full, `drained` is called when it may go on. */
  stdout(data: Buffer, drained: () => void): boolean;
  /** The engine can take input again (the catch-all feeds its queue then). */
  engineDrained?(): void;
  /** The engine wants no more input for now (its service's writes wait on the pipe). */
  engineBlocked?(): void;
  /** The logger has closed (the hub lets go of it). */
  closed?(): void;
}

/** Where a logdir's late data is, after `sync`. */
export interface LateLogdir {
  dir: string;
  /** Bytes not written. */
  staged: number;
}

/** A Logger engine on a pipe, its script read from a file and reloaded when the file changes. */
export class ScriptedLogger {
  readonly takesStderr = false;
  /** The name in messages (`svc/log`, or the catch-all's directory name). */
  readonly label: string;
  /** The script file. */
  readonly file: string;
  readonly #ctx: ScriptedLoggerContext;
  readonly #driver: LogDriver;
  /** The text of the running script, and of the last refused one (reported once). */
  #text: string | undefined;
  #badText: string | undefined;
  #missingReported = false;
  #switching = false;
  #again = false;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(ctx: ScriptedLoggerContext, label: string, file: string, readFd: number, initial?: Buffer) {
    this.#ctx = ctx;
    this.label = label;
    this.file = file;
    // The reader closes its own duplicate: the scanner keeps both ends of the pipe.
    const reader = new PipeReader(dupCloexec(readFd), ctx.env.readBuffer);
    this.#driver = new LogDriver(reader, { drained: () => ctx.engineDrained?.(), blocked: () => ctx.engineBlocked?.() });
    if (initial !== undefined) this.#driver.hold(initial);
  }

  /** The engine running now (none before a valid script, nor during a reload). */
  get engine(): Logger | undefined { return this.#driver.engine; }

  /** Reads the script file; starts, or reloads, the engine if it is new and valid. */
  load(): void {
    if (this.#closed) return;
    if (this.#switching) { this.#again = true; return; }
    const text = this.#readFile();
    if (text === undefined) return;
    if (this.engine !== undefined && text === this.#text) return;
    if (text === this.#badText) return;
    const parsed = this.#parse(text);
    if (parsed === undefined) return;
    const old = this.engine;
    if (old === undefined) this.#open(parsed, text);
    else this.#reload(old, parsed, text);
  }

  /** The script file's text; undefined (reported once) when it cannot be read. */
  #readFile(): string | undefined {
    try {
      const text = fs.readFileSync(this.file, 'utf8');
      this.#missingReported = false;
      return text;
    } catch (err) {
      if (!this.#missingReported) {
        this.#missingReported = true;
        this.#ctx.env.report('warning', `unable to read ${this.file}: ${strerror(err)} - ${this.engine !== undefined ? 'keeping the script in use' : 'holding the output in the pipe'}`);
      }
      return undefined;
    }
  }

  /** The parsed script; undefined (reported, and remembered so as to be reported once) when it is not valid. */
  #parse(text: string): ScriptFile | undefined {
    const report = this.#ctx.env.report;
    let parsed: ScriptFile;
    try {
      parsed = parseScriptFile(text, path.dirname(this.file));
    } catch (err) {
      if (!(err instanceof ScriptFileError)) throw err;
      this.#badText = text;
      report('warning', `${this.file}: ${err.message} - ${this.engine !== undefined ? 'keeping the previous script' : 'holding the output in the pipe until the file is fixed (then rescan)'}`);
      return undefined;
    }
    this.#badText = undefined;
    if (parsed.script.ignoredTrailing) report('warning', `${this.file}: ignoring extraneous non-action directives`);
    return parsed;
  }

  /**
   * Switches engines: reading pauses and the partial line is taken out (detach); the old
   * engine writes and syncs everything (its logdirs' locks are released), then the new one
   * goes on from there, the partial line first. The old engine failing to end is reported,
   * and the switch goes on: left half-done, the output would be held for good.
   */
  #reload(old: Logger, parsed: ScriptFile, text: string): void {
    const { env } = this.#ctx;
    this.#switching = true;
    this.#driver.detach();
    const ended = old.end().catch((err: unknown) => {
      env.report('warning', `${this.label}: unable to finish logging with the previous script: ${strerror(err)}`);
    });
    void ended.then(() => {
      this.#switching = false;
      if (this.#closed) return;
      env.guard(`reloading ${this.file}`, () => {
        if (this.#open(parsed, text)) env.report('info', `${this.label}: reloaded ${this.file}`);
      });
      if (this.#again) { this.#again = false; this.load(); }
    });
  }

  /** Starts an engine on the script; false (reported, retried later) if a logdir cannot be opened. */
  #open(parsed: ScriptFile, text: string): boolean {
    const { env } = this.#ctx;
    const host: LoggerHost = {
      now: () => env.now(),
      setTimer: (ms, fn) => { const t = setTimeout(() => env.guard(`logger ${this.label}`, fn), ms); return () => clearTimeout(t); },
      waitPid: (pid) => env.waitPid(pid),
      warn: (m) => this.#ctx.warn(m),
      mask: env.mask,
      stdout: (d) => this.#ctx.stdout(d, () => this.engine?.stdoutDrained()),
      alert: (d) => this.#ctx.alert(d),
    };
    let engine: Logger;
    try {
      engine = Logger.open(parsed.script, host, { lineLimit: parsed.lineLimit, prog: this.label });
    } catch (err) {
      if (!(err instanceof LogdirError)) throw err;
      env.report('warning', `${this.file}: ${err.message} - holding the output in the pipe, retrying in ${RETRY_OPEN_MS / 1000} seconds`);
      clearTimeout(this.#retry);
      this.#retry = setTimeout(() => { this.#retry = undefined; env.guard(`logger ${this.label}`, () => this.load()); }, RETRY_OPEN_MS);
      return false;
    }
    this.#text = text;
    this.#driver.attach(engine);
    return true;
  }

  /** The scan saw the service again: reload the script if it changed. */
  rescan(): void { this.load(); }

  /** Nothing to do: a partial line waits for the next run of the service. */
  serviceDied(): void {}

  /** Hands everything readable in the pipe to the engine now (whatever backpressure says: bounded by the pipe). */
  drain(): void { this.#driver.drain(); }

  /** Writes and fsyncs every logdir, by `deadline`; says what could not be. */
  async sync(deadline: number): Promise<LateLogdir[]> {
    const engine = this.engine;
    if (engine === undefined) {
      const held = this.#driver.heldBytes;
      return held > 0 ? [{ dir: `(no running script: ${this.file})`, staged: held }] : [];
    }
    return engine.sync(deadline, this.#ctx.env.monotonicMs);
  }

  /**
   * Re-exec: reading stops (the rest waits in the pipe), the engine writes, syncs and
   * releases its logdirs, and the partial line comes back for the next image. Never rejects.
   */
  async handOver(): Promise<Buffer> {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#ctx.closed?.();
    const engine = this.#driver.detach();
    try {
      await engine?.end();
    } catch (err) {
      this.#ctx.env.report('error', `${this.label}: unable to finish logging before the re-exec: ${strerror(err)}`);
    }
    const partial = this.#driver.takeHeld();
    this.#driver.close();
    return partial;
  }

  /** Drains the pipe, stops reading and ends the engine (everything written and synced); never rejects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.drain();
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#ctx.closed?.();
    const { report } = this.#ctx.env;
    if (this.engine === undefined) {
      const held = this.#driver.heldBytes;
      this.#driver.close();
      if (held > 0) report('warning', `${this.label}: ${held} bytes of output were not logged: no valid script in ${this.file}`);
      return;
    }
    try {
      await this.#driver.end();
    } catch (err) {
      report('error', `${this.label}: unable to finish logging: ${strerror(err)}`);
    }
  }
}
