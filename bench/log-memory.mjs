/**
 * Memory of in-process loggers under a flood: 10 services each write BENCH_LOG_GB / 10 of
 * 101-byte lines at once (`yes … | head -c`), each into its own logger with ISO stamps and
 * a bounded logdir (`T s1000000 n5`, so the disk never fills).
 *
 * - t6: the loggers run inside t6-svscan (`log/t6-log`); measured: t6-svscan's Rss and Pss
 *   (/proc/PID/smaps_rollup) before the flood (services down, tree settled) and the
 *   maximum during it, sampled every BENCH_LOG_SAMPLE_MS (default 100).
 * - s6: s6-svscan with `log/run` = `s6-log -b T s1000000 n5 DIR` per service; the same
 *   readings summed over s6-svscan, every s6-supervise and every s6-log.
 * Also reported: how much of the Rss growth is anonymous memory (heap, buffers) and how much
 * file or shmem pages (the Node binary's code, which t6-svscan pages out once started up and
 * which the logging path faults back in: a one-time cost, the same for 0.1 GB as for 1 GB),
 * and the wall time of the flood (until every logger has logged the last line).
 * Target (issue 4): t6-svscan grows by at most 20 MB during a 1 GB flood into 10 services.
 *
 *   node_modules/.bin/node bench/log-memory.mjs
 * env: BENCH_LOG_GB (default 1), BENCH_LOG_SERVICES (default 10), BENCH_LOG_DIR (where the
 *      logdirs go; default the system's temporary directory), BENCH_PEERS (t6,s6)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  SUPERVISORS, Tree, envInt, fmt, hasProgram, isMain, makeTemp, memoryOf, printTable, privateNodeT6, removeTemp, sleep, t6Bin, until, writeResults,
} from './lib.mjs';

const GB = Number(process.env.BENCH_LOG_GB ?? 1);
const SERVICES = envInt('BENCH_LOG_SERVICES', 10);
const SAMPLE_MS = envInt('BENCH_LOG_SAMPLE_MS', 100);
const LOG_BASE = process.env.BENCH_LOG_DIR || os.tmpdir();
const LINE = 'x'.repeat(100);

/** Sum of Rss/Pss and of RssAnon/RssFile (kB) over processes. */
function memoryOfAll(pids) {
  const total = { rss: 0, pss: 0, anon: 0, file: 0 };
  for (const pid of pids) {
    try {
      const m = memoryOf(pid);
      total.rss += m.rss;
      total.pss += m.pss;
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      total.anon += Number(status.match(/^RssAnon:\s+(\d+)/m)?.[1] ?? 0);
      // File pages and shmem (the bench's private copy of the Node binary sits on a tmpfs).
      total.file += Number(status.match(/^RssFile:\s+(\d+)/m)?.[1] ?? 0) + Number(status.match(/^RssShmem:\s+(\d+)/m)?.[1] ?? 0);
    } catch { /* gone */ }
  }
  return total;
}

/** The end of what a logdir holds: current's last bytes, or the newest archive's if current is empty (just rotated). */
function lastLogged(dir) {
  try {
    const archives = fs.readdirSync(dir).filter((n) => /^@[0-9a-f]{24}\.[su]$/.test(n)).sort();
    for (const name of ['current', archives[archives.length - 1]]) {
      if (name === undefined) continue;
      const fd = fs.openSync(path.join(dir, name), 'r');
      try {
        const size = fs.fstatSync(fd).size;
        if (size === 0) continue;
        const tail = Buffer.alloc(Math.min(size, 64));
        fs.readSync(fd, tail, 0, tail.length, size - tail.length);
        return tail.toString();
      } finally {
        fs.closeSync(fd);
      }
    }
  } catch { /* rotating right now: next time */ }
  return '';
}

/** One flood under `sup`; returns memory before / max during and the flood's duration. */
async function floodOnce(sup, kind) {
  const dir = makeTemp(`t6-bench-logmem-${kind}-`);
  const logBase = makeTemp(`t6-bench-logmem-dirs-${kind}-`, LOG_BASE);
  const scandir = path.join(dir, 'scan');
  const bytes = Math.floor((GB * 1e9) / SERVICES);
  const logdirs = [];
  for (let i = 0; i < SERVICES; i++) {
    const svc = path.join(scandir, `flood${i}`);
    const logdir = path.join(logBase, `flood${i}`);
    logdirs.push(logdir);
    fs.mkdirSync(path.join(svc, 'log'), { recursive: true });
    fs.writeFileSync(path.join(svc, 'down'), '');
    // head -c cuts the last line: the END line follows it on a line of its own.
    fs.writeFileSync(path.join(svc, 'run'), `#!/bin/sh\nyes ${LINE} | head -c ${bytes}\necho\necho END\nexec sleep 3600\n`, { mode: 0o755 });
    if (kind === 't6') fs.writeFileSync(path.join(svc, 'log', 't6-log'), `T\ns1000000\nn5\n${logdir}\n`);
    else fs.writeFileSync(path.join(svc, 'log', 'run'), `#!/bin/sh\nexec s6-log -b T s1000000 n5 ${logdir}\n`, { mode: 0o755 });
  }
  const tree = Tree.start(sup, scandir);
  try {
    const machinery = () => tree.processes().filter((p) => p.pid === tree.pid1 || ['s6-svscan', 's6-supervise', 's6-log'].includes(p.comm)).map((p) => p.pid);
    const expected = kind === 't6' ? 1 : 1 + 2 * SERVICES + SERVICES;
    await until(`${sup.title} and its loggers`, () => machinery().length >= expected, 30_000, 50);
    if (kind === 't6') await until('logdirs created', () => logdirs.every((d) => fs.existsSync(path.join(d, 'current'))), 30_000, 50);
    await sleep(2000);
    tree.checkAlive('settling');
    const pids = machinery();
    const before = memoryOfAll(pids);
    let max = { ...before };
    const started = performance.now();
    const svc = t6Bin('t6-svc');
    const r = spawnSync(svc, ['-u', ...logdirs.map((_, i) => path.join(scandir, `flood${i}`))], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`t6-svc -u failed: ${r.stderr}`);
    const done = new Set();
    while (done.size < SERVICES) {
      tree.checkAlive('the flood');
      const m = memoryOfAll(machinery());
      if (m.rss > max.rss) max.rss = m.rss;
      if (m.pss > max.pss) max.pss = m.pss;
      if (m.anon > max.anon) max.anon = m.anon;
      if (m.file > max.file) max.file = m.file;
      for (const [i, d] of logdirs.entries()) {
        if (done.has(i)) continue;
        if (lastLogged(d).endsWith(' END\n')) done.add(i);
      }
      if (performance.now() - started > 600_000) throw new Error('flood took more than 10 minutes');
      await sleep(SAMPLE_MS);
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      processes: pids.length,
      beforeRssMB: before.rss / 1024, maxRssMB: max.rss / 1024, rssGrowthMB: (max.rss - before.rss) / 1024,
      beforePssMB: before.pss / 1024, maxPssMB: max.pss / 1024, pssGrowthMB: (max.pss - before.pss) / 1024,
      anonGrowthMB: (max.anon - before.anon) / 1024, fileGrowthMB: (max.file - before.file) / 1024,
      seconds, mbPerSecond: (bytes * SERVICES) / 1e6 / seconds,
    };
  } finally {
    await tree.stop();
    removeTemp(dir);
    removeTemp(logBase);
  }
}

export async function run() {
  const peers = (process.env.BENCH_PEERS ?? 't6,s6').split(',').filter((p) => p === 't6' || p === 's6');
  console.log(`\n== log memory: ${GB} GB into ${SERVICES} services at once, logdirs on ${LOG_BASE} ==`);
  const results = {};
  const tmp = makeTemp('t6-bench-logmem-node-');
  try {
    for (const kind of peers) {
      if (kind === 's6' && !(hasProgram('s6-svscan') && hasProgram('s6-log'))) { console.log('note: s6-svscan/s6-log not installed; skipped'); continue; }
      const sup = kind === 't6' ? privateNodeT6(tmp) : SUPERVISORS.s6;
      results[kind] = await floodOnce(sup, kind);
    }
  } finally {
    removeTemp(tmp);
  }
  const rows = [['', 'processes', 'Rss before', 'Rss max', 'Rss growth', 'Pss before', 'Pss max', 'Pss growth', 'of it: anon', 'code/file', 'flood s', 'MB/s']];
  for (const [kind, r] of Object.entries(results)) {
    rows.push([kind === 't6' ? 't6-svscan (loggers inside)' : 's6-svscan + supervise + s6-log', String(r.processes),
      fmt(r.beforeRssMB), fmt(r.maxRssMB), fmt(r.rssGrowthMB), fmt(r.beforePssMB), fmt(r.maxPssMB), fmt(r.pssGrowthMB), fmt(r.anonGrowthMB), fmt(r.fileGrowthMB), fmt(r.seconds), fmt(r.mbPerSecond)]);
  }
  printTable(rows);
  if (results.t6) {
    const g = Math.max(results.t6.rssGrowthMB, results.t6.pssGrowthMB);
    console.log(`target: t6-svscan grows ≤ 20 MB: ${g <= 20 ? 'yes' : 'NO'} (${fmt(g)} MB, of which ${fmt(results.t6.anonGrowthMB)} MB anonymous)`);
  }
  const file = writeResults('log-memory', { gb: GB, services: SERVICES, results });
  console.log(`results: ${file}`);
  return { gb: GB, services: SERVICES, ...results };
}

if (isMain(import.meta.url)) await run();
