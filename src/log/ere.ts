/**
 * POSIX extended regular expressions (as s6-log compiles them: REG_EXTENDED | REG_NOSUB |
 * REG_NEWLINE, C locale, glibc) translated to JavaScript RegExp source.
 *
 * Only match / no match matters to s6-log, so POSIX's leftmost-longest rule and JS's
 * leftmost-first rule give the same answers. Lines are matched as latin1 strings (one
 * char per byte), so the translation works on bytes, as glibc does in the C locale.
 *
 * Supported (translated faithfully):
 *   literals; `.` (any byte but newline); `^` `$` anchors anywhere; `|`; groups `( )`;
 *   `*` `+` `?` and intervals `{m}` `{m,}` `{m,n}` (m, n ≤ 255, RE_DUP_MAX), stacked
 *   quantifiers (`a**`); bracket expressions with ranges, a leading `^`, a leading `]`,
 *   `\` as a plain character, and the classes [:alpha:] [:digit:] [:alnum:] [:upper:]
 *   [:lower:] [:space:] [:blank:] [:punct:] [:print:] [:graph:] [:cntrl:] [:xdigit:];
 *   `\` before a special character (literal); glibc's `\w` `\W` `\s` `\S` `\b` `\B`;
 *   `\` before any other ordinary character (that character, as glibc reads it).
 * Refused with an EreError (no faithful translation):
 *   back-references `\1`…`\9`, `\<` `\>` `` \` `` `\'`, equivalence classes `[=x=]`,
 *   collating symbols `[.x.]`, a quantifier with nothing to repeat, a malformed interval,
 *   unbalanced parentheses or brackets, an unknown character class, a trailing `\`.
 */

/** A pattern that is not a POSIX ERE, or uses a construct t6 does not translate. */
export class EreError extends Error {
  override name = 'EreError';
}

const CLASSES: Record<string, string> = {
  alpha: 'A-Za-z',
  digit: '0-9',
  alnum: '0-9A-Za-z',
  upper: 'A-Z',
  lower: 'a-z',
  space: ' \\t\\n\\v\\f\\r',
  blank: ' \\t',
  punct: '!-\\/:-@\\[-`{-~',
  print: ' -~',
  graph: '!-~',
  cntrl: '\\x00-\\x1f\\x7f',
  xdigit: '0-9A-Fa-f',
};

/** A char as a JS RegExp literal (outside or inside a class: escaped when needed). */
function lit(ch: string): string {
  const code = ch.charCodeAt(0);
  if (code < 0x20 || code >= 0x7f) return `\\x${code.toString(16).padStart(2, '0')}`;
  return /[\\^$.*+?()[\]{}|\/-]/.test(ch) ? `\\${ch}` : ch;
}

/** Translates the ERE `pattern` (a latin1 string: one char per byte) into JS RegExp source. */
export function ereToJs(pattern: string): string {
  let out = '';
  let i = 0;
  // Where the last atom starts in `out` (undefined: nothing to quantify), and whether it
  // already carries a quantifier (then a second one needs a group around the first).
  let atomStart: number | undefined;
  let quantified = false;
  const depth: number[] = [];
  const atom = (text: string): void => { atomStart = out.length; quantified = false; out += text; };
  const quantify = (q: string): void => {
    if (atomStart === undefined) throw new EreError(`quantifier ${q} with nothing to repeat`);
    if (quantified) { out = `${out.slice(0, atomStart)}(?:${out.slice(atomStart)})`; }
    out += q;
    quantified = true;
  };
  while (i < pattern.length) {
    const ch = pattern[i]!;
    switch (ch) {
      case '.': atom('[^\\n]'); i++; break;
      case '^': case '$': out += ch; atomStart = undefined; i++; break;
      case '|': out += '|'; atomStart = undefined; i++; break;
      case '(': depth.push(out.length); out += '('; atomStart = undefined; i++; break;
      case ')': {
        const start = depth.pop();
        if (start === undefined) throw new EreError('unmatched )');
        out += ')';
        atomStart = start; quantified = false; i++;
        break;
      }
      case '*': case '+': case '?': quantify(ch); i++; break;
      case '{': {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
        if (m === null) throw new EreError(`malformed interval at offset ${i}`);
        const lo = Number(m[1]);
        const hi = m[3] === undefined || m[3] === '' ? undefined : Number(m[3]);
        if (lo > 255 || (hi !== undefined && (hi > 255 || hi < lo))) throw new EreError(`invalid interval ${m[0]}`);
        quantify(m[2] === undefined ? `{${lo}}` : `{${lo},${hi ?? ''}}`);
        i += m[0].length;
        break;
      }
      case '[': { const r = bracket(pattern, i); atom(r.source); i = r.end; break; }
      case '\\': {
        const next = pattern[i + 1];
        if (next === undefined) throw new EreError('trailing backslash');
        if (/[1-9]/.test(next)) throw new EreError(`back-reference \\${next} is not supported`);
        if ('<>`\''.includes(next)) throw new EreError(`\\${next} is not supported`);
        if ('wWsS'.includes(next)) atom(`\\${next}`);
        else if ('bB'.includes(next)) { out += `\\${next}`; atomStart = undefined; }
        else atom(lit(next));
        i += 2;
        break;
      }
      default: atom(lit(ch)); i++; break;
    }
  }
  if (depth.length > 0) throw new EreError('unmatched (');
  return out;
}

/** A bracket expression starting at `pattern[start] === '['`. */
function bracket(pattern: string, start: number): { source: string; end: number } {
  let i = start + 1;
  let negate = false;
  if (pattern[i] === '^') { negate = true; i++; }
  let body = '';
  let first = true;
  for (;;) {
    const ch = pattern[i];
    if (ch === undefined) throw new EreError('unmatched [');
    if (ch === ']' && !first) { i++; break; }
    first = false;
    if (ch === '[' && (pattern[i + 1] === ':' || pattern[i + 1] === '=' || pattern[i + 1] === '.')) {
      const kind = pattern[i + 1]!;
      const close = pattern.indexOf(`${kind}]`, i + 2);
      if (close < 0) throw new EreError(`unterminated [${kind}`);
      const name = pattern.slice(i + 2, close);
      if (kind !== ':') throw new EreError(`[${kind}${name}${kind}] is not supported`);
      const cls = CLASSES[name];
      if (cls === undefined) throw new EreError(`unknown character class [:${name}:]`);
      body += cls;
      i = close + 2;
      continue;
    }
    // a range a-z (a '-' first, last or right after a range is literal)
    if (pattern[i + 1] === '-' && pattern[i + 2] !== undefined && pattern[i + 2] !== ']') {
      const hi = pattern[i + 2]!;
      if (hi === '[') throw new EreError('a range ending in a class or collating element is not supported');
      if (hi.charCodeAt(0) < ch.charCodeAt(0)) throw new EreError(`invalid range ${ch}-${hi}`);
      body += `${lit(ch)}-${lit(hi)}`;
      i += 3;
      continue;
    }
    body += lit(ch);
    i++;
  }
  // [^…] excludes the newline too under REG_NEWLINE; lines never contain one anyway.
  return { source: negate ? `[^${body}\\n]` : `[${body}]`, end: i };
}

/** Compiles an ERE (given as it came from the command line, UTF-8) into a RegExp over latin1 lines. */
export function compileEre(pattern: string): RegExp {
  const bytes = Buffer.from(pattern, 'utf8').toString('latin1');
  const source = ereToJs(bytes);
  try {
    return new RegExp(source);
  } catch (err) {
    throw new EreError(`cannot translate: ${(err as Error).message}`);
  }
}
