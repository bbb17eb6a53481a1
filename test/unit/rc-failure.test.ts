/** t6-rc's failure reasons: typed, told apart, and worded as s6-rc words them (s6-rc.md §7). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFailure, failureOfWaitStatus } from '../../src/rc/failure.ts';

test('a oneshot exiting 99 and a longrun timing out are different reasons, even if s6-rc words them alike', () => {
  const exited = failureOfWaitStatus(99 << 8, false);
  assert.deepEqual(exited, { kind: 'exited', code: 99 });
  assert.notDeepEqual(exited, { kind: 'timed-out' });
  assert.equal(describeFailure(exited!), 'command exited 99');
  assert.equal(describeFailure({ kind: 'timed-out' }), 'command exited 99');
});

test('wait statuses: success, exit codes, signals, and a kill for running past the timeout', () => {
  assert.equal(failureOfWaitStatus(0, false), undefined);
  assert.deepEqual(failureOfWaitStatus(3 << 8, false), { kind: 'exited', code: 3 });
  assert.deepEqual(failureOfWaitStatus(9, true), { kind: 'crashed', signal: 9, timedOut: true });
  assert.equal(describeFailure({ kind: 'crashed', signal: 15, timedOut: false }), 'command crashed with signal 15');
  assert.equal(describeFailure({ kind: 'crashed', signal: 9, timedOut: true }), 'command crashed with signal 9 (timed out)');
});

test('longrun failures carry the exit code s6-svc -w would have had', () => {
  assert.equal(describeFailure({ kind: 'failed' }), 'command exited 1');
  assert.equal(describeFailure({ kind: 'not-supervised', detail: '/run/x is not supervised here' }), 'command exited 102 (/run/x is not supervised here)');
  assert.equal(describeFailure({ kind: 'system', detail: 'the runner connection broke: EPIPE' }), 'command exited 111 (the runner connection broke: EPIPE)');
  assert.equal(describeFailure({ kind: 'runner', detail: 'unable to spawn x: No such file or directory' }), 'unable to spawn x: No such file or directory');
});
