/**
 * A logger's input: an fd read from the event loop with backpressure, as Buffers.
 *
 * A pipe or socket is read by libuv straight into one caller-given buffer (net.Socket's
 * `onread`: nothing allocated per read; the consumer copies what it keeps). When the
 * consumer answers false, reading stops at once: the pipe fills and the writers' write(2)
 * blocks — backpressure with nothing buffered here. Anything else (a file, a terminal) is
 * read with read(2) in libuv's thread pool, one read at a time, stopped the same way.
 * Used by t6-log on its stdin and by t6-svscan's in-process loggers on their pipes.
 */
import fs from 'node:fs';
import net from 'node:net';
import { setPipeSize } from '../sys/pipesize.ts';

/** An fd being read for a logger: started, paused and resumed by its consumer, closed once. */
export interface LogInput {
  /**
   * Starts (or restarts) delivering chunks. `onData` answers false to stop reading until
   * `resume()`; `onEnd` is called at end of file or on a read error.
   */
  start(onData: (chunk: Buffer) => boolean, onEnd?: () => void): void;
  /** Stops reading (no chunk is delivered after this until `resume()`). */
  pause(): void;
  /** Reads again after `pause()` or a false answer. */
  resume(): void;
  /** Reads everything readable now, synchronously, and hands it over whatever the answer. */
  drainNow(onData: (chunk: Buffer) => void): void;
  /** Stops reading for good (a pipe's fd is closed at once, a file's read left to end). */
  close(): void;
  /** A read waits in the thread pool (it keeps Node alive until data or end of file). */
  readonly pending: boolean;
}

/** Options of `openInput`. */
export interface InputOptions {
  /** Ask the kernel for this capacity when the fd is a pipe (one wake-up then takes more). */
  pipeSize?: number;
}

/** Reads `fd` (the input's from now on) into `buf`: on the event loop for a pipe or socket, in the thread pool otherwise. */
export function openInput(fd: number, buf: Buffer, options: InputOptions = {}): LogInput {
  const st = fs.fstatSync(fd);
  if (st.isFIFO() && options.pipeSize !== undefined) setPipeSize(fd, options.pipeSize);
  if (st.isFIFO() || st.isSocket()) return new PipeReader(fd, buf);
  return new ThreadPoolReader(fd, buf);
}

/**
 * A pipe's (or socket's) read end read on the event loop (libuv, non-blocking). The reader
 * owns the fd it is given and closes it; a caller that keeps the pipe open passes a
 * duplicate. libuv makes the open file non-blocking, so only this reader may read it.
 */
export class PipeReader implements LogInput {
  readonly #fd: number;
  readonly #sock: net.Socket;
  readonly #buf: Buffer;
  #onData: (chunk: Buffer) => boolean = () => false;
  #onEnd: () => void = () => {};
  #paused = true;
  #closed = false;

  constructor(fd: number, buf: Buffer) {
    this.#fd = fd;
    this.#buf = buf;
    this.#sock = new net.Socket({
      fd, readable: true, writable: false,
      onread: { buffer: buf, callback: (n: number, b: Uint8Array) => this.#deliver(Buffer.from(b.buffer, b.byteOffset, n)) },
    } as net.SocketConstructorOpts);
    this.#sock.pause();
    this.#sock.on('end', () => this.#onEnd());
    this.#sock.on('error', () => this.#onEnd());
  }

  start(onData: (chunk: Buffer) => boolean, onEnd: () => void = () => {}): void {
    this.#onData = onData;
    this.#onEnd = onEnd;
    this.resume();
  }

  /** Nothing waits in the thread pool: libuv reads a pipe when it is readable. */
  get pending(): boolean { return false; }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#sock.pause();
  }

  resume(): void {
    if (!this.#paused || this.#closed) return;
    this.#paused = false;
    this.#sock.resume();
  }

  /** For a final drain (the writer dead, shutdown): bounded by the pipe's capacity, as the fd is non-blocking. */
  drainNow(onData: (chunk: Buffer) => void): void {
    if (this.#closed) return;
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(this.#fd, this.#buf, 0, this.#buf.length, null);
      } catch {
        return; // EAGAIN: empty
      }
      if (n === 0) return;
      onData(this.#buf.subarray(0, n));
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#paused = true;
    this.#sock.destroy();
  }

  #deliver(chunk: Buffer): boolean {
    // Bytes read are the consumer's even when it asked to pause (it keeps them, bounded by one read).
    const more = this.#onData(chunk);
    if (!more) this.#paused = true;
    return more && !this.#paused && !this.#closed;
  }
}

/** A file or terminal read with read(2) in libuv's thread pool, one read at a time. */
export class ThreadPoolReader implements LogInput {
  readonly #fd: number;
  readonly #buf: Buffer;
  #pump: () => void = () => {};
  #paused = false;
  #stopped = false;
  #pending = false;

  constructor(fd: number, buf: Buffer) {
    this.#fd = fd;
    this.#buf = buf;
  }

  get pending(): boolean { return this.#pending; }

  start(onData: (chunk: Buffer) => boolean, onEnd: () => void = () => {}): void {
    this.#pump = () => {
      if (this.#paused || this.#stopped || this.#pending) return;
      this.#pending = true;
      fs.read(this.#fd, this.#buf, 0, this.#buf.length, null, (err, n) => {
        this.#pending = false;
        if (this.#stopped) return;
        if (err !== null || n === 0) { onEnd(); return; }
        if (!onData(this.#buf.subarray(0, n))) this.#paused = true;
        this.#pump();
      });
    };
    this.#pump();
  }

  pause(): void { this.#paused = true; }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#pump();
  }

  /** Nothing: a read may be under way in the thread pool, and a terminal would block. */
  drainNow(): void {}

  /**
   * Stops delivering. The fd stays open: a read under way in the thread pool still uses it
   * (the process ends soon after; `pending` tells whether it must exit to stop that read).
   */
  close(): void { this.#stopped = true; }
}
