/**
 * Client calls: the wall time of one call of a status/control tool, from spawn to exit
 * (spawnSync; median of BENCH_CLIENT_SAMPLES). The three trees (BENCH_CLIENT_SERVICES
 * longruns each, default 1000) run side by side and the calls are interleaved, so drift
 * in the machine hits every tool alike.
 *
 *   t6-svstat DIR       vs  s6-svstat DIR      vs  sv status DIR
 *   t6-svc -u DIR       vs  s6-svc -u DIR      vs  sv up DIR
 *   t6-svok DIR         vs  s6-svok DIR
 *   t6-svstat -a SCAN   vs  s6-svstat on each DIR (a shell loop; s6 has no -a)  vs  sv status SCAN/*
 *   t6-rc -l LIVE list default, over bench/rc.mjs's 1,000-service database (t6 only)
 *
 * and, to tell the tool from the tree, t6-svstat on an s6 tree and s6-svstat on a t6
 * tree. The first row, /bin/true, is what spawnSync alone costs here; the second, a bare
 * `node -e 0` of the pinned Node, is the floor of every t6 client: each t6 figure is
 * printed beside it and as a ratio to it (issue 12: ≤ 1.1×), from the same interleaved run.
 *
 *   node_modules/.bin/node bench/clients.mjs
 * env: BENCH_CLIENT_SAMPLES (default 20), BENCH_CLIENT_SERVICES (default 1000),
 *      BENCH_CLIENT_LOOP_SAMPLES (default 5, the s6-svstat loop over every service), BENCH_PEERS,
 *      BENCH_CLIENT_RC (default 1; 0 leaves out the t6-rc row and its tree)
 * Targets (issue 2): one t6-svstat or t6-svc call ≤ 30 ms; t6-svstat -a over 1,000 ≤ 60 ms.
 * Targets (issue 12): t6-svstat, t6-svc, t6-svok, t6-rc list (1,000): ≤ 1.1 × `node -e 0`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ByteFifo, Tree, envInt, fmt, isMain, makeServices, makeTemp, printSamples, printTable, ratio,
  removeTemp, runScript, selectedPeers, sleep, summarize, t6Bin, writeResults,
  waitQuiet, ROOT,
} from './lib.mjs';
import { LONGRUN_RUN, startTree } from './rc.mjs';
import { generateSource } from './rc-compile.mjs';

/** The pinned Node, as the bin/ wrappers run it. */
const NODE = path.join(ROOT, 'node_modules', 'node', 'bin', 'node');

/** A t6 tree with bench/rc.mjs's 1,000-service database compiled and t6-rc-init'ed (nothing up). */
async function rcTree() {
  const dir = makeTemp('t6-bench-clients-rc-');
  const compiled = path.join(dir, 'compiled');
  const live = path.join(dir, 'live');
  generateSource(path.join(dir, 'source'), undefined, { longrunRun: LONGRUN_RUN });
  const { tree, scandir } = await startTree(dir);
  for (const argv of [[t6Bin('t6-rc-compile'), '-v0', compiled, path.join(dir, 'source')], [t6Bin('t6-rc-init'), '-c', compiled, '-l', live, scandir]]) {
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${path.basename(argv[0])} exited ${r.status}: ${r.stderr}`);
  }
  return { dir, tree, live };
}

function timeCall(argv) {
  const t0 = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 2 ** 20 });
  const ms = performance.now() - t0;
  return { ms, status: r.status, stdout: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? '', error: r.error };
}

/**
 * Checks a command once; returns a reason to skip it (string) or undefined if it works.
 * `expectLines` (optional): at least this many lines of output.
 */
function check(argv, expectLines) {
  if (argv[0].startsWith('/') && !fs.existsSync(argv[0])) return `${path.basename(argv[0])} does not exist (run \`npm run build\`)`;
  const r = timeCall(argv);
  if (r.error) return `${argv[0]}: ${r.error.message}`;
  if (r.status !== 0) return `exit ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(0, 3).join(' / ')}`;
  if (expectLines !== undefined) {
    const lines = r.stdout.split('\n').filter(Boolean).length;
    if (lines < expectLines) return `printed ${lines} lines, expected ${expectLines}`;
  }
  return undefined;
}

export async function run() {
  const samples = envInt('BENCH_CLIENT_SAMPLES', 20);
  const loopSamples = envInt('BENCH_CLIENT_LOOP_SAMPLES', 5);
  const count = envInt('BENCH_CLIENT_SERVICES', 1000);
  const peers = selectedPeers();
  const machineBusy = await waitQuiet();
  const has = (name) => peers.some((p) => p.name === name);
  console.log(`\n== client calls: wall time of one call, spawn to exit (ms; ${count} services per tree) ==`);
  const trees = {};
  let rc;
  try {
    if (has('t6') && envInt('BENCH_CLIENT_RC', 1) !== 0) rc = await rcTree();
    for (const sup of peers) {
      const dir = makeTemp(`t6-bench-clients-${sup.name}-`);
      const fifo = new ByteFifo(path.join(dir, 'running'));
      const scandir = path.join(dir, 'scan');
      const dirs = makeServices(scandir, count, runScript(fifo.path));
      const tree = Tree.start(sup, scandir);
      trees[sup.name] = { sup, dir, fifo, tree, scandir, dirs, one: dirs[0] };
      await Promise.race([fifo.waitFor(count, 60_000, `${count} services of ${sup.title}`), tree.exited.then(() => tree.checkAlive('start'))]);
    }
    await sleep(1000);

    const t6svstat = t6Bin('t6-svstat');
    const t6svc = t6Bin('t6-svc');
    // [row, column, argv, expected lines of output]
    const cases = [['spawnSync floor', 'floor', ['/bin/true']], ['node -e 0', 'node', [NODE, '-e', '0']]];
    if (has('t6')) {
      cases.push(['svstat DIR', 't6', [t6svstat, trees.t6.one]]);
      cases.push(['svc -u DIR', 't6', [t6svc, '-u', trees.t6.one]]);
      cases.push(['svok DIR', 't6', [t6Bin('t6-svok'), trees.t6.one]]);
      cases.push([`svstat -a (${count})`, 't6', [t6svstat, '-a', trees.t6.scandir], count]);
      if (rc) cases.push(['rc list default (1000)', 't6', [t6Bin('t6-rc'), '-l', rc.live, 'list', 'default'], 1000]);
    }
    if (has('s6')) {
      cases.push(['svstat DIR', 's6', ['s6-svstat', trees.s6.one]]);
      cases.push(['svc -u DIR', 's6', ['s6-svc', '-u', trees.s6.one]]);
      cases.push(['svok DIR', 's6', ['s6-svok', trees.s6.one]]);
      cases.push([`svstat -a (${count})`, 's6', ['sh', '-c', 'for d in "$@"; do s6-svstat "$d" || exit; done', 'sh', ...trees.s6.dirs], count]);
    }
    if (has('runit')) {
      cases.push(['svstat DIR', 'runit', ['sv', 'status', trees.runit.one]]);
      cases.push(['svc -u DIR', 'runit', ['sv', 'up', trees.runit.one]]);
      cases.push([`svstat -a (${count})`, 'runit', ['sv', 'status', ...trees.runit.dirs], count]);
    }
    if (has('t6') && has('s6')) {
      cases.push(['interop: t6-svstat on s6 tree', 'cross', [t6svstat, trees.s6.one]]);
      cases.push(['interop: s6-svstat on t6 tree', 'cross', ['s6-svstat', trees.t6.one]]);
    }
    const skipped = [];
    const active = [];
    for (const [row, col, argv, lines] of cases) {
      const why = check(argv, lines);
      if (why !== undefined) {
        skipped.push({ row, column: col, command: argv.slice(0, 3).join(' '), reason: why });
        console.log(`  skipped: ${row} (${col}): ${why}`);
      } else {
        active.push({ row, col, argv, isLoop: row.startsWith('svstat -a') && col === 's6', samples: [] });
      }
    }
    const loadBefore = os.loadavg()[0];
    // Interleave: one call of every case per round.
    for (let i = 0; i < samples; i++) {
      for (const c of active) {
        if (c.isLoop && i >= loopSamples) continue;
        const r = timeCall(c.argv);
        if (r.status !== 0) throw new Error(`${c.argv.slice(0, 3).join(' ')} failed (exit ${r.status}): ${r.stderr}`);
        c.samples.push(r.ms);
      }
    }
    const load = { before: loadBefore, after: os.loadavg()[0] };
    console.log(`load average (1 min) ${load.before.toFixed(2)} before the calls, ${load.after.toFixed(2)} after (${os.cpus().length} CPUs); busy ${(machineBusy * 100).toFixed(0)}% when they began`);
    const results = { floor: undefined, node: undefined, rows: {}, skipped, load };
    for (const c of active) {
      const s = summarize(c.samples);
      if (c.col === 'floor') results.floor = s;
      else if (c.col === 'node') results.node = s;
      else {
        results.rows[c.row] ??= {};
        results.rows[c.row][c.col] = { ...s, command: c.argv.slice(0, 3).map((a) => (a.length > 60 ? `…${a.slice(-40)}` : a)).join(' ') };
      }
      printSamples(`${c.row} [${c.col}] ${path.basename(c.argv[0])}`, s);
    }
    const node = results.node?.median;
    const rows = [['call', 't6 ms', 'node -e 0 ms', 't6/node', 's6 ms', 'runit ms', 't6/s6', 't6/runit', 'target']];
    rows.push(['spawnSync /bin/true (floor)', fmt(results.floor?.median), '', '', '', '', '', '', '']);
    const target = { 'svstat DIR': 't6 ≤ 30 ms; ≤ 1.1 × node', 'svc -u DIR': 't6 ≤ 30 ms; ≤ 1.1 × node', 'svok DIR': '≤ 1.1 × node', [`svstat -a (${count})`]: count === 1000 ? 't6 ≤ 60 ms' : '–', 'rc list default (1000)': '≤ 1.1 × node' };
    for (const row of ['svstat DIR', 'svc -u DIR', 'svok DIR', `svstat -a (${count})`, 'rc list default (1000)']) {
      const r = results.rows[row] ?? {};
      const m = (k) => r[k]?.median;
      const t6 = r.t6 ? fmt(m('t6')) : has('t6') ? 'skipped' : '–';
      const label = row === `svstat -a (${count})` ? `${row}${has('s6') ? ' [s6: loop]' : ''}` : row;
      rows.push([label, t6, fmt(node), fmt(ratio(m('t6'), node), 3), fmt(m('s6')), fmt(m('runit')), fmt(ratio(m('t6'), m('s6'))), fmt(ratio(m('t6'), m('runit'))), target[row]]);
    }
    for (const row of Object.keys(results.rows).filter((k) => k.startsWith('interop'))) {
      rows.push([row, '', '', '', '', '', '', '', '']);
      rows[rows.length - 1][row.includes('t6-svstat') ? 1 : 4] = fmt(results.rows[row].cross.median);
    }
    console.log('');
    printTable(rows);
    for (const s of skipped) console.log(`note: skipped ${s.row} (${s.column}): ${s.reason}`);
    const file = writeResults('clients', { machineBusy, unit: 'ms', services: count, results });
    console.log(`results: ${file}`);
    return results;
  } finally {
    if (rc) {
      await rc.tree.stop();
      removeTemp(rc.dir);
    }
    for (const t of Object.values(trees)) {
      await t.tree.stop();
      t.fifo.close();
      removeTemp(t.dir);
    }
  }
}

if (isMain(import.meta.url)) {
  await run();
}
