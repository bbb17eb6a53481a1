/** s6-style option parsing (skalibs subgetopt) as src/cli/_getopt.ts does it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getopt, uintOption } from '../../src/cli/_getopt.ts';
import { UsageError } from '../../src/cli/_run.ts';

const SVC = { flags: 'abqhkti12pcyrlPCKoduDUxOQ', withArg: 'sTw' };

test('bundled letters come out one by one, in order', () => {
  const r = getopt(['-dx', '-u', 'svc'], SVC);
  assert.deepEqual(r.options.map((o) => o.name), ['d', 'x', 'u']);
  assert.deepEqual(r.rest, ['svc']);
});

test('an option argument is the rest of the word, or the next word', () => {
  assert.deepEqual(getopt(['-wU', '-T100', 'a'], SVC).options, [{ name: 'w', value: 'U' }, { name: 'T', value: '100' }]);
  assert.deepEqual(getopt(['-T', '100', '-w', 'd', 'a'], SVC).options, [{ name: 'T', value: '100' }, { name: 'w', value: 'd' }]);
  // after flags in the same word: `-dwD` is -d then -w D
  assert.deepEqual(getopt(['-dwD', 'a'], SVC).options, [{ name: 'd', value: undefined }, { name: 'w', value: 'D' }]);
  // the argument may itself start with a dash
  assert.deepEqual(getopt(['-s', '-9', 'a'], SVC).options, [{ name: 's', value: '-9' }]);
});

test('-- ends the options; so does the first operand or a lone -', () => {
  assert.deepEqual(getopt(['-u', '--', '-d'], SVC), { options: [{ name: 'u', value: undefined }], rest: ['-d'] });
  assert.deepEqual(getopt(['a', '-d'], SVC).rest, ['a', '-d']);
  assert.deepEqual(getopt(['-', '-d'], SVC).rest, ['-', '-d']);
  assert.deepEqual(getopt([], SVC), { options: [], rest: [] });
});

test('an unknown letter or a missing argument is a UsageError', () => {
  assert.throws(() => getopt(['-Z', 'a'], SVC), UsageError);
  assert.throws(() => getopt(['-uZ', 'a'], SVC), /unknown option -Z/);
  assert.throws(() => getopt(['-T'], SVC), /option -T needs an argument/);
});

test('long options only when declared: flags, =value, or the next word', () => {
  const spec = { flags: 'n', withArg: 'o', long: { json: 'flag', name: 'arg' } as const };
  assert.deepEqual(getopt(['--json', '-n', 'd'], spec).options.map((o) => o.name), ['json', 'n']);
  assert.deepEqual(getopt(['--name=x', '--name', 'y', 'd'], spec).options, [{ name: 'name', value: 'x' }, { name: 'name', value: 'y' }]);
  assert.throws(() => getopt(['--nope'], spec), /unknown option --nope/);
  assert.throws(() => getopt(['--json=1'], spec), /takes no argument/);
  assert.throws(() => getopt(['--name'], spec), /needs an argument/);
  // without a long table, a --word is an unknown option letter run
  assert.throws(() => getopt(['--json'], { flags: 'n' }), UsageError);
});

test('uintOption accepts unsigned decimals only', () => {
  assert.equal(uintOption('T', '0'), 0);
  assert.equal(uintOption('T', '1500'), 1500);
  for (const bad of [undefined, '', '-1', '1.5', '12ms', ' 3']) assert.throws(() => uintOption('T', bad), UsageError);
});
