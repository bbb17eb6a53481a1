/**
 * Boot analysis against a real tree: t6-svscan as pid 1 of a pid namespace, a database of
 * longruns that sleep known times before they say they are ready (notification-fd) and a
 * oneshot that sleeps, with dependencies between them; t6-rc change records each change
 * in LIVE/timings/, and t6-analyze's blame, critical-chain and plot read it.
 *
 * Times are checked tightly from below (a service cannot be ready before its sleep is
 * over) and loosely from above (a busy machine may be slow); orders are set by gaps of
 * 300 ms or more between the sleeps.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, Tree, tmpdir } from '../lib/harness.ts';
import { writeDb } from '../lib/rcdb.ts';
import { checkXml } from '../lib/xml.ts';
import { findChromium, renderSvg } from '../lib/chromium.ts';
import { colourStats, decodePng } from '../lib/png.ts';
import type { BlameEntry } from '../../src/rc/analyze/blame.ts';
import type { CriticalChain } from '../../src/rc/analyze/critical-chain.ts';
import type { TimingRecord } from '../../src/rc/timings.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

/** Each service's sleep before it is ready (ms), and what it waits for. */
const SLEEP = { setup: 400, 'slow-a': 800, 'slow-b': 2400, 'fast-c': 100, 'last-d': 1500 } as const;
/** Slack above a sleep for spawning and scheduling, however busy the machine. */
const LOOSE_MS = 15_000;

const readyAfter = (ms: number): string => `#!/bin/sh\nexec 2>&1\nsleep ${ms / 1000}\necho >&3\nexec 3>&-\nexec sleep 100000\n`;

interface Rig {
  live: string;
  tree: Tree;
}

async function rig(): Promise<Rig> {
  const base = tmpdir('t6-analyze-');
  const scandir = path.join(base, 'service');
  const compiled = path.join(base, 'compiled');
  const live = path.join(base, 'live');
  fs.mkdirSync(scandir);
  writeDb(compiled, [
    { name: 'setup', type: 'oneshot', up: ['sleep', String(SLEEP.setup / 1000)] },
    { name: 'slow-a', type: 'longrun', run: readyAfter(SLEEP['slow-a']), notificationFd: 3, deps: ['setup'] },
    { name: 'slow-b', type: 'longrun', run: readyAfter(SLEEP['slow-b']), notificationFd: 3, deps: ['slow-a'] },
    { name: 'fast-c', type: 'longrun', run: readyAfter(SLEEP['fast-c']), notificationFd: 3, deps: ['slow-a'] },
    { name: 'last-d', type: 'longrun', run: readyAfter(SLEEP['last-d']), notificationFd: 3, deps: ['slow-b', 'fast-c'] },
    { name: 'top', type: 'bundle', contents: ['last-d'] },
  ]);
  const tree = await Tree.start(scandir);
  cleanups.push(async () => { await tree.stop(); });
  const init = spawnSync(path.join(BIN, 't6-rc-init'), ['-c', compiled, '-l', live, scandir], { encoding: 'utf8' });
  assert.equal(init.status, 0, `t6-rc-init: ${init.stderr}`);
  return { live, tree };
}

function t6(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(path.join(BIN, cmd), args, { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function analyze(r: Rig, args: string[]): string {
  const p = t6('t6-analyze', ['--live', r.live, ...args]);
  assert.equal(p.status, 0, `t6-analyze ${args.join(' ')}: ${p.stderr}`);
  return p.stdout;
}

let shared: Promise<Rig> | undefined;
/** One tree for the file: `top` brought up once (about 5 s of sleeps), then `slow-a` stopped. */
function upThenDown(): Promise<Rig> {
  shared ??= (async () => {
    const r = await rig();
    const up = t6('t6-rc', ['-l', r.live, '-u', 'change', 'top']);
    assert.equal(up.status, 0, up.stderr);
    const down = t6('t6-rc', ['-l', r.live, '-d', 'change', 'slow-a']);
    assert.equal(down.status, 0, down.stderr);
    return r;
  })();
  return shared;
}

test('t6-rc change records each change in LIVE/timings (change-1, change-2); t6-analyze list shows them', async () => {
  const r = await upThenDown();
  assert.deepEqual(fs.readdirSync(path.join(r.live, 'timings')).sort(), ['change-1.json', 'change-2.json']);
  const rec = JSON.parse(fs.readFileSync(path.join(r.live, 'timings/change-1.json'), 'utf8')) as TimingRecord;
  assert.equal(rec.kind, 'change');
  assert.deepEqual(rec.request, { names: ['top'], up: true, prune: false });
  assert.deepEqual(rec.targets, { top: ['last-d'] });
  // In the order they were launched: each after what it depends on.
  const names = rec.services.map((s) => s.name);
  assert.deepEqual([names[0], names[1], new Set(names.slice(2, 4)), names[4]], ['setup', 'slow-a', new Set(['slow-b', 'fast-c']), 'last-d']);
  assert.equal(rec.services.length, 5);
  for (const s of rec.services) {
    assert.equal(s.failure, undefined);
    // Both clocks, in order: requested ≤ spawned ≤ up ≤ ready ≤ ended (1 ms for the conversion of status stamps).
    const seq = [s.requested, s.spawned!, s.up!, s.ready!, s.ended];
    for (let i = 1; i < seq.length; i++) assert.ok(seq[i]!.mono >= seq[i - 1]!.mono - 1, `${s.name}: instants out of order: ${JSON.stringify(s)}`);
    assert.ok(Math.abs((s.ready!.real - s.ready!.mono) - (s.requested.real - s.requested.mono)) < 50, `${s.name}: the clocks' offset moved: ${JSON.stringify(s)}`);
  }
  assert.deepEqual(JSON.parse(analyze(r, ['plot', '--json', '--change', '1'])), rec);
  const list = JSON.parse(analyze(r, ['list', '--json'])) as { change: number | string; up: boolean; transitions: number }[];
  assert.deepEqual(list.map((l) => [l.change, l.up, l.transitions]), [[1, true, 5], [2, false, 4]]);
});

test('blame: longest first, each at least its sleep (and not wildly more)', async () => {
  const r = await upThenDown();
  const entries = JSON.parse(analyze(r, ['--change', '1', 'blame', '--json'])) as BlameEntry[];
  assert.deepEqual(entries.map((e) => e.name), ['slow-b', 'last-d', 'slow-a', 'setup', 'fast-c']);
  for (const e of entries) {
    const sleep = SLEEP[e.name as keyof typeof SLEEP];
    assert.ok(e.ms >= sleep - 2, `${e.name} took ${e.ms} ms, less than its ${sleep} ms sleep`);
    assert.ok(e.ms < sleep + LOOSE_MS, `${e.name} took ${e.ms} ms`);
  }
  const text = analyze(r, ['blame', '--change', '1']);
  assert.match(text.split('\n')[0]!, /^\s*2\.\d{3}s slow-b$/);
});

test('critical-chain: top was decided by last-d ← slow-b ← slow-a ← setup, each done after the one it waited for', async () => {
  const r = await upThenDown();
  const chain = JSON.parse(analyze(r, ['--change', '1', 'critical-chain', '--json'])) as CriticalChain;
  assert.equal(chain.target, 'top');
  assert.deepEqual(chain.links.map((l) => l.name), ['last-d', 'slow-b', 'slow-a', 'setup']);
  for (let i = 0; i + 1 < chain.links.length; i++) {
    const [later, earlier] = [chain.links[i]!, chain.links[i + 1]!];
    assert.ok(later.at - earlier.at >= SLEEP[later.name as keyof typeof SLEEP] - 2, `${later.name} done ${later.at - earlier.at} ms after ${earlier.name}`);
  }
  // From the start of the change: at least the sum of the chain's sleeps.
  assert.ok(chain.links[0]!.at >= SLEEP.setup + SLEEP['slow-a'] + SLEEP['slow-b'] + SLEEP['last-d'] - 5, JSON.stringify(chain));
  const one = JSON.parse(analyze(r, ['--change', '1', 'critical-chain', 'slow-b', '--json'])) as CriticalChain;
  assert.deepEqual(one.links.map((l) => l.name), ['slow-b', 'slow-a', 'setup']);
  const text = analyze(r, ['critical-chain', '--change', '1']);
  assert.match(text, /^top @\d/m);
  assert.match(text, /^└─last-d @[\d.]+m?s \+1\.\d{3}s$/m);
  assert.match(text, /^ {6}└─setup @/m);
  const unknown = t6('t6-analyze', ['--live', r.live, '--change', '1', 'critical-chain', 'nope']);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /t6-analyze: fatal: nope: not a service or name/);
});

test('a stop is recorded and analysed too: slow-a went down after the services that depend on it', async () => {
  const r = await upThenDown();
  const chain = JSON.parse(analyze(r, ['critical-chain', '--json'])) as CriticalChain; // the last change
  assert.deepEqual([chain.links[0]?.name, chain.links.at(-1)?.name, chain.links.at(-1)?.direction], ['slow-a', 'last-d', 'down']);
  const entries = JSON.parse(analyze(r, ['blame', '--json', '--change', 'last'])) as BlameEntry[];
  assert.deepEqual(entries.map((e) => e.name).sort(), ['fast-c', 'last-d', 'slow-a', 'slow-b']);
  assert.ok(entries.every((e) => e.direction === 'down'));
});

test('plot: a well-formed, self-contained SVG with one bar per transition, drawn by headless Chromium', async (t) => {
  const r = await upThenDown();
  const svg = analyze(r, ['plot', '--change', '1']);
  const xml = checkXml(svg);
  assert.deepEqual(xml.problems, []);
  assert.equal(xml.root, 'svg');
  assert.equal([...svg.matchAll(/<g class="service" data-name="([^"]+)"/g)].length, 5);
  for (const name of Object.keys(SLEEP)) assert.match(svg, new RegExp(`>${name} [\\d.]+m?s<`));
  assert.doesNotMatch(svg, /<script|href=|@import|url\((?!#)/);
  // Arrows join the critical chain: setup → slow-a → slow-b → last-d.
  assert.equal((svg.match(/marker-end="url\(#arrow\)"/g) ?? []).length, 3 + 1 /* the legend's */);

  const chromium = findChromium();
  const inCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
  if (chromium === undefined) {
    if (inCi) assert.fail('CI must have chromium (.ci/run installs it)');
    t.skip('chromium not installed (apt-get install chromium)');
    return;
  }
  const work = tmpdir('t6-analyze-chromium-');
  const file = path.join(work, 'change.svg');
  fs.writeFileSync(file, svg);
  const shot = renderSvg(chromium, file, work);
  assert.equal(shot.parseErrors, undefined);
  assert.match(shot.imageLoad ?? '', /^loaded 1200x\d+$/);
  const png = decodePng(shot.png);
  const { colours, nonWhite } = colourStats(png);
  assert.ok(colours > 10, `${colours} colours`);
  assert.ok(nonWhite > png.width * png.height / 200, `${nonWhite} non-white pixels of ${png.width}x${png.height}`);
});

test('a change that times out (-t) records what was still under way as such, until the change ended', async () => {
  const r = await upThenDown();
  const p = t6('t6-rc', ['-l', r.live, '-t', '300', '-u', 'change', 'slow-a']);
  assert.equal(p.status, 2, p.stderr);
  const entries = JSON.parse(analyze(r, ['blame', '--json', '--change', '3'])) as BlameEntry[];
  assert.deepEqual(entries.map((e) => [e.name, e.failure]), [['slow-a', 'still under way when the change ended']]);
  assert.ok(entries[0]!.ms >= 200 && entries[0]!.ms < SLEEP['slow-a'] + LOOSE_MS, `${entries[0]!.ms} ms`);
});
