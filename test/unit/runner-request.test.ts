/** The oneshot runner's request parser: valid requests pass, everything else is a reason, and random bytes never throw. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequest } from '../../src/supervise/runner-protocol.ts';
import { seededRandom } from '../lib/random.ts';

test('a full request is accepted; setenv and timeoutMs are optional', () => {
  assert.deepEqual(parseRequest('{"argv":["echo","hi"],"cwd":"/","env":null}'), { argv: ['echo', 'hi'], cwd: '/', env: null, setenv: [], timeoutMs: 0 });
  assert.deepEqual(parseRequest('{"argv":["x"],"cwd":"/tmp","env":["A=1"],"setenv":["RC_NAME=x"],"timeoutMs":500}'), { argv: ['x'], cwd: '/tmp', env: ['A=1'], setenv: ['RC_NAME=x'], timeoutMs: 500 });
});

test('each malformed field has its own reason', () => {
  const cases: [string, RegExp][] = [
    ['nope', /not valid JSON/], ['null', /not a JSON object/], ['"s"', /not a JSON object/],
    ['{"argv":"x","cwd":"/","env":null}', /argv/], ['{"argv":[""],"cwd":"/","env":null}', /argv/],
    ['{"argv":["a\\u0000b"],"cwd":"/","env":null}', /argv/],
    ['{"argv":["x"],"env":null}', /cwd/], ['{"argv":["x"],"cwd":"/","env":["NOEQUALS"]}', /env/],
    ['{"argv":["x"],"cwd":"/","env":null,"setenv":["=v"]}', /setenv/],
    ['{"argv":["x"],"cwd":"/","env":null,"timeoutMs":1.5}', /timeoutMs/],
    ['{"argv":["x"],"cwd":"/","env":null,"timeoutMs":1e20}', /timeoutMs/],
  ];
  for (const [line, re] of cases) assert.match(parseRequest(line) as string, re, line);
});

test('random input never throws and is never accepted', (t) => {
  const random = seededRandom(t);
  for (let i = 0; i < 5000; i++) {
    const line = random.bytes(1 + (i % 200)).toString(i % 2 === 0 ? 'latin1' : 'utf8');
    assert.equal(typeof parseRequest(line), 'string');
  }
});
