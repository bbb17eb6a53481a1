/**
 * Logging inside t6-svscan: the hub that makes and owns the in-process loggers, the
 * catch-all log and the console sinks, and the console outputs they share.
 *
 * - **In-process loggers** (scripted-logger.ts): a service whose `log/` holds a `t6-log`
 *   file (and no `run`) gets its logger here, not in a process, on the logger pipe the
 *   scanner holds; reloaded when a rescan finds the file changed.
 * - **The catch-all log** (catch-all.ts): `SCANDIR/s6-svscan-log/t6-log` (and no `run`) at
 *   start-up makes a catch-all pipe whose write end (`catchAllFd`) is the stdout and stderr
 *   of every service without a logger of its own and the stderr of the others. t6-svscan's
 *   own messages (`log`) go into its engine directly; without a catch-all, to the console.
 * - **Console sinks** (console-sink.ts, containers): every service without a logger gets a
 *   pipe of its own; its lines go to t6-svscan's stdout as `name: line`, and into the
 *   catch-all when there is one.
 *
 * The parts never see the hub: each gets, at construction, a context with what it needs
 * (the shared environment, where its output goes, how to wait for an output to drain).
 * The hub owns the outputs: stdout (loggers' `1`, console sinks), the console (the -X fd,
 * else fd 2: the catch-all's alerts, pid 1's messages without a catch-all), and the list
 * of those waiting for one of them (or the catch-all) to take more.
 */
import fs from 'node:fs';
import path from 'node:path';
import { close, pipe } from '../sys/fd.ts';
import { umask } from '../sys/system.ts';
import { CatchAll } from './catch-all.ts';
import { ConsoleSink } from './console-sink.ts';
import { ConsoleWriter } from './console-writer.ts';
import { ScriptedLogger, type LoggerEnv } from './scripted-logger.ts';
import { LOGGER_SCRIPT_FILE, type LogDirKind, logDirKind } from '../s6/servicefacts.ts';
import { type Tain } from '../s6/tai.ts';
import { strerror } from '../sys/errors.ts';
import { BlockAlarm } from './block-alarm.ts';
import type { Logger } from '../log/engine.ts';

// The file that asks for an in-process logger, and what a `log/` asks for, are s6-layer
// facts: t6-svstat and t6-rc read them too (s6/servicefacts.ts).
export { LOGGER_SCRIPT_FILE };

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
  /**
   * Re-exec: stops reading (what is unread stays in the pipe), writes and syncs what was
   * read, and resolves with the partial line, for the next image to feed first.
   */
  handOver(): Promise<Buffer>;
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
  /** The real-time clock as TAI64N (log stamps). */
  now(): Tain;
  /** A logger (`name/log`, or the catch-all's name) blocked for a while, or taking input again after that. */
  loggerBlocked?(label: string, blocked: boolean, forMs: number): void;
}

/** A logger blocked this long is told of (loggerBlocked); shorter pauses are a logger at work. */
export const LOGGER_BLOCKED_ALERT_MS = 1000;

/** One in-process logger's counters since it started (t6 metrics). */
export interface LoggerMetrics {
  name: string;
  lines: number;
  bytes: number;
  rotations: number;
  blockedMs: number;
  blocked: boolean;
}

/**
 * Bytes read from a logger's or console sink's pipe at once, into one buffer for all: a
 * reader that must wait stops reading (the service's write blocks), so a logger holds at
 * most one read beyond its line — the kernel's pipe (64 KiB) in one go.
 */
const READ_BUFFER = 64 * 1024;
/** Bound of pid 1's messages kept for the next image during a re-exec (the rest go to the console). */
const HELD_MESSAGES_MAX = 1000;
/**
 * Bytes of pid 1's own messages waiting for a console pipe nobody reads; past it they are
 * counted and dropped (pid 1 never blocks on its console). Some thousands of messages.
 */
const CONSOLE_MAX = 256 * 1024;

/** Which kind of logger a service directory asks for. */
export type LoggerKind = LogDirKind;

/** The in-process logging of one t6-svscan. */
export class Logging {
  readonly #opts: LoggingOptions;
  /** What every logger shares: given to each part in its context. */
  readonly #env: LoggerEnv;
  readonly #clients = new Set<ScriptedLogger | ConsoleSink>();
  /** Each in-process logger's block alarm and engine, by name (metrics). */
  readonly #meters = new Map<string, { alarm: BlockAlarm; engine: () => Logger | undefined }>();
  #catchAll: CatchAll | undefined;
  #catchAllPipe: [number, number] | undefined;
  #out: ConsoleWriter | undefined;
  #console: ConsoleWriter | undefined;
  #consoleDropped = 0;
  /** Those waiting for a full output (stdout, the console, the catch-all) to take more. */
  #waiters = new Set<() => void>();
  #closing: Promise<void> | undefined;
  /** pid 1's messages while the catch-all is being handed over (re-exec); undefined otherwise. */
  #heldMessages: string[] | undefined;

  constructor(opts: LoggingOptions) {
    this.#opts = opts;
    const old = umask(0);
    umask(old);
    this.#env = {
      report: (level, message) => opts.report(level, message),
      guard: (what, fn) => opts.guard(what, fn),
      waitPid: (pid) => opts.waitPid(pid),
      monotonicMs: () => opts.monotonicMs(),
      now: () => opts.now(),
      mask: 0o666 & ~old,
      readBuffer: Buffer.allocUnsafe(READ_BUFFER),
    };
  }

  /** The catch-all pipe's write end (close-on-exec, owned here), if the catch-all runs. */
  get catchAllFd(): number | undefined { return this.#catchAllPipe?.[1]; }

  /** True with -1: services without a logger get a console sink. */
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
      this.#opts.report('warning', `unable to create the catch-all pipe: ${strerror(err)} - running without a catch-all log`);
      return;
    }
    const alarm = this.#blockAlarm(name);
    this.#meters.set(name, { alarm, engine: () => this.#catchAll?.engine });
    this.#catchAll = new CatchAll({
      env: this.#env,
      console: (line) => this.#toConsole(line),
      stdout: (d, drained) => this.#catchAllStdout(d, drained),
      drained: () => { alarm.resumed(); this.#drained(); },
      blocked: () => alarm.blocked(),
    }, name, file, this.#catchAllPipe[0]);
    this.#catchAll.load();
  }

  /** True when the catch-all runs in-process (its scan dir entry is not a service then). */
  get hasCatchAll(): boolean { return this.#catchAll !== undefined; }

  /** A rescan saw the catch-all's directory: reload its script if it changed. */
  rescanCatchAll(): void { this.#catchAll?.load(); }

  /** What `dir/log` asks for: nothing, a `log/run` supervised as s6 does, or a `log/t6-log` run here. */
  loggerKind(serviceDir: string): LoggerKind {
    const kind = logDirKind(serviceDir);
    const logDir = path.join(serviceDir, 'log');
    const script = path.join(logDir, LOGGER_SCRIPT_FILE);
    if (kind === 'external' && fs.existsSync(script)) this.#opts.report('warning', `${logDir} has both run and ${LOGGER_SCRIPT_FILE}: supervising ${path.join(logDir, 'run')}, ignoring ${script}`);
    return kind;
  }

  /** An in-process logger for service `name` on the pipe's read end (the caller keeps its fd). */
  logger(name: string, serviceDir: string, readFd: number, initial?: Buffer): PipeClient {
    const label = `${name}/log`;
    const file = path.join(serviceDir, 'log', LOGGER_SCRIPT_FILE);
    const alarm = this.#blockAlarm(label);
    this.#meters.set(label, { alarm, engine: () => logger.engine });
    const logger: ScriptedLogger = new ScriptedLogger({
      env: this.#env,
      warn: (m) => this.#opts.report('warning', `${label}: ${m}`),
      alert: (d) => this.log(d.toString('utf8').replace(/\n$/, '')),
      stdout: (d, drained) => this.#linesOut(d, drained),
      engineBlocked: () => alarm.blocked(),
      engineDrained: () => alarm.resumed(),
      closed: () => { alarm.close(); this.#meters.delete(label); this.#clients.delete(logger); },
    }, label, file, readFd, initial);
    this.#clients.add(logger);
    logger.load();
    return logger;
  }

  /** A console sink for service `name` (consoleSink only). */
  sink(name: string, readFd: number, initial?: Buffer): PipeClient {
    const sink: ConsoleSink = new ConsoleSink({
      readBuffer: this.#env.readBuffer,
      write: (lines) => this.#sinkLines(lines),
      whenDrained: (fn) => { this.#waiters.add(fn); },
      closed: () => { this.#clients.delete(sink); },
    }, name, readFd, initial);
    this.#clients.add(sink);
    return sink;
  }

  /** One of pid 1's own messages (a whole line): into the catch-all, else to the console. */
  log(line: string): void {
    if (this.#heldMessages !== undefined) {
      // Handing over: kept for the next image (and shown on the console past the bound).
      if (this.#heldMessages.length < HELD_MESSAGES_MAX) this.#heldMessages.push(line);
      else this.#toConsole(line);
      return;
    }
    if (this.#catchAll !== undefined) this.#catchAll.log(line);
    else this.#toConsole(line);
  }

  /**
   * Reads everything readable from every logger pipe, hands it to the engines, writes and
   * fsyncs every logdir; gives up after `timeoutMs` (a full disk), reporting to the console
   * what was not written. For the moment before reboot(2).
   */
  async flushLogs(timeoutMs = 5000): Promise<void> {
    const deadline = this.#opts.monotonicMs() + timeoutMs;
    const loggers: (ScriptedLogger | CatchAll)[] = [];
    for (const c of this.#clients) {
      c.drain();
      if (c instanceof ScriptedLogger) loggers.push(c);
    }
    if (this.#catchAll !== undefined) { this.#catchAll.drain(); loggers.push(this.#catchAll); }
    const late = await Promise.all(loggers.map((l) => l.sync(deadline)));
    for (const [i, list] of late.entries()) {
      for (const { dir, staged } of list) this.#toConsole(`t6-svscan: warning: ${loggers[i]!.label}: unable to write and sync ${dir} in time${staged > 0 ? ` (${staged} bytes not written)` : ''}`);
    }
  }

  /**
   * Re-exec, last of the logs: the catch-all stops reading, writes and syncs; pid 1's
   * messages are kept from now on. Resolves with its pipe, partial line and the messages
   * it had queued (undefined without an in-process catch-all).
   */
  async handOverCatchAll(): Promise<{ pipe: [number, number]; partial: Buffer; queued: string[] } | undefined> {
    this.#heldMessages ??= [];
    const ca = this.#catchAll;
    const pipe = this.#catchAllPipe;
    if (ca === undefined || pipe === undefined) return undefined;
    const { partial, queued } = await ca.handOver();
    return { pipe, partial, queued };
  }

  /** The messages kept while handing over, taken out. */
  takeHeldMessages(): string[] {
    const held = this.#heldMessages ?? [];
    this.#heldMessages = undefined;
    return held;
  }

  /** The next image's catch-all, on the pipe handed over, its partial line first. */
  resumeCatchAll(name: string, pipe: [number, number], partial: Buffer): void {
    const dir = path.join(this.#opts.scandir, name);
    this.#catchAllPipe = pipe;
    const alarm = this.#blockAlarm(name);
    this.#meters.set(name, { alarm, engine: () => this.#catchAll?.engine });
    this.#catchAll = new CatchAll({
      env: this.#env,
      console: (line) => this.#toConsole(line),
      stdout: (d, drained) => this.#catchAllStdout(d, drained),
      drained: () => { alarm.resumed(); this.#drained(); },
      blocked: () => alarm.blocked(),
    }, name, path.join(dir, LOGGER_SCRIPT_FILE), pipe[0], partial);
    this.#catchAll.load();
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

  // ---- the outputs the parts share -----------------------------------------------------------

  /** A line to the console (the -X fd, else fd 2), never blocking; dropped past a bound. */
  #toConsole(line: string): void {
    this.#console ??= new ConsoleWriter(this.#opts.consoleFd ?? 2);
    if (this.#console.pending > CONSOLE_MAX) { this.#consoleDropped++; return; }
    if (this.#consoleDropped > 0) {
      this.#console.write(Buffer.from(`t6-svscan: warning: ${this.#consoleDropped} console messages dropped (the console was not reading)\n`));
      this.#consoleDropped = 0;
    }
    this.#console.write(Buffer.from(line.endsWith('\n') ? line : `${line}\n`));
  }

  /** Every in-process logger's counters, the catch-all's included. */
  metrics(): LoggerMetrics[] {
    return [...this.#meters].map(([name, { alarm, engine }]) => {
      const e = engine();
      return {
        name, lines: e?.lines ?? 0, bytes: e?.bytes ?? 0, rotations: e?.logdirs.reduce((n, d) => n + d.rotations, 0) ?? 0,
        blockedMs: Math.round(alarm.blockedMs), blocked: alarm.isBlocked,
      };
    });
  }

  /** The alarm of one logger (block-alarm.ts), telling loggerBlocked. */
  #blockAlarm(label: string): BlockAlarm {
    return new BlockAlarm(LOGGER_BLOCKED_ALERT_MS, () => this.#opts.monotonicMs(), (blocked, forMs) => {
      this.#opts.guard('logger alarm', () => this.#opts.loggerBlocked?.(label, blocked, forMs));
    });
  }

  /** Something drained: let every waiter retry. */
  #drained(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) this.#opts.guard('log drain', w);
  }

  /** stdout (fd 1), written without blocking. */
  get #stdout(): ConsoleWriter {
    if (this.#out === undefined) {
      this.#out = new ConsoleWriter(1);
      this.#out.onDrain = () => this.#drained();
    }
    return this.#out;
  }

  /** Where the catch-all's `1` goes: the console fd if given, else stdout. */
  #catchAllStdout(data: Buffer, drained: () => void): boolean {
    const w = this.#opts.consoleFd !== undefined ? (this.#console ??= new ConsoleWriter(this.#opts.consoleFd)) : this.#stdout;
    if (w !== this.#out) w.onDrain = () => this.#drained();
    const ok = w.write(data);
    if (!ok) this.#waiters.add(drained);
    return ok;
  }

  /** Whole lines a logger's `1` action wrote: into the catch-all if there is one, else stdout. */
  #linesOut(data: Buffer, drained: () => void): boolean {
    const ok = this.#catchAll !== undefined ? this.#catchAll.acceptLines(data) : this.#stdout.write(data);
    if (!ok) this.#waiters.add(drained);
    return ok;
  }

  /** A console sink's prefixed whole lines: stdout, and the catch-all. False: wait for a drain. */
  #sinkLines(data: Buffer): boolean {
    let ok = this.#stdout.write(data);
    if (this.#catchAll !== undefined && !this.#catchAll.acceptLines(data)) ok = false;
    return ok;
  }
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => { t = setTimeout(resolve, ms); })]);
  clearTimeout(t);
}
