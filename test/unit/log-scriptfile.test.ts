/** log/t6-log files: comments, options, relative logdirs, refusals with the reason. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LINE_LIMIT_MAX, parseScriptFile, ScriptFileError } from '../../src/log/scriptfile.ts';

test('comments and blank lines are ignored, lines trimmed, options first', () => {
  const f = parseScriptFile('# a comment\n\n  -b\n-l 100\n  n5 \nT\n./main\n', '/srv/web/log');
  assert.equal(f.lineLimit, 100);
  assert.equal(f.script.wantsIso, true);
  assert.deepEqual(f.script.logdirs.map((l) => [l.dir, l.maxFiles]), [['/srv/web/log/main', 5]]);
});

test('-l forms and clamping; -regex after the options is a directive', () => {
  assert.equal(parseScriptFile('-l4096\n/x\n').lineLimit, 4096);
  assert.equal(parseScriptFile('-l\n10\n/x\n').lineLimit, 48);
  assert.equal(parseScriptFile('/x\n').lineLimit, 8192);
  // In pid 1, a line is held until its newline: no limit, or a huge one, is LINE_LIMIT_MAX.
  assert.equal(parseScriptFile('-l 0\n/x\n').lineLimit, LINE_LIMIT_MAX);
  assert.equal(parseScriptFile('-l 99999999999\n/x\n').lineLimit, LINE_LIMIT_MAX);
  assert.equal(parseScriptFile(`-l ${LINE_LIMIT_MAX}\n/x\n`).lineLimit, LINE_LIMIT_MAX);
  const f = parseScriptFile('-b\n-debug\n/x\n');
  assert.equal(f.script.elements[0]!.selections[0]!.kind, 'minus');
});

test('refusals say why', () => {
  assert.throws(() => parseScriptFile('# nothing\n'), (e: unknown) => e instanceof ScriptFileError && e.message === 'no script directive');
  assert.throws(() => parseScriptFile('-l\nabc\n/x\n'), /option -l needs a number, not abc/);
  assert.throws(() => parseScriptFile('+a(\n/x\n'), /unrecognized directive: \+a\(/);
  assert.throws(() => parseScriptFile('n5\n'), /no action directive/);
  assert.throws(() => parseScriptFile('/x\0\n'), /NUL/);
});
