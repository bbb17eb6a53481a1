/**
 * Progress on a terminal: one status line at the bottom of stderr, redrawn in place (at
 * most REDRAW_MS apart), that messages print above. Only when stderr is a terminal (and
 * TERM is not `dumb`): otherwise nothing is drawn and the output is the tools' usual lines,
 * unchanged, as s6-rc's.
 */
import fs from 'node:fs';
import { writeAll } from './_run.ts';
import type { TransitionObserver } from '../rc/engine.ts';

const REDRAW_MS = 100;

/**
 * isatty(2), loading node:tty (and with it node:net and the streams, ~8 ms of a client's
 * start) only when fd 2 is a character device at all: not for a pipe or a file.
 */
function stderrIsTerminal(): boolean {
  try {
    if (!fs.fstatSync(2).isCharacterDevice()) return false;
  } catch {
    return false;
  }
  return process.getBuiltinModule('node:tty').isatty(2);
}

/** The status line of stderr, if stderr is a terminal. */
export class StatusLine {
  readonly #enabled: boolean;
  #text = '';
  #shown = false;
  #timer: NodeJS.Timeout | undefined;
  #last = -Infinity;

  constructor(enabled = stderrIsTerminal() && process.env['TERM'] !== 'dumb') {
    this.#enabled = enabled;
  }

  /** Whether anything is drawn. */
  get enabled(): boolean { return this.#enabled; }

  /** Sets the line's text; drawn now or within REDRAW_MS. */
  set(text: string): void {
    if (!this.#enabled) return;
    this.#text = text;
    const wait = this.#last + REDRAW_MS - performance.now();
    if (wait <= 0) { this.#draw(); return; }
    this.#timer ??= setTimeout(() => { this.#timer = undefined; this.#draw(); }, wait);
  }

  /** A message line above the status line. */
  print(line: string): void {
    if (!this.#enabled || !this.#shown) { writeAll(2, line); return; }
    writeAll(2, `\r\x1b[K${line}`);
    this.#shown = false;
    this.#draw();
  }

  /** Draws what is pending now (the last state, before the line goes). */
  flush(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#draw();
  }

  /** Takes the line away (the work is over). */
  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#enabled && this.#shown) writeAll(2, '\r\x1b[K');
    this.#shown = false;
  }

  #draw(): void {
    this.#last = performance.now();
    // COLUMNS, not process.stderr.columns: t6 never opens Node's stdio streams (see writeAll).
    const width = Math.max(20, (Number(process.env['COLUMNS']) || 80) - 1);
    writeAll(2, `\r\x1b[K${this.#text.length > width ? `${this.#text.slice(0, width - 1)}…` : this.#text}`);
    this.#shown = true;
  }
}

/**
 * A change's progress: `[done/total]`, the transitions in flight (their names, as many as
 * fit), and the slowest so far. The total and the names come with the change's plan (`planned`).
 */
export function changeProgress(line: StatusLine, prog: string): TransitionObserver {
  const started = new Map<number, number>();
  let planned = 0;
  let nameOf = (i: number): string => `#${i}`;
  let done = 0;
  let failed = 0;
  let slowest: { name: string; ms: number } | undefined;
  const redraw = (now: number): void => {
    const flying = [...started].sort((a, b) => a[1] - b[1]);
    const oldest = flying[0];
    const longest = oldest !== undefined && (slowest === undefined || now - oldest[1] > slowest.ms) ? { name: nameOf(oldest[0]), ms: now - oldest[1] } : slowest;
    const names = flying.slice(0, 3).map(([i]) => nameOf(i)).join(', ') + (flying.length > 3 ? ', …' : '');
    const t = String(Math.max(planned, done + started.size));
    line.set(`${prog}: [${String(done).padStart(t.length)}/${t}]${failed > 0 ? ` ${failed} failed ·` : ''} ${flying.length} in flight${flying.length > 0 ? ` (${names})` : ''}${longest === undefined ? '' : ` · slowest: ${longest.name} ${(longest.ms / 1000).toFixed(1)} s`}`);
  };
  return {
    planned: (transitions, names) => { planned = transitions; nameOf = names; },
    requested: (i, _up, at) => { started.set(i, at); redraw(at); },
    ended: (i, _up, failure, at) => {
      const since = started.get(i);
      started.delete(i);
      done++;
      if (failure !== undefined) failed++;
      if (since !== undefined && (slowest === undefined || at - since > slowest.ms)) slowest = { name: nameOf(i), ms: at - since };
      redraw(at);
    },
  };
}

/** Numbered steps of a tool's work (`[2/4] checking…`) on the status line. */
export function stepProgress(line: StatusLine, prog: string, steps: readonly string[]): { step(index: number, detail?: string): void; done(): void } {
  return {
    step: (index, detail) => line.set(`${prog}: [${index + 1}/${steps.length}] ${steps[index] ?? ''}${detail === undefined ? '' : ` ${detail}`}…`),
    done: () => line.clear(),
  };
}
