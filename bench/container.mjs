// t6-container as a container's /init (issue 15), under Debian's podman as root (runc, the
// cgroupfs manager, `--rootfs DIR:O`: test/lib/container.ts, shared/CONTAINER-LAB.md),
// beside floors run in the same rounds on the same rootfs and the same podman command line:
//
//   image    the tests' rootfs (static busybox, /opt/t6, Node's libraries) plus an
//            s6-overlay v3 layout of 5 services: init-a → init-b (oneshots, a chain by
//            dependencies.d), svc-ready (longrun, notification-fd 3, after init-b), svc-b,
//            svc-c (longruns), all in the `user` bundle of user-bundles.d; every service
//            prints one line when it starts; plain #!/bin/sh scripts (no with-contenv,
//            which is a Node program of its own). tini-static and a start script for the
//            reference, when Debian's tini is installed.
//
//   start    `podman run` spawned → the CMD's line (`/bin/sh -c 'echo …'`), t6-container
//            as ENTRYPOINT; floors: `/bin/true` (spawn → podman run exits) and
//            `/bin/sh -c 'echo …'` (spawn → its line). t6's own share: the container's
//            first line → the CMD's line; with the services' lines and t6's own
//            (S6_VERBOSITY=2, s6-overlay's default) for the breakdown.
//   stop     `podman stop` spawned → `podman run` exits, the CMD sleeping and every service
//            up; floor: pid 1 a shell that exits on SIGTERM
//            (`trap "exit 0" TERM; while :; do sleep 1 & wait; done`); tini (pid 1,
//            forwarding SIGTERM to the start script) for reference.
//   memory   at rest (BENCH_CONTAINER_SETTLE_MS after the CMD's line, in the stop rounds
//            before the stop): PSS/RSS from the host (/proc/PID/smaps_rollup) of every
//            process of the container, found from `podman inspect {{.State.Pid}}` down the
//            process tree; t6's pid 1 alone and the total; tini + the start script running
//            the same 5 services' programs as the reference.
//
//   t6-noop  a diagnostic column, the same image plus system definitions of its own (in
//            s6-overlay's place, which t6-container then compiles instead of its own) whose
//            oneshots fix-attrs, legacy-cont-init and legacy-services run /bin/true rather
//            than `t6-container legacy STEP` (a Node process each): what t6 costs without them.
//
// Rounds alternate (BENCH_CONTAINER_ROUNDS, default 5): t6, floors, tini, then the next
// round in the reverse order, so drift hits all alike. Medians, min–max, differences and
// ratios; the machine's state (load, a /bin/true loop, CPU busy before) before and after.
// Targets (issue 15): start ≤ floor + 150 ms, stop ≤ floor + 200 ms.
//
//   flock /tmp/t6-bench.lock node_modules/.bin/node bench/container.mjs
//
// Knobs: BENCH_CONTAINER_ROUNDS=5, BENCH_CONTAINER_SETTLE_MS=3000, BENCH_CONTAINER_QUIET_WAIT_S=30
// (before each round after the first; the first waits BENCH_QUIET_WAIT_S),
// BENCH_CONTAINER_SHOW=1 (print every line of each t6 run with its arrival time),
// BENCH_CONTAINER_NOOP=0 (no t6-noop column).
// Needs root, podman and runc (apt-get install -y --no-install-recommends podman runc);
// skips, saying why, without them. tini: apt-get install -y --no-install-recommends tini
// (without it the tini reference is skipped, said so).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, cpuBusy, descendants, envInt, fmt, isMain, memoryOf, printTable, ratio, sleep, summarize, waitQuiet, writeResults } from './lib.mjs';
import { trueLoopMs } from './scale.mjs';

const { buildRootfs, podmanUsable, podmanRunArgs, uniqueName, Container, PODMAN_GLOBAL } = await import(path.join(ROOT, 'test/lib/container.ts'));

/** Issue 15's targets: t6 over the floor of the same run. */
export const GOALS = { startOverFloorMs: 150, stopOverFloorMs: 200 };

const INIT = '/opt/t6/bin/t6-container';
const TINI = '/usr/bin/tini-static';
const CMD_LINE = 'bench-cmd: running';
const START_CMD = ['/bin/sh', '-c', `echo '${CMD_LINE}'`];
const WAIT_CMD = ['/bin/sh', '-c', `echo '${CMD_LINE}'; exec sleep 2147483647`];
const FLOOR_STOP_CMD = ['/bin/sh', '-c', `trap "exit 0" TERM; echo '${CMD_LINE}'; while :; do sleep 1 & wait; done`];

// ---- the image --------------------------------------------------------------------------

const RC = 'etc/s6-overlay/s6-rc.d';
/** The 5 services (s6-overlay v3 layout) and the tini reference's start script. */
const FILES = {
  [`${RC}/init-a/type`]: 'oneshot\n',
  [`${RC}/init-a/up`]: '/etc/s6-overlay/s6-rc.d/init-a/run\n',
  [`${RC}/init-a/run`]: '#!/bin/sh\necho "init-a: up"\n',
  [`${RC}/init-a/down`]: 'echo init-a: down\n',
  [`${RC}/init-b/type`]: 'oneshot\n',
  [`${RC}/init-b/up`]: '/etc/s6-overlay/s6-rc.d/init-b/run\n',
  [`${RC}/init-b/run`]: '#!/bin/sh\necho "init-b: up"\n',
  [`${RC}/init-b/down`]: 'echo init-b: down\n',
  [`${RC}/init-b/dependencies.d/init-a`]: '',
  [`${RC}/svc-ready/type`]: 'longrun\n',
  [`${RC}/svc-ready/notification-fd`]: '3\n',
  [`${RC}/svc-ready/dependencies.d/init-b`]: '',
  [`${RC}/svc-ready/run`]: '#!/bin/sh\necho "svc-ready: running"\necho >&3\nexec sleep 2147483647 3>&-\n',
  [`${RC}/svc-b/type`]: 'longrun\n',
  [`${RC}/svc-b/run`]: '#!/bin/sh\necho "svc-b: running"\nexec sleep 2147483647\n',
  [`${RC}/svc-c/type`]: 'longrun\n',
  [`${RC}/svc-c/run`]: '#!/bin/sh\necho "svc-c: running"\nexec sleep 2147483647\n',
  'etc/s6-overlay/user-bundles.d/user/type': 'bundle\n',
  'etc/s6-overlay/user-bundles.d/user2/type': 'bundle\n',
  'etc/s6-overlay/user-bundles.d/user2/contents.d/': '',
  ...Object.fromEntries(['init-a', 'init-b', 'svc-ready', 'svc-b', 'svc-c'].map((s) => [`etc/s6-overlay/user-bundles.d/user/contents.d/${s}`, ''])),
  // The reference: the same programs, started by a script under tini. The oneshots in
  // order, the longruns in the background (svc-ready's fd 3 to /dev/null), then CMD.
  'bench/start.sh': [
    '#!/bin/sh',
    `/${RC}/init-a/run || exit 1`,
    `/${RC}/init-b/run || exit 1`,
    `cd /${RC}/svc-ready && ./run 3>/dev/null &`,
    `cd /${RC}/svc-b && ./run &`,
    `cd /${RC}/svc-c && ./run &`,
    'cd /',
    '"$@" &',
    'wait',
    '',
  ].join('\n'),
};

/**
 * The diagnostic image's system definitions (`t6-noop`): s6-overlay's own place for them,
 * which t6-container compiles instead of its own, with the same graph and every oneshot's
 * up and down `/bin/true`, where t6's run `t6-container legacy STEP` (a Node process each).
 * What t6 costs without those three processes, in the same rounds.
 */
const SYS = 'package/admin/s6-overlay/etc/s6-rc/sources';
const NOOP_SYSTEM = {
  [`${SYS}/top/type`]: 'bundle\n',
  ...Object.fromEntries(['base', 'user', 'legacy-services', 'user2'].map((s) => [`${SYS}/top/contents.d/${s}`, ''])),
  [`${SYS}/base/type`]: 'bundle\n',
  ...Object.fromEntries(['fix-attrs', 'legacy-cont-init'].map((s) => [`${SYS}/base/contents.d/${s}`, ''])),
  [`${SYS}/fix-attrs/type`]: 'oneshot\n',
  [`${SYS}/fix-attrs/up`]: '/bin/true\n',
  [`${SYS}/legacy-cont-init/type`]: 'oneshot\n',
  [`${SYS}/legacy-cont-init/up`]: '/bin/true\n',
  [`${SYS}/legacy-cont-init/down`]: '/bin/true\n',
  [`${SYS}/legacy-cont-init/dependencies.d/fix-attrs`]: '',
  [`${SYS}/legacy-services/type`]: 'oneshot\n',
  [`${SYS}/legacy-services/up`]: '/bin/true\n',
  [`${SYS}/legacy-services/down`]: '/bin/true\n',
  [`${SYS}/legacy-services/dependencies.d/base`]: '',
  [`${SYS}/legacy-services/dependencies.d/user`]: '',
};

/** The image: a hard-link copy of the shared rootfs with FILES (and tini-static, or the no-op system definitions) added; new files only. */
function makeImage(base, withTini, extra = {}) {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 't6-bench-container-')), 'root');
  const r = spawnSync('cp', ['-al', base.dir, dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cp -al ${base.dir} ${dir}: ${r.stderr}`);
  for (const [rel, text] of Object.entries({ ...FILES, ...extra })) {
    const at = path.join(dir, rel);
    if (rel.endsWith('/')) { fs.mkdirSync(at, { recursive: true }); continue; }
    fs.mkdirSync(path.dirname(at), { recursive: true });
    fs.writeFileSync(at, text, { mode: text.startsWith('#!') ? 0o755 : 0o644 });
  }
  if (withTini) {
    fs.copyFileSync(TINI, path.join(dir, 'sbin/tini'));
    fs.chmodSync(path.join(dir, 'sbin/tini'), 0o755);
  }
  return dir;
}

// ---- containers -----------------------------------------------------------------------------

const live = new Set();
process.on('exit', () => { for (const c of live) c.remove(); });

/** `podman run --rm … --rootfs DIR:O ARGV`, a unique name; removed by `done`. */
function start(image, argv, env = {}) {
  const name = uniqueName('t6-bench');
  const c = new Container(name, podmanRunArgs(image, argv, { name, env }));
  live.add(c);
  return c;
}

async function done(c) {
  c.remove();
  await c.exited;
  live.delete(c);
}

const firstIndex = (c, re) => c.lines.findIndex((l) => re.test(l));
/** ms of the first line matching `re`, or undefined. */
const lineAt = (c, re) => {
  const i = firstIndex(c, re);
  return i < 0 ? undefined : c.lineMs[i];
};

function show(label, c) {
  if (process.env.BENCH_CONTAINER_SHOW !== '1') return;
  console.log(`  -- ${label}: ${c.name}`);
  c.lines.forEach((l, i) => console.log(`  ${String(c.lineMs[i]).padStart(6)} ms  ${l}`));
  if (c.exit) console.log(`  ${String(c.exit.ms).padStart(6)} ms  (exit ${c.exit.code})`);
}

/** Marks of a t6 start: every service's line and t6's own (S6_VERBOSITY=2). */
const T6_MARKS = {
  firstLine: /./,
  initA: /^init-a: up$/,
  initB: /^init-b: up$/,
  svcReady: /^svc-ready: running$/,
  svcB: /^svc-b: running$/,
  svcC: /^svc-c: running$/,
  cmd: new RegExp(`^${CMD_LINE}$`),
  // t6's own lines (S6_VERBOSITY=2): its first t6-rc line, the user services up, and the
  // system oneshots (`t6-container legacy STEP`, each a Node process): fix-attrs →
  // legacy-cont-init → legacy-services (after base and user) → CMD.
  rcFirst: /^t6-rc: info: /,
  userUp: /^t6-rc: info: service svc-ready successfully started$/,
  fixAttrsStart: /^t6-rc: info: service fix-attrs: starting$/,
  fixAttrsUp: /^t6-rc: info: service fix-attrs successfully started$/,
  contInitUp: /^t6-rc: info: service legacy-cont-init successfully started$/,
  legacyServicesUp: /^t6-rc: info: service legacy-services successfully started$/,
};

/** Marks of a t6 stop, from `podman stop` spawned (lines after it only). */
const T6_STOP_MARKS = {
  firstLine: /./,
  legacyServicesDown: /^t6-rc: info: service legacy-services successfully stopped$/,
  userDown: /^t6-rc: info: service init-a successfully stopped$/,
  contFinishDown: /^t6-rc: info: service legacy-cont-init successfully stopped$/,
  stage4: /^t6-linux-init: halt: stage 4$/,
  allExited: /^t6-linux-init: all processes exited$/,
};

/** One start to the CMD's line: t6 (with every mark and the exit) or a floor. */
async function startRun(kind, image) {
  if (kind === 't6' || kind === 't6-noop') {
    const c = start(image, [INIT, ...START_CMD]);
    try {
      const exit = await c.exited;
      show('t6 start', c);
      if (exit.code !== 0 || lineAt(c, T6_MARKS.cmd) === undefined) throw new Error(`t6 start: exit ${exit.code}:\n${c.text.slice(-2000)}`);
      const marks = Object.fromEntries(Object.entries(T6_MARKS).map(([k, re]) => [k, lineAt(c, re)]));
      const lastService = Math.max(marks.svcReady, marks.svcB, marks.svcC);
      return {
        cmdMs: marks.cmd, exitMs: exit.ms, firstLineMs: marks.firstLine, ownMs: marks.cmd - marks.firstLine,
        marks, lastServiceMs: lastService, lines: c.lines.map((l, i) => `${c.lineMs[i]} ${l}`),
      };
    } finally { await done(c); }
  }
  if (kind === 'true') {
    const c = start(image, ['/bin/true']);
    try {
      const exit = await c.exited;
      if (exit.code !== 0) throw new Error(`floor /bin/true: exit ${exit.code}: ${c.text.slice(-1000)}`);
      return { exitMs: exit.ms };
    } finally { await done(c); }
  }
  if (kind === 'echo') {
    const c = start(image, START_CMD);
    try {
      const exit = await c.exited;
      const at = lineAt(c, T6_MARKS.cmd);
      if (exit.code !== 0 || at === undefined) throw new Error(`floor echo: exit ${exit.code}: ${c.text.slice(-1000)}`);
      return { cmdMs: at, exitMs: exit.ms };
    } finally { await done(c); }
  }
  throw new Error(`unknown start kind ${kind}`);
}

/** Every process of the container (host pids, pid 1 first) with its memory; kB. */
function containerMemory(c) {
  const pid1 = c.hostPid();
  if (pid1 === undefined) throw new Error(`${c.name}: no pid (podman inspect)`);
  const procs = [];
  for (const p of descendants(pid1, true)) {
    try { procs.push({ pid: p.pid, comm: p.comm, ...memoryOf(p.pid) }); } catch { /* gone */ }
  }
  const sum = (k) => procs.reduce((s, p) => s + p[k], 0);
  return { pid1: procs[0], processes: procs, pssKB: sum('pss'), rssKB: sum('rss'), ussKB: sum('uss') };
}

/** A stop round: the container up with CMD sleeping, settled; its memory; then `podman stop` → podman run exits. */
async function stopRun(kind, image, settleMs) {
  // tini: pid 1, its child the start script, which runs the services' programs then "$@" (CMD).
  const argv = { t6: [INIT, ...WAIT_CMD], 't6-noop': [INIT, ...WAIT_CMD], floor: FLOOR_STOP_CMD, tini: ['/sbin/tini', '--', '/bench/start.sh', ...WAIT_CMD] }[kind];
  const c = start(image, argv);
  try {
    const up = await c.waitLine(T6_MARKS.cmd, 120_000);
    if (kind !== 'floor') {
      for (const re of [T6_MARKS.svcReady, T6_MARKS.svcB, T6_MARKS.svcC]) await c.waitLine(re, 30_000);
    }
    await sleep(settleMs);
    const memory = containerMemory(c);
    const asked = c.elapsed();
    const from = c.lines.length;
    const stopped = new Promise((resolve) => {
      const p = spawn('podman', [...PODMAN_GLOBAL, 'stop', '-t', '10', c.name], { stdio: 'ignore' });
      p.on('exit', (code) => resolve({ code, ms: c.elapsed() - asked }));
    });
    const exit = await c.exited;
    const stop = await stopped;
    show(`${kind} stop`, c);
    const downMs = exit.ms - asked;
    const after = (re) => {
      const i = c.lines.findIndex((l, j) => j >= from && re.test(l));
      return i < 0 ? undefined : c.lineMs[i] - asked;
    };
    const stopMarks = kind.startsWith('t6') ? Object.fromEntries(Object.entries(T6_STOP_MARKS).map(([k, re]) => [k, after(re)])) : undefined;
    return {
      upMs: up.ms, stopMs: downMs, podmanStopMs: stop.ms, exitCode: exit.code, stopMarks,
      memory: { pid1PssKB: memory.pid1.pss, pid1RssKB: memory.pid1.rss, pssKB: memory.pssKB, rssKB: memory.rssKB, ussKB: memory.ussKB, processes: memory.processes.map((p) => `${p.comm}:${p.pss}`) },
      lines: kind.startsWith('t6') ? c.lines.map((l, i) => `${c.lineMs[i]} ${l}`) : undefined,
    };
  } finally { await done(c); }
}

// ---- the report ----------------------------------------------------------------------------

const stat = (xs) => (xs.length === 0 ? undefined : summarize(xs));
const mm = (s) => (s === undefined ? '–' : `${fmt(s.min)}–${fmt(s.max)}`);
const mb = (kb) => (kb === undefined ? undefined : kb / 1024);
const yes = (ok) => (ok === undefined ? '–' : ok ? 'yes' : 'NO');

/** Medians and the same-run comparisons from the rounds' samples. */
export function analyse(runs) {
  const pick = (arr, f) => stat((arr ?? []).map(f).filter((x) => x !== undefined && Number.isFinite(x)));
  const t6s = runs.start.t6;
  const s = {
    start: {
      t6Cmd: pick(t6s, (r) => r.cmdMs),
      t6Exit: pick(t6s, (r) => r.exitMs),
      t6First: pick(t6s, (r) => r.firstLineMs),
      t6Own: pick(t6s, (r) => r.ownMs),
      noopCmd: pick(runs.start['t6-noop'], (r) => r.cmdMs),
      noopFirst: pick(runs.start['t6-noop'], (r) => r.firstLineMs),
      noopOwn: pick(runs.start['t6-noop'], (r) => r.ownMs),
      floorTrue: pick(runs.start.true, (r) => r.exitMs),
      floorEcho: pick(runs.start.echo, (r) => r.cmdMs),
      floorEchoExit: pick(runs.start.echo, (r) => r.exitMs),
      marks: Object.fromEntries(Object.keys(T6_MARKS).map((k) => [k, pick(t6s, (r) => r.marks[k])])),
    },
    stop: Object.fromEntries(Object.entries(runs.stop).map(([k, rs]) => [k, {
      stop: pick(rs, (r) => r.stopMs), podmanStop: pick(rs, (r) => r.podmanStopMs), up: pick(rs, (r) => r.upMs),
      pid1Pss: pick(rs, (r) => mb(r.memory.pid1PssKB)), pid1Rss: pick(rs, (r) => mb(r.memory.pid1RssKB)),
      pss: pick(rs, (r) => mb(r.memory.pssKB)), rss: pick(rs, (r) => mb(r.memory.rssKB)), uss: pick(rs, (r) => mb(r.memory.ussKB)),
      processes: rs[0]?.memory.processes.map((p) => p.split(':')[0]),
    }])),
  };
  s.stopMarks = Object.fromEntries(Object.keys(T6_STOP_MARKS).map((k) => [k, pick(runs.stop.t6, (r) => r.stopMarks?.[k])]));
  // t6's start, phase by phase (medians of each run's differences, ms).
  const phase = (a, b) => pick(t6s, (r) => (r.marks[a] === undefined || r.marks[b] === undefined ? undefined : r.marks[b] - r.marks[a]));
  s.startPhases = {
    'podman run → first line (runtime, Node, preinit, boot tree, scanner up: its RLIMIT warning)': pick(t6s, (r) => r.marks.firstLine),
    'first line → first t6-rc line (compile, t6-rc-init, the change planned)': phase('firstLine', 'rcFirst'),
    'first t6-rc line → user services up (svc-ready ready)': phase('rcFirst', 'userUp'),
    'fix-attrs: starting → started (a Node process)': phase('fixAttrsStart', 'fixAttrsUp'),
    'fix-attrs started → legacy-cont-init started (a Node process)': phase('fixAttrsUp', 'contInitUp'),
    'legacy-cont-init started → legacy-services started (a Node process)': phase('contInitUp', 'legacyServicesUp'),
    'legacy-services started → CMD\'s line': phase('legacyServicesUp', 'cmd'),
  };
  // Per-round differences too (each t6 run against the floor run of the same round).
  const diffs = (a, b) => stat(a.map((x, i) => (b[i] === undefined || x === undefined ? undefined : x - b[i])).filter((x) => x !== undefined));
  const c = {
    startOverEcho: s.start.t6Cmd && s.start.floorEcho ? s.start.t6Cmd.median - s.start.floorEcho.median : undefined,
    startOverTrue: s.start.t6Cmd && s.start.floorTrue ? s.start.t6Cmd.median - s.start.floorTrue.median : undefined,
    startRatioEcho: ratio(s.start.t6Cmd?.median, s.start.floorEcho?.median),
    startOverEchoPerRound: diffs((t6s ?? []).map((r) => r.cmdMs), (runs.start.echo ?? []).map((r) => r.cmdMs)),
    stopOverFloor: s.stop.t6?.stop && s.stop.floor?.stop ? s.stop.t6.stop.median - s.stop.floor.stop.median : undefined,
    stopRatio: ratio(s.stop.t6?.stop?.median, s.stop.floor?.stop?.median),
    stopOverFloorPerRound: diffs((runs.stop.t6 ?? []).map((r) => r.stopMs), (runs.stop.floor ?? []).map((r) => r.stopMs)),
    noopStartOverEcho: s.start.noopCmd && s.start.floorEcho ? s.start.noopCmd.median - s.start.floorEcho.median : undefined,
    noopStopOverFloor: s.stop['t6-noop']?.stop && s.stop.floor?.stop ? s.stop['t6-noop'].stop.median - s.stop.floor.stop.median : undefined,
    pssVsTini: ratio(s.stop.t6?.pss?.median, s.stop.tini?.pss?.median),
  };
  // The start target is line against line: the floor's `sh -c echo` line. /bin/true's exit
  // also pays podman's teardown (--rm), which a line does not wait for.
  c.met = {
    start: c.startOverEcho === undefined ? undefined : c.startOverEcho <= GOALS.startOverFloorMs,
    stop: c.stopOverFloor === undefined ? undefined : c.stopOverFloor <= GOALS.stopOverFloorMs,
  };
  return { stats: s, compare: c };
}

function report({ stats: s, compare: c }, tiniSkipped) {
  const row = (label, st, unit = 'ms') => [label, fmt(st?.median), mm(st), unit];
  console.log('\n-- start: podman run spawned → … (ms)');
  printTable([
    ['measurement', 'median', 'min–max', ''],
    row('t6-container: CMD\'s line', s.start.t6Cmd),
    row('  t6: the container\'s first line', s.start.t6First),
    row('  t6: first line → CMD\'s line (t6\'s own share)', s.start.t6Own),
    row('  t6: podman run exits (services down)', s.start.t6Exit),
    row('t6-noop (system oneshots /bin/true): CMD\'s line', s.start.noopCmd),
    row('  t6-noop: first line → CMD\'s line', s.start.noopOwn),
    row('floor: sh -c echo, its line', s.start.floorEcho),
    row('floor: sh -c echo, podman run exits', s.start.floorEchoExit),
    row('floor: /bin/true, podman run exits', s.start.floorTrue),
  ]);
  console.log('\n-- t6 start, the lines\' arrival (ms from podman run spawned; medians)');
  printTable([['mark', 'median', 'min–max'], ...Object.entries(s.start.marks).map(([k, st]) => [k, fmt(st?.median), mm(st)])]);
  console.log('\n-- t6 start, phase by phase (ms; medians of each run\'s differences)');
  printTable([['phase', 'median', 'min–max'], ...Object.entries(s.startPhases).map(([k, st]) => [k, fmt(st?.median), mm(st)])]);
  console.log('\n-- t6 stop, the lines\' arrival (ms from podman stop spawned; medians)');
  printTable([['mark', 'median', 'min–max'], ...Object.entries(s.stopMarks).map(([k, st]) => [k, fmt(st?.median), mm(st)]), ['container gone (podman run exits)', fmt(s.stop.t6?.stop?.median), mm(s.stop.t6?.stop)]]);
  console.log('\n-- stop: podman stop spawned → podman run exits (ms); memory at rest (MB)');
  const kinds = Object.keys(s.stop);
  printTable([
    ['measurement', ...kinds.flatMap((k) => [k, `${k} min–max`])],
    ['podman stop → container gone (ms)', ...kinds.flatMap((k) => [fmt(s.stop[k].stop?.median), mm(s.stop[k].stop)])],
    ['podman stop returns (ms)', ...kinds.flatMap((k) => [fmt(s.stop[k].podmanStop?.median), mm(s.stop[k].podmanStop)])],
    ['spawn → CMD\'s line (ms)', ...kinds.flatMap((k) => [fmt(s.stop[k].up?.median), mm(s.stop[k].up)])],
    ['pid 1 PSS (MB)', ...kinds.flatMap((k) => [fmt(s.stop[k].pid1Pss?.median), mm(s.stop[k].pid1Pss)])],
    ['pid 1 RSS (MB)', ...kinds.flatMap((k) => [fmt(s.stop[k].pid1Rss?.median), mm(s.stop[k].pid1Rss)])],
    ['all processes, PSS (MB)', ...kinds.flatMap((k) => [fmt(s.stop[k].pss?.median), mm(s.stop[k].pss)])],
    ['all processes, RSS (MB)', ...kinds.flatMap((k) => [fmt(s.stop[k].rss?.median), mm(s.stop[k].rss)])],
    ['all processes, USS (MB)', ...kinds.flatMap((k) => [fmt(s.stop[k].uss?.median), mm(s.stop[k].uss)])],
  ]);
  for (const k of kinds) console.log(`  ${k}'s processes: ${s.stop[k].processes?.join(' ')}`);
  if (tiniSkipped) console.log(`  tini: skipped: ${tiniSkipped}`);
  console.log('\n-- same run');
  printTable([
    ['comparison (medians)', 'value', 'goal', 'met'],
    ['start: t6 CMD line − floor echo line (ms)', fmt(c.startOverEcho), `≤ ${GOALS.startOverFloorMs}`, yes(c.met.start)],
    ['  t6 CMD line − floor /bin/true exit (ms)', fmt(c.startOverTrue), '', ''],
    ['  t6 / floor echo (×)', fmt(c.startRatioEcho), '', ''],
    ['  per round, t6 − echo (ms): median, min–max', `${fmt(c.startOverEchoPerRound?.median)} (${mm(c.startOverEchoPerRound)})`, '', ''],
    ['  t6-noop − floor echo (diagnostic: system oneshots /bin/true) (ms)', fmt(c.noopStartOverEcho), '', ''],
    ['stop: t6 − floor (ms)', fmt(c.stopOverFloor), `≤ ${GOALS.stopOverFloorMs}`, yes(c.met.stop)],
    ['  t6 / floor (×)', fmt(c.stopRatio), '', ''],
    ['  per round, t6 − floor (ms): median, min–max', `${fmt(c.stopOverFloorPerRound?.median)} (${mm(c.stopOverFloorPerRound)})`, '', ''],
    ['  t6-noop − floor (diagnostic) (ms)', fmt(c.noopStopOverFloor), '', ''],
    ['memory: t6 total PSS / tini total PSS (×)', fmt(c.pssVsTini), '', ''],
  ]);
}

const loadLine = (l) => l.map((x) => x.toFixed(2)).join(' ');

export async function run() {
  const why = podmanUsable();
  if (why !== undefined) {
    console.log(`container: skipped: ${why}`);
    return { skipped: why };
  }
  const rounds = envInt('BENCH_CONTAINER_ROUNDS', 5);
  const settleMs = envInt('BENCH_CONTAINER_SETTLE_MS', 3000);
  const withTini = fs.existsSync(TINI);
  const tiniSkipped = withTini ? undefined : `${TINI} is missing (apt-get install -y --no-install-recommends tini): no tini reference`;
  if (tiniSkipped) console.log(`container: ${tiniSkipped}`);
  const base = buildRootfs();
  console.log(`container: rootfs built in ${base.ms} ms (${(base.bytes / 1e6).toFixed(1)} MB, /opt/t6 ${(base.optBytes / 1e6).toFixed(1)} MB)`);
  const image = makeImage(base, withTini);
  const noop = process.env.BENCH_CONTAINER_NOOP !== '0';
  const images = { t6: image, 't6-noop': noop ? makeImage(base, false, NOOP_SYSTEM) : undefined };
  const imageOf = (k) => images[k] ?? image;
  const busy = await waitQuiet();
  const before = { loadavg: os.loadavg(), trueLoopMs: trueLoopMs(), busy, at: new Date().toISOString() };
  console.log(`\n== container: t6-container beside floors, ${rounds} alternating rounds ==`);
  console.log(`machine before: load ${loadLine(before.loadavg)}, /bin/true ×1000 ${fmt(before.trueLoopMs)} ms, ${(busy * 100).toFixed(0)}% busy`);
  // One warm-up of each, not counted: the first podman run after a while pays for its caches.
  for (const k of ['t6', 'echo']) await startRun(k, image);
  const runs = {
    start: { t6: [], ...(noop ? { 't6-noop': [] } : {}), true: [], echo: [] },
    stop: { t6: [], ...(noop ? { 't6-noop': [] } : {}), floor: [], ...(withTini ? { tini: [] } : {}) },
  };
  const failures = [];
  const busyBeforeRound = [];
  for (let i = 0; i < rounds; i++) {
    // Others share this machine: each round waits (up to BENCH_CONTAINER_QUIET_WAIT_S) for a quiet moment, and says how busy it was.
    if (i > 0) busyBeforeRound.push(await waitQuiet(undefined, envInt('BENCH_CONTAINER_QUIET_WAIT_S', 30)));
    else busyBeforeRound.push(busy);
    const order = (xs) => (i % 2 === 0 ? xs : [...xs].reverse());
    for (const k of order(Object.keys(runs.start))) {
      try { runs.start[k].push(await startRun(k, imageOf(k))); } catch (err) { failures.push({ round: i + 1, what: `start ${k}`, error: String(err?.message ?? err) }); }
    }
    for (const k of order(Object.keys(runs.stop))) {
      try { runs.stop[k].push(await stopRun(k, imageOf(k), settleMs)); } catch (err) { failures.push({ round: i + 1, what: `stop ${k}`, error: String(err?.message ?? err) }); }
    }
    const st = runs.start; const sp = runs.stop;
    console.log(`round ${i + 1} (${(busyBeforeRound[i] * 100).toFixed(0)}% busy before): start t6 ${st.t6.at(-1)?.cmdMs} (first line ${st.t6.at(-1)?.firstLineMs})${noop ? `, t6-noop ${st['t6-noop'].at(-1)?.cmdMs}` : ''}, echo ${st.echo.at(-1)?.cmdMs}, true ${st.true.at(-1)?.exitMs}; stop t6 ${sp.t6.at(-1)?.stopMs}${noop ? `, t6-noop ${sp['t6-noop'].at(-1)?.stopMs}` : ''}, floor ${sp.floor.at(-1)?.stopMs}${sp.tini ? `, tini ${sp.tini.at(-1)?.stopMs}` : ''}; PSS t6 ${fmt(mb(sp.t6.at(-1)?.memory.pssKB))} MB (pid 1 ${fmt(mb(sp.t6.at(-1)?.memory.pid1PssKB))})${sp.tini ? `, tini ${fmt(mb(sp.tini.at(-1)?.memory.pssKB))} MB` : ''}`);
  }
  const after = { loadavg: os.loadavg(), trueLoopMs: trueLoopMs(), busy: await cpuBusy(1000), at: new Date().toISOString() };
  const analysis = analyse(runs);
  report(analysis, tiniSkipped);
  console.log(`\nmachine: before load ${loadLine(before.loadavg)}, /bin/true ×1000 ${fmt(before.trueLoopMs)} ms, ${(before.busy * 100).toFixed(0)}% busy; after load ${loadLine(after.loadavg)}, /bin/true ×1000 ${fmt(after.trueLoopMs)} ms, ${(after.busy * 100).toFixed(0)}% busy (${os.cpus().length} CPUs)`);
  for (const f of failures) console.log(`failed: round ${f.round} ${f.what}: ${f.error.split('\n')[0]}`);
  for (const dir of new Set(Object.values(images).filter(Boolean))) fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  const result = {
    rounds, settleMs, goals: GOALS, rootfs: { ms: base.ms, bytes: base.bytes, optBytes: base.optBytes },
    podman: spawnSync('podman', ['--version'], { encoding: 'utf8' }).stdout.trim(),
    ...analysis, runs, failures, busyBeforeRound, tini: tiniSkipped === undefined ? TINI : { skipped: tiniSkipped },
    machine: { before, after },
  };
  const file = writeResults('container', result);
  console.log(`results: ${file}`);
  return result;
}

if (isMain(import.meta.url)) await run();
