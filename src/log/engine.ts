/**
 * The logger engine: s6-log's line processing, embeddable.
 *
 * Input comes in as Buffers (`feed`); the engine cuts it into lines at each newline or NUL
 * byte, as s6-log does (a partial last line waits for the rest; with a line limit, longer
 * lines are cut into pieces of exactly that many bytes, each processed as a line), runs the script on each line (selection state,
 * then the element's actions), and hands output to its sinks: `1` to host.stdout, `2` to
 * host.alert, `=file` written atomically, logdirs staged and written once per chunk.
 *
 * Timestamps: one instant per input chunk — every line of a chunk gets the same stamp, as
 * all lines read together arrive at the same moment. `t` then `T` when both are asked.
 *
 * Backpressure: `feed` returns false when a logdir cannot take more (write error, rotation
 * or processor under way) or stdout is full; the caller stops feeding until `onDrain`.
 * The engine never exits the process, prints, or keeps global state.
 */
import { tainFormat, tainToUnixMs, type Tain } from '../s6/tai.ts';
import { Logdir, type LogdirHost } from './logdir.ts';
import { StatusFile } from './statusfile.ts';
import { strerror } from '../sys/errors.ts';
import type { Action, Script } from './script.ts';

export interface LoggerHost extends LogdirHost {
  /** Output of `1` actions; false: full (call Logger.stdoutDrained when it empties). */
  stdout(data: Buffer): boolean;
  /** Output of `2` actions, already formatted (`prog: alert: …\n`). */
  alert(data: Buffer): void;
}

export interface LoggerOptions {
  /** -l: split longer lines (0 = unlimited; non-zero values below 48 become 48). Default 8192. */
  lineLimit?: number;
  /** Program name in alerts. Default 't6-log'. */
  prog?: string;
}

/** `YYYY-MM-DD HH:MM:SS.nnnnnnnnn` in local time (s6's localtmn_fmt). */
export function formatLocalIso(t: Tain): string {
  const d = new Date(Math.floor(tainToUnixMs({ sec: t.sec, nano: 0 })));
  const p2 = (n: number): string => (n < 10 ? `0${n}` : String(n));
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${String(t.nano).padStart(9, '0')}`;
}

interface CompiledAction {
  readonly action: Action;
  /** The prefix part of the header (`PREFIX `), fixed. */
  readonly prefix: Buffer;
  /** The header for the current chunk: stamps + prefix. */
  header: Buffer;
  readonly logdir: Logdir | undefined;
  /** The `=file` of a status action. */
  readonly statusFile: StatusFile | undefined;
}

const EMPTY = Buffer.alloc(0);

/**
 * Where lines end in `chunk`: at a newline or, as s6-log cuts them (its getchunk looks for
 * either byte, and its last-line reader too), at a NUL byte, which is then dropped like
 * the newline. So `a\0b\n` is two lines, `a` and `b`, and no NUL ever reaches a logdir,
 * a status file or a regular expression. The returned function gives the end of the line
 * that starts at `from` (-1: not in this chunk); a chunk without NUL costs one more memchr.
 */
function lineEnds(chunk: Buffer): (from: number) => number {
  let nul = chunk.indexOf(0);
  if (nul < 0) return (from) => chunk.indexOf(10, from);
  return (from) => {
    if (nul >= 0 && nul < from) nul = chunk.indexOf(0, from);
    const nl = chunk.indexOf(10, from);
    return nul >= 0 && (nl < 0 || nul < nl) ? nul : nl;
  };
}

export class Logger {
  readonly script: Script;
  readonly logdirs: readonly Logdir[];
  /** Called when a refused feed may resume. */
  onDrain: () => void = () => {};
  readonly #host: LoggerHost;
  readonly #lineLimit: number;
  readonly #alertHead: Buffer;
  readonly #elements: { selections: Script['elements'][number]['selections']; actions: CompiledAction[] }[];
  readonly #all: CompiledAction[];
  #partial: Buffer[] = [];
  #partialLen = 0;
  #stdoutBuf: Buffer = Buffer.allocUnsafe(64 * 1024);
  #stdoutLen = 0;
  #stdoutFull = false;
  #stdoutClosed = false;
  #refused = false;
  #closed = false;
  /** Lines and bytes (newlines not counted) taken in since the engine started (metrics). */
  lines = 0;
  bytes = 0;

  private constructor(script: Script, host: LoggerHost, options: LoggerOptions, logdirs: Logdir[]) {
    this.script = script;
    this.#host = host;
    const limit = options.lineLimit ?? 8192;
    this.#lineLimit = limit !== 0 && limit < 48 ? 48 : limit;
    this.#alertHead = Buffer.from(`${options.prog ?? 't6-log'}: alert: `);
    this.logdirs = logdirs;
    let next = 0;
    this.#all = [];
    this.#elements = script.elements.map((el) => ({
      selections: el.selections,
      actions: el.actions.map((action) => {
        const prefix = action.prefix === undefined ? EMPTY : Buffer.from(`${action.prefix} `);
        const c: CompiledAction = {
          action, prefix, header: prefix,
          logdir: action.kind === 'logdir' ? logdirs[next++] : undefined,
          statusFile: action.kind === 'status' ? new StatusFile(action.file) : undefined,
        };
        this.#all.push(c);
        return c;
      }),
    }));
    for (const ld of logdirs) ld.onReady = () => this.#maybeDrain();
  }

  /** Opens every logdir of the script (lock, recovery). Throws LogdirError; opened ones are released. */
  static open(script: Script, host: LoggerHost, options: LoggerOptions = {}): Logger {
    const opened: Logdir[] = [];
    try {
      for (const spec of script.logdirs) opened.push(Logdir.open(spec, host));
    } catch (err) {
      for (const ld of opened) void ld.close();
      throw err;
    }
    return new Logger(script, host, options, opened);
  }

  /** True while input should wait. */
  get blocked(): boolean {
    if (this.#stdoutFull) return true;
    for (const ld of this.logdirs) if (ld.busy) return true;
    return false;
  }

  /**
   * Processes a chunk of input (not kept: the caller may reuse the buffer). Returns false
   * when the caller should stop feeding until onDrain.
   */
  feed(chunk: Buffer): boolean {
    if (this.#closed) throw new Error('logger closed');
    this.#stamp();
    let pos = 0;
    const len = chunk.length;
    const limit = this.#lineLimit;
    const lineEnd = lineEnds(chunk);
    if (this.#partialLen > 0) {
      const nl = lineEnd(0);
      const upto = nl < 0 ? len : nl;
      this.#partial.push(Buffer.from(chunk.subarray(0, upto)));
      this.#partialLen += upto;
      if (nl < 0) {
        this.#cutPartial();
        this.#flushOutputs();
        return !this.#checkBlocked();
      }
      const line = Buffer.concat(this.#partial, this.#partialLen);
      this.#partial = [];
      this.#partialLen = 0;
      this.#lines(line, 0, line.length);
      pos = nl + 1;
    }
    for (;;) {
      const nl = lineEnd(pos);
      if (nl < 0) break;
      if (limit !== 0 && nl - pos > limit) this.#lines(chunk, pos, nl);
      else this.#line(chunk, pos, nl);
      pos = nl + 1;
    }
    if (pos < len) {
      this.#partial.push(Buffer.from(chunk.subarray(pos)));
      this.#partialLen = len - pos;
      this.#cutPartial();
    }
    this.#flushOutputs();
    return !this.#checkBlocked();
  }

  /** Processes a pending partial line as if it ended with a newline (EOF, SIGTERM). */
  flushPartial(): void {
    if (this.#partialLen === 0) return;
    this.#stamp();
    const line = Buffer.concat(this.#partial, this.#partialLen);
    this.#partial = [];
    this.#partialLen = 0;
    this.#lines(line, 0, line.length);
    this.#flushOutputs();
  }

  /** Has a partial line waiting for its newline. */
  get hasPartial(): boolean { return this.#partialLen > 0; }

  /**
   * Removes the pending partial line, unprocessed, and returns it (empty if none): a host
   * that switches engines (a reloaded script) or slips whole lines of its own in between
   * feeds it back afterwards, so no line is torn.
   */
  takePartial(): Buffer {
    if (this.#partialLen === 0) return EMPTY;
    const line = Buffer.concat(this.#partial, this.#partialLen);
    this.#partial = [];
    this.#partialLen = 0;
    return line;
  }

  /**
   * Writes what is staged, waits (at most until `deadline`, monotonic ms) for every logdir
   * to have written everything and ended any rotation, then fsyncs each `current`. Resolves
   * with the logdirs that could not be synced in time, and how many bytes each still holds.
   */
  async sync(deadline: number, monotonicMs: () => number): Promise<{ dir: string; staged: number }[]> {
    const late: { dir: string; staged: number }[] = [];
    for (const ld of this.logdirs) {
      ld.flush();
      const left = deadline - monotonicMs();
      if (left <= 0 || !(await ld.whenIdle(left))) { late.push({ dir: ld.dir, staged: ld.staged }); continue; }
      if (!ld.fsyncCurrent()) late.push({ dir: ld.dir, staged: 0 });
    }
    return late;
  }

  /** Forces a rotation of every logdir with a non-empty current (SIGALRM). */
  rotate(): void {
    for (const ld of this.logdirs) ld.rotateNow();
    this.#checkBlocked();
  }

  /** The host's stdout sink has room again. */
  stdoutDrained(): void {
    this.#stdoutFull = false;
    this.#maybeDrain();
  }

  /** The host's stdout is gone (write error): `1` actions become no-ops, as in s6-log. */
  stdoutClosed(): void {
    this.#stdoutClosed = true;
    this.#stdoutFull = false;
    this.#stdoutLen = 0;
    this.#maybeDrain();
  }

  /** Processes the partial line, waits for every logdir to be written and finalised, releases locks. */
  async end(): Promise<void> {
    this.flushPartial();
    this.#closed = true;
    for (const c of this.#all) c.statusFile?.close();
    for (const ld of this.logdirs) await ld.close();
  }

  #stamp(): void {
    const s = this.script;
    if (!s.wantsTai && !s.wantsIso) return;
    const now = this.#host.now();
    const tai = s.wantsTai ? `${tainFormat(now)} ` : '';
    const iso = s.wantsIso ? `${formatLocalIso(now)}  ` : '';
    for (const c of this.#all) {
      const a = c.action;
      if (!a.tai && !a.iso) continue;
      c.header = Buffer.from(`${a.tai ? tai : ''}${a.iso ? iso : ''}${a.prefix === undefined ? '' : `${a.prefix} `}`);
    }
  }

  /** A partial line that outgrew the limit is processed in limit-sized pieces now. */
  #cutPartial(): void {
    const limit = this.#lineLimit;
    if (limit === 0 || this.#partialLen <= limit) return;
    const all = Buffer.concat(this.#partial, this.#partialLen);
    let pos = 0;
    while (all.length - pos > limit) { this.#line(all, pos, pos + limit); pos += limit; }
    this.#partial = [all.subarray(pos)];
    this.#partialLen = all.length - pos;
  }

  /** A line that may exceed the limit: limit-sized pieces, then the rest. */
  #lines(buf: Buffer, start: number, end: number): void {
    const limit = this.#lineLimit;
    if (limit !== 0) while (end - start > limit) { this.#line(buf, start, start + limit); start += limit; }
    this.#line(buf, start, end);
  }

  #line(buf: Buffer, start: number, end: number): void {
    this.lines++;
    this.bytes += end - start;
    let selected = true;
    let acted = false;
    let text: string | undefined;
    for (const el of this.#elements) {
      for (const sel of el.selections) {
        if (sel.kind === 'default') selected = !acted;
        else if (sel.kind === 'plus' ? !selected : selected) {
          // No NUL inside: it ended the line (lineEnds), so the regex sees what regexec would.
          text ??= buf.toString('latin1', start, end);
          if (sel.re.test(text)) selected = sel.kind === 'plus';
        }
      }
      if (!selected) continue;
      acted = true;
      for (const c of el.actions) {
        if (c.logdir !== undefined) { c.logdir.stage(c.header, buf, start, end); continue; }
        const a = c.action;
        if (a.kind === 'stdout') this.#toStdout(c.header, buf, start, end);
        else if (a.kind === 'alert') this.#alert(c.header, buf, start, end, a.limit);
        else if (a.kind === 'status') this.#status(c.statusFile!, a.size, c.header, buf, start, end);
      }
    }
  }

  #toStdout(header: Buffer, buf: Buffer, start: number, end: number): void {
    if (this.#stdoutClosed) return;
    const n = header.length + end - start + 1;
    if (this.#stdoutLen + n > this.#stdoutBuf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.#stdoutBuf.length * 2, this.#stdoutLen + n));
      this.#stdoutBuf.copy(next, 0, 0, this.#stdoutLen);
      this.#stdoutBuf = next;
    }
    let at = this.#stdoutLen;
    at += header.copy(this.#stdoutBuf, at);
    at += buf.copy(this.#stdoutBuf, at, start, end);
    this.#stdoutBuf[at++] = 10;
    this.#stdoutLen = at;
  }

  #alert(header: Buffer, buf: Buffer, start: number, end: number, limit: number): void {
    const len = end - start;
    const cut = limit !== 0 && limit + 3 < len;
    const body = buf.subarray(start, cut ? start + limit : end);
    this.#host.alert(Buffer.concat([this.#alertHead, header, body, Buffer.from(cut ? '...\n' : '\n')]));
  }

  #status(file: StatusFile, size: number, header: Buffer, buf: Buffer, start: number, end: number): void {
    let data = Buffer.concat([header, buf.subarray(start, end), Buffer.from('\n')]);
    if (size !== 0) {
      if (data.length > size) data = data.subarray(0, size);
      else if (data.length < size) data = Buffer.concat([data, Buffer.alloc(size - data.length, 10)]);
    }
    try {
      file.write(data, this.#host.mask);
    } catch (err) {
      this.#host.warn(`unable to write status file ${file.file}: ${strerror(err)}`);
    }
  }

  #flushOutputs(): void {
    for (const ld of this.logdirs) ld.flush();
    if (this.#stdoutLen > 0) {
      const data = Buffer.from(this.#stdoutBuf.subarray(0, this.#stdoutLen));
      this.#stdoutLen = 0;
      if (!this.#host.stdout(data)) this.#stdoutFull = true;
    }
  }

  #checkBlocked(): boolean {
    const b = this.blocked;
    if (b) this.#refused = true;
    return b;
  }

  #maybeDrain(): void {
    if (!this.#refused || this.blocked) return;
    this.#refused = false;
    this.onDrain();
  }
}
