/**
 * The catch-all log (s6-linux-init's uncaught-logs) inside t6-svscan: a scripted logger
 * (`SCANDIR/s6-svscan-log/t6-log`) on the catch-all pipe — the stdout and stderr of every
 * service without a logger of its own, the stderr of the others — that also takes whole
 * lines from elsewhere: console sinks' lines, loggers' `1` output, and t6-svscan's own
 * messages. Those go into the engine directly (pid 1 never writes into a pipe it reads
 * itself), slipped in before a partial line from the pipe so neither is torn. While the
 * engine is stuck, pid 1's messages wait in a bounded queue and also go to the console;
 * what did not fit is counted and reported once the log drains. The catch-all's own
 * warnings and alerts go to the console: it cannot log into itself.
 */
import type { Logger } from '../log/engine.ts';
import { ScriptedLogger, type LateLogdir, type LoggerEnv } from './scripted-logger.ts';

/**
 * Bytes of pid 1's own messages held while the catch-all cannot take them (a full disk);
 * past it they are counted, and they went to the console anyway. 64 KiB is some hundreds
 * of messages: what a stuck log should show once it moves again.
 */
const QUEUE_MAX = 64 * 1024;

/** What the catch-all needs from the hub. */
export interface CatchAllContext {
  readonly env: LoggerEnv;
  /** A line to the console (the -X fd, else fd 2), never blocking. */
  console(line: string): void;
  /** Where the catch-all's `1` goes; false: full, `drained` is called when it may go on. */
  stdout(data: Buffer, drained: () => void): boolean;
  /** The catch-all takes lines again: those that wait for it may retry. */
  drained(): void;
  /** The catch-all's engine wants no more input for now. */
  blocked?(): void;
}

/** The catch-all logger: a ScriptedLogger that also takes pid 1's messages and other whole lines. */
export class CatchAll {
  readonly #ctx: CatchAllContext;
  readonly #logger: ScriptedLogger;
  #queue: Buffer[] = [];
  #queued = 0;
  #dropped = 0;

  constructor(ctx: CatchAllContext, name: string, file: string, readFd: number, initial?: Buffer) {
    this.#ctx = ctx;
    this.#logger = new ScriptedLogger({
      env: ctx.env,
      warn: (m) => ctx.console(`t6-svscan: warning: ${name}: ${m}`),
      alert: (d) => ctx.console(d.toString('utf8')),
      stdout: (d, drained) => ctx.stdout(d, drained),
      engineDrained: () => this.#engineDrained(),
      engineBlocked: () => ctx.blocked?.(),
    }, name, file, readFd, initial);
  }

  /** Re-exec: the logger hands over (see ScriptedLogger.handOver); pid 1's queued messages come out too, in order. */
  async handOver(): Promise<{ partial: Buffer; queued: string[] }> {
    const queued = this.#queue.map((b) => b.toString('utf8').replace(/\n$/, ''));
    this.#queue = [];
    this.#queued = 0;
    return { partial: await this.#logger.handOver(), queued };
  }

  /** The name in messages (the catch-all's directory name). */
  get label(): string { return this.#logger.label; }

  /** The engine running now, if any (metrics). */
  get engine(): Logger | undefined { return this.#logger.engine; }

  /** The engine, if it runs and takes input now. */
  get #ready(): Logger | undefined {
    const engine = this.#logger.engine;
    return engine !== undefined && !engine.blocked ? engine : undefined;
  }

  /** Reads the script file; starts, or reloads, the engine (see ScriptedLogger.load). */
  load(): void { this.#logger.load(); }

  /** One message of pid 1: logged now, or queued (and shown on the console) while the log is stuck. */
  log(line: string): void {
    const data = Buffer.from(line.endsWith('\n') ? line : `${line}\n`);
    const engine = this.#ready;
    if (this.#queue.length === 0 && engine !== undefined) { this.#put(engine, data); return; }
    this.#ctx.console(line);
    if (this.#queued + data.length > QUEUE_MAX) { this.#dropped++; return; }
    this.#queue.push(data);
    this.#queued += data.length;
  }

  /** Whole lines from elsewhere (console sinks, loggers' `1`); false: stop until the context's drained(). */
  acceptLines(data: Buffer): boolean {
    const engine = this.#logger.engine;
    if (engine === undefined) return false;
    this.#put(engine, data);
    return this.#ready !== undefined;
  }

  /** Hands everything readable in the catch-all pipe to the engine now. */
  drain(): void { this.#logger.drain(); }

  /** Writes and fsyncs every logdir, by `deadline`; says what could not be. */
  sync(deadline: number): Promise<LateLogdir[]> { return this.#logger.sync(deadline); }

  /** Drains the pipe and ends the engine; never rejects. */
  close(): Promise<void> { return this.#logger.close(); }

  /** Feeds whole lines, keeping a partial line from the pipe after them (so neither is torn). */
  #put(engine: Logger, data: Buffer): void {
    const partial = engine.takePartial();
    engine.feed(data);
    if (partial.length > 0) engine.feed(partial);
  }

  /** The engine takes input again: the queue first, then the count of what was dropped, then the others. */
  #engineDrained(): void {
    for (let engine = this.#ready; engine !== undefined; engine = this.#ready) {
      const data = this.#queue.shift();
      if (data === undefined) break;
      this.#queued -= data.length;
      this.#put(engine, data);
    }
    const engine = this.#ready;
    if (this.#queue.length === 0 && this.#dropped > 0 && engine !== undefined) {
      this.#put(engine, Buffer.from(`t6-svscan: warning: ${this.#dropped} messages were not logged here while this log was stuck (they went to the console)\n`));
      this.#dropped = 0;
    }
    if (this.#ready !== undefined) this.#ctx.drained();
  }
}
