/** The t6-rc planner: closures, phases, waves, failures, essentials, prune. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Graph, PhaseRun, closure, planChange, reverseDeps, simulate } from '../../src/rc/plan.ts';

// 0 ← 1 ← 3, 0 ← 2 ← 3 (a diamond: 3 needs 1 and 2, both need 0), 4 alone, 5 needs 4.
const diamond: Graph = { atomics: 6, deps: [[], [0], [0], [1, 2], [], [4]], essential: [false, false, false, false, false, false] };
const none = [false, false, false, false, false, false];
const all = [true, true, true, true, true, true];

test('up closes over dependencies, down over reverse dependencies', () => {
  assert.deepEqual([...closure(diamond, [3], true)].sort(), [0, 1, 2, 3]);
  assert.deepEqual([...closure(diamond, [0], false)].sort(), [0, 1, 2, 3]);
  assert.deepEqual([...closure(diamond, [1], false)].sort(), [1, 3]);
  assert.deepEqual(reverseDeps(diamond), [[1, 2], [3], [3], [], [5], []]);
});

test('a service starts once all its dependencies in the selection succeeded; independent ones in parallel', () => {
  const phases = planChange(diamond, [3, 5], none, { up: true, prune: false });
  assert.deepEqual(simulate(diamond, phases, none, false), [
    { up: true, wave: [0, 4] }, { up: true, wave: [1, 2, 5] }, { up: true, wave: [3] },
  ]);
});

test('down runs in reverse: a service stops once its dependents are down', () => {
  const phases = planChange(diamond, [0], all, { up: false, prune: false });
  assert.deepEqual(simulate(diamond, phases, all, false), [
    { up: false, wave: [3] }, { up: false, wave: [1, 2] }, { up: false, wave: [0] },
  ]);
});

test('services already in the wanted state succeed at once and are not handed out', () => {
  const isUp = [true, true, false, false, false, false];
  const run = new PhaseRun(diamond, planChange(diamond, [3], isUp, { up: true, prune: false })[0]!, isUp, false);
  assert.deepEqual(run.next(), [2]);
  assert.deepEqual(run.settled, [[0, 'already'], [1, 'already']]);
});

test('a failure stops what depends on it; independent branches go on', () => {
  const run = new PhaseRun(diamond, planChange(diamond, [3, 5], none, { up: true, prune: false })[0]!, none, false);
  assert.deepEqual(run.next(), [0, 4]);
  run.finish(0, false);
  assert.deepEqual(run.next(), []);
  run.finish(4, true);
  assert.deepEqual(run.next(), [5]);
  run.finish(5, true);
  assert.deepEqual(run.next(), []);
  assert.equal(run.busy, false);
  assert.equal(run.failed, true);
  assert.equal(run.outcome.get(3), 'pending');
});

test('-d keeps essentials and what they depend on up; -D stops them', () => {
  const g: Graph = { ...diamond, essential: [false, true, false, false, false, false] };
  const phases = planChange(g, [0], all, { up: false, prune: false });
  assert.deepEqual(simulate(g, phases, all, false), [{ up: false, wave: [3] }, { up: false, wave: [2] }]);
  const run = new PhaseRun(g, phases[0]!, all, false);
  run.next().forEach((i) => run.finish(i, true));
  run.next().forEach((i) => run.finish(i, true));
  assert.equal(run.outcome.get(1), 'kept');
  assert.equal(run.outcome.get(0), 'kept');
  assert.deepEqual(run.settled, [[1, 'kept']]);
  assert.deepEqual(simulate(g, phases, all, true).map((w) => w.wave), [[3], [1, 2], [0]]);
});

test('-u -p brings down what is up outside the closure first; -d -p brings the rest up after', () => {
  const isUp = [true, false, false, false, true, true];
  assert.deepEqual(simulate(diamond, planChange(diamond, [1], isUp, { up: true, prune: true }), isUp, false), [
    { up: false, wave: [5] }, { up: false, wave: [4] }, { up: true, wave: [1] },
  ]);
  assert.deepEqual(simulate(diamond, planChange(diamond, [4], isUp, { up: false, prune: true }), isUp, false), [
    { up: false, wave: [5] }, { up: false, wave: [4] }, { up: true, wave: [1, 2] }, { up: true, wave: [3] },
  ]);
});

test('a 10-deep chain runs one at a time, in order', () => {
  const g: Graph = { atomics: 10, deps: Array.from({ length: 10 }, (_, i) => (i === 0 ? [] : [i - 1])), essential: Array(10).fill(false) };
  const off = Array(10).fill(false);
  assert.deepEqual(simulate(g, planChange(g, [9], off, { up: true, prune: false }), off, false).map((w) => w.wave), [[0], [1], [2], [3], [4], [5], [6], [7], [8], [9]]);
});

test('blockedBy: after a failure, the services of the phase that wait on it, directly or not, and were not attempted', () => {
  const run = new PhaseRun(diamond, planChange(diamond, [3, 5], none, { up: true, prune: false })[0]!, none, false);
  assert.deepEqual(run.next(), [0, 4]);
  run.finish(0, false);
  assert.deepEqual(run.blockedBy(0), [1, 2, 3]);
  assert.deepEqual(run.blockedBy(4), [5], 'running 4 holds up 5');
  run.finish(4, true);
  assert.deepEqual(run.next(), [5]);
  assert.deepEqual(run.blockedBy(4), [], 'what already started is not left undone');
  // Outside the phase's set: not this change's to start.
  const small = new PhaseRun(diamond, planChange(diamond, [1], none, { up: true, prune: false })[0]!, none, false);
  small.next();
  small.finish(0, false);
  assert.deepEqual(small.blockedBy(0), [1]);
});
