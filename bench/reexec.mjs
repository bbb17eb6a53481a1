/**
 * Re-exec and adoption (issue 10), t6 only: s6 can do neither for its supervisors, so the
 * yardstick is t6's own cold start of the same services, in the same run.
 *
 * - **Re-exec:** N services run under t6-svscan (pid 1 of a pid namespace). The bench
 *   writes `R` to `.s6-svscan/control` and, at once, `d` to a probe service's control
 *   FIFO; the time until the probe's `d` event arrives is the time until the new image
 *   serves a control byte. Every `run` writes one byte to a FIFO when it starts: after the
 *   re-exec none may have written again (0 services restarted).
 * - **Adoption:** N services run under a t6-svscan that is itself a service of an outer
 *   t6-svscan (pid 1, the subreaper). The bench kills the inner one with SIGKILL; the outer
 *   starts it again at once; the time from the kill until every service's control FIFO has
 *   a reader again (s6-svok's test) is the adoption. Compared with a cold start of the same
 *   N (from launch until every service runs), in the same run.
 *
 *   node_modules/.bin/node bench/reexec.mjs
 * env: BENCH_REEXEC_N (default 1000), BENCH_REEXEC_SAMPLES (default 5)
 * Targets (issue 10): re-exec ≤ 300 ms with 0 restarts; adoption ≤ 0.5 × cold start.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  BIN, ByteFifo, SUPERVISORS, Tree, envInt, fmt, isMain, makeServices, makeTemp, printTable, removeTemp,
  runScript, sleep, summarize, until, waitQuiet, writeResults,
} from './lib.mjs';
import { coldStartOnce } from './coldstart.mjs';

/** Opens `supervise/control` for writing without blocking: true once a supervisor reads it. */
function supervised(dir) {
  try {
    fs.closeSync(fs.openSync(path.join(dir, 'supervise', 'control'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
    return true;
  } catch {
    return false;
  }
}

function writeControl(file, bytes) {
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  try { fs.writeSync(fd, bytes); } finally { fs.closeSync(fd); }
}

/** Subscribes to an event/ fifodir as s6's ftrigr does; resolves when `byte` arrives. */
function eventOnce(serviceDir, byte, timeoutMs = 30_000) {
  const fifo = path.join(serviceDir, 'event', `ftrig1:@4000000000000000${String(process.pid).padStart(8, "0").slice(-8)}:bench0`);
  mkfifo(fifo);
  const fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  return new Promise((resolve, reject) => {
    const stream = new net.Socket({ fd, readable: true, writable: false });
    const t = setTimeout(() => { stream.destroy(); reject(new Error(`no ${byte} event from ${serviceDir}`)); }, timeoutMs);
    stream.on('data', (chunk) => {
      if (!chunk.includes(byte)) return;
      const at = performance.now();
      clearTimeout(t);
      stream.destroy();
      try { fs.unlinkSync(fifo); } catch { /* gone */ }
      resolve(at);
    });
  });
}

/** A FIFO made by mkfifo(1) (Node has no mkfifo). */
function mkfifo(file) {
  try { fs.unlinkSync(file); } catch { /* absent */ }
  if (spawnSync('mkfifo', ['-m', '0622', file], { stdio: 'ignore' }).status !== 0) throw new Error(`mkfifo ${file} failed`);
}

/** One re-exec of a tree of `n` running services: ms until the probe's `d`, and how many services started again. */
async function reexecOnce(n) {
  const dir = makeTemp('t6-bench-reexec-');
  const fifo = new ByteFifo(path.join(dir, 'running'));
  const scandir = path.join(dir, 'scan');
  makeServices(scandir, n, runScript(fifo.path));
  const probe = path.join(scandir, 'probe');
  fs.mkdirSync(probe);
  fs.writeFileSync(path.join(probe, 'run'), '#!/bin/sh\nexec sleep 100000\n', { mode: 0o755 });
  const tree = Tree.start(SUPERVISORS.t6, scandir);
  try {
    await fifo.waitFor(n, 30_000 + n * 20, `${n} services`);
    await until('probe up', () => supervised(probe), 30_000, 5);
    const served = eventOnce(probe, 'd');
    const start = performance.now();
    writeControl(path.join(scandir, '.s6-svscan', 'control'), 'R');
    writeControl(path.join(probe, 'supervise', 'control'), 'd');
    const at = await served;
    // Any restart would have written its byte long before the probe's event came back.
    const restarted = fifo.count - n;
    return { ms: at - start, restarted };
  } finally {
    await tree.stop();
    fifo.close();
    removeTemp(dir);
  }
}

/** One adoption of `n` running services: ms from the SIGKILL until every one is supervised again. */
async function adoptionOnce(n) {
  const dir = makeTemp('t6-bench-adopt-');
  const fifo = new ByteFifo(path.join(dir, 'running'));
  const inner = path.join(dir, 'inner');
  const outer = path.join(dir, 'outer');
  makeServices(inner, n, runScript(fifo.path));
  fs.mkdirSync(path.join(outer, 'inner'), { recursive: true });
  // Readiness (-d 3) makes the outer restart it at once after a death, not one second later (s6's rule).
  fs.writeFileSync(path.join(outer, 'inner', 'run'), `#!/bin/sh\nexec ${path.join(BIN, 't6-svscan')} -d 3 -c 4000 ${inner}\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(outer, 'inner', 'notification-fd'), '3\n');
  const tree = Tree.start(SUPERVISORS.t6, outer);
  try {
    await fifo.waitFor(n, 30_000 + n * 20, `${n} services`);
    const dirs = fs.readdirSync(inner).filter((d) => !d.startsWith('.')).map((d) => path.join(inner, d));
    await until('all supervised', () => dirs.every(supervised), 30_000, 5);
    // Let the inner t6-svscan pass the one-second rule, so the outer restarts it at once.
    await sleep(1100);
    const innerPid = tree.processes().find((p) => p.comm === 't6-svscan' && p.pid !== tree.pid1)?.pid;
    if (innerPid === undefined) throw new Error('no inner t6-svscan');
    const start = performance.now();
    process.kill(innerPid, 'SIGKILL');
    await until('inner gone', () => dirs.some((d) => !supervised(d)), 10_000, 1);
    await until('all supervised again', () => dirs.every(supervised), 30_000, 2);
    const ms = performance.now() - start;
    return { ms, restarted: fifo.count - n };
  } finally {
    await tree.stop();
    fifo.close();
    removeTemp(dir);
  }
}

export async function run() {
  const n = envInt('BENCH_REEXEC_N', 1000);
  const samples = envInt('BENCH_REEXEC_SAMPLES', 5);
  const machineBusy = await waitQuiet();
  console.log(`\n== re-exec and adoption, ${n} services, ${samples} samples ==`);
  const reexec = [];
  const adopt = [];
  const cold = [];
  let restarts = 0;
  await coldStartOnce(SUPERVISORS.t6, 10); // warm the page cache
  for (let i = 0; i < samples; i++) {
    const r = await reexecOnce(n);
    reexec.push(r.ms);
    restarts += r.restarted;
    const a = await adoptionOnce(n);
    adopt.push(a.ms);
    restarts += a.restarted;
    cold.push((await coldStartOnce(SUPERVISORS.t6, n)).all);
  }
  const results = { n, reexec: summarize(reexec), adoption: summarize(adopt), coldStart: summarize(cold), restarts };
  const ratio = results.adoption.median / results.coldStart.median;
  printTable([
    ['measurement', 'median ms', 'samples', 'target', 'met'],
    [`re-exec, ${n} services, until a control byte is served`, fmt(results.reexec.median), reexec.map((x) => fmt(x)).join(' '), '≤ 300 ms, 0 restarted', results.reexec.median <= 300 && restarts === 0 ? 'yes' : 'NO'],
    [`adoption of ${n} services after SIGKILL`, fmt(results.adoption.median), adopt.map((x) => fmt(x)).join(' '), '', ''],
    [`cold start of the same ${n}`, fmt(results.coldStart.median), cold.map((x) => fmt(x)).join(' '), '', ''],
    ['adoption / cold start', fmt(ratio), '', '≤ 0.5', ratio <= 0.5 ? 'yes' : 'NO'],
    ['services restarted by re-exec or adoption', String(restarts), '', '0', restarts === 0 ? 'yes' : 'NO'],
  ]);
  const file = writeResults('reexec', { machineBusy, unit: 'ms', results });
  console.log(`results: ${file}`);
  return results;
}

if (isMain(import.meta.url)) await run();
