/**
 * A reading position in a logdir that survives rotations: `t6-log cat`, `tail` and
 * `tail -f` read through it.
 *
 * A logdir's files, oldest first, are its archives (by name: the rotation time), then
 * `previous` (the last rotated file while it is synced or processed), then `current`. A
 * file keeps its inode as it moves along (current → previous → archive), so the cursor
 * knows files by inode: it holds `current` open (a rotation cannot take it away), remembers
 * the files it has read whole, and when `current` is another file, reads what it held to
 * the end, then every file it has not read, in order, then the new `current`. Nothing is
 * read twice and nothing is skipped, however reads and rotations interleave — except what
 * the logdir itself trims away (n, S) before it could be read, and, with a processor, a
 * rotated file seen both as `previous` and as its processed archive.
 */
import fs from 'node:fs';
import path from 'node:path';
import { logFiles, parseLine, type LogLine } from './reader.ts';

const CHUNK = 64 * 1024;

/** Reads a logdir from its oldest line on, then what is written afterwards. */
export class LogdirCursor {
  readonly dir: string;
  #fd: number | undefined;
  #ino = -1;
  #offset = 0;
  #started = false;
  /** Inodes of the files read whole (kept while they are in the logdir). */
  #consumed = new Set<number>();
  #partial = Buffer.alloc(0);
  #partialFile = 'current';
  readonly #prev = { sec: undefined as number | undefined, nano: 0 };
  readonly #buf = Buffer.allocUnsafe(CHUNK);

  constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * The whole lines written since the last call (the first call: every line of the logdir).
   * `withPartial`: a last line without its newline yet is given too (and is then taken as read).
   */
  read(withPartial = false): LogLine[] {
    const out: LogLine[] = [];
    if (!this.#started || this.#fd === undefined) {
      this.#started = true;
      this.#holdAndCatchUp(out);
    }
    this.#drain(out);
    for (let rotations = 0; rotations < 1000 && this.#fd !== undefined; rotations++) {
      const ino = inodeOf(path.join(this.dir, 'current'));
      if (ino === undefined || ino === this.#ino) break;
      // The file held is finished (renamed away): its end, then every file since, then the new current.
      this.#drain(out);
      this.#flushPartial(out);
      this.#consumed.add(this.#ino);
      this.#holdAndCatchUp(out);
      this.#drain(out);
    }
    if (withPartial) this.#flushPartial(out);
    return out;
  }

  /** Lets go of `current`. */
  close(): void {
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
    this.#fd = undefined;
  }

  /**
   * Holds `current`, then reads every finished file older than it not read yet. Files
   * rotated after the listing but before the open are older than what is held, so the list
   * is read after the open; if what is held was itself rotated meanwhile, the files after
   * it are newer than what its fd still has, and wait for the next rotation step of read().
   */
  #holdAndCatchUp(out: LogLine[]): void {
    this.#hold();
    this.#catchUp(this.#fd === undefined ? -1 : this.#ino, out);
  }

  /**
   * Reads, oldest first, every finished file not read yet — the archives, then `previous` —
   * up to the file of inode `stopAt`. `previous` is opened before the archives are listed:
   * the name is reused at each rotation, so it is read through that fd (if it became an
   * archive meanwhile, the list has it, and it is read there, once). Archive names are
   * never reused.
   */
  #catchUp(stopAt: number, out: LogLine[]): void {
    const previous = openIfExists(path.join(this.dir, 'previous'));
    try {
      const present = new Set<number>();
      for (const name of logFiles(this.dir)) {
        if (name === 'current') continue;
        const ino = inodeOf(path.join(this.dir, name));
        if (ino === undefined) continue; // trimmed meanwhile
        present.add(ino);
        if (ino === stopAt) return;
        if (this.#consumed.has(ino)) continue;
        let data: Buffer;
        try { data = fs.readFileSync(path.join(this.dir, name)); } catch { continue; } // trimmed meanwhile
        this.#readWhole(name, data, out);
        this.#consumed.add(ino);
      }
      if (previous !== undefined) {
        present.add(previous.ino);
        if (previous.ino === stopAt) return;
        if (!this.#consumed.has(previous.ino)) {
          this.#readWhole('previous', fs.readFileSync(previous.fd), out);
          this.#consumed.add(previous.ino);
        }
      }
      // Files trimmed away are forgotten: the set stays as small as the logdir.
      for (const ino of this.#consumed) if (!present.has(ino)) this.#consumed.delete(ino);
    } finally {
      if (previous !== undefined) fs.closeSync(previous.fd);
    }
  }

  /** Opens `current` (if it exists yet), to be read from the start. */
  #hold(): void {
    this.close();
    try {
      this.#fd = fs.openSync(path.join(this.dir, 'current'), 'r');
    } catch {
      return; // no current yet: a later read() opens it
    }
    this.#ino = fs.fstatSync(this.#fd).ino;
    this.#offset = 0;
  }

  /** What the held fd has beyond the offset. */
  #drain(out: LogLine[]): void {
    if (this.#fd === undefined) return;
    for (;;) {
      const n = fs.readSync(this.#fd, this.#buf, 0, CHUNK, this.#offset);
      if (n === 0) return;
      this.#offset += n;
      this.#take('current', this.#buf.subarray(0, n), out);
    }
  }

  /** A finished file's bytes, whole. */
  #readWhole(name: string, data: Buffer, out: LogLine[]): void {
    this.#take(name, data, out);
    this.#flushPartial(out);
  }

  /** Splits bytes into lines; a last piece without a newline waits for the rest. */
  #take(file: string, data: Buffer, out: LogLine[]): void {
    let start = 0;
    let chunk = data;
    if (this.#partial.length > 0) {
      chunk = Buffer.concat([this.#partial, data]);
      this.#partial = Buffer.alloc(0);
    }
    for (let nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) {
      out.push(this.#line(file, chunk.subarray(start, nl)));
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.#partial = Buffer.from(chunk.subarray(start));
      this.#partialFile = file;
    }
  }

  /** A piece without its newline, given as a line (the end of a file, or when asked). */
  #flushPartial(out: LogLine[]): void {
    if (this.#partial.length === 0) return;
    out.push(this.#line(this.#partialFile, this.#partial));
    this.#partial = Buffer.alloc(0);
  }

  #line(file: string, raw: Buffer): LogLine {
    const line = parseLine(this.dir, file, raw.toString('utf8'), this.#prev);
    this.#prev.sec = line.sec;
    this.#prev.nano = line.nano;
    return line;
  }
}

/** An open file and its inode, or undefined if there is no such file. */
function openIfExists(p: string): { fd: number; ino: number } | undefined {
  let fd: number;
  try { fd = fs.openSync(p, 'r'); } catch { return undefined; }
  return { fd, ino: fs.fstatSync(fd).ino };
}

function inodeOf(p: string): number | undefined {
  return fs.statSync(p, { throwIfNoEntry: false })?.ino;
}
