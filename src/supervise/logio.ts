/**
 * The byte plumbing of t6-svscan's in-process logging: reading a logger pipe from the event
 * loop with backpressure (PipeReader), and writing to the console without ever blocking
 * pid 1 on a full pipe (ConsoleWriter).
 */
import fs from 'node:fs';
import net from 'node:net';
import { O_NONBLOCK, O_WRONLY, close, dupCloexec, open } from '../sys/fd.ts';

/**
 * Reads a pipe's read end on the event loop (libuv, non-blocking), into a buffer shared by
 * every reader (the consumer copies what it keeps). `onData` returns false to stop reading
 * until `resume()`: the pipe then fills and the writers' write(2) blocks — backpressure,
 * with nothing buffered here. The reader owns a duplicate of the fd, so the caller keeps
 * its own (the scanner holds both ends of every logger pipe).
 */
export class PipeReader {
  readonly #fd: number;
  readonly #sock: net.Socket;
  readonly #buf: Buffer;
  #onData: (chunk: Buffer) => boolean = () => false;
  #paused = true;
  #closed = false;

  constructor(fd: number, buf: Buffer) {
    this.#fd = dupCloexec(fd);
    this.#buf = buf;
    // libuv makes the (shared) open file non-blocking: only t6-svscan reads this pipe.
    this.#sock = new net.Socket({
      fd: this.#fd, readable: true, writable: false,
      onread: { buffer: buf, callback: (n: number, b: Uint8Array) => this.#deliver(Buffer.from(b.buffer, b.byteOffset, n)) },
    } as net.SocketConstructorOpts);
    this.#sock.pause();
    this.#sock.on('error', () => { /* a pipe we hold the write end of: nothing to report */ });
  }

  /** Starts (or restarts) delivering data. */
  start(onData: (chunk: Buffer) => boolean): void {
    this.#onData = onData;
    this.resume();
  }

  get paused(): boolean { return this.#paused; }

  /** Stops reading (libuv's read stops at once: no chunk is delivered after this). */
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

  /**
   * Reads everything readable now, synchronously (the fd is non-blocking), and hands it to
   * `onData` whatever it answers: for a final drain (service dead, shutdown) — bounded by
   * the pipe's capacity.
   */
  drainNow(onData: (chunk: Buffer) => void = (c) => { this.#onData(c); }): void {
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

  /** Stops reading and closes the duplicate fd (the caller's fd stays open). */
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

/**
 * A console output (t6-svscan's stdout, or its stderr / -X console fd) written without
 * blocking pid 1. A pipe is reopened through /proc/self/fd as an open file of our own and
 * made non-blocking there, so the services that share the original keep their blocking
 * writes; `write` answers false when it is full (call again after `onDrain`). Anything else
 * (a terminal, a file, a socket) is written synchronously, as t6-svscan's messages are.
 */
export class ConsoleWriter {
  readonly fd: number;
  onDrain: () => void = () => {};
  #sock: net.Socket | undefined;
  #broken = false;

  constructor(fd: number) {
    this.fd = fd;
    let st: fs.Stats | undefined;
    try { st = fs.fstatSync(fd); } catch { this.#broken = true; return; }
    if (!st.isFIFO()) return;
    let own: number;
    try { own = open(`/proc/self/fd/${fd}`, O_WRONLY | O_NONBLOCK); } catch { return; }
    try {
      const sock = new net.Socket({ fd: own, readable: false, writable: true });
      sock.on('drain', () => this.onDrain());
      sock.on('error', () => { this.#broken = true; this.onDrain(); });
      this.#sock = sock;
    } catch {
      close(own);
    }
  }

  /** True while a write is waiting in memory for the pipe to take it. */
  get full(): boolean { return this.#sock !== undefined && !this.#broken && this.#sock.writableNeedDrain; }

  /** Bytes waiting in memory. */
  get pending(): number { return this.#sock?.writableLength ?? 0; }

  /** Writes data; false: full (it is kept; wait for onDrain before writing more). */
  write(data: Buffer): boolean {
    if (this.#broken) return true;
    if (this.#sock !== undefined) return this.#sock.write(data);
    let off = 0;
    try {
      while (off < data.length) off += fs.writeSync(this.fd, data, off, data.length - off);
    } catch (err) {
      // EAGAIN (someone made it non-blocking): drop the rest rather than block pid 1.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') this.#broken = true;
    }
    return true;
  }
}
