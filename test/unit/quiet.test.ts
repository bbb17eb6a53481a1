/**
 * supervise/quiet.ts: pid 1 gives back its start-up pages once it has been quiet over a whole
 * window (not at a fixed time after the first scan), or after the longest wait. The clocks
 * are scripted: each look of whenQuiet sees one window pass and the CPU time the script says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { whenQuiet, type QuietReason } from '../../src/supervise/quiet.ts';

const WINDOW = 2000;

/** A scripted process: `busy[i]` is the CPU ms used in the i-th window (0 after the script). */
function scripted(busy: number[], maxWaitMs = 60_000): { looks: () => number; run: () => Promise<QuietReason> } {
  let t = 0;
  let cpu = 0;
  let nows = 0;
  let reads = 0;
  const opts = {
    firstCheckMs: 1, windowMs: 1, maxBusyFraction: 0.05, maxWaitMs,
    // now() is read at the call, when the first window starts, then at each look (before cpuMs):
    // a window has passed before each look.
    now: () => (nows++ >= 2 ? (t += WINDOW) : t),
    cpuMs: () => {
      if (reads >= 2) cpu += busy[reads - 2] ?? 0;
      reads++;
      return cpu;
    },
  };
  return {
    looks: () => Math.max(0, reads - 2),
    run: () => new Promise((resolve) => { whenQuiet(opts, resolve); }),
  };
}

test('whenQuiet: not while busy (a start-up, an rc change); once a whole window used at most 5 % of a CPU', async () => {
  // 3 busy windows (50 %, 100 %, 10 %), then one at 5 %: quiet at the 4th look.
  const p = scripted([1000, 2000, 200, 100]);
  assert.equal(await p.run(), 'quiet');
  assert.equal(p.looks(), 4);
  // At once when quiet from the first window on.
  const q = scripted([]);
  assert.equal(await q.run(), 'quiet');
  assert.equal(q.looks(), 1);
});

test('whenQuiet: a process never quiet gets it after maxWaitMs', async () => {
  const p = scripted(Array.from({ length: 1000 }, () => WINDOW), 10 * WINDOW);
  assert.equal(await p.run(), 'waited');
  assert.equal(p.looks(), 10);
});

test('whenQuiet: cancelled, it never runs', async () => {
  let ran = false;
  const cancel = whenQuiet({ firstCheckMs: 1, windowMs: 1, maxBusyFraction: 1, maxWaitMs: 0, now: () => 0, cpuMs: () => 0 }, () => { ran = true; });
  cancel();
  // A second one with the same timers, not cancelled: by the time it has run, the first would have.
  let t = 0;
  const second = await new Promise<QuietReason>((resolve) => {
    whenQuiet({ firstCheckMs: 1, windowMs: 1, maxBusyFraction: 1, maxWaitMs: 0, now: () => (t += 1), cpuMs: () => 0 }, resolve);
  });
  assert.equal(second, 'quiet');
  assert.equal(ran, false);
});
