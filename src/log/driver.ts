/**
 * The logger driver: what a LogInput reads goes into a Logger engine, with backpressure.
 *
 * When the engine refuses more (a logdir writing, rotating or out of space; stdout full),
 * reading pauses, and resumes on the engine's `onDrain`: nothing piles up in memory, the
 * writers wait on the full pipe instead. The engine can be swapped (a reloaded script):
 * `detach` pauses reading and takes the old engine's partial line back, and what is read
 * until the next `attach` is held, in order, and fed to the new engine first, so no line
 * is lost or torn. `drain` hands over everything readable at once (a final drain), and
 * `end` stops reading and lets the engine write, sync and release everything.
 * t6-log drives its one engine on stdin with it; t6-svscan each in-process logger on its pipe.
 */
import type { Logger } from './engine.ts';
import type { LogInput } from './input.ts';

/** Callbacks of a LogDriver's owner, all optional. */
export interface LogDriverHooks {
  /** After each chunk read was fed to the engine (t6-log: may a pending stop end now?). */
  fed?(): void;
  /** The engine can take input again; reading has resumed (the catch-all feeds its queue). */
  drained?(): void;
  /** The engine took a chunk but wants no more for now: reading has paused until `drained`. */
  blocked?(): void;
  /** The input ended: end of file, or a read error. */
  ended?(): void;
}

/** Feeds what an input reads into a Logger engine, with backpressure. */
export class LogDriver {
  readonly #input: LogInput;
  readonly #hooks: LogDriverHooks;
  #engine: Logger | undefined;
  /** Input read while no engine is attached, in order: at most a partial line and one read. */
  #held: Buffer[] = [];
  #closed = false;

  constructor(input: LogInput, hooks: LogDriverHooks = {}) {
    this.#input = input;
    this.#hooks = hooks;
  }

  /** The engine being fed, if any. */
  get engine(): Logger | undefined { return this.#engine; }

  /** Bytes read and held because no engine is attached. */
  get heldBytes(): number { return this.#held.reduce((n, b) => n + b.length, 0); }

  /** A read of the input waits in the thread pool (see LogInput.pending). */
  get pending(): boolean { return this.#input.pending; }

  /** Feeds `engine` from now on: what was held first, then what is read. */
  attach(engine: Logger): void {
    this.#engine = engine;
    engine.onDrain = () => { this.#input.resume(); this.#hooks.drained?.(); };
    for (const chunk of this.#held.splice(0)) engine.feed(chunk);
    this.#input.start((chunk) => this.#onData(chunk), () => this.#hooks.ended?.());
    if (engine.blocked) this.#input.pause();
  }

  /**
   * Stops feeding the engine and returns it for its owner to end: reading pauses, and its
   * partial line is taken back, to go first to the next engine.
   */
  detach(): Logger | undefined {
    this.#input.pause();
    const engine = this.#engine;
    if (engine === undefined) return undefined;
    const partial = engine.takePartial();
    if (partial.length > 0) this.#held.unshift(Buffer.from(partial));
    this.#engine = undefined;
    return engine;
  }

  /** Re-exec: the bytes held (the partial line first), taken out. */
  takeHeld(): Buffer {
    return Buffer.concat(this.#held.splice(0));
  }

  /** Bytes to feed before anything read (a partial line handed over by the previous image). */
  hold(data: Buffer): void {
    if (data.length > 0) this.#held.push(data);
  }

  /** Hands everything readable now to the engine (held if none), whatever backpressure says: bounded by the pipe. */
  drain(): void {
    if (this.#closed) return;
    this.#input.drainNow((chunk) => {
      if (this.#engine === undefined) this.#held.push(Buffer.from(chunk));
      else this.#engine.feed(chunk);
    });
  }

  /** Stops reading for good; the engine, if any, is left as it is. */
  close(): void {
    this.#closed = true;
    this.#input.close();
  }

  /** Stops reading and ends the engine: its partial line processed, every logdir written, synced and released. */
  async end(): Promise<void> {
    this.close();
    await this.#engine?.end();
  }

  #onData(chunk: Buffer): boolean {
    if (this.#closed) return false;
    const engine = this.#engine;
    if (engine === undefined) { this.#held.push(Buffer.from(chunk)); return false; }
    const more = engine.feed(chunk);
    this.#hooks.fed?.();
    if (!more) this.#hooks.blocked?.();
    return more;
  }
}
