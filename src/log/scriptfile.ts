/**
 * A `log/t6-log` file: the arguments t6-log would take, one per line, for a logger that
 * t6-svscan runs inside itself.
 *
 * Format: one argument per line; leading and trailing blanks are removed; empty lines and
 * lines whose first non-blank character is `#` are ignored. Options come first, each on
 * its own line: `-l N` (or `-lN`, or `-l` then `N` on the next line) cuts lines longer
 * than N bytes — at most LINE_LIMIT_MAX, also for `-l 0`, which t6-log reads as no
 * limit: a logger inside pid 1 holds a partial line in memory until its newline; `-b`, `-p`, `-q`, `-v` are accepted and change nothing (an in-process
 * logger always waits rather than drops, and gets no signals); `--` ends the options.
 * Everything after is the s6-log script, one directive per line:
 *
 *     # nginx: keep 20 archives of 1 MB, ISO stamps
 *     -l 4096
 *     n20
 *     s1000000
 *     T
 *     /var/log/nginx
 *
 * A directive with blanks at either end cannot be written (use `[ ]` in a regex). A
 * relative logdir (`./main`) is taken from the `log/` directory, as s6-log run there would.
 */
import path from 'node:path';
import { parseScript, ScriptError, type Script } from './script.ts';

/**
 * The longest line an in-process logger holds before cutting it, whatever `-l` says (`-l 0`
 * included): a service that writes without a newline must not grow pid 1's memory. 1 MiB
 * is far above any log line worth keeping whole (t6-log's default is 8192).
 */
export const LINE_LIMIT_MAX = 1024 * 1024;

/** What a `log/t6-log` file asks for. */
export interface ScriptFile {
  readonly script: Script;
  /** -l (default 8192, as t6-log's), at most LINE_LIMIT_MAX: never 0. */
  readonly lineLimit: number;
}

/** Why a `log/t6-log` file was refused (the message names the line and the problem). */
export class ScriptFileError extends Error {
  override name = 'ScriptFileError';
}

/** The arguments of a `log/t6-log` file, comments and blank lines dropped. */
export function scriptFileWords(text: string): string[] {
  const words: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    words.push(line);
  }
  return words;
}

/**
 * Parses a `log/t6-log` file's text; throws ScriptFileError. Relative logdirs (`./dir`)
 * are taken from `baseDir` (the `log/` directory, where s6-log would run).
 */
export function parseScriptFile(text: string, baseDir = '.'): ScriptFile {
  if (text.includes('\0')) throw new ScriptFileError('contains a NUL byte (not a text file)');
  const words = scriptFileWords(text);
  let lineLimit = 8192;
  let i = 0;
  for (; i < words.length; i++) {
    const w = words[i]!;
    if (w === '--') { i++; break; }
    if (!w.startsWith('-') || w === '-') break;
    if (/^-[bpqv]+$/.test(w)) continue;
    // `-l 4096`, `-l4096`, or `-l` and the number on the next line; any other word starting
    // with `-` is the first directive (a deselection regex).
    const m = /^-([lt])\s*(\d*)$/.exec(w);
    if (m === null) break;
    let value = m[2]!;
    if (value === '') {
      value = words[++i] ?? '';
      if (!/^\d+$/.test(value)) throw new ScriptFileError(`option -${m[1]} needs a number${value === '' ? '' : `, not ${value}`}`);
    }
    if (m[1] === 'l') {
      const n = Number(value);
      lineLimit = n === 0 || n > LINE_LIMIT_MAX ? LINE_LIMIT_MAX : Math.max(n, 48);
    }
    // -t (t6-log's last-line timeout) has no use in-process: a partial line is kept across reloads.
  }
  const directives = words.slice(i).map((w) => (w.startsWith('.') ? path.join(baseDir, w) : w));
  if (directives.length === 0) throw new ScriptFileError('no script directive');
  try {
    return { script: parseScript(directives), lineLimit };
  } catch (err) {
    if (err instanceof ScriptError) throw new ScriptFileError(err.message);
    throw err;
  }
}
