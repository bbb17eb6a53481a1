/**
 * t6-rc's failure reasons: typed, told apart, and worded as s6-rc words them (s6-rc.md §7),
 * except a longrun's timeout and death, which s6-rc has no true words for (issue 14).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFailure, describeStartFailure, failureOfWaitStatus } from '../../src/rc/failure.ts';

test('a oneshot exiting 99 and a longrun timing out are different reasons, and worded apart (s6-rc says "command exited 99" for both)', () => {
  const exited = failureOfWaitStatus(99 << 8, false);
  assert.deepEqual(exited, { kind: 'exited', code: 99 });
  assert.equal(describeFailure(exited!), 'command exited 99');
  assert.equal(describeFailure({ kind: 'timed-out', ms: 300, waiting: 'readiness' }), 'timed out after 300 ms waiting for readiness');
  assert.equal(describeFailure({ kind: 'timed-out', ms: 400, waiting: 'up' }), 'timed out after 400 ms waiting for it to start');
  assert.equal(describeFailure({ kind: 'timed-out', ms: 500, waiting: 'settle', settleMs: 2000 }), 'timed out after 500 ms waiting for it to stay up for 2000 ms (its settle time)');
  assert.equal(describeFailure({ kind: 'timed-out', ms: 600, waiting: 'down' }), 'timed out after 600 ms waiting for it to stop');
});

test('a longrun that died before it counted as up: after how long, and its exit code or signal', () => {
  assert.equal(describeFailure({ kind: 'died', afterMs: 12, wstat: 127 << 8, beforeReady: false }), 'died 12 ms after starting (exit code 127)');
  assert.equal(describeFailure({ kind: 'died', afterMs: 40, wstat: 9, beforeReady: true }), 'died 40 ms after starting, before it was ready (killed by SIGKILL)');
  assert.equal(describeFailure({ kind: 'died', afterMs: 3, wstat: undefined, beforeReady: false }), 'died 3 ms after starting');
});

test("a failed start names the dependents it leaves down after t6's own reasons only; s6-rc's lines stay s6-rc's", () => {
  const died = { kind: 'died', afterMs: 12, wstat: 127 << 8, beforeReady: false } as const;
  assert.equal(describeStartFailure(died, ['web', 'backup']), 'died 12 ms after starting (exit code 127) - not starting: web, backup');
  assert.equal(describeStartFailure(died, []), 'died 12 ms after starting (exit code 127)');
  assert.equal(describeStartFailure({ kind: 'timed-out', ms: 300, waiting: 'readiness' }, ['dep']), 'timed out after 300 ms waiting for readiness - not starting: dep');
  assert.equal(describeStartFailure({ kind: 'exited', code: 3 }, ['dep']), 'command exited 3');
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
