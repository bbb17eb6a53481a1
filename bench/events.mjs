/**
 * The event stream (issue 13), measured on t6-svscan as pid 1 of a pid namespace:
 *
 *   latency   1,000 longruns and 10 subscribers: from a kill of a service's process (SIGKILL,
 *             sent by the bench) until each subscriber has the `down` record; median and p99
 *             over every (kill, subscriber) pair.
 *   cpu       t6-svscan's on-CPU time during a 1,000-service `t6-rc -u change` and `-da change`
 *             with no subscriber, 1 and 10, in alternating rounds on fresh trees (goal: at most
 *             10% more with subscribers).
 *   idle      100 longruns, one subscriber attached, nothing happening: t6-svscan's ticks and
 *             context switches over the window (goal: 0 wake-ups).
 *
 * Subscribers live in this process (src/supervise/event-client.ts, as `t6 events` uses it).
 * s6 has no event stream to compare with: its nearest, a fifodir per service, has no one
 * subscriber for a tree.
 *
 *   node_modules/.bin/node bench/events.mjs
 * env: BENCH_EVENTS_KILLS (default 40), BENCH_EVENTS_ROUNDS (default 3),
 *      BENCH_EVENTS_IDLE_S (default 60), BENCH_SETTLE_MS (2000)
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import {
  cpuOf, envInt, fmt, isMain, makeServices, makeTemp, median, printTable, removeTemp, sleep, summarize,
  t6Bin, until, waitQuiet, writeResults,
} from './lib.mjs';
import { LONGRUN_RUN, startTree } from './rc.mjs';
import { generateSource } from './rc-compile.mjs';
import { eventSocket, readEvents } from '../src/supervise/event-client.ts';

const SLEEP_RUN = '#!/bin/sh\nexec sleep 1d\n';

/** `count` subscribers following from now, once every one is served; each keeps the arrival time of every record. */
async function subscribers(scandir, count) {
  const subs = [];
  const served = [];
  for (let i = 0; i < count; i++) {
    const arrivals = [];
    let onConnect;
    served.push(new Promise((resolve) => { onConnect = resolve; }));
    const reader = readEvents(eventSocket(scandir), { since: null, follow: true, onConnect }, (e) => arrivals.push({ e, at: performance.now() }));
    subs.push({ arrivals, reader });
  }
  await Promise.all(served);
  return { subs, stop: async () => { for (const s of subs) s.reader.stop(); await Promise.allSettled(subs.map((s) => s.reader.done)); } };
}

/** Runs a command to its end without blocking this process (the subscribers here must read meanwhile). */
function runAsync(argv) {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(argv[0])} ${argv.slice(1).join(' ')} exited ${code}: ${err}`))));
  });
}

/** Outer pid of each service's process, by its directory (a child of pid 1 whose cwd it is). */
function pidsByDir(tree) {
  const out = new Map();
  // Children of every thread: the spawner thread's are its own (sys/spawner.ts).
  const children = fs.readdirSync(`/proc/${tree.pid1}/task`).flatMap((t) => {
    try { return fs.readFileSync(`/proc/${tree.pid1}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean); } catch { return []; }
  });
  for (const pid of children) {
    try { out.set(fs.readlinkSync(`/proc/${pid}/cwd`), Number(pid)); } catch { /* gone */ }
  }
  return out;
}

async function latency(kills) {
  const dir = makeTemp('t6-bench-events-lat-');
  const { tree, scandir } = await startTree(dir);
  const dirs = makeServices(scandir, 1000, SLEEP_RUN);
  spawnSync(t6Bin('t6-svscanctl'), ['-a', scandir]);
  const { subs, stop } = await subscribers(scandir, 10);
  try {
    await until('1,000 services running', () => pidsByDir(tree).size >= 1000, 120_000);
    await sleep(envInt('BENCH_SETTLE_MS', 2000));
    const samples = [];
    for (let k = 0; k < kills; k++) {
      const svcDir = dirs[(k * 37) % dirs.length];
      const name = path.basename(svcDir);
      const pid = pidsByDir(tree).get(fs.realpathSync(svcDir));
      if (pid === undefined) throw new Error(`no process for ${name}`);
      const counts = subs.map((s) => s.arrivals.length);
      const t0 = performance.now();
      process.kill(pid, 'SIGKILL');
      const got = (s, i) => s.arrivals.slice(counts[i]).find((a) => a.e.service === name && a.e.kind === 'down');
      await until(`${name}'s down at every subscriber`, () => subs.every((s, i) => got(s, i) !== undefined), 10_000, 1);
      subs.forEach((s, i) => samples.push(got(s, i).at - t0));
      await sleep(20);
    }
    const sorted = [...samples].sort((x, y) => x - y);
    return { ...summarize(samples), p99: sorted[Math.floor(0.99 * (sorted.length - 1))] };
  } finally {
    await stop();
    await tree.stop();
    removeTemp(dir);
  }
}

/** One fresh tree: t6-svscan's CPU (ms) during -u change and -da change, with `n` subscribers. */
async function changeCpu(compiled, n) {
  const dir = makeTemp('t6-bench-events-cpu-');
  const live = path.join(dir, 'live');
  const { tree, scandir } = await startTree(dir);
  const rc = t6Bin('t6-rc');
  const { subs, stop } = await subscribers(scandir, n);
  try {
    const init = spawnSync(t6Bin('t6-rc-init'), ['-c', compiled, '-l', live, scandir], { encoding: 'utf8' });
    if (init.status !== 0) throw new Error(`t6-rc-init: ${init.stderr}`);
    const out = {};
    for (const [key, args] of [['up', ['-u', 'change', 'default']], ['down', ['-da', 'change']]]) {
      const c0 = cpuOf(tree.pid1).runNs;
      await runAsync([rc, '-l', live, ...args]);
      out[key] = (cpuOf(tree.pid1).runNs - c0) / 1e6;
    }
    out.records = subs.map((s) => s.arrivals.length);
    return out;
  } finally {
    await stop();
    await tree.stop();
    removeTemp(dir);
  }
}

async function idle(seconds) {
  const dir = makeTemp('t6-bench-events-idle-');
  const { tree, scandir } = await startTree(dir);
  makeServices(scandir, 100, SLEEP_RUN);
  spawnSync(t6Bin('t6-svscanctl'), ['-a', scandir]);
  const { stop } = await subscribers(scandir, 1);
  try {
    await until('100 services running', () => pidsByDir(tree).size >= 100, 60_000);
    await sleep(envInt('BENCH_SETTLE_MS', 2000));
    const a = cpuOf(tree.pid1);
    await sleep(seconds * 1000);
    const b = cpuOf(tree.pid1);
    return { seconds, ticks: b.ticks - a.ticks, runMs: (b.runNs - a.runNs) / 1e6, switches: b.switches - a.switches };
  } finally {
    await stop();
    await tree.stop();
    removeTemp(dir);
  }
}

export async function run() {
  const machineBusy = await waitQuiet();
  console.log('\n== event stream: delivery latency, CPU with subscribers, idle with one ==');
  const lat = await latency(envInt('BENCH_EVENTS_KILLS', 40));
  console.log(`latency, kill → record at each of 10 subscribers (1,000 services): median ${fmt(lat.median)} ms, p99 ${fmt(lat.p99)} ms`);

  const src = makeTemp('t6-bench-events-db-');
  const compiled = path.join(src, 'compiled');
  generateSource(path.join(src, 'source'), undefined, { longrunRun: LONGRUN_RUN });
  const c = spawnSync(t6Bin('t6-rc-compile'), ['-v0', compiled, path.join(src, 'source')], { encoding: 'utf8' });
  if (c.status !== 0) throw new Error(`t6-rc-compile: ${c.stderr}`);
  const cpu = { 0: [], 1: [], 10: [] };
  try {
    for (let round = 0; round < envInt('BENCH_EVENTS_ROUNDS', 3); round++) {
      for (const n of [0, 1, 10]) cpu[n].push(await changeCpu(compiled, n));
    }
  } finally {
    removeTemp(src);
  }
  const rows = [['subscribers', '-u change: svscan CPU ms', 'ratio', '-da change: svscan CPU ms', 'ratio', 'records each']];
  const base = { up: median(cpu[0].map((x) => x.up)), down: median(cpu[0].map((x) => x.down)) };
  for (const n of [0, 1, 10]) {
    const up = median(cpu[n].map((x) => x.up));
    const down = median(cpu[n].map((x) => x.down));
    rows.push([String(n), fmt(up, 0), fmt(up / base.up), fmt(down, 0), fmt(down / base.down), n === 0 ? '–' : String(median(cpu[n].map((x) => median(x.records))))]);
  }
  printTable(rows);
  const quiet = await idle(envInt('BENCH_EVENTS_IDLE_S', 60));
  console.log(`idle with a subscriber, ${quiet.seconds} s: ${quiet.ticks} ticks, ${fmt(quiet.runMs)} ms on CPU, ${quiet.switches} context switches`);
  const file = writeResults('events', { machineBusy, latency: lat, cpu, idle: quiet });
  console.log(`results: ${file}`);
  return { latency: lat, cpu, idle: quiet };
}

if (isMain(import.meta.url)) await run();
