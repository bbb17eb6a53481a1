/** s6-log's script language as src/log/script.ts and src/log/ere.ts read it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseScript, ScriptError } from '../../src/log/script.ts';
import { compileEre, ereToJs, EreError } from '../../src/log/ere.ts';

const err = (words: string[]): ScriptError => {
  try { parseScript(words); } catch (e) { assert.ok(e instanceof ScriptError); return e; }
  assert.fail(`accepted ${words.join(' ')}`);
};

test('an unknown first letter is an unrecognized directive naming it', () => {
  const e = err(['n3', 'x', '/tmp/d']);
  assert.equal(e.code, 'unrecognized');
  assert.equal(e.directive, 'x');
  assert.equal(e.message, 'unrecognized directive: x');
  assert.equal(err(['!gzip', '1']).code, 'unrecognized'); // execlineb processors: not built in
});

test('t, T, f, 1, 2 must be one letter; = needs a name; numbers need digits: syntax errors', () => {
  for (const w of ['tt', 'Tx', 'fo', '12', '2x', '=', 'n', 'sx', 'r']) {
    const e = err([w, '1']);
    assert.equal(e.code, 'syntax', w);
    assert.equal(e.directive, w);
    assert.equal(e.message, `syntax error at directive: ${w}`);
  }
});

test('a bad regular expression is an unrecognized directive (as s6-log says), with the reason', () => {
  const e = err(['+a(b', '1']);
  assert.equal(e.code, 'unrecognized');
  assert.equal(e.directive, '+a(b');
  assert.equal(e.message, 'unrecognized directive: +a(b (unmatched ()');
  assert.match(err(['-x\\1', '1']).message, /back-reference/);
});

test('no action at all is refused; trailing non-actions are only flagged', () => {
  assert.equal(err(['n3', 's5000', '+x']).code, 'no-action');
  assert.equal(err([]).code, 'no-action');
  const s = parseScript(['1', 'n3', '+x']);
  assert.equal(s.ignoredTrailing, true);
  assert.equal(s.elements.length, 1);
});

test('l larger than half of s conflicts with the previous s directive', () => {
  const e = err(['s8000', 'l4001', '/d']);
  assert.equal(e.code, 'conflict');
  assert.equal(e.message, 'directive l4001 conflicts with previous s directive');
  assert.doesNotThrow(() => parseScript(['s8000', 'l4000', '/d']));
  assert.doesNotThrow(() => parseScript(['l2049', '/d'])); // default s is 99999
});

test('s is clamped to 4096…268435455; control directives are sticky, t and T are not', () => {
  const s = parseScript(['s10', 'n3', 'S100000', 'r50', '?gzip', 'T', '/a', 's999999999', 'p', '/b']);
  const [a, b] = s.logdirs;
  assert.equal(a!.maxSize, 4096);
  assert.equal(a!.maxFiles, 3);
  assert.equal(a!.maxTotal, 100000);
  assert.equal(a!.retryMs, 50);
  assert.equal(a!.processor, 'gzip');
  assert.equal(b!.maxSize, 268435455);
  assert.equal(b!.maxFiles, 3);
  const acts = s.elements[0]!.actions;
  assert.equal(acts[0]!.iso, true);
  assert.equal(acts[1]!.iso, false);
  assert.equal(s.wantsIso, true);
  assert.equal(s.wantsTai, false);
});

test('selections after an action start a new element', () => {
  const s = parseScript(['-^a', '1', '+^a', 'pX', '2', '=st', 'f', './d']);
  assert.equal(s.elements.length, 3);
  assert.deepEqual(s.elements.map((e) => e.selections.map((x) => x.kind)), [['minus'], ['plus'], ['default']]);
  assert.deepEqual(s.elements.map((e) => e.actions.map((x) => x.kind)), [['stdout'], ['alert', 'status'], ['logdir']]);
  assert.equal(s.elements[1]!.actions[0]!.prefix, 'X');
});

test('POSIX bracket expressions and classes translate to byte classes', () => {
  const m = (re: string, s: string): boolean => compileEre(re).test(s);
  assert.ok(m('^[[:alpha:]]+$', 'abcXYZ'));
  assert.ok(!m('^[[:alpha:]]+$', 'abc1'));
  assert.ok(m('^[[:digit:][:space:]]+$', '12 3\t4'));
  assert.ok(m('[]a]', ']'));          // leading ] is literal
  assert.ok(m('[^]a]', 'b'));
  assert.ok(!m('^[^]a]$', ']'));
  assert.ok(m('[a\\]', '\\'));       // backslash is plain inside brackets
  assert.ok(m('^[a-c-]+$', 'ab-c'));
  assert.ok(m('^[[:punct:]]+$', '!/:@[`{~'));
  assert.ok(!m('[[:upper:]]', 'abc'));
});

test('anchors, alternation, groups, quantifiers and intervals', () => {
  const m = (re: string, s: string): boolean => compileEre(re).test(s);
  assert.ok(m('^(foo|bar)+$', 'foobarfoo'));
  assert.ok(!m('^(foo|bar)+$', 'foobaz'));
  assert.ok(m('^a{2,3}$', 'aaa'));
  assert.ok(!m('^a{2,3}$', 'aaaa'));
  assert.ok(m('^a{2}b{1,}$', 'aabbb'));
  assert.ok(m('^a**$', 'aaa'));     // stacked quantifiers are legal in ERE
  assert.ok(m('a.c', 'abc'));
  assert.ok(m('a\\.c', 'a.c'));
  assert.ok(!m('a\\.c', 'abc'));
  assert.ok(m('x/y', 'x/y'));
  assert.ok(m('\\w+\\s', 'ab '));
  assert.ok(m('^\\n$', 'n'));        // glibc: an escaped ordinary char is itself
  assert.ok(m('error', 'an error here'));
  assert.ok(m('^$', ''));
  assert.ok(m('', 'anything'));
  assert.ok(m('[é]', Buffer.from('é').toString('latin1'))); // bytes, as in the C locale
});

test('constructs without a faithful translation are refused with a reason', () => {
  for (const [re, why] of [['(a)\\1', /back-reference/], ['\\<w', /not supported/], ['[[=a=]]', /not supported/],
    ['[[.a.]]', /not supported/], ['*a', /nothing to repeat/], ['a{x}', /malformed interval/], ['a{3,2}', /invalid interval/],
    ['(a', /unmatched \(/], ['a)', /unmatched \)/], ['[a', /unmatched \[/], ['[[:foo:]]', /unknown character class/], ['a\\', /trailing/]] as const) {
    assert.throws(() => ereToJs(re), (e: unknown) => e instanceof EreError && why.test(e.message), re);
  }
});
