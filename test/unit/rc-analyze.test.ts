/**
 * Boot analysis on constructed records: blame's order, the critical chain (starts and
 * stops), the SVG's structure, the store's numbering, bound and choices, and the kernel
 * log reader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpdir } from '../lib/harness.ts';
import { checkXml } from '../lib/xml.ts';
import type { Instant, ServiceTiming, TimingRecord } from '../../src/rc/timings.ts';
import { blame, blameText } from '../../src/rc/analyze/blame.ts';
import { UnknownTargetError, chainText, criticalChain } from '../../src/rc/analyze/critical-chain.ts';
import { formatMs } from '../../src/rc/analyze/model.ts';
import { plotSvg } from '../../src/rc/analyze/plot.ts';
import { tickLabel, tickStep } from '../../src/rc/analyze/svg.ts';
import { KEEP_CHANGES, TimingsError, listRecords, loadRecord, saveRecord } from '../../src/rc/timings-store.ts';
import { kernelLogRecord } from '../../src/sys/kmsg.ts';

const REAL = 1_796_000_000_000;
const at = (mono: number): Instant => ({ mono, real: REAL + mono });

/** A start: requested at `req`, spawned `spawn` later, up `up` later, ready `ready` later (ms, cumulative). */
function started(name: string, type: 'oneshot' | 'longrun', deps: string[], req: number, spawn: number, up: number, ready: number): ServiceTiming {
  return {
    name, type, direction: 'up', deps, readiness: type === 'longrun' && ready > 0, requested: at(req),
    spawned: at(req + spawn), up: at(req + spawn + up), ready: at(req + spawn + up + ready), ended: at(req + spawn + up + ready + 1),
  };
}

/** A boot at monotonic 2000 ms (kernel's Run /sbin/init), stage 1 until 2600, then: mounts → syslog → db → web, and cache beside. */
function bootRecord(): TimingRecord {
  return {
    version: 1, kind: 'boot', seq: 0, request: { names: ['default'], up: true, prune: true },
    targets: { default: ['web', 'cache'] }, started: at(2600), ended: at(5000), exitCode: 0, kernelInit: 2000,
    stages: [{ name: 'node start', start: 2100, end: 2400 }, { name: 'copy run-image', start: 2400, end: 2500 }, { name: 't6-rc-init', start: 2500, end: 2600 }],
    services: [
      started('mounts', 'oneshot', [], 2600, 5, 200, 0),
      started('syslog', 'longrun', ['mounts'], 2810, 3, 0, 300),
      started('cache', 'longrun', ['mounts'], 2810, 3, 0, 0),
      started('db', 'longrun', ['syslog'], 3120, 3, 0, 1200),
      started('web', 'longrun', ['db', 'cache'], 4330, 3, 0, 500),
    ],
  };
}

test('blame lists every transition by requested → ready (→ up without readiness), longest first', () => {
  const b = blame(bootRecord());
  assert.deepEqual(b.map((e) => [e.name, e.ms]), [['db', 1203], ['web', 503], ['syslog', 303], ['mounts', 205], ['cache', 3]]);
  assert.equal(b[0]!.requestedAt, 1120); // from the kernel's Run /sbin/init
  assert.equal(blameText(b).split('\n')[0], '1.203s db');
});

test('the critical chain follows, from the target, the dependency done last', () => {
  const r = bootRecord();
  const c = criticalChain(r);
  assert.equal(c.target, 'default');
  assert.deepEqual(c.links.map((l) => [l.name, l.at, l.took]), [['web', 2833, 503], ['db', 2323, 1203], ['syslog', 1113, 303], ['mounts', 805, 205]]);
  assert.match(c.origin, /kernel's Run \/sbin\/init/);
  assert.deepEqual(criticalChain(r, 'db').links.map((l) => l.name), ['db', 'syslog', 'mounts']);
  assert.deepEqual(criticalChain(r, 'cache').links.map((l) => l.name), ['cache', 'mounts']);
  assert.throws(() => criticalChain(r, 'nope'), UnknownTargetError);
  assert.equal(chainText(c).split('\n').slice(3).join('\n'), 'default @2.833s\n└─web @2.833s +503ms\n  └─db @2.323s +1.203s\n    └─syslog @1.113s +303ms\n      └─mounts @805ms +205ms\n');
  // A single service as the target heads the tree itself.
  assert.equal(chainText(criticalChain(r, 'syslog')).split('\n').slice(3).join('\n'), 'syslog @1.113s +303ms\n└─mounts @805ms +205ms\n');
});

test('for a stop, the gates are the dependents (stopped first); a failure counts when t6-rc saw it end', () => {
  const down = (name: string, deps: string[], req: number, took: number, failure?: string): ServiceTiming => ({
    name, type: 'longrun', direction: 'down', deps, readiness: false, requested: at(req), ended: at(req + took),
    ...(failure === undefined ? { down: at(req + took) } : { failure }),
  });
  const r: TimingRecord = {
    ...bootRecord(), kind: 'change', seq: 3, stages: [], request: { names: ['mounts'], up: false, prune: false }, targets: { mounts: ['mounts'] },
    started: at(100), ended: at(900),
    services: [down('web', ['db'], 100, 50), down('db', ['syslog'], 150, 400, 'timed out'), down('syslog', ['mounts'], 550, 20), down('mounts', [], 570, 10)],
  };
  delete r.kernelInit;
  assert.deepEqual(criticalChain(r).links.map((l) => l.name), ['mounts', 'syslog', 'db', 'web']);
  assert.equal(criticalChain(r).links[0]!.at, 480); // from the change's start
  assert.equal(blame(r)[0]!.failure, 'timed out');
  assert.match(blameText(blame(r)), /^400ms db \(stop\) \(failed: timed out\)$/m);
});

test('plot: well-formed SVG, one bar group per transition, stage 1 steps, the kernel line, chain arrows, escaped names, no scripts', () => {
  const r = bootRecord();
  r.services.push({ ...started('a&b<c>', 'oneshot', [], 2700, 1, 50, 0), failure: 'exited 1' });
  const svg = plotSvg(r);
  const xml = checkXml(svg);
  assert.deepEqual(xml.problems, []);
  assert.equal(xml.root, 'svg');
  assert.equal((svg.match(/<g class="service"/g) ?? []).length, 6);
  assert.equal((svg.match(/<g class="stage"/g) ?? []).length, 3);
  assert.match(svg, /kernel: Run \/sbin\/init/);
  assert.match(svg, /data-name="a&amp;b&lt;c&gt;"/);
  assert.match(svg, /a&amp;b&lt;c&gt; [\d.]+ms FAILED/);
  // web ← db ← syslog ← mounts: three arrows, and the legend's.
  assert.equal((svg.match(/marker-end="url\(#arrow\)"/g) ?? []).length, 4);
  assert.doesNotMatch(svg, /<script|<image|href=|@import|@font-face/);
  // Bars start where they were requested: mounts at the origin + 600 ms, on a common scale.
  const x = (name: string): number => Number(new RegExp(`data-name="${name}"[^>]*><rect x="([\\d.]+)"`).exec(svg)?.[1]);
  assert.ok(x('mounts') < x('syslog') && x('syslog') < x('db') && x('db') < x('web'));
});

test('plot draws a record with nothing in it (a change that had nothing to do)', () => {
  const r: TimingRecord = { ...bootRecord(), kind: 'change', seq: 1, stages: [], services: [] };
  delete r.kernelInit;
  const xml = checkXml(plotSvg(r));
  assert.deepEqual(xml.problems, []);
  assert.deepEqual(criticalChain(r).links, []);
});

test('time labels: ticks of 1, 2 or 5 × 10^k ms, labelled in ms or s', () => {
  assert.equal(tickStep(2833), 500);
  assert.equal(tickStep(120), 10);
  assert.equal(tickStep(45_000), 5000);
  assert.deepEqual([0, 500, 1000, 1500].map((ms) => tickLabel(ms, 500)), ['0', '500ms', '1s', '1.5s']);
  assert.deepEqual([formatMs(3.25), formatMs(42.4), formatMs(1234.5)], ['3.3ms', '42ms', '1.234s']);
});

test(`the store keeps the boot's record and the last ${KEEP_CHANGES} changes, numbered on; choices and errors`, () => {
  const live = tmpdir('t6-timings-');
  assert.deepEqual(listRecords(live), []);
  assert.throws(() => loadRecord(live, 'last'), (err: unknown) => err instanceof TimingsError && /no record in .*timings/.test(err.message));
  saveRecord(live, 'boot', (seq) => ({ ...bootRecord(), seq }));
  for (let i = 0; i < KEEP_CHANGES + 4; i++) saveRecord(live, 'change', (seq) => ({ ...bootRecord(), kind: 'change', seq }));
  const kept = listRecords(live);
  assert.equal(kept.length, KEEP_CHANGES + 1);
  assert.deepEqual(kept.map((r) => r.seq), [0, ...Array.from({ length: KEEP_CHANGES }, (_, i) => i + 5)]);
  assert.deepEqual(fs.readdirSync(path.join(live, 'timings')).filter((f) => f.endsWith('.new')), []);
  assert.equal(loadRecord(live, 'boot').kind, 'boot');
  assert.equal(loadRecord(live, 'last').seq, KEEP_CHANGES + 4);
  assert.equal(loadRecord(live, 7).seq, 7);
  assert.throws(() => loadRecord(live, 2), /no record of change 2 .*\(there are: boot, 5, 6,/);
  fs.writeFileSync(path.join(live, 'timings/change-99.json'), '{"version":0}');
  assert.throws(() => loadRecord(live, 99), /not a timing record of version 1/);
});

test("the kernel log reader finds a record's printk time, and is quiet when there is no log", () => {
  assert.equal(kernelLogRecord(/x/, '/nonexistent/kmsg'), undefined);
  // A regular file reads as one record.
  const file = path.join(tmpdir('t6-kmsg-'), 'kmsg');
  fs.writeFileSync(file, '6,310,2153727,-;Run /sbin/init as init process\n');
  assert.equal(kernelLogRecord(/^Run \S+ as init process/, file)?.ms, 2153.727);
  assert.equal(kernelLogRecord(/^nothing/, file), undefined);
  assert.deepEqual(kernelLogRecord(/^Run \S+ as init process/, file), { ms: 2153.727, message: 'Run /sbin/init as init process' });
});

test("a boot through an initramfs is measured from the kernel's Run /init, and says so in the chain and the plot", () => {
  const r: TimingRecord = { ...bootRecord(), kernelInitPath: '/init' };
  assert.match(criticalChain(r).origin, /kernel's Run \/init$/);
  const svg = plotSvg(r);
  assert.ok(svg.includes('kernel: Run /init<'), 'the dashed line is labelled with the program the kernel ran');
  // A record without the path (older, or a kernel that ran the init itself) reads as before.
  assert.match(criticalChain(bootRecord()).origin, /kernel's Run \/sbin\/init$/);
});
