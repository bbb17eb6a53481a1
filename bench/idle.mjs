/**
 * Idle: 100 longruns up and nothing happening, for BENCH_IDLE_SECONDS (default 60). How
 * much CPU does the supervision machinery use? Per process, all threads: utime+stime from
 * /proc/PID/stat (clock ticks, what `ps`/`top` show), the on-CPU time from
 * /proc/PID/task/*\/schedstat (nanoseconds) and the number of context switches (each
 * wake-up of any thread counts: a poller shows up here even when it rounds to 0 ticks).
 * The three trees run side by side during the same window.
 *
 *   node_modules/.bin/node bench/idle.mjs
 * env: BENCH_IDLE_SECONDS (default 60), BENCH_IDLE_SERVICES (default 100),
 *      BENCH_SETTLE_MS (default 2000), BENCH_PEERS
 * Target (issue 2): t6 uses no CPU time over the window (0 ticks).
 */
import path from 'node:path';
import {
  ByteFifo, Tree, cpuOf, envInt, fmt, isMain, makeServices, makeTemp, printTable, removeTemp,
  runScript, selectedPeers, sleep, writeResults,
  waitQuiet,
} from './lib.mjs';

/** Sum of cpuOf over the tree's supervisor processes (those alive at both readings). */
function treeCpu(tree, pids) {
  const out = { ticks: 0, cpuMs: 0, runNs: 0, switches: 0, threads: 0, perPid: {} };
  for (const pid of pids) {
    try {
      const c = cpuOf(pid);
      out.perPid[pid] = c;
      out.ticks += c.ticks;
      out.cpuMs += c.cpuMs;
      out.runNs += c.runNs;
      out.switches += c.switches;
      out.threads += c.threads;
    } catch { /* gone: counted by the caller */ }
  }
  return out;
}

export async function run() {
  const seconds = envInt('BENCH_IDLE_SECONDS', 60);
  const count = envInt('BENCH_IDLE_SERVICES', 100);
  const settleMs = envInt('BENCH_SETTLE_MS', 2000);
  const peers = selectedPeers();
  const machineBusy = await waitQuiet();
  console.log(`\n== idle: ${count} longruns up, ${seconds} s with nothing happening; CPU of the supervision machinery ==`);
  const setups = [];
  try {
    for (const sup of peers) {
      const dir = makeTemp(`t6-bench-idle-${sup.name}-`);
      const fifo = new ByteFifo(path.join(dir, 'running'));
      const scandir = path.join(dir, 'scan');
      makeServices(scandir, count, runScript(fifo.path));
      const tree = Tree.start(sup, scandir);
      setups.push({ sup, dir, fifo, tree });
      await Promise.race([fifo.waitFor(count, 60_000, `${count} services of ${sup.title}`), tree.exited.then(() => tree.checkAlive('start'))]);
    }
    await sleep(settleMs);
    const before = setups.map((s) => {
      const pids = s.tree.supervisorProcesses().map((p) => p.pid);
      return { pids, cpu: treeCpu(s.tree, pids) };
    });
    await sleep(seconds * 1000);
    const results = {};
    for (const [i, s] of setups.entries()) {
      s.tree.checkAlive('the idle window');
      const after = treeCpu(s.tree, before[i].pids);
      const gone = before[i].pids.filter((p) => after.perPid[p] === undefined);
      // Only processes alive at both readings are compared.
      const b = { ticks: 0, cpuMs: 0, runNs: 0, switches: 0 };
      for (const pid of before[i].pids) {
        if (after.perPid[pid] === undefined) continue;
        const c = before[i].cpu.perPid[pid];
        b.ticks += c.ticks; b.cpuMs += c.cpuMs; b.runNs += c.runNs; b.switches += c.switches;
      }
      // Which threads of pid 1 woke up (names as the kernel knows them), to tell a poller from a one-off.
      const root = before[i].pids[0];
      const t0 = before[i].cpu.perPid[root]?.perThread ?? {};
      const t1 = after.perPid[root]?.perThread ?? {};
      const woke = [];
      for (const [tid, th] of Object.entries(t1)) {
        const d = th.switches - (t0[tid]?.switches ?? 0);
        if (d > 0) woke.push({ tid: Number(tid), comm: th.comm, switches: d, onCpuMs: (th.runNs - (t0[tid]?.runNs ?? 0)) / 1e6 });
      }
      results[s.sup.name] = {
        seconds,
        services: count,
        supervisorProcesses: before[i].pids.length,
        threads: after.threads,
        cpuTicks: after.ticks - b.ticks,
        cpuMs: after.cpuMs - b.cpuMs,
        onCpuMs: (after.runNs - b.runNs) / 1e6,
        contextSwitches: after.switches - b.switches,
        vanished: gone.length,
        pid1ThreadsThatWoke: woke,
      };
      const r = results[s.sup.name];
      console.log(`  ${s.sup.title}: ${r.cpuTicks} ticks = ${fmt(r.cpuMs)} ms utime+stime, ${fmt(r.onCpuMs, 3)} ms on CPU, ${r.contextSwitches} context switches over ${r.supervisorProcesses} processes / ${r.threads} threads${gone.length ? `, ${gone.length} vanished` : ''}`);
      for (const w of woke) console.log(`    pid 1 thread ${w.tid} (${w.comm}): ${w.switches} wake-ups, ${fmt(w.onCpuMs, 3)} ms on CPU`);
    }
    const rows = [['over ' + seconds + ' s', ...peers.map((p) => p.name), 'target']];
    rows.push(['utime+stime ms', ...peers.map((p) => fmt(results[p.name].cpuMs)), 't6 = 0']);
    rows.push(['on-CPU ms (schedstat)', ...peers.map((p) => fmt(results[p.name].onCpuMs, 3)), '–']);
    rows.push(['context switches', ...peers.map((p) => String(results[p.name].contextSwitches)), '–']);
    console.log('');
    printTable(rows);
    const file = writeResults('idle', { machineBusy, results });
    console.log(`results: ${file}`);
    return results;
  } finally {
    for (const s of setups) {
      await s.tree.stop();
      s.fifo.close();
      removeTemp(s.dir);
    }
  }
}

if (isMain(import.meta.url)) {
  await run();
}
