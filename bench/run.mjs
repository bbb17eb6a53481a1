/**
 * Runs every benchmark of bench/ — t6 beside s6 and runit, in the same run — and prints
 * one summary table of every figure with the t6/peer ratios of this run, against the
 * issues' targets, the machine's state (a /bin/true loop, load average) before and after,
 * and each t6 figure against the previous summary (bench/results/summary-latest.json, read
 * before it is overwritten): more than 10 % worse is printed as REGRESSION. Results:
 * bench/results/*.json (the summary in summary-<time>.json and summary-latest.json).
 *
 *   npm run bench                       (builds, then runs this)
 *   node_modules/.bin/node bench/run.mjs [coldstart memory restart clients idle rc-compile rc log-memory log-throughput reexec scale events health container boot debian-boot]
 *   (boot, t6 beside s6 and a Node floor on a real kernel in qemu, and debian-boot, issue 16's
 *   Debian image under t6 and under systemd, run only when named)
 *
 * Each benchmark also runs alone (node_modules/.bin/node bench/<name>.mjs) and documents
 * its own environment variables; the common ones:
 *   BENCH_PEERS=t6,s6,runit   which supervisors
 *   BENCH_IDLE_SECONDS=60     length of the idle window (shorter for a quick run)
 *   BENCH_QUIET_WAIT_S=60     how long to wait for the machine to be quiet before each benchmark
 *   BENCH_QUIET_MAX_PERCENT=15  what "quiet" means (CPU busy outside the bench)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RESULTS_DIR, SCAN_BASE, fmt, fsType, isMain, printTable, ratio, writeResults } from './lib.mjs';
import * as coldstart from './coldstart.mjs';
import * as memory from './memory.mjs';
import * as restart from './restart.mjs';
import * as clients from './clients.mjs';
import * as idle from './idle.mjs';
import * as rcCompile from './rc-compile.mjs';
import * as rc from './rc.mjs';
import * as logMemory from './log-memory.mjs';
import * as reexec from './reexec.mjs';
import * as logThroughput from './log-throughput.mjs';
import * as scale from './scale.mjs';
import * as boot from './boot.mjs';
import * as debianBoot from './debian-boot.mjs';
import * as events from './events.mjs';
import * as health from './health.mjs';
import * as container from './container.mjs';

const BENCHMARKS = {
  coldstart, memory, restart, clients, idle, 'rc-compile': rcCompile, rc, 'log-memory': logMemory, 'log-throughput': logThroughput, reexec, scale, events, health, container, boot, 'debian-boot': debianBoot,
};
/** Run when none is named: all but boot and debian-boot (qemu boots under software emulation: minutes; name them to run them). */
const DEFAULT_BENCHMARKS = Object.keys(BENCHMARKS).filter((n) => n !== 'boot' && n !== 'debian-boot');

/** "yes"/"NO" for a target check, "–" when it cannot be judged. */
function verdict(ok) {
  return ok === undefined ? '–' : ok ? 'yes' : 'NO';
}

/**
 * The summary rows: measurement, t6, s6, runit, t6/s6, t6/runit, target, met. Every figure
 * also goes into `figures` as numbers ({label, t6, s6, runit, higherIsBetter}), which the
 * next run compares against.
 */
export function summaryRows(all, figures = []) {
  const rows = [];
  const add = (label, v, unit, target, ok, higherIsBetter = false) => {
    rows.push([label, fmt(v.t6), fmt(v.s6), fmt(v.runit), fmt(ratio(v.t6, v.s6)), fmt(ratio(v.t6, v.runit)), target, verdict(ok)]);
    figures.push({ label, unit, t6: v.t6, s6: v.s6, runit: v.runit, higherIsBetter });
  };
  const cs = all.coldstart;
  if (cs) {
    for (const n of Object.keys(cs)) {
      const v = Object.fromEntries(Object.entries(cs[n]).map(([k, s]) => [k, s.median]));
      const r = ratio(v.t6, v.s6);
      const judged = n === '100' || n === '1000';
      add(`cold start, ${n} longruns (ms)`, v, 'ms', judged ? 't6/s6 ≤ 0.5' : '–', judged && r !== undefined ? r <= 0.5 : undefined);
    }
    const floors = Object.keys(cs).filter((n) => cs[n].floor).map((n) => `${n}: ${fmt(cs[n].floor.median)}`);
    if (floors.length > 0) rows.push([`  (no supervisor, sh loop: ${floors.join(', ')} ms)`, '', '', '', '', '', '', '']);
  }
  const mem = all.memory;
  if (mem) {
    for (const n of Object.keys(mem)) {
      const v = Object.fromEntries(Object.entries(mem[n]).map(([k, s]) => [k, s.pssMB]));
      if (n === '10') add(`memory PSS, ${n} longruns (MB)`, v, 'MB', 't6 ≤ 60 MB', v.t6 === undefined ? undefined : v.t6 <= 60);
      else if (n === '1000') {
        const r = ratio(v.t6, v.s6);
        add(`memory PSS, ${n} longruns (MB)`, v, 'MB', 't6/s6 ≤ 0.5', r === undefined ? undefined : r <= 0.5);
      } else add(`memory PSS, ${n} longruns (MB)`, v, 'MB', '–', undefined);
    }
  }
  const rs = all.restart;
  if (rs) {
    const v = Object.fromEntries(Object.entries(rs.readiness).map(([k, s]) => [k, s.median]));
    add('restart after SIGKILL, ready >1 s (ms)', v, 'ms', 't6 ≤ 1.5 ms', v.t6 === undefined ? undefined : v.t6 <= 1.5);
    if (Object.keys(rs.noReadiness).length > 0) {
      const w = Object.fromEntries(Object.entries(rs.noReadiness).map(([k, s]) => [k, s.median]));
      add('  same, no notification-fd (ms)', w, 'ms', '–', undefined);
    }
  }
  const cl = all.clients;
  if (cl) {
    for (const [row, per] of Object.entries(cl.rows)) {
      if (row.startsWith('interop')) continue;
      const v = Object.fromEntries(Object.entries(per).map(([k, s]) => [k, s.median]));
      const isAll = row.startsWith('svstat -a');
      const n = Number(row.match(/\((\d+)\)/)?.[1]);
      const node = cl.node?.median;
      if (row === 'svok DIR' || row.startsWith('rc list')) {
        // Issue 12: at most 1.1 × a bare `node -e 0` of the pinned Node, same run.
        const label = row === 'svok DIR' ? 'one svok call (ms)' : `t6-rc list default, ${n} svcs (ms)`;
        add(label, v, 'ms', `t6 ≤ 1.1 × node -e 0 (${fmt(node)})`, v.t6 === undefined || node === undefined ? undefined : v.t6 <= 1.1 * node);
        continue;
      }
      const limit = isAll ? (n === 1000 ? 60 : undefined) : 30;
      const label = isAll ? `t6-svstat -a, ${n} svcs (ms) [s6: loop, runit: sv status *]` : `one ${row === 'svc -u DIR' ? 'svc -u' : 'svstat'} call (ms)`;
      add(label, v, 'ms', limit === undefined ? '–' : `t6 ≤ ${limit} ms`, v.t6 === undefined || limit === undefined ? undefined : v.t6 <= limit);
    }
    if (cl.node) rows.push(['  (node -e 0, pinned Node)', fmt(cl.node.median), '', '', '', '', '', '']);
    for (const s of cl.skipped) if (s.column === 't6') rows.push([`${s.row} (t6)`, 'skipped', '', '', '', '', s.reason.slice(0, 40), '–']);
    if (cl.floor) rows.push(['  (spawnSync floor: /bin/true)', fmt(cl.floor.median), '', '', '', '', '', '']);
  }
  const id = all.idle;
  if (id) {
    const sec = Object.values(id)[0]?.seconds;
    const v = Object.fromEntries(Object.entries(id).map(([k, s]) => [k, s.cpuMs]));
    add(`idle CPU, 100 longruns, ${sec} s (ms)`, v, 'ms', 't6 = 0', v.t6 === undefined ? undefined : v.t6 === 0);
    const w = Object.fromEntries(Object.entries(id).map(([k, s]) => [k, s.contextSwitches]));
    rows.push(['  context switches in that window', ...['t6', 's6', 'runit'].map((k) => (w[k] === undefined ? '–' : String(w[k]))), '', '', '', '']);
  }
  // t6-rc-compile: beside s6-rc-compile 0.5.4.1 when scripts/bench/build-s6-rc.sh has
  // built it (issue 11: t6 ≤ 2 × s6), else against issue 3's figure (marked "issue").
  // t6-rc: s6-rc is not run here; that column is the issue's measurement of s6-rc 0.5.4.1
  // on the same 1,000-service shape (marked "issue").
  const rcc = all['rc-compile'];
  if (rcc?.t6) {
    const v = { t6: rcc.t6.median, s6: rcc.s6?.median ?? rc.S6RC_ISSUE.compile };
    if (rcc.s6) add('t6-rc-compile, 1000 svcs (ms)', v, 'ms', 't6/s6 ≤ 2', v.t6 <= 2 * v.s6);
    add(`t6-rc-compile, 1000 svcs (ms)${rcc.s6 ? '' : ' [s6: issue]'}`, v, 'ms', 't6 ≤ 120 ms', v.t6 <= 120);
  }
  const r = all.rc;
  if (r) {
    for (const row of rc.ROWS) {
      const t6 = r.stats[row.key]?.median;
      if (t6 === undefined) continue;
      add(`${row.label}, 1000 svcs (ms)${row.s6 === undefined ? '' : ' [s6: issue]'}`, { t6, s6: row.s6 }, 'ms', row.target, row.ok(t6));
    }
  }
  const lm = all['log-memory'];
  if (lm?.t6) {
    const growth = (r) => (r === undefined ? undefined : Math.max(r.rssGrowthMB, r.pssGrowthMB));
    const g = growth(lm.t6);
    add(`memory growth, ${lm.gb} GB into ${lm.services} loggers (MB) [s6: all s6-log+supervise]`, { t6: g, s6: growth(lm.s6) }, 'MB', 't6 ≤ 20 MB', g <= 20);
    rows.push([`  of t6's: anonymous ${fmt(lm.t6.anonGrowthMB)}, Node code pages ${fmt(lm.t6.fileGrowthMB)}; total s6 Pss ${fmt(lm.s6?.maxPssMB)}`, '', '', '', '', '', '', '']);
  }
  const lt = all['log-throughput'];
  if (lt?.t6) {
    const rate = Object.fromEntries(Object.entries(lt).map(([k, s]) => [k, s.rate.median]));
    add('logger throughput, 101-byte lines (M lines/s)', rate, 'M/s', 't6 ≥ 2 × s6-log', rate.s6 === undefined ? undefined : rate.t6 >= 2 * rate.s6, true);
    const cpu = Object.fromEntries(Object.entries(lt).map(([k, s]) => [k, s.cpu.median]));
    add('logger CPU (s per GB)', cpu, 's/GB', "t6 ≤ s6-log's", cpu.s6 === undefined ? undefined : cpu.t6 <= cpu.s6);
  }
  if (all.scale) scaleRows(all.scale, add, rows);
  if (all.events) eventRows(all.events, add);
  if (all.health) healthRows(all.health, add);
  if (all.container?.stats) containerRows(all.container, add, rows);
  if (all.boot?.median) bootRows(all.boot, add, rows);
  return rows;
}

/** Rows of bench/container.mjs: t6-container against podman floors of the same run, memory beside tini. */
function containerRows(ct, add, rows) {
  const g = ct.goals ?? container.GOALS;
  const st = ct.stats;
  const c = ct.compare;
  add('container: podman run → CMD\'s line, 5 services (ms)', { t6: st.start.t6Cmd?.median }, 'ms', `≤ floor (sh -c echo: ${fmt(st.start.floorEcho?.median)}) + ${g.startOverFloorMs}`, c.met.start);
  add('container: start, t6 − floor (ms)', { t6: c.startOverEcho }, 'ms', `≤ ${g.startOverFloorMs}`, c.met.start);
  add('container: podman stop → gone (ms)', { t6: st.stop.t6?.stop?.median }, 'ms', `≤ floor (${fmt(st.stop.floor?.stop?.median)}) + ${g.stopOverFloorMs}`, c.met.stop);
  add('container: stop, t6 − floor (ms)', { t6: c.stopOverFloor }, 'ms', `≤ ${g.stopOverFloorMs}`, c.met.stop);
  add('container: pid 1 PSS at rest (MB)', { t6: st.stop.t6?.pid1Pss?.median }, 'MB', '–', undefined);
  add('container: all processes PSS at rest (MB)', { t6: st.stop.t6?.pss?.median }, 'MB', '–', undefined);
  if (st.stop.tini) rows.push([`  (tini + a start script, same services: PSS ${fmt(st.stop.tini.pss?.median)} MB, stop ${fmt(st.stop.tini.stop?.median)} ms)`, '', '', '', '', '', '', '']);
}

/** Rows of bench/boot.mjs: t6 beside the real s6 stack booted in the same run, and t6 over the Node floor. */
function bootRows(b, add, rows) {
  const s6 = b.s6?.median ?? {};
  const c = b.sameRun ?? {};
  const met = c.met ?? {};
  const goals = b.goals ?? boot.GOALS;
  add('boot: Run /sbin/init → demo up, qemu (ms)', { t6: b.median.bootMs, s6: s6.bootMs }, 'ms', `t6/s6 ≤ ${goals.bootVsS6}`, met.bootVsS6);
  add('boot: t6 − Node floor, same run (ms)', { t6: c.bootOverFloorMs }, 'ms', `t6 − floor ≤ ${goals.bootOverFloorMs}`, met.bootOverFloor);
  rows.push([`  (boot: the Node floor, Run /sbin/init → its kmsg line: ${fmt(b.floor?.median?.bootMs)} ms)`, '', '', '', '', '', '', '']);
  add('boot: poweroff → Power down (ms)', { t6: b.median.poweroffMs, s6: s6.poweroffMs }, 'ms', `t6 ≤ ${goals.poweroffMs} ms`, met.poweroff);
  add('boot: machinery RSS at rest (MB)', { t6: b.median.rssMB, s6: s6.rssMB }, 'MB', `t6 ≤ ${goals.rssMB} MB`, met.rss);
  add('boot: machinery PSS at rest (MB)', { t6: b.median.pssMB, s6: s6.pssMB }, 'MB', '–', undefined);
  if (b.s6?.skipped) rows.push([`  (boot: no s6 column: ${b.s6.skipped.slice(0, 60)})`, '', '', '', '', '', '', '']);
}

/** Rows of bench/events.mjs (t6 only: s6 has no tree-wide stream): latency, subscribers' CPU cost, idle with one. */
function eventRows(ev, add) {
  add('events: kill → record, 10 subscribers, median (ms)', { t6: ev.latency.median }, 'ms', '–', undefined);
  add('events: kill → record, 10 subscribers, p99 (ms)', { t6: ev.latency.p99 }, 'ms', '–', undefined);
  const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  for (const n of [1, 10]) {
    const r = med(ev.cpu[n].map((x) => x.up)) / med(ev.cpu[0].map((x) => x.up));
    add(`events: svscan CPU in a 1,000-service -u change, ${n} subscriber${n === 1 ? '' : 's'} (× none)`, { t6: r }, '×', '≤ 1.1', r <= 1.1);
  }
  add('events: idle 60 s with a subscriber, context switches', { t6: ev.idle.switches }, 'n', '0', ev.idle.switches === 0);
}

/** Rows of bench/health.mjs (t6 only: s6 has no sd_notify and no built-in probe): readiness latency, 1,000 HTTP probes. */
function healthRows(h, add) {
  const g = h.goals ?? health.GOALS;
  const r = h.readiness;
  if (r) {
    add(`health: trigger → U, sd_notify READY=1, median (ms)`, { t6: r.sd.median }, 'ms', '–', undefined);
    add(`health: trigger → U, notification-fd, median (ms)`, { t6: r.fd.median }, 'ms', '–', undefined);
    add(`health: trigger → U, sd_notify READY=1, p99 (ms)`, { t6: r.sd.p99 }, 'ms', '–', undefined);
    add(`health: trigger → U, notification-fd, p99 (ms)`, { t6: r.fd.p99 }, 'ms', '–', undefined);
    add('health: sd_notify / notification-fd, medians (×)', { t6: r.ratio }, '×', `≤ ${g.readyRatio}`, r.ratio <= g.readyRatio);
  }
  const p = h.probes;
  if (p) {
    const n = p.probe.services;
    add(`health: svscan CPU, ${n} HTTP probes/s (% of a core)`, { t6: p.probe.cpu.percent }, '%', `≤ ${g.probeCpuPercent} %`, p.probe.cpu.percent <= g.probeCpuPercent);
    add(`health: svscan CPU, ${n} services, no probe (% of a core)`, { t6: p.baseline.cpu.percent }, '%', '–', undefined);
    add(`health: loop delay p99, ${n} HTTP probes/s (ms)`, { t6: p.probe.delay.p99 }, 'ms', `≤ ${g.probeDelayP99Ms} ms`, p.probe.delay.p99 <= g.probeDelayP99Ms);
    add(`health: loop delay p99, ${n} services, no probe (ms)`, { t6: p.baseline.delay.p99 }, 'ms', '–', undefined);
  }
}

/** Rows of bench/scale.mjs: every size's cold start, PSS, svstat -a, restart; t6-rc at each db size. */
function scaleRows(sc, add, rows) {
  const sizes = Object.keys(sc.results).map(Number);
  const top = Math.max(...sizes);
  for (const [key, what, unit, goal] of [['coldMs', 'cold start', 'ms', 0.7], ['pssMB', 'PSS', 'MB', 0.15], ['svstatMs', 'svstat -a', 'ms'], ['restartMs', 'restart', 'ms']]) {
    for (const n of sizes) {
      const v = { t6: sc.results[n].t6?.[key]?.median, s6: sc.results[n].s6?.[key]?.median };
      const r = ratio(v.t6, v.s6);
      const judged = goal !== undefined && n === top && n >= 10000;
      add(`scale: ${what}, ${n} longruns (${unit})${key === 'svstatMs' ? ' [s6: loop]' : ''}`, v, unit, judged ? `t6/s6 ≤ ${goal}` : '–', judged && r !== undefined ? r <= goal : undefined);
    }
  }
  if (sizes.length > 0 && top < 10000) rows.push([`  (scale: largest size ${top}, not 10,000: see scale's note on RLIMIT_NOFILE)`, '', '', '', '', '', '', '']);
  for (const [n, r] of Object.entries(sc.rc ?? {})) {
    add(`scale: t6-rc-init, ${n} svcs (ms) [t6 only]`, { t6: r.init.median }, 'ms', '–', undefined);
    add(`scale: t6-rc -u change, ${n} svcs (ms) [t6 only]`, { t6: r.up.median }, 'ms', '–', undefined);
    add(`scale: t6-rc -da change, ${n} svcs (ms) [t6 only]`, { t6: r.down.median }, 'ms', '–', undefined);
  }
}

/** The machine's state: 1,000 runs of /bin/true from a shell, and the load average. */
export function machineState() {
  return { trueLoopMs: scale.trueLoopMs(), loadavg: os.loadavg(), at: new Date().toISOString() };
}

function stateLine(m) {
  return m ? `/bin/true ×1000 ${fmt(m.trueLoopMs)} ms, load ${m.loadavg.map((x) => x.toFixed(2)).join(' ')}` : '–';
}

/** The previous summary's t6 figures by label (from `figures`, or parsed from an older file's table). */
export function previousFigures(prev) {
  const out = new Map();
  if (prev === undefined) return out;
  if (Array.isArray(prev.figures)) {
    for (const f of prev.figures) if (Number.isFinite(f.t6)) out.set(f.label, f.t6);
  } else if (Array.isArray(prev.table)) {
    for (const row of prev.table.slice(1)) {
      const v = Number(row[1]);
      if (row[1] !== '' && Number.isFinite(v)) out.set(row[0], v);
    }
  }
  return out;
}

/** "+12%" against the previous t6 figure, with REGRESSION when more than 10 % worse. */
export function versusPrevious(f, prev) {
  const before = prev.get(f.label);
  if (before === undefined || !Number.isFinite(f.t6)) return { text: '', regression: false };
  if (before === 0) return f.t6 === 0 ? { text: '=', regression: false } : { text: `was 0 REGRESSION`, regression: !f.higherIsBetter };
  const change = (f.t6 - before) / before;
  const worse = f.higherIsBetter ? -change : change;
  const regression = worse > 0.1;
  return { text: `${change >= 0 ? '+' : ''}${(change * 100).toFixed(0)}%${regression ? ' REGRESSION' : ''}`, regression };
}

function readPrevious() {
  try {
    return JSON.parse(fs.readFileSync(path.join(RESULTS_DIR, 'summary-latest.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

export async function runAll(names) {
  const started = Date.now();
  // Read before this run's summary overwrites it.
  const previous = readPrevious();
  const machineBefore = machineState();
  console.log(`scan directories under ${SCAN_BASE} (${fsType(SCAN_BASE) ?? 'unknown file system'})`);
  console.log(`machine before: ${stateLine(machineBefore)}`);
  const all = {};
  const failures = {};
  for (const name of names) {
    try {
      all[name] = await BENCHMARKS[name].run();
    } catch (err) {
      failures[name] = String(err?.stack ?? err);
      console.log(`\n!! ${name} failed: ${err?.stack ?? err}`);
    }
  }
  const machineAfter = machineState();
  const figures = [];
  const body = summaryRows(all, figures);
  const prev = previousFigures(previous);
  const byLabel = new Map(figures.map((f) => [f.label, versusPrevious(f, prev)]));
  const rows = [['measurement', 't6', 's6', 'runit', 't6/s6', 't6/runit', 'target', 'met', 't6 vs previous'],
    ...body.map((row) => [...row, byLabel.get(row[0])?.text ?? ''])];
  console.log(`\n== summary (${((Date.now() - started) / 1000).toFixed(0)} s) ==`);
  printTable(rows);
  console.log(`machine: before ${stateLine(machineBefore)}; after ${stateLine(machineAfter)}`);
  if (previous !== undefined) console.log(`previous summary: ${previous.environment?.date ?? '?'} (commit ${previous.environment?.commit ?? '?'}), machine ${stateLine(previous.machine?.before)}`);
  else console.log('previous summary: none (bench/results/summary-latest.json): nothing to compare with');
  const regressions = figures.filter((f) => byLabel.get(f.label)?.regression);
  for (const f of regressions) console.log(`REGRESSION: ${f.label}: t6 ${fmt(f.t6)} ${f.unit}, was ${fmt(prev.get(f.label))} (${byLabel.get(f.label).text.split(' ')[0]})`);
  for (const [name, err] of Object.entries(failures)) console.log(`FAILED: ${name}: ${err.split('\n')[0]}`);
  const file = writeResults('summary', { table: rows, figures, machine: { before: machineBefore, after: machineAfter }, regressions: regressions.map((f) => f.label), results: all, failures });
  console.log(`results: ${file}`);
  return { all, failures };
}

if (isMain(import.meta.url)) {
  const names = process.argv.slice(2);
  for (const n of names) {
    if (!(n in BENCHMARKS)) {
      console.error(`unknown benchmark ${n} (known: ${Object.keys(BENCHMARKS).join(' ')})`);
      process.exit(100);
    }
  }
  const { failures } = await runAll(names.length > 0 ? names : DEFAULT_BENCHMARKS);
  process.exit(Object.keys(failures).length > 0 ? 1 : 0);
}
