/** The execlineb lexer that turns a oneshot's up/down file into an argv (src/s6/execline.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lexExecline } from '../../src/s6/execline.ts';

const argv = (text: string): string[] => {
  const r = lexExecline(Buffer.from(text));
  if (!r.ok) assert.fail(`unexpected error: ${r.message}`);
  return r.argv;
};
const error = (text: string | Uint8Array): { message: string; line: number } => {
  const r = lexExecline(typeof text === 'string' ? Buffer.from(text) : text);
  if (r.ok) assert.fail(`expected an error, got ${JSON.stringify(r.argv)}`);
  return r;
};

test('words are separated by any whitespace, newlines included', () => {
  assert.deepEqual(argv('echo  a\tb\r\nc\n'), ['echo', 'a', 'b', 'c']);
  assert.deepEqual(argv(''), []);
  assert.deepEqual(argv('  \n\n'), []);
});

test('a quoted string is one word, even with spaces, and glues to unquoted bytes', () => {
  assert.deepEqual(argv('echo "demo-oneshot-1 is up"\n'), ['echo', 'demo-oneshot-1 is up']);
  assert.deepEqual(argv('a"b c"d'), ['ab cd']);
  assert.deepEqual(argv('""'), ['']);
  assert.deepEqual(argv('"multi\nline"'), ['multi\nline']);
});

test('# starts a comment where a word could start (so #! is a comment), not inside a word', () => {
  assert.deepEqual(argv('#!/bin/execlineb -P\necho hi # a comment\nx#y'), ['echo', 'hi', 'x#y']);
});

test('escapes in quotes: control letters, decimal, octal, hex, line continuation, others literal', () => {
  assert.deepEqual(argv('"a\\tb\\nc"'), ['a\tb\nc']);
  assert.deepEqual(argv('"\\101\\0101\\0x41"'), ['eAA']); // \101 is decimal (e); \0101 octal; \0x41 hex
  assert.deepEqual(argv('"x\\\ny"'), ['xy']);
  assert.deepEqual(argv('"\\"q\\" \\\\ \\$"'), ['"q" \\ $']);
  assert.deepEqual(argv('"\\0x4142"'), ['A42']); // at most two hex digits
});

test('a backslash outside quotes takes the next byte literally', () => {
  assert.deepEqual(argv('a\\ b \\"c'), ['a b', '"c']);
  assert.deepEqual(argv('\\{ x'), ['{', 'x']);
  assert.deepEqual(argv('x\\\ny \\ a'), ['x\ny', ' a'], 'a newline inside a word, a space starting one');
});

test("between words, a backslash before a newline or at the end is nothing, as execlineb reads it (Debian's execline 2.9, checked with printf <%s>)", () => {
  assert.deepEqual(argv('echo \\'), ['echo']);
  assert.deepEqual(argv('echo \\\n'), ['echo']);
  assert.deepEqual(argv('x \\\n\n'), ['x']);
  assert.deepEqual(argv('\\\na\n'), ['a']);
  assert.deepEqual(argv('a \\\n b\n'), ['a', 'b']);
});

test('blocks are encoded as execline does: words prefixed by one space per level, } becomes the level-1 spaces word', () => {
  assert.deepEqual(argv('foreground { echo a } echo b'), ['foreground', ' echo', ' a', '', 'echo', 'b']);
  assert.deepEqual(argv('if { if { true } } x'), ['if', ' if', '  true', ' ', '', 'x']);
  assert.deepEqual(argv('if {\n  "a b"\n}\nz'), ['if', ' a b', '', 'z']);
  assert.deepEqual(argv('{x y}'), ['{x', 'y}']); // braces glued to a word are ordinary bytes
});

test('UTF-8 text passes through unchanged', () => {
  assert.deepEqual(argv('echo "héllo wörld" ✓'), ['echo', 'héllo wörld', '✓']);
});

test('unmatched braces, bad escapes and unterminated quotes are refused with the line', () => {
  assert.deepEqual(error('if { true'), { ok: false, message: 'unmatched {', line: 1 });
  assert.equal(error('a\nb }').message, 'unmatched }');
  assert.equal(error('a\nb }').line, 2);
  assert.equal(error('echo "abc').message, 'syntax error: unterminated quoted string');
  assert.equal(error('x {').message, 'syntax error: { at the end of the script');
  assert.equal(error('echo a\\').message, 'syntax error: backslash at the end of the script');
  assert.equal(error('"\\0z"').message, 'syntax error: \\0 must be followed by octal digits or x');
  assert.equal(error('"\\0xg"').message, 'syntax error: \\0x must be followed by hex digits');
});

test('a NUL byte, in the file or from an escape, is refused (execlineb would truncate)', () => {
  assert.match(error(Buffer.from('echo a\0b')).message, /NUL byte/);
  assert.match(error('"\\0000"').message, /NUL byte/);
  assert.match(error('"\\256"').message, /NUL byte/); // 256 & 0xff = 0
});

test('words that are not valid UTF-8 are refused (argvs are stored as JSON text)', () => {
  assert.match(error('"\\0xff"').message, /not valid UTF-8/);
  assert.match(error(Buffer.from([0x61, 0xc3, 0x20])).message, /not valid UTF-8/);
});
