/**
 * Cold start: from launching the supervisor (in a fresh pid namespace, on a fresh scan
 * directory) until every one of N longruns runs. Each `run` writes one byte into a FIFO
 * the bench reads, then execs `sleep 1d`; the N-th byte ends the measurement, so nothing
 * polls. Same `run` scripts for every supervisor.
 *
 * A fourth column, "floor", starts the same run scripts with no supervisor at all (a
 * plain `sh` loop as the namespace's pid 1): what the services alone cost on this machine,
 * which no supervisor can beat.
 *
 *   node_modules/.bin/node bench/coldstart.mjs
 * env: BENCH_COLD_SIZES (default 10,100,1000), BENCH_COLD_SAMPLES (default 5),
 *      BENCH_COLD_SAMPLES_1000 (default 3), BENCH_PEERS (default t6,s6,runit),
 *      BENCH_COLD_FLOOR (default 1; 0 leaves the floor out)
 * Target (issue 2): t6 ≤ 0.5 × s6 at 100 and at 1,000.
 */
import path from 'node:path';
import {
  ByteFifo, Tree, envInt, fmt, isMain, makeServices, makeTemp, printSamples, printTable, ratio,
  removeTemp, runScript, selectedPeers, summarize, writeResults,
  waitQuiet,
} from './lib.mjs';

/** No supervisor: pid 1 is a shell that starts every run script once, in the background. */
export const FLOOR = {
  name: 'floor',
  title: 'no supervisor (sh loop)',
  command: (scandir) => ['sh', '-c', 'for d in "$1"/*/; do (cd "$d" && exec ./run) & done; wait', 'sh', scandir],
  supervisorComms: ['sh'],
  readiness: false,
  available: () => true,
};

/** One cold start: ms from spawn to the N-th "running" byte (`all`) and to the first (`first`). */
export async function coldStartOnce(sup, count) {
  const dir = makeTemp(`t6-bench-cold-${sup.name}-`);
  const fifo = new ByteFifo(path.join(dir, 'running'));
  const scandir = path.join(dir, 'scan');
  makeServices(scandir, count, runScript(fifo.path));
  const tree = Tree.start(sup, scandir);
  try {
    const timeout = 30_000 + count * 20;
    const done = fifo.waitFor(count, timeout, `${count} services of ${sup.title} to run`);
    const at = await Promise.race([done, tree.exited.then(() => tree.checkAlive('cold start'))]);
    return { all: at - tree.startedAt, first: fifo.firstAt - tree.startedAt };
  } finally {
    await tree.stop();
    fifo.close();
    removeTemp(dir);
  }
}

export async function run() {
  const sizes = (process.env.BENCH_COLD_SIZES ?? '10,100,1000').split(',').map(Number);
  const samplesDefault = envInt('BENCH_COLD_SAMPLES', 5);
  const peers = selectedPeers();
  const columns = envInt('BENCH_COLD_FLOOR', 1) ? [...peers, FLOOR] : peers;
  const machineBusy = await waitQuiet();
  const results = {};
  console.log('\n== cold start: launch until N longruns run (ms) ==');
  for (const sup of columns) await coldStartOnce(sup, 10); // warm the page cache: binaries, libraries, dist/
  for (const n of sizes) {
    const samples = n >= 1000 ? envInt('BENCH_COLD_SAMPLES_1000', 3) : samplesDefault;
    const per = Object.fromEntries(columns.map((p) => [p.name, []]));
    const first = Object.fromEntries(columns.map((p) => [p.name, []]));
    // Interleave the peers sample by sample, so that drift in the machine hits all alike.
    for (let i = 0; i < samples; i++) {
      for (const sup of columns) {
        const r = await coldStartOnce(sup, n);
        per[sup.name].push(r.all);
        first[sup.name].push(r.first);
      }
    }
    results[n] = {};
    console.log(`\n-- ${n} longruns, ${samples} samples each`);
    for (const sup of columns) {
      results[n][sup.name] = { ...summarize(per[sup.name]), firstRunning: summarize(first[sup.name]) };
      printSamples(sup.title, results[n][sup.name]);
      console.log(`    first service running after: median ${fmt(results[n][sup.name].firstRunning.median)} ms`);
    }
  }
  const rows = [['N', ...columns.map((p) => `${p.name} ms`), 't6/s6', 't6/runit', 'target']];
  for (const n of sizes) {
    const r = results[n];
    const med = (name) => r[name]?.median;
    rows.push([n, ...columns.map((p) => fmt(med(p.name))), fmt(ratio(med('t6'), med('s6'))), fmt(ratio(med('t6'), med('runit'))),
      n === 100 || n === 1000 ? 't6/s6 ≤ 0.5' : '–']);
  }
  console.log('');
  printTable(rows);
  const file = writeResults('coldstart', { machineBusy, unit: 'ms', results });
  console.log(`results: ${file}`);
  return results;
}

if (isMain(import.meta.url)) {
  await run();
}
