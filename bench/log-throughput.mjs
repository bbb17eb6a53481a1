/**
 * Logger throughput: 101-byte lines piped into a logger writing one logdir with a per-line
 * ISO timestamp and 1 MB rotation — t6-log (`T s1000000 DIR`), Debian's s6-log with the
 * same script, and runit's svlogd (`-ttt`, `s1000000` in DIR/config) when installed.
 *
 * Per sample: `cat FILE | /usr/bin/time LOGGER …` (the input file sits on a tmpfs; the
 * logdir on BENCH_LOG_DIR, default the system's temporary directory, i.e. a disk as real
 * logs are). Reports lines/s (input lines over wall time, median of BENCH_LOG_SAMPLES,
 * default 5, peers interleaved), the logger's CPU seconds (user + system) per GB of input,
 * and the ratios t6/peer. Target (issue 4): t6 ≥ 2 × s6-log's lines/s; CPU s/GB ≤ s6-log's.
 *
 *   node_modules/.bin/node bench/log-throughput.mjs
 *   BENCH_LOG_LINES=2000000 BENCH_LOG_SAMPLES=5 BENCH_LOG_DIR=/var/tmp …
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { t6Bin, hasProgram, makeTemp, removeTemp, summarize, printSamples, printTable, fmt, ratio, writeResults, envInt, fsType, isMain, SCAN_BASE } from './lib.mjs';

const LINES = envInt('BENCH_LOG_LINES', 2_000_000);
const SAMPLES = envInt('BENCH_LOG_SAMPLES', 5);
const LOG_BASE = process.env.BENCH_LOG_DIR || os.tmpdir();

/** The input: LINES lines of exactly 101 bytes (100 printable + newline), all different. */
function makeInput(dir) {
  const file = path.join(dir, 'input');
  const fd = fs.openSync(file, 'w');
  const batch = 10000;
  const pad = 'abcdefghijklmnopqrstuvwxyz0123456789 '.repeat(3);
  for (let i = 0; i < LINES; i += batch) {
    let s = '';
    for (let j = i; j < Math.min(i + batch, LINES); j++) {
      const head = `line ${j} level=${j % 5 === 0 ? 'warn' : 'info'} `;
      s += `${head}${pad.slice(0, 100 - head.length)}\n`;
    }
    fs.writeSync(fd, s);
  }
  fs.closeSync(fd);
  return { file, bytes: fs.statSync(file).size };
}

const PEERS = {
  t6: { title: 't6-log', available: () => true, argv: (dir) => [t6Bin('t6-log'), 'T', 's1000000', dir] },
  s6: { title: 's6-log', available: () => hasProgram('s6-log'), argv: (dir) => ['s6-log', 'T', 's1000000', dir] },
  runit: {
    title: 'svlogd',
    available: () => hasProgram('svlogd'),
    setup: (dir) => { fs.mkdirSync(dir, { recursive: true }); fs.writeFileSync(path.join(dir, 'config'), 's1000000\n'); },
    argv: (dir) => ['svlogd', '-ttt', dir],
  },
};

function sample(peer, input, base) {
  const dir = path.join(base, `logdir-${peer.title}`);
  fs.rmSync(dir, { recursive: true, force: true });
  peer.setup?.(dir);
  const timeFile = path.join(base, 'time');
  const cmd = `cat '${input.file}' | /usr/bin/time -f '%e %U %S' -o '${timeFile}' ${peer.argv(dir).map((a) => `'${a}'`).join(' ')}`;
  const t0 = process.hrtime.bigint();
  const r = spawnSync('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${peer.title} failed: ${r.status}`);
  const [, user, sys] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  // The logdir keeps the newest archives only (n10 by default), so what must be there is the
  // end of the input: the last line written is the input's last line.
  let lines = 0;
  const names = fs.readdirSync(dir).filter((n) => n.startsWith('@')).sort();
  names.push('current');
  let last = '';
  for (const name of names) {
    if (!fs.existsSync(path.join(dir, name))) continue;
    const data = fs.readFileSync(path.join(dir, name));
    for (let i = data.indexOf(10); i >= 0; i = data.indexOf(10, i + 1)) lines++;
    if (data.length > 0) last = data.subarray(data.lastIndexOf(10, data.length - 2) + 1).toString();
  }
  const archives = names.length - 1;
  fs.rmSync(dir, { recursive: true, force: true });
  return { wall, cpu: user + sys, linesPerS: LINES / wall, cpuPerGB: (user + sys) / (input.bytes / 1e9), kept: lines, endComplete: last.includes(`line ${LINES - 1} `), archives };
}

export async function run() {
  if (!hasProgram('/usr/bin/time')) throw new Error('needs /usr/bin/time');
  const inputDir = makeTemp('t6-bench-log-in-', SCAN_BASE);
  const logDir = makeTemp('t6-bench-log-', LOG_BASE);
  const input = makeInput(inputDir);
  const peers = Object.entries(PEERS).filter(([, p]) => p.available());
  console.log(`log throughput: ${LINES} lines of 101 bytes (${fmt(input.bytes / 1e6)} MB), script 'T s1000000 DIR', logdir on ${fsType(logDir) ?? '?'} (${LOG_BASE}), ${SAMPLES} samples`);
  const results = Object.fromEntries(peers.map(([name]) => [name, []]));
  // one warm-up each (page cache, Node's code cache), then interleaved samples
  for (const [, p] of peers) sample(p, input, logDir);
  for (let i = 0; i < SAMPLES; i++) {
    for (const [name, p] of peers) {
      const s = sample(p, input, logDir);
      if (!s.endComplete) console.log(`  warning: ${p.title} did not log the input's last line (${s.kept} lines kept)`);
      results[name].push(s);
    }
  }
  const stats = {};
  for (const [name, p] of peers) {
    const rate = summarize(results[name].map((s) => s.linesPerS / 1e6));
    const cpu = summarize(results[name].map((s) => s.cpuPerGB));
    stats[name] = { rate, cpu, archives: results[name][0]?.archives };
    console.log(`${p.title}:`);
    printSamples('M lines/s', rate, 'M/s');
    printSamples('CPU s/GB', cpu, 's/GB');
  }
  const rows = [['logger', 'M lines/s', 'CPU s/GB', 'archives', 't6 speed ×', 't6 CPU ×']];
  for (const [name, p] of peers) {
    rows.push([p.title, fmt(stats[name].rate.median), fmt(stats[name].cpu.median), String(stats[name].archives),
      fmt(ratio(stats.t6.rate.median, stats[name].rate.median)), fmt(ratio(stats.t6.cpu.median, stats[name].cpu.median))]);
  }
  printTable(rows);
  if (stats.s6 !== undefined) {
    const speed = stats.t6.rate.median / stats.s6.rate.median;
    const cpu = stats.t6.cpu.median / stats.s6.cpu.median;
    console.log(`target: t6 ≥ 2 × s6-log lines/s: ${fmt(speed)}× ${speed >= 2 ? 'met' : 'NOT met'}; CPU s/GB ≤ s6-log's: ${fmt(cpu)}× ${cpu <= 1 ? 'met' : 'NOT met'}`);
  }
  removeTemp(inputDir);
  removeTemp(logDir);
  const file = writeResults('log-throughput', { lines: LINES, bytes: input.bytes, samples: results, stats });
  console.log(`results: ${file}`);
  return stats;
}

if (isMain(import.meta.url)) await run();
