/**
 * A terminal taken over by a full-screen command (`t6 top`): the alternate screen, no
 * cursor, raw input; and given back as it was, once, whatever ends the command (a key,
 * a signal, an error, or the process exiting).
 *
 * Node's tty streams reopen the terminal device for themselves (libuv), so the modes they
 * set do not reach other processes sharing the terminal; frames are written with
 * writeAll, as every t6 command writes.
 */
import tty from 'node:tty';
import { writeAll } from './_run.ts';

const ENTER = '\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J';
const LEAVE = '\x1b[0m\x1b[?25h\x1b[?1049l';

/** A terminal in raw mode on the alternate screen. */
export class Terminal {
  readonly #input: tty.ReadStream;
  readonly #output: tty.WriteStream;
  #restored = false;
  readonly #onExit = (): void => this.restore();

  /** Takes over the terminal on fds 0 and 1 (both must be terminals). `onKeys` gets what is typed. */
  constructor(onKeys: (text: string) => void) {
    this.#input = new tty.ReadStream(0);
    this.#output = new tty.WriteStream(1);
    // Last resort: the process ends without restore() (an uncaught error): still give it back.
    process.on('exit', this.#onExit);
    this.#input.setRawMode(true);
    this.#input.setEncoding('utf8');
    this.#input.on('data', onKeys);
    writeAll(1, ENTER);
  }

  /** Columns and rows now (read again from the terminal: call it after SIGWINCH). */
  size(): { width: number; height: number } {
    // Node refreshes the size of its own process.stdout on SIGWINCH; this stream is ours,
    // so ask it to read the size again (the same internal call Node makes).
    (this.#output as tty.WriteStream & { _refreshSize?(): void })._refreshSize?.();
    return { width: this.#output.columns || 80, height: this.#output.rows || 24 };
  }

  /** Draws `lines` from the top left, those in `highlight` reversed. */
  draw(lines: readonly string[], highlight: readonly number[]): void {
    const marked = new Set(highlight);
    writeAll(1, `\x1b[H${lines.map((l, i) => (marked.has(i) ? `\x1b[7m${l}\x1b[0m` : l)).join('\r\n')}`);
  }

  /** Gives the terminal back (once; later calls do nothing). */
  restore(): void {
    if (this.#restored) return;
    this.#restored = true;
    process.off('exit', this.#onExit);
    writeAll(1, LEAVE);
    try { this.#input.setRawMode(false); } catch { /* the terminal is gone: nothing to restore */ }
    this.#input.destroy();
    this.#output.destroy();
  }
}
