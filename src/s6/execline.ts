/**
 * The execlineb lexer, as s6-rc-compile applies it to a oneshot's `up` and `down` files:
 * the whole file becomes one argv, stored in the compiled database and later executed
 * directly (no shell, no execlineb at run time).
 *
 * Supported — the full syntax of execline's `el_parse` (2.9), byte for byte:
 * - words are separated by whitespace: every byte 0x01–0x20 (space, tab, newline, CR, …);
 * - `#` where a word could start begins a comment to the end of the line (so a `#!` line
 *   is a comment); inside a word `#` is an ordinary byte;
 * - a backslash outside quotes takes the next byte literally (even a newline or a quote),
 *   except between words, where one before a newline or the end of the file is nothing
 *   (`echo \` is `echo`, as execlineb reads it);
 * - `"…"` quotes, and may be glued to unquoted bytes (`a"b c"d` is one word `ab cd`);
 *   inside quotes: `\a \b \t \n \v \f \r` control bytes, `\` + newline is removed,
 *   `\DDD` 1–3 decimal digits, `\0OOO` up to 3 octal digits, `\0xHH` up to 2 hex digits
 *   give that byte, and `\` before any other byte gives that byte;
 * - `{` and `}` standing alone are blocks, encoded as execline programs expect them: each
 *   word inside a block is prefixed by one space per nesting level, and the closing `}`
 *   becomes a word of (level − 1) spaces (the empty word at level 1). So
 *   `foreground { echo a } echo b` → `foreground`, ` echo`, ` a`, ``, `echo`, `b`.
 *   `{x` or `x}` are ordinary words.
 *
 * Refused, with a message: an unterminated quote, a backslash ending the file inside a word, `\0` not
 * followed by an octal digit or `x`, `\0x` not followed by a hex digit, `{` as the last
 * byte, unmatched `{` or `}`, and (where execlineb would silently truncate) a NUL byte in
 * the file or produced by an escape, and words that are not valid UTF-8 (t6 stores argvs
 * as JSON text).
 */

import { isUtf8 } from 'node:buffer';

/** The result of lexing: an argv, or what is wrong and where (1-based line). */
export type LexResult = { ok: true; argv: string[] } | { ok: false; message: string; line: number };

/** Byte classes (execline's `class` table). */
function isSpace(b: number): boolean {
  return b >= 1 && b <= 32 && b !== 10;
}

/** Lexes an execline script into an argv. */
export function lexExecline(input: Uint8Array): LexResult {
  const argv: string[] = [];
  let word: number[] = [];
  let inWord = false;
  let level = 0;
  let line = 1;
  let i = 0;
  const n = input.length;
  const fail = (message: string): LexResult => ({ ok: false, message, line });

  for (; i < n; i++) {
    const b = input[i]!;
    if (b === 0) return fail('NUL byte in the script (execlineb would stop reading there)');
    if (!inWord) {
      if (b === 10) { line++; continue; }
      if (isSpace(b)) continue;
      // As el_parse: between words, a backslash before a newline or the end is nothing.
      if (b === 0x5c && (i + 1 >= n || input[i + 1] === 10)) {
        if (i + 1 < n) { i++; line++; }
        continue;
      }
      if (b === 0x23) { // '#': comment to end of line
        while (i + 1 < n && input[i + 1] !== 10) i++;
        continue;
      }
      if ((b === 0x7b || b === 0x7d) && (i + 1 >= n || isSpace(input[i + 1]!) || input[i + 1] === 10)) {
        if (b === 0x7b) {
          if (i + 1 >= n) return fail('syntax error: { at the end of the script');
          level++;
          continue;
        }
        if (level === 0) return fail('unmatched }');
        level--;
        const bad = appendWord(argv, blockIndent(level)); // the closing } itself
        if (bad !== undefined) return fail(bad);
        continue;
      }
      word = blockIndent(level);
      inWord = true;
    }
    // In a word (possibly just started with this byte).
    if (isSpace(b) || b === 10) {
      inWord = false;
      const bad = appendWord(argv, word);
      if (bad !== undefined) return fail(bad);
      if (b === 10) line++;
      continue;
    }
    if (b === 0x5c) { // backslash: next byte literally
      if (i + 1 >= n) return fail('syntax error: backslash at the end of the script');
      const next = input[++i]!;
      if (next === 0) return fail('NUL byte in the script (execlineb would stop reading there)');
      if (next === 10) line++;
      word.push(next);
      continue;
    }
    if (b === 0x22) { // quoted string
      const r = lexQuoted(input, i + 1, word);
      if ('error' in r) return r.unterminated ? fail(r.error) : { ok: false, message: r.error, line: line + r.lines };
      line += r.lines;
      i = r.end; // index of the closing quote
      continue;
    }
    word.push(b);
  }
  if (inWord) {
    const bad = appendWord(argv, word);
    if (bad !== undefined) return fail(bad);
  }
  if (level > 0) return fail('unmatched {');
  return { ok: true, argv };
}

/** A new word's first bytes: one space per block level, as execline marks words inside blocks. */
function blockIndent(level: number): number[] {
  const word: number[] = [];
  for (let k = 0; k < level; k++) word.push(32);
  return word;
}

/** Appends a word's bytes to `argv` as text; what is wrong if they are not valid UTF-8. */
function appendWord(argv: string[], word: readonly number[]): string | undefined {
  let ascii = true;
  for (let i = 0; i < word.length; i++) if (word[i]! >= 0x80) { ascii = false; break; }
  if (ascii && word.length <= 4096) { argv.push(String.fromCharCode(...word)); return undefined; }
  const buf = Buffer.from(word);
  if (!isUtf8(buf)) return `word ${JSON.stringify(buf.toString('utf8'))} is not valid UTF-8`;
  argv.push(buf.toString('utf8'));
  return undefined;
}

const DIGIT = (b: number, base: number): number => {
  let v = -1;
  if (b >= 0x30 && b <= 0x39) v = b - 0x30;
  else if (b >= 0x61 && b <= 0x66) v = b - 0x61 + 10;
  else if (b >= 0x41 && b <= 0x46) v = b - 0x41 + 10;
  return v >= 0 && v < base ? v : -1;
};

const CONTROL: Record<number, number> = { 0x61: 7, 0x62: 8, 0x74: 9, 0x6e: 10, 0x76: 11, 0x66: 12, 0x72: 13 };

/** Lexes a quoted string from `start` (after the opening quote) into `word`. */
function lexQuoted(input: Uint8Array, start: number, word: number[]): { end: number; lines: number } | { error: string; lines: number; unterminated: boolean } {
  let lines = 0;
  const n = input.length;
  const err = (error: string) => ({ error, lines, unterminated: false });
  for (let i = start; i < n; i++) {
    const b = input[i]!;
    if (b === 0) return err('NUL byte in the script (execlineb would stop reading there)');
    if (b === 0x22) return { end: i, lines };
    if (b === 10) { lines++; word.push(b); continue; }
    if (b !== 0x5c) { word.push(b); continue; }
    if (i + 1 >= n) break;
    const e = input[++i]!;
    if (e === 10) { lines++; continue; } // line continuation
    const ctl = CONTROL[e];
    if (ctl !== undefined) { word.push(ctl); continue; }
    let base = 0;
    let max = 0;
    if (e >= 0x31 && e <= 0x39) { base = 10; max = 3; i--; } // \DDD: the digit is part of the number
    else if (e === 0x30) {
      const f = input[i + 1];
      if (f === 0x78) { base = 16; max = 2; i++; } // \0xHH
      else if (f !== undefined && DIGIT(f, 8) >= 0) { base = 8; max = 3; } // \0OOO
      else return err('syntax error: \\0 must be followed by octal digits or x');
      if (base === 16 && (input[i + 1] === undefined || DIGIT(input[i + 1]!, 16) < 0)) return err('syntax error: \\0x must be followed by hex digits');
    } else { word.push(e); continue; }
    let value = 0;
    let count = 0;
    while (count < max && i + 1 < n && DIGIT(input[i + 1]!, base) >= 0) {
      value = value * base + DIGIT(input[++i]!, base);
      count++;
    }
    const byte = value & 0xff;
    if (byte === 0) return err('an escape produces a NUL byte, which cannot be part of an argument');
    word.push(byte);
  }
  // Reported at the line where the quote was opened: that is where to look.
  return { error: 'syntax error: unterminated quoted string', lines, unterminated: true };
}
