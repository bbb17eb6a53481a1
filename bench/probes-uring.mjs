/**
 * The probe transports alone (issue 14): sys/tcpprobe.ts (TcpProbes: raw non-blocking
 * sockets in one epoll set) beside sys/uringprobe.ts (UringProbes: one io_uring chain per
 * connection, completions reaped on a 50 ms tick), in this process, against one node:http
 * server in a separate process. 1,000 connections a second (HTTP GET, `Connection: close`,
 * each closed at its first bytes), started on a 50 ms grid: 50 per tick. It measures this
 * process's CPU time (process.cpuUsage, user and system) as a % of one core, and the answers
 * received.
 *
 * Modes take turns, BENCH_URING_ROUNDS times, so the drift of a shared machine hits all alike:
 *   baseline       nothing to do (the grid's timer alone): the process's own noise;
 *   epoll          TcpProbes, closed with a FIN;
 *   uring          UringProbes (tick lane), closed with a FIN: an answer waits up to two ticks;
 *   uring-followup the same with followUpMs 1 (the ring entered again 1 ms after new chains:
 *                  an answer waits up to one tick);
 *   uring-urgent   UringProbes with every connection urgent (a second ring whose fd wakes the
 *                  loop at each completion): what readiness probes cost.
 *
 * Target: ≤ 5 % of one core for 1,000 probes a second.
 *
 *   flock /tmp/t6-bench.lock node_modules/.bin/node bench/probes-uring.mjs
 * env: BENCH_URING_N (1000 a second), BENCH_URING_SECONDS (20 of CPU window per mode, split
 *      over the rounds), BENCH_URING_ROUNDS (4), BENCH_URING_WARMUP_S (2, per round),
 *      BENCH_URING_MODES (epoll,uring,uring-followup,uring-urgent; baseline always runs)
 */
import os from 'node:os';
import { envInt, fmt, isMain, printTable, sleep, startServer, writeResults } from './lib.mjs';
import { TcpProbes, tcpAddress } from '../src/sys/tcpprobe.ts';
import { UringProbes, uringUnavailable } from '../src/sys/uringprobe.ts';

const GRID_MS = 50;

/**
 * `perSecond` connections a second on the grid through `probes` (undefined: the grid's
 * timer alone), each closed at its first bytes or after 1 s; outcomes counted.
 */
function startLoad(probes, port, perSecond, urgent) {
  const request = Buffer.from(`GET /health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
  const address = tcpAddress('127.0.0.1', port);
  const counts = { answered: 0, failed: 0, thrown: 0, timedOut: 0 };
  const perTick = Math.round((perSecond * GRID_MS) / 1000);
  const open = new Set();
  const tick = () => {
    if (probes === undefined) return;
    const now = performance.now();
    for (const conn of open) if (now - conn.t0 > 1000) { conn.c.close(); open.delete(conn); counts.timedOut++; }
    for (let i = 0; i < perTick; i++) {
      const entry = { t0: now, c: undefined };
      const done = () => { entry.c.close(); open.delete(entry); };
      const client = {
        onConnected() {}, onData() { counts.answered++; done(); }, onEnd() { open.delete(entry); counts.failed++; },
        onFailed() { open.delete(entry); counts.failed++; },
      };
      try {
        entry.c = probes.open(address, request, client, urgent);
        open.add(entry);
      } catch {
        counts.thrown++;
      }
    }
  };
  // On the grid itself (t0 + k × 50 ms), not setInterval's, which drifts by each turn's lateness.
  const start = performance.now();
  let k = 0;
  let timer;
  const next = () => {
    tick();
    k++;
    timer = setTimeout(next, Math.max(0, start + k * GRID_MS - performance.now()));
  };
  timer = setTimeout(next, GRID_MS);
  return { counts, stop: () => { clearTimeout(timer); for (const e of open) e.c.close(); probes?.shutdown(); } };
}

/** One round of one mode: warm-up, then a CPU window (answers and served requests counted). */
async function round(mode, acc, server, n, windowS, warmupS) {
  const probes = mode === 'baseline' ? undefined : mode === 'epoll' ? new TcpProbes() : new UringProbes({ followUpMs: mode === 'uring-followup' ? 1 : 0 });
  const load = startLoad(probes, server.port, n, mode === 'uring-urgent');
  await sleep(warmupS * 1000);
  const answered0 = load.counts.answered;
  const before = await server.requests();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(windowS * 1000);
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  acc.served += (await server.requests()) - before;
  acc.answered += load.counts.answered - answered0;
  load.stop();
  acc.userMs += cpu.user / 1000;
  acc.systemMs += cpu.system / 1000;
  acc.wallMs += wallMs;
  acc.roundPercents.push(((cpu.user + cpu.system) / 1000 / wallMs) * 100);
  for (const k of ['failed', 'thrown', 'timedOut']) acc[k] += load.counts[k];
  await sleep(1500); // the last connections drain before the next mode starts
}

/** Runs the benchmark, prints its table; returns the results. */
export async function run() {
  const n = envInt('BENCH_URING_N', 1000);
  const seconds = envInt('BENCH_URING_SECONDS', 20);
  const rounds = Math.max(1, envInt('BENCH_URING_ROUNDS', 4));
  const warmupS = envInt('BENCH_URING_WARMUP_S', 2);
  const why = uringUnavailable();
  const asked = (process.env.BENCH_URING_MODES ?? 'epoll,uring,uring-followup,uring-urgent').split(',').map((s) => s.trim()).filter(Boolean);
  if (why !== undefined) console.log(`io_uring unavailable (${why}): epoll and baseline only`);
  const modes = ['baseline', ...asked.filter((m) => why === undefined || !m.startsWith('uring'))];
  const acc = Object.fromEntries(modes.map((m) => [m, { served: 0, answered: 0, failed: 0, thrown: 0, timedOut: 0, userMs: 0, systemMs: 0, wallMs: 0, roundPercents: [] }]));
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
    return {
      mode, cpuPercent: ((a.userMs + a.systemMs) / a.wallMs) * 100, userPercent: (a.userMs / a.wallMs) * 100, systemPercent: (a.systemMs / a.wallMs) * 100,
      roundPercents: a.roundPercents, answeredPerS: a.answered / (a.wallMs / 1000), servedPerS: a.served / (a.wallMs / 1000),
      failed: a.failed, thrown: a.thrown, timedOut: a.timedOut,
    };
  });
  const epoll = results.find((r) => r.mode === 'epoll');
  console.log(`\n${n} connections/s on a ${GRID_MS} ms grid; ${rounds} alternating rounds, ${seconds} s of CPU window per mode`);
  console.log(`target: ≤ 5 % of a core; load average ${loadBefore[0].toFixed(2)} before, ${loadAfter[0].toFixed(2)} after, ${os.cpus().length} CPUs`);
  printTable([
    ['mode', 'CPU % core', 'user %', 'sys %', 'rounds min–max', '× epoll', 'per 1,000 answers/s', 'answers/s', 'served/s', 'failed', 'thrown', 'timed out'],
    ...results.map((r) => [
      r.mode, fmt(r.cpuPercent), fmt(r.userPercent), fmt(r.systemPercent), `${fmt(Math.min(...r.roundPercents))}–${fmt(Math.max(...r.roundPercents))}`,
      epoll === undefined || r.mode === 'baseline' ? '–' : fmt(r.cpuPercent / epoll.cpuPercent),
      r.answeredPerS > 0 ? fmt((r.cpuPercent * 1000) / r.answeredPerS) : '–', fmt(r.answeredPerS, 0), fmt(r.servedPerS, 0),
      String(r.failed), String(r.thrown), String(r.timedOut),
    ]),
  ]);
  const file = writeResults('probes-uring', { n, seconds, rounds, warmupS, gridMs: GRID_MS, loadBefore, loadAfter, results });
  console.log(`results: ${file}`);
  return { results };
}

if (isMain(import.meta.url)) await run();
