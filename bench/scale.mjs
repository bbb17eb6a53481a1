/**
 * Scale: t6-svscan beside s6-svscan at 10, 100, 1,000, 3,000 and 10,000 longruns, in the
 * same run. Each sample is one fresh tree (pid 1 of its own pid namespace, scandir on a
 * tmpfs, the services of bench/coldstart.mjs: one byte into a FIFO, then `sleep 1d`):
 *
 *   cold start   launch → the N-th service running
 *   PSS          of the supervision machinery (t6-svscan alone, on a private copy of the
 *                Node binary; s6-svscan + every s6-supervise), BENCH_SETTLE_MS after
 *   restart      SIGKILL of a service up > 1 s → its `run` runs again (3 services per tree:
 *                first, middle, last; no notification-fd)
 *   svstat -a    `t6-svstat -a SCANDIR`; s6 has none: a shell loop of s6-svstat
 *
 * then t6-rc (t6 only: s6-rc is not installed here) on bench/rc-compile.mjs's generated
 * shape scaled to 1,000 and 10,000 services (69 % longruns with notification-fd, the rest
 * oneshots, 1.74 edges per service, 10 levels deep): `t6-rc-init`, `-u change default`
 * until it returns (all up and ready), `-da change` (all down), a fresh tree per sample.
 *
 * Writes bench/results/scale-<time>.json, scale-latest.json and scale-latest.svg (the
 * curves: one panel per metric, log-scale x).
 *
 *   node_modules/.bin/node bench/scale.mjs
 * env: BENCH_SCALE_SIZES (default 10,100,1000,3000,10000), BENCH_SCALE_SAMPLES (default 3),
 *      BENCH_SCALE_SAMPLES_BIG (default 1: sizes ≥ 3,000), BENCH_SCALE_RC_SIZES (default
 *      1000,10000; empty: none), BENCH_SCALE_RC_TREES (default 2), BENCH_SETTLE_MS (2000),
 *      BENCH_PEERS (default t6,s6 here)
 * Goal (issue 12): at 10,000, t6 PSS ≤ 0.15 × s6 and cold start ≤ 0.7 × s6.
 *
 * RLIMIT_NOFILE: t6-svscan holds a service's fds (the control FIFO, the notification pipe
 * until ready, supervise/lock unless its lock keeper parks it) in one process; s6 holds them
 * in one s6-supervise each. A size the hard limit of this machine cannot hold for t6 is
 * lowered to what it can, for both peers, and said so (BENCH_SCALE_OVER_CAPACITY=1: not).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ByteFifo, RESULTS_DIR, ROOT, Tree, childrenOf, commOf, envInt, fmt, isMain, makeServices, makeTemp,
  memoryOf, printTable, privateNodeT6, ratio, removeTemp, runScript, selectedPeers, sleep, summarize, t6Bin,
  waitQuiet, writeResults,
} from './lib.mjs';
import { chartSvg } from './svg.mjs';
import { LONGRUN_RUN, startTree, timed } from './rc.mjs';
import { generateSource } from './rc-compile.mjs';

/**
 * The hard RLIMIT_NOFILE here, and how many services t6-svscan can hold under it. Per
 * service, while it starts: the control FIFO and the read end of its notification pipe
 * (until ready: a scan spawns every service before the event loop reads one), plus
 * supervise/lock, unless the build parks locks in its lock keeper thread (src/sys/lockkeeper.ts):
 * three fds without (at 9,968 services under 20,000, spawns failed with EMFILE), two with.
 */
function capacity() {
  const hard = Number(spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim());
  const perService = parksLocks() ? 2 : 3;
  return { hard, perService, services: Number.isFinite(hard) ? Math.floor((hard - 64) / perService) : Infinity };
}

/** Whether the t6-svscan build has the lock keeper (its thread's name is in the bundle). */
function parksLocks() {
  const wrapper = fs.readFileSync(path.join(ROOT, 'bin', 't6-svscan'), 'utf8');
  const bundle = wrapper.match(/\/dist\/(t6-svscan\.[a-z]+)/)?.[1];
  try {
    return bundle !== undefined && fs.readFileSync(path.join(ROOT, 'dist', bundle), 'utf8').includes('"lock-keeper"');
  } catch {
    return false;
  }
}

/** A peer with its `-c` (max services) raised for `n`. */
function sized(sup, n) {
  const max = String(Math.max(4000, n + 100));
  return { ...sup, command: (sd) => sup.command(sd).map((a, i, all) => (all[i - 1] === '-c' ? max : a)) };
}

/** Outer pids of the long-running processes (`sleep`) of the given service dirs. */
function servicePids(tree, dirs) {
  const want = new Set(dirs);
  const out = new Map();
  const cwd = (pid) => { try { return fs.readlinkSync(`/proc/${pid}/cwd`); } catch { return undefined; } };
  for (const c of childrenOf(tree.pid1)) {
    const comm = commOf(c);
    if (comm === 'sleep') { const d = cwd(c); if (want.has(d)) out.set(d, c); continue; }
    if (!tree.sup.supervisorComms.includes(comm)) continue;
    if (!want.has(cwd(c))) continue;
    for (const g of childrenOf(c)) if (commOf(g) === 'sleep') out.set(cwd(g), g);
  }
  return out;
}

function timeCall(argv) {
  const t0 = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`${argv[0]} exited ${r.status ?? r.signal}: ${r.stderr}`);
  return { ms: performance.now() - t0, lines: r.stdout.toString().split('\n').filter(Boolean).length };
}

/** One tree of `n` longruns: cold start, PSS, restarts, svstat -a. */
async function treeOnce(sup, n, { settleMs, svstatCalls }) {
  const dir = makeTemp(`t6-bench-scale-${sup.name}-`);
  const fifo = new ByteFifo(path.join(dir, 'running'));
  const scandir = path.join(dir, 'scan');
  const dirs = makeServices(scandir, n, runScript(fifo.path, { readiness: true }), { notificationFd: true }).map((d) => fs.realpathSync(d));
  const tree = Tree.start(sized(sup, n), scandir);
  try {
    const at = await Promise.race([
      fifo.waitFor(n, 60_000 + n * 30, `${n} services of ${sup.title} to run`),
      tree.exited.then(() => tree.checkAlive('cold start')),
    ]);
    const out = { coldMs: at - tree.startedAt };
    await sleep(settleMs);
    tree.checkAlive('settling');
    const procs = tree.supervisorProcesses();
    out.pssMB = procs.reduce((a, p) => a + memoryOf(p.pid).pss, 0) / 1024;
    out.fds = fs.readdirSync(`/proc/${tree.pid1}/fd`).length;
    out.supervisorProcesses = procs.length;
    const targets = [...new Set([0, n >> 1, n - 1])].map((i) => dirs[i]);
    const pids = servicePids(tree, targets);
    out.restartMs = [];
    for (const d of targets) {
      const pid = pids.get(d);
      if (pid === undefined) throw new Error(`no running service found for ${d}`);
      const before = fifo.count;
      const t0 = performance.now();
      process.kill(pid, 'SIGKILL');
      out.restartMs.push((await fifo.waitFor(before + 1, 20_000, `${path.basename(d)} to run again`)) - t0);
    }
    const argv = sup.name === 't6'
      ? [t6Bin('t6-svstat'), '-a', scandir]
      : ['sh', '-c', 'for d in "$@"; do s6-svstat "$d" || exit; done', 'sh', ...dirs];
    out.svstatMs = [];
    for (let i = 0; i < svstatCalls; i++) {
      const r = timeCall(argv);
      if (r.lines < n) throw new Error(`svstat -a printed ${r.lines} lines for ${n} services`);
      out.svstatMs.push(r.ms);
    }
    return out;
  } finally {
    await tree.stop(60_000);
    fifo.close();
    removeTemp(dir);
  }
}

/** t6-rc on the generated shape of `n` services: init, -u change, -da change; `trees` fresh trees. */
async function rcAt(n, trees) {
  const base = makeTemp('t6-bench-scale-rc-');
  const src = path.join(base, 'source');
  const compiled = path.join(base, 'compiled');
  const shape = generateSource(src, undefined, { longrunRun: LONGRUN_RUN, total: n });
  timed([t6Bin('t6-rc-compile'), '-v0', compiled, src]);
  const ms = { init: [], up: [], down: [] };
  for (let i = 0; i < trees; i++) {
    const dir = makeTemp('t6-bench-scale-rctree-');
    const live = path.join(dir, 'live');
    const { tree, scandir } = await startTree(dir, n + 100);
    try {
      ms.init.push(timed([t6Bin('t6-rc-init'), '-c', compiled, '-l', live, scandir], tree).ms);
      ms.up.push(timed([t6Bin('t6-rc'), '-l', live, '-u', 'change', 'default'], tree).ms);
      ms.down.push(timed([t6Bin('t6-rc'), '-l', live, '-da', 'change'], tree).ms);
      tree.checkAlive('t6-rc');
    } finally {
      await tree.stop(60_000);
      removeTemp(dir);
    }
    console.log(`  t6-rc, ${n} services, tree ${i + 1}: init ${fmt(ms.init.at(-1))} ms, -u change ${fmt(ms.up.at(-1))} ms, -da change ${fmt(ms.down.at(-1))} ms`);
  }
  removeTemp(base);
  return { shape, init: summarize(ms.init), up: summarize(ms.up), down: summarize(ms.down) };
}

const METRICS = [
  { key: 'coldMs', title: 'cold start: launch → all running', yLabel: 'ms', yLog: true },
  { key: 'pssMB', title: 'PSS of the supervision machinery', yLabel: 'MB', yLog: true },
  { key: 'svstatMs', title: 'svstat -a (s6: s6-svstat loop)', yLabel: 'ms', yLog: true },
  { key: 'restartMs', title: 'restart after SIGKILL (up > 1 s)', yLabel: 'ms', yLog: false },
];

/** The chart: one panel per metric (t6 and s6 medians), one for t6-rc. */
export function scaleSvg(data) {
  const sizes = Object.keys(data.results).map(Number);
  const panels = METRICS.map((m) => ({
    title: m.title, yLabel: m.yLabel, yLog: m.yLog,
    series: data.peers.map((p) => ({ name: p === 't6' ? 't6-svscan' : 's6-svscan + s6-supervise', color: p === 't6' ? '#1f77b4' : '#d62728', points: sizes.map((n) => [n, data.results[n][p]?.[m.key]?.median]) })),
  }));
  const rcSizes = Object.keys(data.rc ?? {}).map(Number);
  if (rcSizes.length > 0) {
    panels.push({
      title: 't6-rc (t6 only: no s6-rc here)', yLabel: 'ms', yLog: true, xLabel: 'services in the db (log scale)',
      series: [['init', 't6-rc-init'], ['up', '-u change default'], ['down', '-da change']].map(([k, name]) => ({ name, points: rcSizes.map((n) => [n, data.rc[n][k].median]) })),
    });
  }
  panels.push({
    title: 't6 / s6 (below 1: t6 smaller or faster)', yLabel: 't6 / s6', yLog: true,
    series: METRICS.slice(0, 3).map((m) => ({ name: m.key === 'coldMs' ? 'cold start' : m.key === 'pssMB' ? 'PSS' : 'svstat -a', points: sizes.map((n) => [n, ratio(data.results[n].t6?.[m.key]?.median, data.results[n].s6?.[m.key]?.median)]) }))
      .concat([{ name: 'goal at 10k: PSS 0.15', dashed: true, color: '#999', points: [[10, 0.15], [Math.max(...sizes), 0.15]] }, { name: 'goal at 10k: cold 0.7', dashed: true, color: '#555', points: [[10, 0.7], [Math.max(...sizes), 0.7]] }]),
  });
  const env = data.machine;
  return chartSvg({
    // The sizes that ran (a size may be lowered to fit RLIMIT_NOFILE), not the ones asked for.
    title: `t6-svscan beside s6-svscan: ${Math.min(...sizes).toLocaleString('en-US')} to ${Math.max(...sizes).toLocaleString('en-US')} longruns (medians)`,
    subtitle: `${env.date.slice(0, 16)} UTC, ${env.cpus} CPUs, load ${env.loadavg.map((x) => x.toFixed(2)).join(' ')}, /bin/true ×1000 ${fmt(env.trueLoopMs)} ms; commit ${env.commit}`,
    panels,
  });
}

/** Wall time of 1,000 runs of /bin/true from a shell: the machine's state in one figure. */
export function trueLoopMs() {
  const t0 = performance.now();
  spawnSync('sh', ['-c', 'i=0; while [ $i -lt 1000 ]; do /bin/true; i=$((i+1)); done'], { stdio: 'ignore' });
  return performance.now() - t0;
}

export async function run() {
  const cap = capacity();
  const wanted = (process.env.BENCH_SCALE_SIZES ?? '10,100,1000,3000,10000').split(',').filter(Boolean).map(Number);
  // BENCH_SCALE_OVER_CAPACITY=1: the sizes asked for all the same (to see how t6 fares past the limit).
  const over = process.env.BENCH_SCALE_OVER_CAPACITY === '1';
  const sizes = [...new Set(wanted.map((n) => (over ? n : Math.min(n, cap.services))))];
  const rcSizes = (process.env.BENCH_SCALE_RC_SIZES ?? '1000,10000').split(',').filter(Boolean).map(Number);
  const settleMs = envInt('BENCH_SETTLE_MS', 2000);
  process.env.BENCH_PEERS ??= 't6,s6';
  const nodeDir = makeTemp('t6-bench-node-', os.tmpdir());
  const peers = selectedPeers().map((p) => (p.name === 't6' ? privateNodeT6(nodeDir) : p));
  const busy = await waitQuiet();
  const machine = { date: new Date().toISOString(), cpus: os.cpus().length, loadavg: os.loadavg(), trueLoopMs: trueLoopMs(), busy, nofileHard: cap.hard, commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim() };
  console.log(`\n== scale: ${sizes.join(', ')} longruns, ${peers.map((p) => p.title).join(' beside ')} ==`);
  const held = cap.perService === 3 ? 'lock, control FIFO, notification pipe until ready' : 'control FIFO, notification pipe until ready; locks parked';
  for (const n of wanted) if (n > cap.services) console.log(`note: ${n} longruns ${over ? 'run all the same (BENCH_SCALE_OVER_CAPACITY=1) beyond' : 'lowered to'} ${cap.services}: RLIMIT_NOFILE's hard limit here is ${cap.hard} and t6-svscan holds up to ${cap.perService} fds per service (${held})`);
  const results = {};
  const failures = {};
  for (const n of sizes) {
    const samples = n >= 3000 ? envInt('BENCH_SCALE_SAMPLES_BIG', 1) : envInt('BENCH_SCALE_SAMPLES', 3);
    const per = Object.fromEntries(peers.map((p) => [p.name, []]));
    await waitQuiet(undefined, 30);
    for (let i = 0; i < samples; i++) {
      for (const sup of peers) {
        const svstatCalls = sup.name === 's6' && n >= 3000 ? 1 : 3;
        let r;
        try {
          r = await treeOnce(sup, n, { settleMs, svstatCalls });
        } catch (err) {
          // Keep the other sizes' figures: one failed tree is reported, not the whole run lost.
          console.log(`  ${n} ${sup.name}: FAILED: ${err.message}`);
          (failures[n] ??= {})[sup.name] = err.message;
          continue;
        }
        per[sup.name].push(r);
        console.log(`  ${String(n).padStart(5)} ${sup.name}: cold ${fmt(r.coldMs)} ms, PSS ${fmt(r.pssMB)} MB (${r.supervisorProcesses} procs, pid 1 ${r.fds} fds), restart ${r.restartMs.map((x) => fmt(x)).join('/')} ms, svstat -a ${r.svstatMs.map((x) => fmt(x)).join('/')} ms`);
      }
    }
    results[n] = {};
    for (const sup of peers) {
      const rs = per[sup.name];
      if (rs.length === 0) continue;
      results[n][sup.name] = {
        coldMs: summarize(rs.map((r) => r.coldMs)), pssMB: summarize(rs.map((r) => r.pssMB)),
        restartMs: summarize(rs.flatMap((r) => r.restartMs)), svstatMs: summarize(rs.flatMap((r) => r.svstatMs)),
        fds: rs[0].fds, supervisorProcesses: rs[0].supervisorProcesses,
      };
    }
  }
  const rc = {};
  for (const n of rcSizes) {
    await waitQuiet(undefined, 30);
    try {
      rc[n] = await rcAt(n, envInt('BENCH_SCALE_RC_TREES', 2));
    } catch (err) {
      console.log(`  t6-rc, ${n} services: FAILED: ${err.message.split('\n')[0]}`);
      failures[`rc ${n}`] = err.message;
    }
  }
  removeTemp(nodeDir);
  const rows = [['N', 'cold t6', 'cold s6', 't6/s6', 'PSS t6', 'PSS s6', 't6/s6', 'svstat -a t6', 's6 loop', 'restart t6', 'restart s6']];
  for (const n of sizes) {
    const m = (p, k) => results[n][p]?.[k]?.median;
    rows.push([n, fmt(m('t6', 'coldMs')), fmt(m('s6', 'coldMs')), fmt(ratio(m('t6', 'coldMs'), m('s6', 'coldMs'))),
      fmt(m('t6', 'pssMB')), fmt(m('s6', 'pssMB')), fmt(ratio(m('t6', 'pssMB'), m('s6', 'pssMB'))),
      fmt(m('t6', 'svstatMs')), fmt(m('s6', 'svstatMs')), fmt(m('t6', 'restartMs')), fmt(m('s6', 'restartMs'))]);
  }
  console.log('\n(ms and MB, medians)');
  printTable(rows);
  if (rcSizes.length > 0) {
    console.log('\nt6-rc (t6 only; s6-rc is not installed here):');
    printTable([['services', 't6-rc-init ms', '-u change ms', '-da change ms'], ...rcSizes.map((n) => [n, fmt(rc[n].init.median), fmt(rc[n].up.median), fmt(rc[n].down.median)])]);
  }
  const data = { machine, peers: peers.map((p) => p.name), sizesAsked: wanted, settleMs, results, rc, failures };
  const file = writeResults('scale', data);
  fs.writeFileSync(path.join(RESULTS_DIR, 'scale-latest.svg'), scaleSvg(data));
  console.log(`results: ${file}\nchart: ${path.join(RESULTS_DIR, 'scale-latest.svg')}`);
  return data;
}

if (isMain(import.meta.url)) await run();
