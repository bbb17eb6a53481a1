/**
 * The built-in probes' cost (issue 14), the Prober alone (src/supervise/probes.ts): 1,000
 * Probers in this process, each probing `GET /health` over HTTP once a second (liveness
 * after readiness, so they never stop), against one node:http server in a separate
 * process. It measures this process's CPU time (process.cpuUsage) as a % of one core, and
 * the event loop's delay (perf_hooks.monitorEventLoopDelay, 1 ms resolution): p50, p99, max.
 *
 * Schedules, each on fresh Probers in every round:
 *   spread          the services' starts spread over one second (start-delay i ms), as on
 *                   a running machine (the Prober's default transport, host timers);
 *   spread-net      the same with the Prober forced onto node:net (its transport before);
 *   spread-epoll    the same with the Prober forced onto epoll (sys/tcpprobe.ts);
 *   t6, t6-epoll    what t6-svscan does: liveness on the shared coarse clock (probe-clock.ts),
 *                   over its default transport (io_uring where the kernel allows it) or epoll;
 *   spread-grid     the same with the host's timers on a 50 ms grid (not what t6 does: what
 *                   coalescing the loop's wake-ups would save);
 *   burst           every Prober started at the same instant, as at boot (the first
 *                   liveness attempt's random phase is what spreads them afterwards);
 *   baseline        nothing to do: the machine's own noise in the same windows;
 *   raw             the floor: the same requests on the spread schedule from a bare
 *                   node:net loop (connect, write, destroy at the first bytes), no Prober;
 *   sys             the floor on raw system calls (sys/tcpprobe.ts, no Prober), closed with a FIN;
 *   sys-reset       the same closed with SO_LINGER 0 (a reset: no FIN exchange, no TIME_WAIT);
 *   raw-keepalive   for comparison, the same over one kept-alive connection per service:
 *                   what HTTP probing would cost if a connection were kept between attempts.
 * The schedules take turns, BENCH_PROBES_ROUNDS times, so the drift of a shared machine hits
 * all alike. CPU and loop delay are measured in windows of their own (sampling the delay
 * each ms costs CPU too).
 *
 * Targets: ≤ 5 % of one core, event-loop delay ≤ 10 ms.
 *
 *   flock /tmp/t6-bench.lock node_modules/.bin/node bench/probes-unit.mjs
 * env: BENCH_PROBES_N (1000), BENCH_PROBES_SECONDS (20 of each window, split over the
 *      rounds), BENCH_PROBES_ROUNDS (4), BENCH_PROBES_WARMUP_S (2, per round),
 *      BENCH_PROBES_MODES (raw,sys,sys-reset,raw-keepalive,spread-net,spread,burst;
 *      baseline always runs)
 */
import net from 'node:net';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { envInt, fmt, isMain, median, printTable, sleep, startServer, writeResults } from './lib.mjs';
import { Prober } from '../src/supervise/probes.ts';
import { withProbeClock } from '../src/supervise/probe-clock.ts';
import { TcpProbes, tcpAddress } from '../src/sys/tcpprobe.ts';

/** The Prober's transport in each mode ('raw': io_uring where the kernel allows it, else epoll). */
const TRANSPORTS = { 'spread-net': 'node:net', 'spread-epoll': 'epoll', 't6-epoll': 'epoll' };

/** `n` Probers on `port`, the i-th first probing `delay(i)` ms from now; their outcomes counted. */
function startProbers(n, port, delay, transport, gridMs = 0, clock = false) {
  const counts = { ready: 0, gaveUp: 0, unhealthy: 0 };
  const hostDeps = {
    spawn: () => { throw new Error('no check probes here'); },
    kill: () => {},
    setTimer: (ms, fn) => {
      // With a grid, every timer fires on the next multiple of gridMs: one wake of the loop
      // for all the attempts that fall due in that slice, instead of one each.
      const now = performance.now();
      const wait = gridMs > 0 ? Math.ceil(Math.ceil((now + ms) / gridMs) * gridMs - now) : ms;
      const t = setTimeout(fn, wait);
      return { cancel: () => clearTimeout(t) };
    },
    monotonicMs: () => performance.now(),
    transport,
  };
  // t6-svscan's way: liveness on the host's one coarse clock (probe-clock.ts).
  const deps = clock ? withProbeClock(hostDeps) : hostDeps;
  const events = { onReady: () => counts.ready++, onGaveUp: () => counts.gaveUp++, onUnhealthy: () => counts.unhealthy++ };
  const probers = [];
  for (let i = 0; i < n; i++) {
    const spec = {
      target: { kind: 'http', name: `http://127.0.0.1:${port}/health`, host: '127.0.0.1', port, path: '/health', hostHeader: `127.0.0.1:${port}` },
      intervalMs: 1000, timeoutMs: 1000, startDelayMs: delay(i), attempts: 0, httpStatus: { min: 200, max: 399 }, liveness: 3,
    };
    probers.push(new Prober(spec, '/', deps, events));
  }
  return { probers, counts, stop: () => { for (const p of probers) p.stop(); } };
}

/**
 * The floor under the Prober: the same requests made by the least node:net code that can
 * make them (connect, write, destroy at the first bytes), on the same schedule. What the
 * kernel charges this process for a loopback connection (connect, the send, close) is most
 * of the cost, and it is the same for both.
 */
function startRaw(n, port, delay) {
  const request = Buffer.from(`GET /health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
  const timers = [];
  let stopped = false;
  const once = (i) => {
    if (stopped) return;
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => s.write(request));
    s.once('data', () => s.destroy());
    s.once('error', () => s.destroy());
    timers[i] = setTimeout(once, 1000, i);
  };
  for (let i = 0; i < n; i++) timers[i] = setTimeout(once, delay(i), i);
  return { counts: undefined, stop: () => { stopped = true; for (const t of timers) clearTimeout(t); } };
}

/**
 * The floor on raw system calls (src/sys/tcpprobe.ts, no Prober): the same requests, the
 * connection closed at the first bytes; `reset`: closed with SO_LINGER 0 (a reset, no FIN).
 */
function startSys(n, port, delay, reset) {
  const request = Buffer.from(`GET /health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
  const address = tcpAddress('127.0.0.1', port);
  const probes = new TcpProbes({ reset });
  const timers = [];
  let stopped = false;
  const once = (i) => {
    if (stopped) return;
    timers[i] = setTimeout(once, 1000, i);
    let conn;
    const client = { onConnected() {}, onData() { conn.close(); }, onEnd() {}, onFailed() {} };
    try {
      conn = probes.open(address, request, client);
    } catch {
      // refused at once: the next attempt comes anyway
    }
  };
  for (let i = 0; i < n; i++) timers[i] = setTimeout(once, delay(i), i);
  return { counts: undefined, stop: () => { stopped = true; for (const t of timers) clearTimeout(t); probes.shutdown(); } };
}

/**
 * For comparison only (the Prober does not do this): the same requests over one kept-alive
 * connection per service, so no connect or close per attempt; what HTTP probing could cost
 * if a connection were kept between attempts.
 */
function startKeepAlive(n, port, delay) {
  const request = Buffer.from(`GET /health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  const timers = [];
  const sockets = [];
  let stopped = false;
  const once = (i) => {
    if (stopped) return;
    let s = sockets[i];
    if (s === undefined || s.destroyed) {
      s = sockets[i] = net.connect({ host: '127.0.0.1', port });
      s.on('data', () => {});
      s.on('error', () => s.destroy());
    }
    s.write(request);
    timers[i] = setTimeout(once, 1000, i);
  };
  for (let i = 0; i < n; i++) timers[i] = setTimeout(once, delay(i), i);
  return { counts: undefined, stop: () => { stopped = true; for (const t of timers) clearTimeout(t); for (const s of sockets) s?.destroy(); } };
}

/** This process's CPU time over `seconds`. */
async function cpuWindow(seconds) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const cpu = process.cpuUsage(cpu0);
  return { userMs: cpu.user / 1000, systemMs: cpu.system / 1000, wallMs: performance.now() - t0 };
}

/** The schedule's start delays: spread over one second, or all at once. */
function delays(mode, n) {
  return mode === 'burst' ? () => 0 : (i) => Math.floor((i * 1000) / n);
}

/**
 * One round of one schedule on fresh Probers (or a floor's loop): warm-up, a CPU window
 * (requests served during it counted), then a loop-delay window into the schedule's
 * histogram (sampling the delay each ms costs CPU too, so never during the CPU window).
 */
async function round(mode, acc, server, n, windowS, warmupS) {
  const floors = {
    raw: startRaw, 'raw-keepalive': startKeepAlive,
    sys: (n, port, delay) => startSys(n, port, delay, false), 'sys-reset': (n, port, delay) => startSys(n, port, delay, true),
  };
  const set = mode === 'baseline' ? undefined
    : floors[mode] !== undefined ? floors[mode](n, server.port, delays(mode, n))
      : startProbers(n, server.port, delays(mode, n), TRANSPORTS[mode] ?? 'raw', mode === 'spread-grid' ? 50 : 0, mode === 't6' || mode === 't6-epoll');
  await sleep(warmupS * 1000);
  const before = await server.requests();
  const cpu = await cpuWindow(windowS);
  acc.served += (await server.requests()) - before;
  acc.userMs += cpu.userMs;
  acc.systemMs += cpu.systemMs;
  acc.wallMs += cpu.wallMs;
  acc.roundPercents.push(((cpu.userMs + cpu.systemMs) / cpu.wallMs) * 100);
  // A fresh monitor per window: one enabled again counts the time it was off as a delay
  // (and its histogram cannot be merged with another: the windows' figures are kept).
  const monitor = monitorEventLoopDelay({ resolution: 1 });
  monitor.enable();
  await sleep(windowS * 1000);
  monitor.disable();
  acc.delays.push({ p50: monitor.percentile(50) / 1e6, p99: monitor.percentile(99) / 1e6, max: monitor.max / 1e6 });
  set?.stop();
  if (set?.counts !== undefined) for (const k of Object.keys(acc.outcomes)) acc.outcomes[k] += set.counts[k];
  await sleep(1500); // the last attempts drain before the next set starts
}

/** Runs the benchmark, prints its table; returns the results. */
export async function run() {
  const n = envInt('BENCH_PROBES_N', 1000);
  const seconds = envInt('BENCH_PROBES_SECONDS', 20);
  const rounds = Math.max(1, envInt('BENCH_PROBES_ROUNDS', 4));
  const warmupS = envInt('BENCH_PROBES_WARMUP_S', 2);
  const modes = ['baseline', ...(process.env.BENCH_PROBES_MODES ?? 'raw,sys,sys-reset,raw-keepalive,spread-net,spread,burst').split(',').map((s) => s.trim()).filter(Boolean)];
  const acc = Object.fromEntries(modes.map((m) => [m, {
    served: 0, userMs: 0, systemMs: 0, wallMs: 0, roundPercents: [], outcomes: { ready: 0, gaveUp: 0, unhealthy: 0 },
    delays: [],
  }]));
  const server = await startServer();
  const loadBefore = os.loadavg();
  try {
    for (let r = 0; r < rounds; r++) for (const mode of modes) await round(mode, acc[mode], server, n, seconds / rounds, warmupS);
  } finally {
    await server.stop();
  }
  const loadAfter = os.loadavg();
  const results = modes.map((mode) => {
    const a = acc[mode];
    const probing = mode !== 'baseline';
    return {
      mode, probers: probing ? n : 0, cpuPercent: ((a.userMs + a.systemMs) / a.wallMs) * 100, roundPercents: a.roundPercents,
      userMs: a.userMs, systemMs: a.systemMs, wallMs: a.wallMs, requestsPerS: a.served / (a.wallMs / 1000),
      // The windows' median p50, and their worst p99 and max.
      delayP50Ms: median(a.delays.map((d) => d.p50)), delayP99Ms: Math.max(...a.delays.map((d) => d.p99)), delayMaxMs: Math.max(...a.delays.map((d) => d.max)),
      delays: a.delays,
      outcomes: probing && !mode.startsWith('raw') && !mode.startsWith('sys') ? a.outcomes : undefined,
    };
  });
  console.log(`\n${n} probes, HTTP every 1 s; ${rounds} alternating rounds, ${seconds} s of CPU window and ${seconds} s of delay window per schedule`);
  console.log(`targets: CPU ≤ 5 % of a core, loop delay ≤ 10 ms; load average ${loadBefore[0].toFixed(2)} before, ${loadAfter[0].toFixed(2)} after, ${os.cpus().length} CPUs`);
  printTable([
    ['schedule', 'probes', 'CPU % core', 'rounds min–max', 'user ms', 'sys ms', 'req/s', 'delay p50', 'worst p99', 'max', 'ready/round', 'failed'],
    ...results.map((r) => [
      r.mode, String(r.probers), fmt(r.cpuPercent), `${fmt(Math.min(...r.roundPercents))}–${fmt(Math.max(...r.roundPercents))}`,
      fmt(r.userMs, 0), fmt(r.systemMs, 0), fmt(r.requestsPerS, 0), fmt(r.delayP50Ms), fmt(r.delayP99Ms), fmt(r.delayMaxMs),
      r.outcomes === undefined ? '–' : String(r.outcomes.ready / rounds), r.outcomes === undefined ? '–' : String(r.outcomes.gaveUp + r.outcomes.unhealthy),
    ]),
  ]);
  const file = writeResults('probes-unit', { n, seconds, rounds, warmupS, loadBefore, loadAfter, results });
  console.log(`results: ${file}`);
  return { results };
}

if (isMain(import.meta.url)) await run();
