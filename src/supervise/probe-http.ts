/**
 * Judging an HTTP probe's response as its bytes arrive, without node:http: a probe needs
 * the status line and, only when `http-body` is set, the body; a full HTTP parser per
 * attempt would cost the supervisor far more than the probe is worth (1,000 services probed
 * each second must stay under 5 % of a core).
 *
 * It reads the status line; with a body text to find it also reads the headers (only
 * Content-Length and Transfer-Encoding matter), undoes chunked transfer coding (a Node
 * server uses it even with `Connection: close`), and looks for the text in the first
 * 64 KiB of the body. What it holds is bounded: headers up to 16 KiB, then only the last
 * few bytes of the body (a text may straddle two reads). Chunks given to `feed` may be a
 * shared read buffer: nothing is kept from them without a copy.
 *
 * With keep-alive the connection outlives the response, so the response is read to its end
 * (by Content-Length or chunks, up to 64 KiB of body) whatever the verdict, which is told
 * then; `reusable` says whether the server keeps the connection (no `Connection: close`, not
 * HTTP/1.0, framed, nothing after the end). A response that cannot be read to an end that
 * way is judged as without keep-alive, and its connection is not reused.
 */

/** How much of the body is searched for the text. */
export const BODY_LIMIT = 64 * 1024;
/** Status line and headers longer than this are refused. */
export const HEAD_LIMIT = 16 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const CRLFCRLF = Buffer.from('\r\n\r\n');
const LFLF = Buffer.from('\n\n');
const HTTP1 = Buffer.from('HTTP/1.');

/** A verdict: true = success, a string = the failure in words, undefined = not decided yet. */
export type Verdict = true | string | undefined;

/** Where the chunked decoder is. */
type ChunkState = 'size' | 'ext' | 'data' | 'data-end' | 'trailer' | 'done';

/** One probe's response judge, reset for each attempt (so an attempt allocates next to nothing). */
export class HttpResponseCheck {
  readonly #min: number;
  readonly #max: number;
  readonly #needle: Buffer | undefined;
  /** Bytes of the head received in earlier reads (copied), while it is incomplete. */
  #held: Buffer | undefined;
  #inBody = false;
  #bodySeen = 0;
  /** Body bytes still to come by Content-Length; -1: unknown (until the connection closes). */
  #remaining = -1;
  #chunked = false;
  #chunk: ChunkState = 'size';
  #chunkLeft = 0;
  #sizeDigits = 0;
  /** The last needle.length − 1 body bytes examined, so a text split across reads is found. */
  #carry: Buffer | undefined;
  #keepAlive: boolean;
  /** Keep-alive: the verdict already made, told at the response's end. */
  #verdict: Verdict;
  /** Keep-alive: the text was found (the rest of the body is still read). */
  #found = false;
  /** The server will not keep this connection (or its response cannot be read to an end). */
  #close = false;
  #reusable = false;

  constructor(status: { min: number; max: number }, needle: Buffer | undefined, keepAlive = false) {
    this.#min = status.min;
    this.#max = status.max;
    this.#needle = needle;
    this.#keepAlive = keepAlive;
  }

  /** Keep-alive: the response was read to its end and the server keeps the connection. */
  get reusable(): boolean {
    return this.#reusable;
  }

  /** Forget the previous attempt; `keepAlive`, if given, says whether this one's request asked to keep the connection. */
  reset(keepAlive?: boolean): void {
    if (keepAlive !== undefined) this.#keepAlive = keepAlive;
    this.#held = undefined;
    this.#inBody = false;
    this.#bodySeen = 0;
    this.#remaining = -1;
    this.#chunked = false;
    this.#chunk = 'size';
    this.#chunkLeft = 0;
    this.#sizeDigits = 0;
    this.#carry = undefined;
    this.#verdict = undefined;
    this.#found = false;
    this.#close = false;
    this.#reusable = false;
  }

  /** The bytes just read. */
  feed(chunk: Buffer): Verdict {
    return this.#inBody ? this.#body(chunk) : this.#head(chunk);
  }

  /** The server closed the connection. */
  end(): string | true {
    this.#close = true;
    if (this.#inBody) return this.#finish();
    if (this.#held === undefined) return 'connection closed without a response';
    return this.#held.indexOf(LF) < 0 ? 'connection closed inside the status line' : 'connection closed inside the headers';
  }

  #head(chunk: Buffer): Verdict {
    const data = this.#held === undefined ? chunk : Buffer.concat([this.#held, chunk]);
    const eol = data.indexOf(LF);
    if (eol < 0) return this.#hold(data, chunk);
    if (data.length < 12 || data.compare(HTTP1, 0, HTTP1.length, 0, HTTP1.length) !== 0 || data[8] !== 0x20) return 'not an HTTP response';
    const status = digit(data[9]) * 100 + digit(data[10]) * 10 + digit(data[11]);
    if (!(status >= 100 && status <= 999)) return 'not an HTTP response';
    const refused = status < this.#min || status > this.#max ? `status ${status}` : undefined;
    if (!this.#keepAlive && refused !== undefined) return refused;
    if (!this.#keepAlive && this.#needle === undefined) return true;
    this.#verdict = refused ?? (this.#needle === undefined ? true : undefined);
    const end = headEnd(data);
    if (end < 0) return this.#hold(data, chunk);
    const noBody = status === 204 || status === 304; // by definition
    this.#headers(data.toString('latin1', 0, end), data[7] === 0x30, noBody);
    this.#inBody = true;
    this.#held = undefined;
    if (noBody) return this.#finish(data.length > end);
    // Not to be read to an end: judged now if it can be, and the connection goes.
    if (this.#close && this.#verdict !== undefined) return this.#verdict;
    return this.#body(data.subarray(end));
  }

  /** Keeps an incomplete head (a copy: `chunk` may be a shared read buffer), within the limit. */
  #hold(data: Buffer, chunk: Buffer): Verdict {
    if (data.length > HEAD_LIMIT) return `response head over ${HEAD_LIMIT / 1024} KiB`;
    this.#held = data === chunk ? Buffer.from(chunk) : data;
    return undefined;
  }

  /** What of the headers matters for reading the body (and, with keep-alive, for keeping the connection). */
  #headers(head: string, http10: boolean, noBody: boolean): void {
    const length = /\ncontent-length[ \t]*:[ \t]*(\d+)/i.exec(head);
    this.#chunked = /\ntransfer-encoding[ \t]*:[^\n]*chunked/i.test(head);
    if (length !== null && !this.#chunked) this.#remaining = Number(length[1]);
    if (!this.#keepAlive) return;
    const framed = noBody || this.#chunked || (this.#remaining >= 0 && this.#remaining <= BODY_LIMIT);
    this.#close = http10 || !framed || /\nconnection[ \t]*:[^\n]*close/i.test(head);
  }

  #body(chunk: Buffer): Verdict {
    if (!this.#chunked) {
      let data = chunk;
      if (this.#remaining >= 0) {
        data = chunk.subarray(0, this.#remaining);
        this.#remaining -= data.length;
      }
      const verdict = this.#scan(data);
      if (verdict === undefined && this.#remaining === 0) return this.#finish(chunk.length > data.length);
      return verdict;
    }
    return this.#dechunk(chunk);
  }

  /** Chunked transfer coding undone as it comes: sizes in hex, extensions skipped, each chunk's data scanned. */
  #dechunk(chunk: Buffer): Verdict {
    let i = 0;
    while (i < chunk.length) {
      if (this.#chunk === 'data') {
        const take = Math.min(this.#chunkLeft, chunk.length - i);
        const verdict = this.#scan(chunk.subarray(i, i + take));
        if (verdict !== undefined) return verdict;
        i += take;
        this.#chunkLeft -= take;
        if (this.#chunkLeft === 0) this.#chunk = 'data-end';
        continue;
      }
      const byte = chunk[i++]!;
      if (this.#chunk === 'trailer') {
        // After the last chunk: CRLF ends the response; anything else is a trailer (not read: the connection goes).
        if (byte === CR) continue;
        this.#chunk = 'done';
        return this.#finish(byte !== LF || i < chunk.length);
      }
      if (this.#chunk === 'data-end') {
        if (byte === LF) this.#chunk = 'size';
        else if (byte !== CR) return 'bad chunked body';
      } else if (this.#chunk === 'size' || this.#chunk === 'ext') {
        const verdict = this.#sizeByte(byte);
        if (verdict !== undefined) return verdict;
      }
    }
    return undefined;
  }

  /** One byte of a chunk-size line. */
  #sizeByte(byte: number): Verdict {
    if (byte === LF) {
      if (this.#sizeDigits === 0) return 'bad chunked body';
      this.#sizeDigits = 0;
      if (this.#chunkLeft === 0) {
        if (!this.#keepAlive) { this.#chunk = 'done'; return this.#finish(); }
        this.#chunk = 'trailer';
        return undefined;
      }
      this.#chunk = 'data';
      return undefined;
    }
    if (this.#chunk === 'ext' || byte === CR) return undefined;
    if (byte === 0x3b || byte === 0x20 || byte === 0x09) { this.#chunk = 'ext'; return undefined; }
    const hex = hexDigit(byte);
    if (hex < 0 || this.#sizeDigits >= 8) return 'bad chunked body';
    this.#chunkLeft = this.#chunkLeft * 16 + hex;
    this.#sizeDigits++;
    return undefined;
  }

  /** Looks for the text in the next body bytes; false once 64 KiB have been looked at. */
  #scan(piece: Buffer): Verdict {
    const needle = this.#needle;
    if (needle === undefined || this.#found) return undefined; // keep-alive: the body is only read to its end
    const room = BODY_LIMIT - this.#bodySeen;
    const part = piece.length > room ? piece.subarray(0, room) : piece;
    const hay = this.#carry === undefined ? part : Buffer.concat([this.#carry, part]);
    if (hay.indexOf(needle) >= 0) {
      if (!this.#keepAlive || this.#close) return true;
      this.#found = true;
      return undefined;
    }
    this.#bodySeen += part.length;
    if (this.#bodySeen >= BODY_LIMIT) return `no ${quote(needle)} in the first ${BODY_LIMIT / 1024} KiB of the body`;
    const keep = needle.length - 1;
    // A copy: `piece` may be the shared read buffer, overwritten by the next read.
    if (keep > 0) this.#carry = Buffer.from(hay.subarray(Math.max(0, hay.length - keep)));
    return undefined;
  }

  /** The response's end: the verdict made, else the text's; `extra`: bytes came after it (the connection is not reused). */
  #finish(extra = false): true | string {
    if (extra) this.#close = true;
    this.#reusable = this.#keepAlive && !this.#close;
    return this.#verdict ?? (this.#found ? true : this.#lacks());
  }

  #lacks(): string {
    return `body lacks ${quote(this.#needle!)}`;
  }
}

/** Where the body starts (after the blank line), or -1. Bare LF line ends are accepted, as most clients do. */
function headEnd(data: Buffer): number {
  const crlf = data.indexOf(CRLFCRLF);
  const lf = data.indexOf(LFLF);
  if (crlf < 0) return lf < 0 ? -1 : lf + 2;
  return lf < 0 || crlf < lf ? crlf + 4 : lf + 2;
}

/** A decimal digit's value; NaN for anything else (so the status check fails). */
function digit(byte: number | undefined): number {
  return byte !== undefined && byte >= 0x30 && byte <= 0x39 ? byte - 0x30 : NaN;
}

function hexDigit(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

function quote(needle: Buffer): string {
  const text = needle.toString('utf8');
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}
