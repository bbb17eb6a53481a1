/**
 * Lines waiting to be written to a logdir's `current`: whole lines, each ending in a newline,
 * in one buffer that grows as needed and is written from its front. Knows where a write
 * may stop (logdir.ts decides when). A line is never split between two writes.
 */
import fs from 'node:fs';

export class StagedLines {
  /** The waiting bytes are #buf[#head, #len). */
  #buf: Buffer = Buffer.allocUnsafe(256 * 1024);
  #head = 0;
  #len = 0;

  /** Bytes waiting. */
  get length(): number { return this.#len - this.#head; }

  /** Appends one line: header, src[start, end), newline; cut into lines of at most `maxLine` bytes (header and newline included, as the logdir's `s` asks). */
  add(header: Buffer, src: Buffer, start: number, end: number, maxLine = Infinity): void {
    // Nearly every line fits: it goes in as it is, without the cutting arithmetic (this runs
    // once per input line, millions of times a second).
    if (header.length + (end - start) + 1 <= maxLine) { this.#addLine(header, src, start, end); return; }
    const piece = Math.max(1, maxLine - header.length - 1);
    for (let at = start; ; at += piece) {
      this.#addLine(header, src, at, Math.min(end, at + piece));
      if (at + piece >= end) return;
    }
  }

  #addLine(header: Buffer, src: Buffer, start: number, end: number): void {
    const n = header.length + (end - start) + 1;
    if (this.#len + n > this.#buf.length) {
      const waiting = this.length;
      const next = waiting + n > this.#buf.length ? Buffer.allocUnsafe(Math.max(this.#buf.length * 2, waiting + n)) : this.#buf;
      this.#buf.copy(next, 0, this.#head, this.#len);
      this.#buf = next;
      this.#head = 0;
      this.#len = waiting;
    }
    let at = this.#len;
    if (header.length > 0) at += header.copy(this.#buf, at);
    at += src.copy(this.#buf, at, start, end);
    this.#buf[at++] = 10;
    this.#len = at;
  }

  /**
   * How many waiting bytes to write, whole lines only, into a file that is due for rotation
   * once `dueIn` more bytes (> 0) are in it and may take `room` more at most: through the
   * first line end at or past `dueIn`, stopping before a line that would go past `room`
   * (0: not even the first fits; `firstAnyway` takes it all the same, for an empty file).
   */
  take(dueIn: number, room: number, firstAnyway: boolean): number {
    const waiting = this.length;
    if (waiting < dueIn && waiting <= room) return waiting;
    // Every waiting line ends in a newline, so two searches find the cut, however many lines
    // wait (a whole input chunk of them, at each rotation): the first line end at or past
    // dueIn; if that is past room, the last line end within room.
    const lines = this.#buf.subarray(0, this.#len);
    const head = this.#head;
    const due = waiting >= dueIn ? lines.indexOf(10, head + dueIn - 1) + 1 : this.#len;
    if (due - head <= room) return due - head;
    const fit = room > 0 ? lines.lastIndexOf(10, head + room - 1) + 1 : 0;
    if (fit > head) return fit - head;
    return firstAnyway ? lines.indexOf(10, head) + 1 - head : 0;
  }

  /** Writes the first `n` waiting bytes to `fd`; what went is no longer waiting, also when a write throws. */
  writeTo(fd: number, n: number): void {
    let off = 0;
    try {
      while (off < n) off += fs.writeSync(fd, this.#buf, this.#head + off, n - off);
    } finally {
      this.#head += off;
      if (this.#head === this.#len) this.#head = this.#len = 0;
    }
  }
}
