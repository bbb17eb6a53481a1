/**
 * A console sink (t6-svscan -1, for containers): a service without a logger gets a pipe of
 * its own for its stdout and stderr; its lines are written to t6-svscan's stdout as
 * `name: line`, and into the catch-all when there is one. Whole lines only, so that two
 * services' output never mixes within a line: a partial line waits for its end (or for the
 * service's death), and one longer than 64 KiB is cut. When an output is full, reading
 * stops until it drains, and the service's write(2) blocks.
 */
import { PipeReader } from '../log/input.ts';
import { dupCloexec } from '../sys/fd.ts';

/**
 * Bytes of a console sink's partial line held for its newline: longer, it is cut and
 * written. A service writing without newlines must not grow pid 1; one read (64 KiB) is the
 * most a line needs to stay whole when it comes in one write.
 */
const SINK_LINE_MAX = 64 * 1024;
const NEWLINE = Buffer.from('\n');

/** What a console sink needs from the hub. */
export interface ConsoleSinkContext {
  /** One read buffer for every pipe read. */
  readonly readBuffer: Buffer;
  /** Writes prefixed whole lines (stdout, and the catch-all); false: an output is full. */
  write(lines: Buffer): boolean;
  /** Calls `fn` once the outputs may take more. */
  whenDrained(fn: () => void): void;
  /** The sink has closed (the hub lets go of it). */
  closed(): void;
}

/** A console sink: a service's lines to stdout as `name: line`, whole lines only. */
export class ConsoleSink {
  readonly takesStderr = true;
  readonly #ctx: ConsoleSinkContext;
  readonly #prefix: Buffer;
  readonly #reader: PipeReader;
  #partial: Buffer | undefined;
  #closed = false;

  constructor(ctx: ConsoleSinkContext, name: string, readFd: number, initial?: Buffer) {
    this.#ctx = ctx;
    this.#prefix = Buffer.from(`${name}: `);
    // The reader closes its own duplicate: the scanner keeps both ends of the pipe.
    this.#reader = new PipeReader(dupCloexec(readFd), ctx.readBuffer);
    if (initial !== undefined && initial.length > 0) this.#partial = initial;
    this.#reader.start((chunk) => this.#onData(chunk));
  }

  /** Re-exec: stops reading (the rest waits in the pipe) and gives the partial line back. */
  async handOver(): Promise<Buffer> {
    this.#closed = true;
    this.#reader.close();
    this.#ctx.closed();
    const partial = this.#partial ?? Buffer.alloc(0);
    this.#partial = undefined;
    return partial;
  }

  #onData(chunk: Buffer): boolean {
    const ok = this.#take(chunk);
    if (!ok) this.#ctx.whenDrained(() => this.#reader.resume());
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
    return this.#ctx.write(Buffer.concat(parts));
  }

  /** Nothing to reload: a sink has no script. */
  rescan(): void {}

  /** The service died: what it wrote is read now, and a partial line written with a newline. */
  serviceDied(): void {
    this.drain();
    if (this.#partial !== undefined) {
      const p = this.#partial;
      this.#partial = undefined;
      this.#emit(p);
    }
  }

  /** Writes everything readable in the pipe now (whatever backpressure says: bounded by the pipe). */
  drain(): void {
    this.#reader.drainNow((chunk) => { this.#take(chunk); });
  }

  /** Writes what is left, partial line included, and stops reading. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.serviceDied();
    this.#closed = true;
    this.#reader.close();
    this.#ctx.closed();
  }
}
