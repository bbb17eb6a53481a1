/**
 * The one Reaper (src/sys/reaper.ts), on a fake waitpid: statuses go to whoever watches
 * the pid; pid 1's orphans are dropped, while a small process (t6-log, keepUnwatched) keeps
 * a status until it is asked for; a spawn whose pid comes later still gets its child's
 * status; "no child left" is known; a throwing callback stops nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reaper, type ReaperOptions } from '../../src/sys/reaper.ts';
import type { Reaped } from '../../src/sys/spawn.ts';

/** A fake kernel: children that die are queued until the next reap; `alive` counts the rest. */
function fakeKernel() {
  const k = {
    dead: [] as Reaped[],
    alive: 0,
    die(pid: number, wstat: number) { k.dead.push({ pid, wstat }); k.alive--; },
    reapAll: () => ({ reaped: k.dead.splice(0), childless: k.alive === 0 && k.dead.length === 0 }),
  };
  return k;
}

function reaper(opts: Omit<ReaperOptions, 'reapAll'> = {}) {
  const kernel = fakeKernel();
  return { kernel, reaper: new Reaper({ ...opts, reapAll: kernel.reapAll }) };
}

/** Whether a promise has settled by now (after the microtasks queued so far). */
async function settled<T>(p: Promise<T>): Promise<{ value: T } | undefined> {
  let out: { value: T } | undefined;
  void p.then((value) => { out = { value }; });
  await new Promise((resolve) => setImmediate(resolve));
  return out;
}

test('a watched child gets its wait status when it is reaped, once', () => {
  const { kernel, reaper: r } = reaper();
  kernel.alive = 2;
  const got: [number, number][] = [];
  r.watch(10, (w) => got.push([10, w]));
  r.watch(11, (w) => got.push([11, w]));
  r.reap();
  assert.deepEqual(got, []);
  kernel.die(11, 0x0100);
  kernel.die(10, 15);
  r.reap();
  r.reap();
  assert.deepEqual(got, [[11, 0x0100], [10, 15]]);
});

test('pid 1 keeps no orphan status: a child reaped unwatched is dropped', async () => {
  const { kernel, reaper: r } = reaper();
  kernel.alive = 1;
  kernel.die(99, 0);
  r.reap();
  assert.equal(await settled(r.waitPid(99)), undefined, 'never delivered afterwards');
});

test('t6-log (keepUnwatched): a processor reaped before anyone asked still gives its status, once', async () => {
  const { kernel, reaper: r } = reaper({ keepUnwatched: true });
  kernel.alive = 2;
  kernel.die(20, 0x0200);
  r.reap();
  assert.deepEqual(await settled(r.waitPid(20)), { value: 0x0200 });
  assert.equal(await settled(r.waitPid(20)), undefined, 'the kept status is handed out once');
  const later = r.waitPid(21);
  kernel.die(21, 9);
  r.reap();
  assert.deepEqual(await settled(later), { value: 9 });
});

test('a spawn whose pid comes later gets the status of a child reaped meanwhile; other orphans are dropped once no spawn is under way', async () => {
  const { kernel, reaper: r } = reaper();
  kernel.alive = 3;
  const first = r.expect();
  const second = r.expect();
  kernel.die(30, 0x0300); // the first spawn's child, dead before its pid is known
  kernel.die(31, 0); // an orphan
  r.reap();
  let got: number | undefined;
  first(30, (w) => { got = w; });
  assert.equal(got, 0x0300);
  second(undefined); // that spawn failed
  second(32, () => assert.fail('a settled expectation is settled once'));
  assert.equal(await settled(r.waitPid(31)), undefined, 'the orphan was dropped');
});

test('under spawns that overlap without end, an orphan is dropped once every spawn under way began after it was reaped', async () => {
  const { kernel, reaper: r } = reaper();
  kernel.alive = 100;
  let prev = r.expect();
  // Each spawn begins before the previous one settles: one is always under way.
  for (let i = 0; i < 50; i++) {
    kernel.die(1000 + i, 0); // an orphan of the machine
    r.reap();
    const next = r.expect();
    prev(undefined);
    prev = next;
    assert.equal(await settled(r.waitPid(1000 + i)), undefined, `orphan ${1000 + i} was dropped`);
  }
  // A child reaped while the spawn now under way ran is kept: it is that spawn's.
  kernel.die(2000, 0x0100);
  r.reap();
  let got: number | undefined;
  prev(2000, (w) => { got = w; });
  assert.equal(got, 0x0100);
});

test('untilChildless resolves once a reap finds no child left and nothing watched or expected', async () => {
  const { kernel, reaper: r } = reaper();
  kernel.alive = 1;
  r.watch(40, () => {});
  const empty = r.untilChildless();
  assert.equal(await settled(empty), undefined);
  const settle = r.expect();
  kernel.die(40, 0);
  r.reap();
  assert.equal(await settled(empty), undefined, 'a spawn is still under way');
  settle(undefined);
  r.reap();
  assert.deepEqual(await settled(empty), { value: undefined });
  assert.deepEqual(await settled(r.untilChildless()), { value: undefined }, 'at once when none is left');
});

test('a callback that throws is reported and the others are still served', () => {
  const errors: unknown[] = [];
  const { kernel, reaper: r } = reaper({ onError: (err) => errors.push(err) });
  kernel.alive = 2;
  let served = false;
  r.watch(50, () => { throw new Error('boom'); });
  r.watch(51, () => { served = true; });
  kernel.die(50, 0);
  kernel.die(51, 0);
  r.reap();
  assert.equal(served, true);
  assert.deepEqual(errors.map((e) => (e as Error).message), ['boom']);
});
