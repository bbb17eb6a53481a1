/**
 * The keys of `t6 top`: bytes from a terminal in raw mode become keys, and a key changes
 * the view (selection, order, filter) or asks for something to be done (a command to a
 * supervisor, quitting), which the session does. Pure: a test types bytes and reads the
 * result.
 *
 *   ↑ ↓ k j        move the selection        PgUp PgDn Home End g G   by a page, to an end
 *   s              next sort order           /    filter (Enter keeps it, Esc clears it)
 *   u d r          up, down, restart the selected service (t6-svc -u, -d, -t)
 *   q Ctrl-C       quit
 */
import type { Row, TopModel } from './model.ts';

/** A key, decoded. */
export type Key = { name: NamedKey } | { name: 'char'; char: string };
/** A key that is not a character. */
type NamedKey = 'up' | 'down' | 'pageup' | 'pagedown' | 'home' | 'end' | 'enter' | 'escape' | 'backspace' | 'interrupt';

const SEQUENCES: Record<string, NamedKey> = {
  '\x1b[A': 'up', '\x1bOA': 'up', '\x1b[B': 'down', '\x1bOB': 'down', '\x1b[5~': 'pageup', '\x1b[6~': 'pagedown',
  '\x1b[H': 'home', '\x1bOH': 'home', '\x1b[1~': 'home', '\x1b[F': 'end', '\x1bOF': 'end', '\x1b[4~': 'end',
};

/** The keys in a chunk read from the terminal. An escape sequence it does not know is skipped whole. */
export function decodeKeys(chunk: string): Key[] {
  const keys: Key[] = [];
  for (let i = 0; i < chunk.length;) {
    const c = chunk[i]!;
    if (c === '\x1b') {
      // A lone ESC (nothing follows in this chunk) is the Escape key.
      if (i + 1 >= chunk.length) { keys.push({ name: 'escape' }); i++; continue; }
      const m = /^\x1b(?:\[[0-9;]*[A-Za-z~]|O[A-Za-z]|.)/.exec(chunk.slice(i))!;
      const name = SEQUENCES[m[0]];
      if (name !== undefined) keys.push({ name });
      i += m[0].length;
      continue;
    }
    i++;
    if (c === '\r' || c === '\n') keys.push({ name: 'enter' });
    else if (c === '\x7f' || c === '\b') keys.push({ name: 'backspace' });
    else if (c === '\x03') keys.push({ name: 'interrupt' });
    else if (c >= ' ') keys.push({ name: 'char', char: c });
  }
  return keys;
}

/** What a key asks the session to do beyond changing the view. */
export type KeyCommand = { kind: 'quit' } | { kind: 'control'; service: string; letter: 'u' | 'd' | 't' };

/** The view's state beyond the model: the filter being typed. */
export interface KeyState {
  /** The filter line being edited after `/`, or undefined. */
  editing: string | undefined;
}

const CONTROL: Record<string, 'u' | 'd' | 't'> = { u: 'u', d: 'd', r: 't' };

/** Applies `key` to the view; returns a command when the key asks for one. `page`: rows on the screen. */
export function applyKey(model: TopModel, state: KeyState, visible: readonly Row[], key: Key, page: number): KeyCommand | undefined {
  if (key.name === 'interrupt') return { kind: 'quit' };
  if (state.editing !== undefined) {
    if (key.name === 'enter') state.editing = undefined;
    else if (key.name === 'escape') { state.editing = undefined; model.setFilter(''); }
    else if (key.name === 'backspace') state.editing = state.editing.slice(0, -1);
    else if (key.name === 'char') state.editing += key.char;
    if (state.editing !== undefined) model.setFilter(state.editing);
    return undefined;
  }
  const moves: Partial<Record<NamedKey, number>> = {
    up: -1, down: 1, pageup: -Math.max(1, page), pagedown: Math.max(1, page), home: -Infinity, end: Infinity,
  };
  const move = key.name === 'char' ? ({ k: -1, j: 1, g: -Infinity, G: Infinity } as Record<string, number>)[key.char] : moves[key.name];
  if (move !== undefined) {
    model.move(visible, Number.isFinite(move) ? move : Math.sign(move) * visible.length);
    return undefined;
  }
  if (key.name === 'escape') { model.setFilter(''); return undefined; }
  if (key.name !== 'char') return undefined;
  if (key.char === 'q') return { kind: 'quit' };
  if (key.char === 's') model.cycleSort();
  else if (key.char === '/') { state.editing = ''; model.setFilter(''); }
  else if (CONTROL[key.char] !== undefined) {
    const service = model.selected(visible);
    if (service !== undefined) return { kind: 'control', service, letter: CONTROL[key.char]! };
  }
  return undefined;
}
