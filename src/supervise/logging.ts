/**
 * Logging inside t6-svscan: in-process loggers, the catch-all log and the console sink.
 *
 * - **In-process loggers.** A service whose `log/` holds a `t6-log` file (and no `run`)
 *   gets its logger here, not in a process: the file holds t6-log's arguments, one per line
 *   (format: src/log/scriptfile.ts). The scanner still holds the service→logger pipe; its
 *   read end is read from the event loop and fed to a `Logger`; when the engine refuses
 *   more (full disk, rotation behind), reading stops and the service's write(2) blocks.
 *   A rescan that finds the file changed reloads it: reading pauses, the partial line is
 *   taken out, the old engine writes and syncs everything, the new one starts with the
 *   partial line — nothing lost or torn. A file that does not parse is reported (naming
 *   the file and the problem) and the previous script keeps running; with no previous
 *   script the output is held in the pipe (the service blocks once it is full) until the
 *   file is fixed and the scan directory rescanned.
 * - **The catch-all log** (s6-linux-init's uncaught-logs): `SCANDIR/s6-svscan-log/t6-log`
 *   (and no `run`) at start-up makes a catch-all pipe whose write end (`catchAllFd`) is the
 *   stdout and stderr of every service without a logger of its own and the stderr of the
 *   others; its read end feeds the catch-all engine. t6-svscan's own messages go into the
 *   engine directly (pid 1 never writes into a pipe it reads itself), through a bounded
 *   queue when the engine is stuck: then they also go to the console, and what did not fit
 *   is counted and reported once the log drains. The catch-all's own warnings and alerts
 *   go to the console (the -X fd, else t6-svscan's stderr).
 * - **The console sink** (containers): every service without a logger gets a pipe of its
 *   own (stdout and stderr); its lines are written to t6-svscan's stdout as `name: line`,
 *   whole lines only, and into the catch-all when there is one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Logger, type LoggerHost } from '../log/engine.ts';
import { LogdirError } from '../log/logdir.ts';
import { parseScriptFile, ScriptFileError, type ScriptFile } from '../log/scriptfile.ts';
import { tainNow } from '../s6/tai.ts';
import { close, pipe } from '../sys/fd.ts';
import { describeError, strerror } from '../sys/errors.ts';
import { umask } from '../sys/system.ts';
import { ConsoleWriter, PipeReader } from './logio.ts';

/** The file in a `log/` directory (and in the catch-all's directory) that asks for an in-process logger. */
export const LOGGER_SCRIPT_FILE = 't6-log';

/** What the scanner needs from its logging: one per service with a pipe read here. */
export interface PipeClient {
  /** True for a console sink: the service's stderr goes into the pipe too. */
  readonly takesStderr: boolean;
  /** The scan saw the service again: reload `log/t6-log` if it changed. */
  rescan(): void;
  /** The service's process died: a held partial line is flushed (console sink). */
  serviceDied(): void;
  /** The service is gone: drain what is readable, write it, release. Resolves once written. */
  close(): Promise<void>;
}

/** Options of the logging hub. */
export interface LoggingOptions {
  scandir: string;
  /** The scanner's report (it ends in `log()` once the catch-all runs). */
  report(level: 'info' | 'warning' | 'error', message: string): void;
  /** -X: where the catch-all's alerts and pid 1's messages go without a catch-all (default fd 2). */
  consoleFd?: number;
  /** Copy every line of services without a logger to stdout as `name: line`. */
  consoleSink?: boolean;
  /** The wait status of a child (processors of `?` directives), from the scanner's reaper. */
  waitPid(pid: number): Promise<number>;
  /** Runs a callback so that nothing it throws reaches the event loop. */
  guard(what: string, fn: () => void): void;
  monotonicMs(): number;
}

const READ_BUFFER = 64 * 1024;
const RETRY_OPEN_MS = 10_000;
/** Bound of pid 1's own messages held while the catch-all cannot take them. */
const QUEUE_MAX = 64 * 1024;
/** Bound of a console sink's partial line: longer, it is cut and written. */
const SINK_LINE_MAX = 64 * 1024;
/** Bound of messages waiting for a console pipe. */
const CONSOLE_MAX = 256 * 1024;

/** Which kind of logger a service directory asks for. */
export type LoggerKind = 'none' | 'external' | 'inproc';

/** The in-process logging of one t6-svscan. */
export class Logging {
  readonly #opts: LoggingOptions;
  readonly #buf = Buffer.allocUnsafe(READ_BUFFER);
  readonly #mask: number;
  readonly #clients = new Set<ScriptedLogger | ConsoleSink>();
  #catchAll: CatchAll | undefined;
  #catchAllPipe: [number, number] | undefined;
  #out: ConsoleWriter | undefined;
  #console: ConsoleWriter | undefined;
  #consoleDropped = 0;
  #waiters = new Set<() => void>();
  #closing: Promise<void> | undefined;

  constructor(opts: LoggingOptions) {
    this.#opts = opts;
    const old = umask(0);
    umask(old);
    this.#mask = 0o666 & ~old;
  }

  /** The catch-all pipe's write end (close-on-exec, owned here), if the catch-all runs. */
  get catchAllFd(): number | undefined { return this.#catchAllPipe?.[1]; }

  get consoleSink(): boolean { return this.#opts.consoleSink === true; }

  /** Starts the catch-all if `SCANDIR/s6-svscan-log/t6-log` exists and `run` does not (start-up only). */
  openCatchAll(name: string): void {
    const dir = path.join(this.#opts.scandir, name);
    const file = path.join(dir, LOGGER_SCRIPT_FILE);
    if (!fs.existsSync(file)) return;
    if (fs.existsSync(path.join(dir, 'run'))) {
      this.#opts.report('warning', `${dir} has both run and ${LOGGER_SCRIPT_FILE}: supervising run as the catch-all logger, ignoring ${file}`);
      return;
    }
    try {
      this.#catchAllPipe = pipe();
    } catch (err) {
      this.#opts.report('warning', `unable to create the catch-all pipe: ${describeError(err)} - running without a catch-all log`);
      return;
    }
    this.#catchAll = new CatchAll(this, name, file, this.#catchAllPipe[0]);
    this.#catchAll.load();
  }

  /** True when the catch-all runs in-process (its scan dir entry is not a service then). */
  get hasCatchAll(): boolean { return this.#catchAll !== undefined; }

  /** A rescan saw the catch-all's directory: reload its script if it changed. */
  rescanCatchAll(): void { this.#catchAll?.load(); }

  /** What `dir/log` asks for: nothing, a `log/run` supervised as s6 does, or a `log/t6-log` run here. */
  loggerKind(serviceDir: string): LoggerKind {
    const logDir = path.join(serviceDir, 'log');
    if (!isDirectory(logDir)) return 'none';
    const script = path.join(logDir, LOGGER_SCRIPT_FILE);
    const hasScript = fs.existsSync(script);
    if (fs.existsSync(path.join(logDir, 'run'))) {
      if (hasScript) this.#opts.report('warning', `${logDir} has both run and ${LOGGER_SCRIPT_FILE}: supervising ${path.join(logDir, 'run')}, ignoring ${script}`);
      return 'external';
    }
    return hasScript ? 'inproc' : 'external';
  }

  /** An in-process logger for service `name` on the pipe's read end (the caller keeps its fd). */
  logger(name: string, serviceDir: string, readFd: number): PipeClient {
    const label = `${name}/log`;
    const file = path.join(serviceDir, 'log', LOGGER_SCRIPT_FILE);
    const l = new ScriptedLogger(this, label, file, readFd, {
      warn: (m) => this.#opts.report('warning', `${label}: ${m}`),
      alert: (d) => this.log(d.toString('utf8').replace(/\n$/, '')),
      stdout: (d, drained) => this.#linesOut(d, drained),
    });
    this.#clients.add(l);
    l.load();
    return l;
  }

  /** A console sink for service `name` (consoleSink only). */
  sink(name: string, readFd: number): PipeClient {
    const s = new ConsoleSink(this, name, readFd);
    this.#clients.add(s);
    return s;
  }

  /** One of pid 1's own messages (a whole line): into the catch-all, else to the console. */
  log(line: string): void {
    if (this.#catchAll !== undefined) this.#catchAll.log(line);
    else this.console(line);
  }

  /** A line to the console (the -X fd, else fd 2), never blocking; dropped past a bound. */
  console(line: string): void {
    this.#console ??= new ConsoleWriter(this.#opts.consoleFd ?? 2);
    if (this.#console.pending > CONSOLE_MAX) { this.#consoleDropped++; return; }
    if (this.#consoleDropped > 0) {
      this.#console.write(Buffer.from(`t6-svscan: warning: ${this.#consoleDropped} console messages dropped (the console was not reading)\n`));
      this.#consoleDropped = 0;
    }
    this.#console.write(Buffer.from(line.endsWith('\n') ? line : `${line}\n`));
  }

  /**
   * Reads everything readable from every logger pipe, hands it to the engines, writes and
   * fsyncs every logdir; gives up after `timeoutMs` (a full disk), reporting to the console
   * what was not written. For the moment before reboot(2).
   */
  async flushLogs(timeoutMs = 5000): Promise<void> {
    const deadline = this.#opts.monotonicMs() + timeoutMs;
    const loggers: ScriptedLogger[] = [];
    for (const c of this.#clients) {
      c.drain();
      if (c instanceof ScriptedLogger) loggers.push(c);
    }
    if (this.#catchAll !== undefined) { this.#catchAll.drain(); loggers.push(this.#catchAll); }
    const late = await Promise.all(loggers.map((l) => l.sync(deadline)));
    for (const [i, list] of late.entries()) {
      for (const { dir, staged } of list) this.console(`t6-svscan: warning: ${loggers[i]!.label}: unable to write and sync ${dir} in time${staged > 0 ? ` (${staged} bytes not written)` : ''}`);
    }
  }

  /** Ends everything at the scanner's end: every client closed, the catch-all last; bounded by `timeoutMs`. */
  closeAll(timeoutMs = 5000): Promise<void> {
    this.#closing ??= this.#closeAll(timeoutMs);
    return this.#closing;
  }

  async #closeAll(timeoutMs: number): Promise<void> {
    const ends = [...this.#clients].map((c) => c.close());
    await withTimeout(Promise.all(ends), timeoutMs);
    if (this.#catchAll !== undefined) {
      const ca = this.#catchAll;
      await withTimeout(ca.close(), timeoutMs);
      if (this.#catchAllPipe !== undefined) { close(this.#catchAllPipe[0]); close(this.#catchAllPipe[1]); }
      this.#catchAllPipe = undefined;
    }
  }

  // ---- for the parts below -----------------------------------------------------------------

  /** @internal */ get opts(): LoggingOptions { return this.#opts; }
  /** @internal */ get buffer(): Buffer { return this.#buf; }
  /** @internal */ get mask(): number { return this.#mask; }
  /** @internal */ forget(c: ScriptedLogger | ConsoleSink): void { this.#clients.delete(c); }

  /** @internal A callback for when a full output (stdout, the catch-all) can take more. */
  whenDrained(fn: () => void): void { this.#waiters.add(fn); }

  /** @internal Something drained: let every waiter retry. */
  drained(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) this.#opts.guard('log drain', w);
  }

  /** @internal stdout (fd 1), written without blocking. */
  get out(): ConsoleWriter {
    if (this.#out === undefined) {
      this.#out = new ConsoleWriter(1);
      this.#out.onDrain = () => this.drained();
    }
    return this.#out;
  }

  /** @internal Where the catch-all's `1` goes: the console fd if given, else stdout. */
  catchAllStdout(data: Buffer, drained: () => void): boolean {
    const w = this.#opts.consoleFd !== undefined ? (this.#console ??= new ConsoleWriter(this.#opts.consoleFd)) : this.out;
    if (w !== this.#out) w.onDrain = () => this.drained();
    const ok = w.write(data);
    if (!ok) this.whenDrained(drained);
    return ok;
  }

  /** Whole lines a logger's `1` action wrote: into the catch-all if there is one, else stdout. */
  #linesOut(data: Buffer, drained: () => void): boolean {
    const ok = this.#catchAll !== undefined ? this.#catchAll.acceptLines(data) : this.out.write(data);
    if (!ok) this.whenDrained(drained);
    return ok;
  }

  /** @internal A console sink's prefixed whole lines: stdout, and the catch-all. False: wait for whenDrained. */
  sinkLines(data: Buffer): boolean {
    let ok = this.out.write(data);
    if (this.#catchAll !== undefined && !this.#catchAll.acceptLines(data)) ok = false;
    return ok;
  }
}

interface LoggerSinks {
  warn(message: string): void;
  alert(data: Buffer): void;
  /** `1` output; false: full, `drained` is called when it may go on. */
  stdout(data: Buffer, drained: () => void): boolean;
}

/** A Logger engine on a pipe, its script read from a file (a service's `log/t6-log`, or the catch-all's). */
class ScriptedLogger implements PipeClient {
  readonly takesStderr = false;
  readonly label: string;
  readonly file: string;
  protected readonly hub: Logging;
  protected engine: Logger | undefined;
  readonly #reader: PipeReader;
  readonly #sinks: LoggerSinks;
  /** The text of the running script, and of the last refused one (reported once). */
  #text: string | undefined;
  #badText: string | undefined;
  #missingReported = false;
  #switching = false;
  #again = false;
  #retry: NodeJS.Timeout | undefined;
  /** Input read while there is no engine (a reload under way), in order; at most a partial line and one read. */
  #stash: Buffer[] = [];
  #closed = false;

  constructor(hub: Logging, label: string, file: string, readFd: number, sinks: LoggerSinks) {
    this.hub = hub;
    this.label = label;
    this.file = file;
    this.#sinks = sinks;
    this.#reader = new PipeReader(readFd, hub.buffer);
  }

  /** Reads the script file; starts, or reloads, the engine if it is new and valid. */
  load(): void {
    if (this.#closed) return;
    if (this.#switching) { this.#again = true; return; }
    const report = this.hub.opts.report;
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
      this.#missingReported = false;
    } catch (err) {
      if (!this.#missingReported) {
        this.#missingReported = true;
        report('warning', `unable to read ${this.file}: ${describeError(err)} - ${this.engine !== undefined ? 'keeping the script in use' : 'holding the output in the pipe'}`);
      }
      return;
    }
    if (this.engine !== undefined && text === this.#text) return;
    if (text === this.#badText) return;
    let parsed: ScriptFile;
    try {
      parsed = parseScriptFile(text, path.dirname(this.file));
    } catch (err) {
      if (!(err instanceof ScriptFileError)) throw err;
      this.#badText = text;
      report('warning', `${this.file}: ${err.message} - ${this.engine !== undefined ? 'keeping the previous script' : 'holding the output in the pipe until the file is fixed (then rescan)'}`);
      return;
    }
    this.#badText = undefined;
    if (parsed.script.ignoredTrailing) report('warning', `${this.file}: ignoring extraneous non-action directives`);
    const old = this.engine;
    if (old === undefined) { this.#open(parsed, text); return; }
    // Reload: stop reading, take the partial line out, let the old engine write and sync
    // everything (its logdirs' locks are released), then the new one goes on from there.
    this.#switching = true;
    this.#reader.pause();
    const partial = old.takePartial();
    if (partial.length > 0) this.#stash.unshift(Buffer.from(partial));
    this.engine = undefined;
    // The old engine's failure to end (a logdir it could not finalise) is reported and the
    // switch goes on: left half-done, the output would be held for good.
    const ended = old.end().catch((err: unknown) => {
      this.hub.opts.report('warning', `${this.label}: unable to finish logging with the previous script: ${strerror(err)}`);
    });
    void ended.then(() => {
      this.#switching = false;
      if (this.#closed) return;
      this.hub.opts.guard(`reloading ${this.file}`, () => {
        if (this.#open(parsed, text)) this.hub.opts.report('info', `${this.label}: reloaded ${this.file}`);
      });
      if (this.#again) { this.#again = false; this.load(); }
    });
  }

  /** Starts an engine on the script; false (reported, retried later) if a logdir cannot be opened. */
  #open(parsed: ScriptFile, text: string): boolean {
    const host: LoggerHost = {
      now: tainNow,
      setTimer: (ms, fn) => { const t = setTimeout(() => this.hub.opts.guard(`logger ${this.label}`, fn), ms); return () => clearTimeout(t); },
      waitPid: (pid) => this.hub.opts.waitPid(pid),
      warn: (m) => this.#sinks.warn(m),
      mask: this.hub.mask,
      stdout: (d) => this.#sinks.stdout(d, () => this.engine?.stdoutDrained()),
      alert: (d) => this.#sinks.alert(d),
    };
    let engine: Logger;
    try {
      engine = Logger.open(parsed.script, host, { lineLimit: parsed.lineLimit, prog: this.label });
    } catch (err) {
      if (!(err instanceof LogdirError)) throw err;
      this.hub.opts.report('warning', `${this.file}: ${err.message} - holding the output in the pipe, retrying in ${RETRY_OPEN_MS / 1000} seconds`);
      clearTimeout(this.#retry);
      this.#retry = setTimeout(() => { this.#retry = undefined; this.hub.opts.guard(`logger ${this.label}`, () => this.load()); }, RETRY_OPEN_MS);
      return false;
    }
    this.#text = text;
    this.engine = engine;
    engine.onDrain = () => { this.#reader.resume(); this.onEngineDrain(); };
    for (const chunk of this.#stash.splice(0)) engine.feed(chunk);
    this.#reader.start((chunk) => this.#onData(chunk));
    if (engine.blocked) this.#reader.pause();
    return true;
  }

  /** The engine may take input again (the catch-all then feeds its queue). */
  protected onEngineDrain(): void {}

  #onData(chunk: Buffer): boolean {
    if (this.engine === undefined) { this.#stash.push(Buffer.from(chunk)); return false; }
    return this.engine.feed(chunk);
  }

  rescan(): void { this.load(); }

  serviceDied(): void {}

  /** Hands everything readable in the pipe to the engine now (whatever backpressure says: bounded by the pipe). */
  drain(): void {
    this.#reader.drainNow((chunk) => {
      if (this.engine === undefined) this.#stash.push(Buffer.from(chunk));
      else this.engine.feed(chunk);
    });
  }

  /** Writes and fsyncs every logdir, by `deadline`; says what could not be. */
  async sync(deadline: number): Promise<{ dir: string; staged: number }[]> {
    if (this.engine === undefined) {
      const held = this.#stash.reduce((n, b) => n + b.length, 0);
      return held > 0 ? [{ dir: `(no running script: ${this.file})`, staged: held }] : [];
    }
    return this.engine.sync(deadline, this.hub.opts.monotonicMs);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.drain();
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#reader.close();
    this.hub.forget(this);
    const held = this.#stash.reduce((n, b) => n + b.length, 0);
    if (this.engine === undefined) {
      if (held > 0) this.hub.opts.report('warning', `${this.label}: ${held} bytes of output were not logged: no valid script in ${this.file}`);
      return;
    }
    try {
      await this.engine.end();
    } catch (err) {
      this.hub.opts.report('error', `${this.label}: unable to finish logging: ${describeError(err)}`);
    }
  }
}

/** The catch-all logger: a ScriptedLogger that also takes pid 1's messages and other whole lines. */
class CatchAll extends ScriptedLogger {
  #queue: Buffer[] = [];
  #queued = 0;
  #dropped = 0;

  constructor(hub: Logging, name: string, file: string, readFd: number) {
    super(hub, name, file, readFd, {
      // Its own trouble goes to the console: it cannot log into itself.
      warn: (m) => hub.console(`t6-svscan: warning: ${name}: ${m}`),
      alert: (d) => hub.console(d.toString('utf8')),
      stdout: (d, drained) => hub.catchAllStdout(d, drained),
    });
  }

  get #ready(): boolean { return this.engine !== undefined && !this.engine.blocked; }

  /** One message of pid 1: logged now, or queued (and shown on the console) while the log is stuck. */
  log(line: string): void {
    const data = Buffer.from(line.endsWith('\n') ? line : `${line}\n`);
    if (this.#queue.length === 0 && this.#ready) { this.#put(data); return; }
    this.hub.console(line);
    if (this.#queued + data.length > QUEUE_MAX) { this.#dropped++; return; }
    this.#queue.push(data);
    this.#queued += data.length;
  }

  /** Whole lines from elsewhere (console sinks, loggers' `1`); false: stop until the hub's drained(). */
  acceptLines(data: Buffer): boolean {
    if (this.engine === undefined) return false;
    this.#put(data);
    return this.#ready;
  }

  /** Feeds whole lines, keeping a partial line from the pipe after them (so neither is torn). */
  #put(data: Buffer): void {
    const engine = this.engine!;
    const partial = engine.takePartial();
    engine.feed(data);
    if (partial.length > 0) engine.feed(partial);
  }

  protected override onEngineDrain(): void {
    while (this.#queue.length > 0 && this.#ready) {
      const data = this.#queue.shift()!;
      this.#queued -= data.length;
      this.#put(data);
    }
    if (this.#queue.length === 0 && this.#dropped > 0 && this.#ready) {
      this.#put(Buffer.from(`t6-svscan: warning: ${this.#dropped} messages were not logged here while this log was stuck (they went to the console)\n`));
      this.#dropped = 0;
    }
    if (this.#ready) this.hub.drained();
  }
}

/** A console sink: a service's lines to stdout as `name: line`, whole lines only. */
class ConsoleSink implements PipeClient {
  readonly takesStderr = true;
  readonly #hub: Logging;
  readonly #prefix: Buffer;
  readonly #reader: PipeReader;
  #partial: Buffer | undefined;
  #closed = false;

  constructor(hub: Logging, name: string, readFd: number) {
    this.#hub = hub;
    this.#prefix = Buffer.from(`${name}: `);
    this.#reader = new PipeReader(readFd, hub.buffer);
    this.#reader.start((chunk) => this.#onData(chunk));
  }

  #onData(chunk: Buffer): boolean {
    const ok = this.#take(chunk);
    if (!ok) this.#hub.whenDrained(() => this.#reader.resume());
    return ok;
  }

  /** Writes the whole lines of partial+chunk, keeps the rest; false when an output is full. */
  #take(chunk: Buffer): boolean {
    const data = this.#partial === undefined ? chunk : Buffer.concat([this.#partial, chunk]);
    this.#partial = undefined;
    let end = data.lastIndexOf(10) + 1;
    if (end === 0 && data.length > SINK_LINE_MAX) end = data.length;
    if (end < data.length) this.#partial = Buffer.from(data.subarray(end));
    if (end === 0) return true;
    return this.#emit(data.subarray(0, end));
  }

  /** Prefixes every line of `lines` (the last one may lack its newline: one is added). */
  #emit(lines: Buffer): boolean {
    const parts: Buffer[] = [];
    let pos = 0;
    while (pos < lines.length) {
      let nl = lines.indexOf(10, pos);
      if (nl < 0) nl = lines.length;
      parts.push(this.#prefix, lines.subarray(pos, nl), NEWLINE);
      pos = nl + 1;
    }
    return this.#hub.sinkLines(Buffer.concat(parts));
  }

  rescan(): void {}

  serviceDied(): void {
    this.drain();
    if (this.#partial !== undefined) {
      const p = this.#partial;
      this.#partial = undefined;
      this.#emit(p);
    }
  }

  drain(): void {
    this.#reader.drainNow((chunk) => { this.#take(chunk); });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.serviceDied();
    this.#closed = true;
    this.#reader.close();
    this.#hub.forget(this);
  }
}

const NEWLINE = Buffer.from('\n');

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => { t = setTimeout(resolve, ms); })]);
  clearTimeout(t);
}
