/**
 * t6-svscan's console outputs (its stdout, its stderr or the -X fd), written without ever
 * blocking pid 1 on a full pipe: what the console sinks, the loggers' `1` actions, the
 * catch-all's alerts and pid 1's own messages go through. (Reading logger pipes is
 * src/log/input.ts's.)
 */
import fs from 'node:fs';
import net from 'node:net';
import { O_NONBLOCK, O_WRONLY, close, open } from '../sys/fd.ts';

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
