// t6-rc-compile end to end: a generated source of 1,000 services (692 longruns with
// notification-fd, 308 oneshots, a random DAG up to 10 deep with 1,743 dependency edges,
// seeded so every run compiles the same source), compiled by bin/t6-rc-compile, Node's
// start-up included, beside the real s6-rc-compile 0.5.4.1 on the same source in the same
// run, samples interleaved. Median of BENCH_RC_SAMPLES (5) each, and the ratio t6/s6.
// Targets: issue 11, t6 ≤ 2 × s6-rc-compile; issue 3, t6 ≤ 120 ms.
//
// Where s6-rc-compile comes from: Debian does not package s6-rc, so
// scripts/bench/build-s6-rc.sh builds s6-rc 0.5.4.1 from skarnet's source against
// Debian's skalibs-dev, libexecline-dev and libs6-dev into .cache/s6-rc/0.5.4.1
// (gitignored; nothing of s6-rc enters the repository). The bench takes BENCH_S6RC_COMPILE,
// else that build, else an s6-rc-compile on PATH; without any, t6 runs alone and the s6
// column is issue 3's figure (57 ms, another machine).
//
//   scripts/bench/build-s6-rc.sh          # once; needs the three -dev packages
//   node_modules/.bin/node bench/rc-compile.mjs
//
// Knobs: BENCH_RC_SAMPLES=5, BENCH_S6RC_COMPILE (path), BENCH_TMPDIR (default /dev/shm
// when it is a tmpfs; set BENCH_TMPDIR=/tmp to measure on the disk). On a tmpfs the
// compiler skips its fsyncs (nothing to flush). On this machine's ext4 /tmp a run took
// 0.3-1.5 s: creating the 692 servicedirs hits ext4's slow inode allocation after churn
// (README, Method), and the parallel fsyncs of ~2,100 files and directories add 70-150 ms.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT, SCAN_BASE, cpuBusy, envInt, fmt, fsType, hasProgram, isMain, makeTemp, printSamples, ratio, sleep, summarize, t6Bin, waitQuiet, writeResults } from './lib.mjs';

const TOTAL = 1000;
const LONGRUNS = 692;
const LEVELS = 10;
const EDGES = 1743;
/** s6-rc-compile on this shape in issue 3 (ms), when no s6-rc-compile is at hand. */
const S6_ISSUE_MS = 57;
/** Issue 3's absolute target and issue 11's ratio to s6-rc-compile. */
const TARGET_MS = 120;
const TARGET_RATIO = 2;

/** The s6-rc-compile to run beside t6: BENCH_S6RC_COMPILE, the local build, or PATH's. */
export function findS6RcCompile() {
  const env = process.env.BENCH_S6RC_COMPILE;
  if (env) {
    if (!fs.existsSync(env)) throw new Error(`BENCH_S6RC_COMPILE=${env} does not exist`);
    return { path: env, from: 'BENCH_S6RC_COMPILE' };
  }
  const local = path.join(ROOT, '.cache', 's6-rc', '0.5.4.1', 'bin', 's6-rc-compile');
  if (fs.existsSync(local)) return { path: local, from: 's6-rc 0.5.4.1 built by scripts/bench/build-s6-rc.sh' };
  if (hasProgram('s6-rc-compile')) return { path: 's6-rc-compile', from: 'PATH' };
  return undefined;
}

/** mulberry32: a small seeded PRNG, so the source is the same on every run. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Writes the source: service i is at level ⌊i·LEVELS/TOTAL⌋; each service above level 0
 * depends on one service of the level just below (so chains are LEVELS deep), and the
 * remaining edges go to random services of lower levels. Returns the counts.
 * `longrunRun` is every longrun's `run` script (bench/rc.mjs runs them, so its scripts
 * notify readiness on fd 3; here they are only compiled).
 */
export function generateSource(dir, seed = 0x7e6, { longrunRun = `#!/bin/sh\nexec sleep 1d\n`, total = TOTAL } = {}) {
  // Other sizes (bench/scale.mjs) keep the shape: the same share of longruns and edges per service.
  const TOTAL = total;
  const LONGRUNS = Math.round((total * 692) / 1000);
  const EDGES = Math.round((total * 1743) / 1000);
  const random = rng(seed);
  const pick = (n) => Math.floor(random() * n);
  const level = (i) => Math.floor((i * LEVELS) / TOTAL);
  const types = Array.from({ length: TOTAL }, (_, i) => (i < LONGRUNS ? 'longrun' : 'oneshot'));
  for (let i = types.length - 1; i > 0; i--) { const j = pick(i + 1); [types[i], types[j]] = [types[j], types[i]]; }
  const firstOf = (l) => Math.ceil((l * TOTAL) / LEVELS);
  const deps = Array.from({ length: TOTAL }, () => new Set());
  let edges = 0;
  for (let i = 0; i < TOTAL; i++) {
    const l = level(i);
    if (l === 0) continue;
    deps[i].add(firstOf(l - 1) + pick(firstOf(l) - firstOf(l - 1)));
    edges++;
  }
  while (edges < EDGES) {
    const i = firstOf(1) + pick(TOTAL - firstOf(1));
    const d = pick(firstOf(level(i)));
    if (deps[i].has(d)) continue;
    deps[i].add(d);
    edges++;
  }
  const name = (i) => `svc-${String(i).padStart(Math.max(4, String(TOTAL - 1).length), '0')}`;
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < TOTAL; i++) {
    const d = path.join(dir, name(i));
    fs.mkdirSync(path.join(d, 'dependencies.d'), { recursive: true });
    fs.writeFileSync(path.join(d, 'type'), `${types[i]}\n`);
    if (types[i] === 'longrun') {
      fs.writeFileSync(path.join(d, 'run'), longrunRun, { mode: 0o755 });
      fs.writeFileSync(path.join(d, 'notification-fd'), '3\n');
    } else {
      fs.writeFileSync(path.join(d, 'up'), `echo "${name(i)} is up"\n`);
      fs.writeFileSync(path.join(d, 'down'), `echo "${name(i)} is down"\n`);
    }
    for (const dep of deps[i]) fs.writeFileSync(path.join(d, 'dependencies.d', name(dep)), '');
  }
  fs.mkdirSync(path.join(dir, 'default'));
  fs.writeFileSync(path.join(dir, 'default', 'type'), 'bundle\n');
  fs.writeFileSync(path.join(dir, 'default', 'contents'), Array.from({ length: TOTAL }, (_, i) => name(i)).join('\n') + '\n');
  return { services: TOTAL, longruns: types.filter((t) => t === 'longrun').length, oneshots: types.filter((t) => t === 'oneshot').length, edges, levels: LEVELS };
}

/** Waits (up to 10 s) until less than BENCH_QUIET_MAX_PERCENT of the CPU was busy over 0.3 s; returns the last fraction measured. */
async function quietMoment() {
  const maxBusy = envInt('BENCH_QUIET_MAX_PERCENT', 15) / 100;
  let busy = await cpuBusy(300);
  for (let tries = 0; busy > maxBusy && tries < 10; tries++) {
    await sleep(700);
    busy = await cpuBusy(300);
  }
  return busy;
}

/** Times one compile: spawn to exit, in ms. */
function timeCompile(argv, target) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], [...argv.slice(1), target.out, target.src], { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv[0]} exited ${r.status}: ${r.stderr}`);
  return ms;
}

export async function main() {
  const samples = envInt('BENCH_RC_SAMPLES', 5);
  const base = makeTemp('t6-bench-rc-');
  const src = path.join(base, 'source');
  const shape = generateSource(src);
  console.log(`t6-rc-compile: ${shape.services} services (${shape.longruns} longruns with notification-fd, ${shape.oneshots} oneshots), ${shape.edges} dependency edges, ${shape.levels} levels deep, + 1 bundle`);
  console.log(`source and compiled directories on ${SCAN_BASE} (${fsType(SCAN_BASE) ?? '?'})`);
  const peers = [{ name: 't6', argv: [t6Bin('t6-rc-compile'), '-v0'] }];
  const s6 = findS6RcCompile();
  if (s6 !== undefined) {
    peers.push({ name: 's6', argv: [s6.path, '-v0'] });
    console.log(`s6-rc-compile: ${s6.path} (${s6.from})`);
  } else {
    console.log(`s6-rc-compile is not at hand (Debian has no s6-rc package; scripts/bench/build-s6-rc.sh builds it): issue 3 measured it at ${S6_ISSUE_MS} ms`);
  }
  const busy = await waitQuiet();
  const results = {};
  let n = 0;
  // one warm-up each (page cache, the Node binary), then interleaved samples
  for (const p of peers) { const out = path.join(base, `warm-${p.name}`); timeCompile(p.argv, { out, src }); fs.rmSync(out, { recursive: true, force: true }); }
  const busyBeforeSample = [];
  for (let i = 0; i < samples; i++) {
    // Others share this machine's CPUs: each pair waits for a quiet moment (up to 10 s),
    // and how busy the machine was just before it is kept with the results.
    busyBeforeSample.push(await quietMoment());
    for (const p of peers) {
      const out = path.join(base, `compiled-${n++}`);
      (results[p.name] ??= []).push(timeCompile(p.argv, { out, src }));
      fs.rmSync(out, { recursive: true, force: true });
    }
  }
  const stats = {};
  for (const p of peers) {
    stats[p.name] = summarize(results[p.name]);
    printSamples(p.name, stats[p.name]);
  }
  const loud = busyBeforeSample.filter((b) => b > envInt('BENCH_QUIET_MAX_PERCENT', 15) / 100).length;
  console.log(`machine busy before each pair: median ${fmt(summarize(busyBeforeSample).median * 100, 0)}%, max ${fmt(Math.max(...busyBeforeSample) * 100, 0)}%${loud > 0 ? ` (${loud} of ${samples} never got quiet)` : ''}`);
  const t6 = stats.t6.median;
  const s6ms = stats.s6?.median ?? S6_ISSUE_MS;
  const r = ratio(t6, s6ms);
  // the ratio of each interleaved pair: less sensitive to drift over the run than the medians
  const paired = stats.s6 ? results.t6.map((x, i) => x / results.s6[i]) : undefined;
  const pairedStats = paired && summarize(paired);
  console.log(`t6-rc-compile median ${fmt(t6)} ms, s6-rc-compile ${fmt(s6ms)} ms${stats.s6 ? '' : ' (issue 3, not measured here)'}: t6/s6 ${fmt(r)}`
    + (pairedStats ? ` (per pair: median ${fmt(pairedStats.median)}, ${fmt(pairedStats.min)}–${fmt(pairedStats.max)})` : ''));
  console.log(`targets: t6 ≤ ${TARGET_RATIO} × s6-rc-compile (issue 11): ${stats.s6 ? (r <= TARGET_RATIO ? 'met' : 'NOT met') : 'not judged (no s6-rc-compile here)'}; t6 ≤ ${TARGET_MS} ms (issue 3): ${t6 <= TARGET_MS ? 'met' : 'NOT met'}`);
  const file = writeResults('rc-compile', {
    shape, busyBefore: busy, busyBeforeSample, stats, ratio: r, pairedRatio: pairedStats, s6rcCompile: s6 ?? null,
    targetMs: TARGET_MS, targetRatio: TARGET_RATIO, s6IssueMs: S6_ISSUE_MS,
  });
  console.log(`results: ${path.relative(process.cwd(), file)}`);
  return stats;
}

/** For bench/run.mjs. */
export const run = main;

if (isMain(import.meta.url)) await main();
