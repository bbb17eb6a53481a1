/**
 * The built-in probes' cost (issue 14), the Prober alone (src/supervise/probes.ts): 1,000
 * Probers in this process, each probing `GET /health` over HTTP once a second (liveness
 * after readiness, so they never stop), against one node:http server in a separate
 * process. Over a window of BENCH_PROBES_SECONDS (20) after a warm-up, it measures this
 * process's CPU time (process.cpuUsage) as a % of one core, and the event loop's delay
 * (perf_hooks.monitorEventLoopDelay, 1 ms resolution): p50, p99, max.
 *
 * Two schedules, each on fresh Probers:
 *   spread   the services' starts spread over one second (start-delay i ms), as on a
 *            running machine;
 *   burst    every Prober started at the same instant, as at boot: their attempts stay
 *            in step, and every second all 1,000 are due in the same turn of the loop.
 * Plus `baseline`, the same windows with nothing to do, and `raw`, the floor: the same
 * requests on the spread schedule made by a bare node:net loop (connect, write, destroy),
 * no Prober; and `raw-keepalive`, for comparison, the same over one kept-alive connection
 * per service (what a connection kept between attempts would cost). CPU and loop delay are measured in windows of their own (sampling the delay
 * each ms costs CPU too).
 *
 * Targets: ≤ 5 % of one core, event-loop delay ≤ 10 ms.
 *
 *   flock /tmp/t6-bench.lock node_modules/.bin/node bench/probes-unit.mjs
 * env: BENCH_PROBES_N (1000), BENCH_PROBES_SECONDS (20), BENCH_PROBES_WARMUP_S (3),
 *      BENCH_PROBES_MODES (raw,raw-keepalive,spread,burst; baseline always runs first)
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { envInt, fmt, isMain, printTable, sleep, writeResults } from './lib.mjs';
import { Prober } from '../src/supervise/probes.ts';

const SERVER = `
const http = require('node:http');
let requests = 0;
const server = http.createServer((req, res) => { requests++; res.end('ok'); });
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
process.stdin.on('data', () => process.stdout.write(requests + '\\n'));
`;

/** The HTTP server in its own process: its port, a request counter, and a stop. */
async function startServer() {
  const child = spawn(process.execPath, ['-e', SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  let waiting;
  child.stdout.setEncoding('utf8').on('data', (d) => {
    for (const l of d.split('\n').filter(Boolean)) lines.push(l);
    waiting?.();
  });
  const nextLine = () => new Promise((resolve) => {
    const take = () => { if (lines.length > 0) { waiting = undefined; resolve(lines.shift()); } };
    waiting = take;
    take();
  });
  const port = Number(await nextLine());
  return {
    port,
    requests: async () => { child.stdin.write('\n'); return Number(await nextLine()); },
    stop: () => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); }),
  };
}

/** `n` Probers on `port`, the i-th first probing `delay(i)` ms from now; their outcomes counted. */
function startProbers(n, port, delay) {
  const counts = { ready: 0, gaveUp: 0, unhealthy: 0 };
  const deps = {
    spawn: () => { throw new Error('no check probes here'); },
    kill: () => {},
    setTimer: (ms, fn) => { const t = setTimeout(fn, ms); return { cancel: () => clearTimeout(t) }; },
    monotonicMs: () => performance.now(),
  };
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

/** This process's CPU time over `seconds`, as a % of one core. */
async function cpuWindow(seconds) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  return { cpuPercent: ((cpu.user + cpu.system) / 1000 / wall) * 100, userMs: cpu.user / 1000, systemMs: cpu.system / 1000, wallMs: wall };
}

/** The event loop's delay over `seconds` (in a window of its own: sampling each ms costs CPU too). */
async function delayWindow(seconds) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  await sleep(seconds * 1000);
  h.disable();
  return { delayP50Ms: h.percentile(50) / 1e6, delayP99Ms: h.percentile(99) / 1e6, delayMaxMs: h.max / 1e6 };
}

/** One schedule: fresh Probers, warm-up, the CPU window (requests served during it counted), the delay window; outcomes, heap. */
async function runMode(mode, server, n, seconds, warmupS) {
  const delay = mode === 'burst' ? () => 0 : (i) => Math.floor((i * 1000) / n);
  const floors = { raw: startRaw, 'raw-keepalive': startKeepAlive };
  const set = mode === 'baseline' ? undefined : (floors[mode] ?? startProbers)(n, server.port, delay);
  await sleep(warmupS * 1000);
  const heapBefore = process.memoryUsage().heapUsed;
  const before = await server.requests();
  const cpu = await cpuWindow(seconds);
  const served = (await server.requests()) - before;
  const loop = await delayWindow(seconds);
  const heapAfter = process.memoryUsage().heapUsed;
  set?.stop();
  return {
    mode, probers: set === undefined ? 0 : n, ...cpu, ...loop, requestsPerS: served / (cpu.wallMs / 1000), outcomes: set?.counts,
    heapBeforeMB: heapBefore / 2 ** 20, heapAfterMB: heapAfter / 2 ** 20,
  };
}

/** Runs the benchmark, prints its table; returns the results. */
export async function run() {
  const n = envInt('BENCH_PROBES_N', 1000);
  const seconds = envInt('BENCH_PROBES_SECONDS', 20);
  const warmupS = envInt('BENCH_PROBES_WARMUP_S', 3);
  const modes = (process.env.BENCH_PROBES_MODES ?? 'raw,raw-keepalive,spread,burst').split(',').map((s) => s.trim()).filter(Boolean);
  const server = await startServer();
  const loadBefore = os.loadavg();
  const results = [];
  try {
    results.push(await runMode('baseline', server, n, Math.min(seconds, 5), 0));
    for (const mode of modes) {
      results.push(await runMode(mode, server, n, seconds, warmupS));
      await sleep(1500); // the last attempts drain before the next set starts
    }
  } finally {
    await server.stop();
  }
  const loadAfter = os.loadavg();
  console.log(`\n${n} Probers, HTTP every 1 s, ${seconds} s windows (targets: CPU ≤ 5 % of a core, loop delay ≤ 10 ms); load average ${loadBefore[0].toFixed(2)} before, ${loadAfter[0].toFixed(2)} after, ${os.cpus().length} CPUs`);
  printTable([
    ['schedule', 'probers', 'CPU % core', 'user ms', 'sys ms', 'req/s', 'delay p50', 'p99', 'max', 'ready', 'failed', 'heap MB before→after'],
    ...results.map((r) => [
      r.mode, String(r.probers), fmt(r.cpuPercent), fmt(r.userMs, 0), fmt(r.systemMs, 0), fmt(r.requestsPerS, 0),
      fmt(r.delayP50Ms), fmt(r.delayP99Ms), fmt(r.delayMaxMs), String(r.outcomes?.ready ?? '–'),
      r.outcomes === undefined ? '–' : String(r.outcomes.gaveUp + r.outcomes.unhealthy), `${fmt(r.heapBeforeMB, 1)}→${fmt(r.heapAfterMB, 1)}`,
    ]),
  ]);
  const file = writeResults('probes-unit', { n, seconds, warmupS, loadBefore, loadAfter, results });
  console.log(`results: ${file}`);
  return { results };
}

if (isMain(import.meta.url)) await run();
