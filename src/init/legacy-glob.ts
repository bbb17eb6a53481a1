/**
 * Pathname expansion as the shell does it for an unquoted word (fix-attrs.d's paths), without
 * a shell: `*`, `?` and bracket expressions (`[abc]`, `[a-z]`, `[!x]`, `[^x]`) match within
 * one path component; a leading dot is matched only by a literal dot; the matches come
 * sorted; a pattern that matches nothing stands for itself. A backslash makes the next
 * character literal.
 */
import fs from 'node:fs';

/** Whether `part` holds an unescaped glob character. */
function isPattern(part: string): boolean {
  for (let i = 0; i < part.length; i++) {
    const ch = part[i]!;
    if (ch === '\\') i++;
    else if (ch === '*' || ch === '?' || ch === '[') return true;
  }
  return false;
}

const escapeRe = (s: string): string => s.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');

/** The bracket expression starting at `part[at]` ('['): its regex class and where it ends; undefined when unclosed. */
function bracket(part: string, at: number): { re: string; next: number } | undefined {
  let i = at + 1;
  let negate = false;
  if (part[i] === '!' || part[i] === '^') { negate = true; i++; }
  let body = '';
  for (let first = true; i < part.length; first = false) {
    const ch = part[i]!;
    if (ch === ']' && !first) return { re: `[${negate ? '^' : ''}${body}]`, next: i + 1 };
    if (part[i + 1] === '-' && part[i + 2] !== undefined && part[i + 2] !== ']') {
      body += `${escapeRe(ch)}-${escapeRe(part[i + 2]!)}`;
      i += 3;
    } else {
      body += escapeRe(ch);
      i++;
    }
  }
  return undefined;
}

/** A component pattern as an anchored regex. */
export function componentRegex(part: string): RegExp {
  let re = '';
  for (let i = 0; i < part.length;) {
    const ch = part[i]!;
    if (ch === '\\' && i + 1 < part.length) { re += escapeRe(part[i + 1]!); i += 2; continue; }
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const b = bracket(part, i);
      if (b !== undefined) { re += b.re; i = b.next; continue; }
      re += '\\[';
    } else re += escapeRe(ch);
    i++;
  }
  return new RegExp(`^${re}$`, 's');
}

/** `part` with its escapes removed (a literal component). */
const unescape = (part: string): string => part.replace(/\\(.)/gs, '$1');

/** Names of `dir` that `part` matches, in byte order (a leading dot only for a literal one). */
function matchIn(dir: string, part: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir === '' ? '.' : dir);
  } catch {
    return [];
  }
  const re = componentRegex(part);
  const dotOk = part.startsWith('.') || part.startsWith('\\.');
  return names.filter((n) => (dotOk || !n.startsWith('.')) && re.test(n)).sort(byteOrder);
}

/** Whether `p` names something (a dangling link too). */
function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Byte order of the UTF-8 names (s6-sort's, and the C locale's). */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Expands `pattern` as the shell would; no match: the pattern itself, escapes removed. */
export function expandGlob(pattern: string): string[] {
  if (!isPattern(pattern)) return [unescape(pattern)];
  let paths = [pattern.startsWith('/') ? '/' : ''];
  const join = (base: string, n: string): string => (base === '' ? n : base.endsWith('/') ? `${base}${n}` : `${base}/${n}`);
  for (const part of pattern.split('/')) {
    if (part === '') continue;
    paths = paths.flatMap((base) => (isPattern(part) ? matchIn(base, part) : [unescape(part)]).map((n) => join(base, n)));
  }
  // Literal components after the last pattern may name nothing: as in the shell, no match then.
  const found = paths.filter(exists);
  return found.length > 0 ? found : [unescape(pattern)];
}
