import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProbeClock, withProbeClock, type ClockHost } from '../../src/supervise/probe-clock.ts';
import type { ProberDeps } from '../../src/supervise/probes.ts';

/** A host whose time moves only when the test says; its timers fire in due order as time passes. */
function manualHost(start = 1000): ClockHost & { advance(ms: number): void; armed(): number[]; arms: number } {
  let now = start;
  let timers: { at: number; fn: () => void; live: boolean }[] = [];
  const host = {
    arms: 0,
    monotonicMs: () => now,
    setTimer(ms: number, fn: () => void) {
      host.arms++;
      const t = { at: now + ms, fn, live: true };
      timers.push(t);
      return { cancel: () => { t.live = false; } };
    },
    advance(ms: number) {
      const end = now + ms;
      for (;;) {
        const next = timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at)[0];
        if (next === undefined) break;
        now = Math.max(now, next.at);
        next.live = false;
        next.fn();
      }
      timers = timers.filter((t) => t.live);
      now = end;
    },
    armed: () => timers.filter((t) => t.live).map((t) => t.at),
  };
  return host;
}

test('a timer fires at the first grid point at or after its due time, never early', () => {
  const host = manualHost(1010);
  const clock = new ProbeClock(host, 50);
  const fired: number[] = [];
  clock.setTimer(100, () => fired.push(host.monotonicMs())); // due 1110 → 1150
  clock.setTimer(140, () => fired.push(host.monotonicMs())); // due 1150 → 1150
  clock.setTimer(0, () => fired.push(host.monotonicMs())); // due 1010 → 1050
  host.advance(39);
  assert.deepEqual(fired, []);
  host.advance(1);
  assert.deepEqual(fired, [1050]);
  host.advance(99);
  assert.deepEqual(fired, [1050]);
  host.advance(1);
  assert.deepEqual(fired, [1050, 1150, 1150]);
  assert.equal(clock.pending, 0);
});

test('many timers share one host timer; with none pending there is none armed', () => {
  const host = manualHost(0);
  const clock = new ProbeClock(host, 50);
  let count = 0;
  for (let i = 0; i < 1000; i++) clock.setTimer(1000 + (i % 1000), () => count++);
  assert.equal(host.armed().length, 1, 'one host timer for the whole grid');
  host.advance(2000);
  assert.equal(count, 1000);
  assert.ok(host.arms <= 21, `${host.arms} host timers armed for 20 grid points`);
  assert.deepEqual(host.armed(), [], 'idle: nothing armed');
  const a = clock.setTimer(500, () => assert.fail('cancelled'));
  const b = clock.setTimer(700, () => assert.fail('cancelled'));
  assert.equal(host.armed().length, 1);
  a.cancel();
  a.cancel();
  b.cancel();
  assert.deepEqual(host.armed(), [], 'all cancelled: the host timer is cancelled too');
  host.advance(1000);
  assert.equal(clock.pending, 0);
});

test('a timer set from a callback, even for now, waits for a later firing; an earlier one re-arms', () => {
  const host = manualHost(0);
  const clock = new ProbeClock(host, 50);
  const order: string[] = [];
  clock.setTimer(300, () => order.push('late'));
  let arms = 0;
  clock.setTimer(50, () => {
    order.push('first');
    clock.setTimer(0, () => order.push('again'));
    order.push('first-end');
    arms = host.arms;
  });
  host.advance(50);
  assert.deepEqual(order, ['first', 'first-end', 'again'], 'the zero timer ran after its firing was over');
  assert.ok(host.arms > arms, 'in a host timer of its own, armed once the firing was over');
  host.advance(50);
  assert.deepEqual(order, ['first', 'first-end', 'again']);
  clock.setTimer(10, () => order.push('sooner'));
  host.advance(50);
  assert.deepEqual(order, ['first', 'first-end', 'again', 'sooner'], 'a new earlier point re-armed the host timer');
  host.advance(200);
  assert.deepEqual(order, ['first', 'first-end', 'again', 'sooner', 'late']);
});

test('a throwing callback: the others of its firing still run, the clock stays armed, the error reaches the host timer', () => {
  const host = manualHost(0);
  const clock = new ProbeClock(host, 50);
  const ran: number[] = [];
  clock.setTimer(10, () => { throw new Error('boom'); });
  clock.setTimer(20, () => ran.push(1));
  clock.setTimer(200, () => ran.push(2));
  assert.throws(() => host.advance(50), /boom/);
  assert.deepEqual(ran, [1]);
  host.advance(200);
  assert.deepEqual(ran, [1, 2]);
});

test('withProbeClock: one wrapper and one grid per host object, delegating the rest', () => {
  const host = manualHost(0);
  const killed: number[] = [];
  const deps: ProberDeps = {
    spawn: () => 42,
    kill: (pid) => { killed.push(pid); },
    setTimer: (ms, fn) => host.setTimer(ms, fn),
    monotonicMs: () => host.monotonicMs(),
  };
  const a = withProbeClock(deps);
  assert.equal(withProbeClock(deps), a);
  assert.notEqual(withProbeClock({ ...deps }), a);
  a.kill(7, 9);
  assert.deepEqual(killed, [7]);
  assert.equal(a.spawn({ path: '/bin/true', argv: ['true'] }, () => {}), 42);
  let fired = 0;
  a.coarseTimer!(30, () => fired++);
  a.coarseTimer!(40, () => fired++);
  assert.equal(host.armed().length, 1, 'both on one grid point, one host timer');
  host.advance(50);
  assert.equal(fired, 2);
});
