import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ControlGoal, type ControlOutcome, Waiters } from '../../src/supervise/waiter.ts';
import type { Supervisor } from '../../src/supervise/supervisor.ts';

/** A supervisor stand-in: a status, and commands that emit the events a test scripts. */
function fakeSupervisor(up: boolean, ready: boolean, onCommand: (bytes: string, emit: (e: string) => void) => void, waiters: () => Waiters): Supervisor {
  const sup = {
    status: { pid: up ? 42 : 0, finishing: false, ready },
    command(bytes: string) { onCommand(bytes, (e) => waiters().event(sup as unknown as Supervisor, e)); },
  };
  return sup as unknown as Supervisor;
}

/** Runs one control-and-wait; returns the outcome (or undefined if it has not ended) and the emitter. */
function control(state: [boolean, boolean], goal: ControlGoal, onCommand: (bytes: string, emit: (e: string) => void) => void, timeoutMs = 0) {
  const timers: (() => void)[] = [];
  const w = new Waiters((_ms, fn) => { timers.push(fn); return { cancel: () => { timers.splice(timers.indexOf(fn), 1); } }; });
  let emit: (e: string) => void = () => {};
  const sup = fakeSupervisor(state[0], state[1], (b, e) => { emit = e; onCommand(b, e); }, () => w);
  let outcome: ControlOutcome | undefined;
  let calls = 0;
  const cancel = w.control(sup, goal === 'U' || goal === 'u' ? 'u' : 'd', goal, timeoutMs, (o) => { outcome = o; calls++; });
  return { get outcome() { return outcome; }, get calls() { return calls; }, emit: (e: string) => emit(e), fire: () => timers.slice().forEach((t) => t()), cancel, w, sup };
}

test('up and ready: answered once U comes, not at u', () => {
  const c = control([false, true], 'U', (_b, emit) => emit('u'));
  assert.equal(c.outcome, undefined);
  c.emit('U');
  assert.deepEqual(c.outcome, { reached: true, failures: 0, timedOut: false });
  c.emit('d');
  c.emit('U');
  assert.equal(c.calls, 1, 'answered once; no longer subscribed');
});

test('events the command causes at once are seen (the subscription comes first)', () => {
  const c = control([false, true], 'U', (_b, emit) => { emit('u'); emit('U'); });
  assert.deepEqual(c.outcome, { reached: true, failures: 0, timedOut: false });
});

test('already in the wanted state: answered at once', () => {
  assert.deepEqual(control([true, true], 'U', () => {}).outcome, { reached: true, failures: 0, timedOut: false });
  assert.deepEqual(control([false, true], 'D', () => {}).outcome, { reached: true, failures: 0, timedOut: false });
  assert.equal(control([true, false], 'U', () => {}).outcome, undefined, 'up but not ready yet');
});

test('the supervisor ending (x) short of the goal is a failure; O is one while waiting for up', () => {
  const x = control([false, true], 'U', (_b, emit) => emit('u'));
  x.emit('x');
  assert.deepEqual(x.outcome, { reached: false, failures: 1, timedOut: false });
  const once = control([false, true], 'U', (_b, emit) => emit('u'));
  once.emit('O');
  assert.equal(once.outcome?.failures, 1);
  const down = control([true, true], 'D', (_b, emit) => emit('d'));
  down.emit('O'); // ignored when waiting for down
  assert.equal(down.outcome, undefined);
  down.emit('D');
  assert.deepEqual(down.outcome, { reached: true, failures: 0, timedOut: false });
});

test('the timeout ends the wait; cancel (a client gone) unsubscribes without an answer', () => {
  const t = control([false, true], 'U', (_b, emit) => emit('u'), 1000);
  t.fire();
  assert.deepEqual(t.outcome, { reached: false, failures: 0, timedOut: true });
  t.emit('U');
  assert.equal(t.calls, 1);
  const c = control([false, true], 'U', (_b, emit) => emit('u'));
  c.cancel();
  c.emit('U');
  assert.equal(c.outcome, undefined);
});
