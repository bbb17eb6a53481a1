/**
 * Memory of the supervision machinery with N longruns up: the sum of Pss (from
 * /proc/PID/smaps_rollup) over the supervisor processes only — t6-svscan; s6-svscan and
 * every s6-supervise; runsvdir and every runsv — services excluded. Rss and USS (private
 * pages) are reported beside it.
 *
 * PSS divides a shared page among the processes that map it. The bench itself (and any
 * test running on this machine) runs the same Node binary as t6-svscan, and would take a
 * share of the pages of that binary that t6 has touched, making t6 look smaller than it
 * is on a real machine, where it is the only long-lived Node process. So, unless
 * BENCH_SHARED_NODE=1, t6-svscan runs here (through its unchanged bin/ wrapper) on a
 * private copy of the Node binary.
 *
 *   node_modules/.bin/node bench/memory.mjs
 * env: BENCH_MEM_SIZES (default 10,100,1000), BENCH_SETTLE_MS (default 2000),
 *      BENCH_PEERS (default t6,s6,runit)
 * Targets (issue 2): t6 ≤ 60 MB at 10; t6 ≤ 0.5 × s6 at 1,000.
 */
import os from 'node:os';
import path from 'node:path';
import {
  ByteFifo, Tree, envInt, fmt, isMain, makeServices, makeTemp, memoryOf, printTable, privateNodeT6, ratio,
  removeTemp, runScript, selectedPeers, sleep, writeResults,
  waitQuiet,
} from './lib.mjs';

/** Starts a tree with `count` longruns, waits until all run and `settleMs` more, measures. */
export async function memoryOnce(sup, count, settleMs) {
  const dir = makeTemp(`t6-bench-mem-${sup.name}-`);
  const fifo = new ByteFifo(path.join(dir, 'running'));
  const scandir = path.join(dir, 'scan');
  makeServices(scandir, count, runScript(fifo.path));
  const tree = Tree.start(sup, scandir);
  try {
    await Promise.race([
      fifo.waitFor(count, 30_000 + count * 20, `${count} services of ${sup.title} to run`),
      tree.exited.then(() => tree.checkAlive('start')),
    ]);
    await sleep(settleMs);
    tree.checkAlive('settling');
    const procs = tree.supervisorProcesses();
    const all = tree.processes();
    const total = { pss: 0, rss: 0, uss: 0 };
    for (const p of procs) {
      const m = memoryOf(p.pid);
      total.pss += m.pss;
      total.rss += m.rss;
      total.uss += m.uss;
    }
    const comms = {};
    for (const p of procs) comms[p.comm] = (comms[p.comm] ?? 0) + 1;
    return {
      pssMB: total.pss / 1024, rssMB: total.rss / 1024, ussMB: total.uss / 1024,
      supervisorProcesses: procs.length, processes: all.length, comms,
    };
  } finally {
    await tree.stop();
    fifo.close();
    removeTemp(dir);
  }
}

export async function run() {
  const sizes = (process.env.BENCH_MEM_SIZES ?? '10,100,1000').split(',').map(Number);
  const settleMs = envInt('BENCH_SETTLE_MS', 2000);
  const shared = process.env.BENCH_SHARED_NODE === '1';
  const nodeDir = shared ? undefined : makeTemp('t6-bench-node-', os.tmpdir());
  const peers = selectedPeers().map((p) => (p.name === 't6' && !shared ? privateNodeT6(nodeDir) : p));
  const machineBusy = await waitQuiet();
  const results = {};
  console.log(`\n== memory of the supervision machinery, services excluded (MB; settled ${settleMs} ms after all run) ==`);
  console.log(shared
    ? 'note: BENCH_SHARED_NODE=1: t6-svscan shares its Node binary with the bench and other Node processes, so its PSS reads low'
    : 'note: t6-svscan runs on a private copy of the Node binary (its PSS as on a machine where it is the only Node process)');
  for (const n of sizes) {
    results[n] = {};
    for (const sup of peers) {
      const r = await memoryOnce(sup, n, settleMs);
      results[n][sup.name] = r;
      console.log(`  ${String(n).padStart(4)} longruns, ${sup.title}: PSS ${fmt(r.pssMB)} MB, RSS ${fmt(r.rssMB)} MB, USS ${fmt(r.ussMB)} MB over ${r.supervisorProcesses} supervisor processes (${Object.entries(r.comms).map(([c, k]) => `${k}× ${c}`).join(', ')})`);
    }
  }
  const rows = [['N', ...peers.map((p) => `${p.name} PSS MB`), 't6/s6', 't6/runit', ...peers.map((p) => `${p.name} RSS`), 'target']];
  for (const n of sizes) {
    const r = results[n];
    const pss = (name) => r[name]?.pssMB;
    const target = n === 10 ? 't6 ≤ 60 MB' : n === 1000 ? 't6/s6 ≤ 0.5' : '–';
    rows.push([n, ...peers.map((p) => fmt(pss(p.name))), fmt(ratio(pss('t6'), pss('s6'))), fmt(ratio(pss('t6'), pss('runit'))),
      ...peers.map((p) => fmt(r[p.name]?.rssMB)), target]);
  }
  console.log('');
  printTable(rows);
  if (nodeDir !== undefined) removeTemp(nodeDir);
  const file = writeResults('memory', { machineBusy, unit: 'MB', settleMs, sharedNode: shared, results });
  console.log(`results: ${file}`);
  return results;
}

if (isMain(import.meta.url)) {
  await run();
}
