/**
 * s6/svwait.ts against supervise-protocol.md §7: the start state (step 3), each event
 * byte's effect (step 5) and the goal test (step 6), for every state, goal and byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT_STATE, meets, stateOfStatus, step, wantOf, type WaitPhaseGoal, type WaitState } from '../../src/s6/svwait.ts';

const GOALS: WaitPhaseGoal[] = ['u', 'U', 'd', 'D'];
const STATES: WaitState[] = [{ up: false, ready: false }, { up: false, ready: true }, { up: true, ready: false }, { up: true, ready: true }];
/** Every byte a supervisor sends (§6.1: s u U d D O x), plus one it does not. */
const BYTES = ['s', 'u', 'U', 'd', 'D', 'O', 'x', '?'];

test('step 3: a wait starts up if there is a pid that is not finish\'s, ready as the ready flag says', () => {
  assert.deepEqual(stateOfStatus({ pid: 0, finishing: false, ready: true }), { up: false, ready: true });
  assert.deepEqual(stateOfStatus({ pid: 42, finishing: false, ready: false }), { up: true, ready: false });
  assert.deepEqual(stateOfStatus({ pid: 42, finishing: true, ready: false }), { up: false, ready: false }, 'finish running: down');
  assert.deepEqual(stateOfStatus({ pid: 42, finishing: false, ready: true }), { up: true, ready: true });
});

test('step 5: d, D, u, U set (up, ready) to (0,0), (0,1), (1,0), (1,1) whatever came before and whatever is awaited', () => {
  const expected = { d: [false, false], D: [false, true], u: [true, false], U: [true, true] };
  for (const [byte, [up, ready]] of Object.entries(expected)) {
    assert.deepEqual(EVENT_STATE[byte as WaitPhaseGoal], { up, ready });
    for (const state of STATES) for (const goal of GOALS) {
      assert.deepEqual(step(state, wantOf(goal), byte), { state: { up, ready }, failure: false }, `${byte} from ${JSON.stringify(state)} for -${goal}`);
    }
  }
});

test('step 5: O, when waiting for up (-u, -U), counts a failure and the service as arrived; waiting for down it is ignored', () => {
  for (const state of STATES) {
    for (const goal of ['u', 'U'] as const) assert.deepEqual(step(state, wantOf(goal), 'O'), { state: wantOf(goal), failure: true });
    for (const goal of ['d', 'D'] as const) assert.equal(step(state, wantOf(goal), 'O'), undefined);
  }
});

test('step 5: x counts a failure when the state differs from the wanted one, and the service as arrived in all cases', () => {
  for (const state of STATES) for (const goal of GOALS) {
    const want = wantOf(goal);
    const r = step(state, want, 'x');
    assert.deepEqual(r, { state: want, failure: state.up !== want.up || state.ready !== want.ready }, `x from ${JSON.stringify(state)} for -${goal}`);
    assert.equal(meets(r!.state, want), true);
  }
  // Down (not ready) when -D is awaited: short of the goal, a failure.
  assert.equal(step({ up: false, ready: false }, wantOf('D'), 'x')?.failure, true);
});

test('other bytes (s, or anything else) change nothing', () => {
  for (const state of STATES) for (const goal of GOALS) for (const byte of BYTES.filter((b) => !'uUdDOx'.includes(b))) {
    assert.equal(step(state, wantOf(goal), byte), undefined);
  }
});

test('step 6: -u up, -U up and ready, -d not up, -D not up and ready', () => {
  const table: Record<WaitPhaseGoal, boolean[]> = {
    // states: (0,0) (0,1) (1,0) (1,1)
    u: [false, false, true, true],
    U: [false, false, false, true],
    d: [true, true, false, false],
    D: [false, true, false, false],
  };
  for (const goal of GOALS) assert.deepEqual(STATES.map((s) => meets(s, wantOf(goal))), table[goal], `-${goal}`);
});
