/**
 * s6-log's script language: a list of directives (one per argv word) read left to right.
 *
 * A script is a sequence of *elements*: some selection directives (`+re`, `-re`, `f`)
 * followed by some actions (`1`, `2`, `=file`, `/dir`, `./dir`). Control directives
 * (`n s S l r E ^ p ! ?`) set sticky parameters for the actions that follow; `t` and `T`
 * ask for a timestamp on the next action only. Each input line starts selected; each
 * element's selections update that state in turn, and if the line is still selected the
 * element's actions run. `f` selects exactly the lines no earlier element acted on.
 *
 * parseScript mirrors s6-log's two passes (s6 src/daemontools-extras/s6-log.c): the same
 * checks in the same order, the same clamps, the same messages, as typed errors.
 */
import { compileEre, EreError } from './ere.ts';

/** Why a script was refused; `directive` is the word at fault (absent for "no action"). */
export class ScriptError extends Error {
  override name = 'ScriptError';
  readonly code: 'unrecognized' | 'syntax' | 'no-action' | 'conflict';
  readonly directive: string | undefined;
  constructor(code: ScriptError['code'], directive: string | undefined, detail?: string) {
    const text = code === 'unrecognized' ? `unrecognized directive: ${directive}`
      : code === 'syntax' ? `syntax error at directive: ${directive}`
        : code === 'conflict' ? `directive ${directive} conflicts with previous s directive`
          : 'no action directive specified';
    super(detail === undefined ? text : `${text} (${detail})`);
    this.code = code;
    this.directive = directive;
  }
}

export type Selection =
  | { readonly kind: 'plus'; readonly re: RegExp; readonly source: string }
  | { readonly kind: 'minus'; readonly re: RegExp; readonly source: string }
  | { readonly kind: 'default' };

/** What every action carries: the stamps it asked for and the prefix in force. */
export interface ActionCommon {
  readonly tai: boolean;
  readonly iso: boolean;
  /** The prefix text (a space is added after it), or undefined. */
  readonly prefix: string | undefined;
}

/** Settings of a logdir, as the control directives left them when it was named. */
export interface LogdirSpec {
  readonly dir: string;
  /** n: archives kept. */
  readonly maxFiles: number;
  /** s: rotate size, clamped to 4096…268435455. */
  readonly maxSize: number;
  /** S: total archive bytes (0 = no cap). */
  readonly maxTotal: number;
  /** l: tolerance. */
  readonly tolerance: number;
  /** r: retry delay, ms. */
  readonly retryMs: number;
  /** `?cmd` processor, run by /bin/sh -c; undefined: none. */
  readonly processor: string | undefined;
}

export type Action = ActionCommon & (
  | { readonly kind: 'stdout' }
  | { readonly kind: 'alert'; readonly limit: number }
  | { readonly kind: 'status'; readonly file: string; readonly size: number }
  | { readonly kind: 'logdir'; readonly logdir: LogdirSpec }
);

export interface ScriptElement {
  readonly selections: readonly Selection[];
  readonly actions: readonly Action[];
}

export interface Script {
  readonly elements: readonly ScriptElement[];
  /** Does any action want a TAI64N / ISO stamp (then one is taken per line). */
  readonly wantsTai: boolean;
  readonly wantsIso: boolean;
  /** Every logdir action, in script order. */
  readonly logdirs: readonly LogdirSpec[];
  /** Trailing control or selection directives after the last action (s6-log warns). */
  readonly ignoredTrailing: boolean;
}

/** skalibs uint*_scan: leading decimal digits (at least one); the rest of the word is ignored. */
function scanUint(word: string, max: number): number | undefined {
  const m = /^\d+/.exec(word.slice(1));
  if (m === null) return undefined;
  const n = Number(m[0]);
  return n > max ? undefined : n;
}

const U32 = 0xffffffff;

/** Parses the directives; throws ScriptError. */
export function parseScript(words: readonly string[]): Script {
  const ignoredTrailing = checkShape(words);
  return readValues(words, ignoredTrailing);
}

/**
 * First pass, shape only, as s6-log's script_firstpass: every word is a known directive of
 * the right form, and some action exists. True when control or selection directives trail
 * the last action (they are ignored).
 */
function checkShape(words: readonly string[]): boolean {
  let flagActed = false;
  let elements = 0;
  for (const w of words) {
    switch (w[0]) {
      case 'f': case '+': case '-':
        if (w[0] === 'f' && w.length > 1) throw new ScriptError('syntax', w);
        if (flagActed) { elements++; flagActed = false; }
        break;
      case 'n': case 's': case 'S': case 'l': case 'r': case 'E': case '^': case 'p': case '?': break;
      case 't': case 'T':
        if (w.length > 1) throw new ScriptError('syntax', w);
        break;
      case '1': case '2':
        if (w.length > 1) throw new ScriptError('syntax', w);
        flagActed = true;
        break;
      case '.': case '/': flagActed = true; break;
      case '=':
        if (w.length === 1) throw new ScriptError('syntax', w);
        flagActed = true;
        break;
      default:
        // '!' (execlineb processors) is refused as s6-log built without execline does.
        throw new ScriptError('unrecognized', w);
    }
  }
  if (flagActed) elements++;
  else if (elements === 0) throw new ScriptError('no-action', undefined);
  return !flagActed;
}

/** Second pass, values: the sticky settings in force at each action, grouped into elements. */
function readValues(words: readonly string[], ignoredTrailing: boolean): Script {
  let alertLimit = 200;
  let statusSize = 1001;
  let maxSize = 99999;
  let maxFiles = 10;
  let tolerance = 2000;
  let maxTotal = 0;
  let retryMs = 2000;
  let processor: string | undefined;
  let prefix: string | undefined;
  let tai = false;
  let iso = false;
  let wantsTai = false;
  let wantsIso = false;
  const out: ScriptElement[] = [];
  const logdirs: LogdirSpec[] = [];
  let sels: Selection[] = [];
  let acts: Action[] = [];
  const common = (): ActionCommon => {
    const c = { tai, iso, prefix };
    wantsTai ||= tai; wantsIso ||= iso;
    tai = false; iso = false;
    return c;
  };
  for (const w of words) {
    const num = (max: number): number => {
      const n = scanUint(w, max);
      if (n === undefined) throw new ScriptError('syntax', w);
      return n;
    };
    switch (w[0]) {
      case 'f': case '+': case '-': {
        const sel = parseSelection(w);
        if (acts.length > 0) { out.push({ selections: sels, actions: acts }); sels = []; acts = []; }
        sels.push(sel);
        break;
      }
      case 'n': maxFiles = num(U32); break;
      case 's': maxSize = Math.min(Math.max(num(U32), 4096), 268435455); break;
      case 'S': {
        const m = /^\d+/.exec(w.slice(1));
        if (m === null || BigInt(m[0]) > 0xffffffffffffffffn) throw new ScriptError('syntax', w);
        maxTotal = Number(m[0]);
        break;
      }
      case 'l':
        tolerance = num(U32);
        if (tolerance > maxSize >> 1) throw new ScriptError('conflict', w);
        break;
      case 'r': retryMs = num(U32); break;
      case 'E': alertLimit = num(U32); break;
      case '^': statusSize = num(U32); break;
      case 'p': prefix = w.length > 1 ? w.slice(1) : undefined; break;
      case '?': processor = w.length > 1 ? w.slice(1) : undefined; break;
      case 't': tai = true; break;
      case 'T': iso = true; break;
      case '1': acts.push({ kind: 'stdout', ...common() }); break;
      case '2': acts.push({ kind: 'alert', limit: alertLimit, ...common() }); break;
      case '=': acts.push({ kind: 'status', file: w.slice(1), size: statusSize, ...common() }); break;
      case '.': case '/': {
        const logdir: LogdirSpec = { dir: w, maxFiles, maxSize, maxTotal, tolerance, retryMs, processor };
        logdirs.push(logdir);
        acts.push({ kind: 'logdir', logdir, ...common() });
        break;
      }
    }
  }
  if (acts.length > 0) out.push({ selections: sels, actions: acts });
  return { elements: out, wantsTai, wantsIso, logdirs, ignoredTrailing };
}

/** A selection directive: `f`, `+re` or `-re` (the regex compiled as a POSIX ERE). */
function parseSelection(w: string): Selection {
  if (w === 'f') return { kind: 'default' };
  let re: RegExp;
  try { re = compileEre(w.slice(1)); } catch (err) {
    // s6-log reports a regcomp failure as an unrecognized directive
    if (err instanceof EreError) throw new ScriptError('unrecognized', w, err.message);
    throw err;
  }
  return { kind: w[0] === '+' ? 'plus' : 'minus', re, source: w.slice(1) };
}
