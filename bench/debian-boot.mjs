// Issue 16's benchmark: the same Debian bookworm disk booted by t6 and by systemd, in the same
// qemu (software emulation, test/lib/vm.ts's flags: -m 1G -smp 1, virtio disk, user network
// with the guest's port 22 forwarded to a free port of 127.0.0.1), the same kernel, the same
// initramfs and the same kernel command line apart from init= (systemd's image gets
// init=/lib/systemd/systemd; t6's boots its /sbin/init), in alternating rounds: t6, systemd,
// t6, systemd, …
//
//   t6:       .cache/debian/debian.img          (scripts/debian/build.mjs)
//   systemd:  .cache/debian/debian-systemd.img  (scripts/debian/build-systemd.mjs)
//
// Each round, for each system: a fresh copy of its image (cp --sparse) with the ssh host keys
// removed from the copy (debugfs), booted once ("first boot": both machines make the keys at
// boot, `ssh-keygen -A` before sshd, the same work for both) and powered off; then the SAME
// disk booted again ("later boot": the keys its first boot made are there, as on every boot of
// a machine after its first) and powered off. Both boots are measured alike; the goals are
// judged on each.
//
// Measured, per boot (host clock; the kernel's clock zero is placed on it by reading
// /proc/uptime on the serial console once logged in):
//
//   login:     → "t6-debian login: " on ttyS0
//   ssh:       → sshd's banner ("SSH-2.0-") read on the forwarded port (a connect alone is
//              accepted by qemu's user network before the guest listens)
//   each from three zeros: qemu spawned; the kernel's clock zero ("kernel start"); and
//   "Run /init as init process" in dmesg (the initramfs's start: the kernel's own boot, the
//   same for both, left out; issue 16's goal is judged from it: t6 ≤ 0.5 × systemd)
//   shutdown:  `poweroff` typed on the console (logged in as root) → qemu exits, a moment after
//              the kernel's `reboot: Power down` (goal: t6 ≤ 0.3 × systemd)
//   memory:    10 s after sshd answers, PSS (/proc/PID/smaps_rollup, over ssh) of the init
//              system: t6, every process running t6's Node (/usr/lib/t6) — pid 1 only, in
//              this image; systemd, pid 1 and systemd-journald. systemd-udevd runs in both:
//              reported apart.
//   timeline:  `t6-analyze plot` (t6's own boot record) and `systemd-analyze plot`, copied out
//              over ssh into bench/results/debian-boot-{t6,systemd}-DATE.svg (the last round's
//              first boot) and …-DATE-later.svg (its later boot)
//
//   floor:     the t6 image with scripts/bench/debian-floor-init as pid 1: the same services, the
//              same scripts, in the same dependency order, started by a shell and nothing else
//              (no supervision, logging or boot record); login and banner timed alike, then
//              qemu killed. What any init must spend on this disk: where the floor's own time is
//              above a goal's bound, no init can meet that goal with these services.
//
//   node_modules/.bin/node bench/debian-boot.mjs     (BENCH_DEBIAN_ROUNDS=3 rounds: 6 boots each;
//                                                     BENCH_DEBIAN_KINDS=t6,systemd,floor: which)
//   Needs root (the images' builds), qemu-system-x86, ssh, debugfs, Debian's mirror.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { RESULTS_DIR, ROOT, envInt, fmt, isMain, median, printTable, ratio, sleep, writeResults } from './lib.mjs';

const { DEBIAN_APPEND, findVmAssets, freePort, Vm } = await import(path.join(ROOT, 'test/lib/vm.ts'));

/** Issue 16's goals, t6/systemd of the medians: `Run /init` → sshd's banner ≤ 0.5, poweroff ≤ 0.3 (typed → qemu exits, a moment after `reboot: Power down`). */
export const GOAL = { sshFromInitMs: 0.5, shutdownMs: 0.3 };
const KINDS = {
  t6: { image: 't6Image', append: DEBIAN_APPEND },
  systemd: { image: 'image', append: `${DEBIAN_APPEND} init=/lib/systemd/systemd` },
  // The floor: t6's image with scripts/bench/debian-floor-init as pid 1 (its services, from a
  // shell, nothing else); booted and timed, never inspected or powered off.
  floor: { image: 't6Image', append: `${DEBIAN_APPEND} init=/usr/sbin/t6-floor`, floor: true },
};
const FLOOR_INIT = path.join(ROOT, 'scripts/bench/debian-floor-init');
const PROMPT = /root@t6-debian:[^#\n]*# /;
const HOST_KEYS = ['rsa', 'ecdsa', 'ed25519'].flatMap((t) => [`/etc/ssh/ssh_host_${t}_key`, `/etc/ssh/ssh_host_${t}_key.pub`]);
/** Every process: pid, name, PSS (kB), executable; one line each. */
const PROCESSES = String.raw`for d in /proc/[0-9]*; do p=${'$'}{d#/proc/}; c=$(cat $d/comm 2>/dev/null) || continue; s=$(awk '/^Pss:/ {print $2}' $d/smaps_rollup 2>/dev/null); e=$(readlink $d/exe 2>/dev/null); echo "proc $p $c ${'$'}{s:-0} ${'$'}{e:--}"; done`;

/** debugfs commands: the ssh host keys out of /etc/ssh (the systemd image has none: debugfs says so and goes on). */
const KEY_COMMANDS = HOST_KEYS.map((k) => `rm ${k}\n`).join('');

/** A fresh copy of `image` in `dir`, without ssh host keys (with the floor's init when asked). */
function freshDisk(image, dir, floor = false) {
  const disk = path.join(dir, 'disk.img');
  const cp = spawnSync('cp', ['--sparse=always', image, disk], { encoding: 'utf8' });
  if (cp.status !== 0) throw new Error(`cp ${image}: ${cp.stderr}`);
  const cmds = path.join(dir, 'debugfs.cmd');
  fs.writeFileSync(cmds, KEY_COMMANDS + (floor ? `cd /usr/sbin\nwrite ${FLOOR_INIT} t6-floor\nsif t6-floor mode 0100755\n` : ''));
  const r = spawnSync('debugfs', ['-w', '-f', cmds, disk], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`debugfs: ${r.stderr}`);
  return disk;
}

/** Resolves with the ms (from qemu's spawn) at which the port gave an SSH banner. */
function readBanner(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (ok) => { clearTimeout(timer); sock.destroy(); resolve(ok); };
    const timer = setTimeout(() => done(false), 3000);
    sock.on('data', (d) => { got += d.toString('latin1'); if (got.startsWith('SSH-2.0-')) done(true); else if (got.length >= 8) done(false); });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

/** Polls the forwarded port every 100 ms until sshd's banner comes; its ms from spawn. */
async function waitBanner(vm, port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && vm.exit === undefined) {
    if (await readBanner(port)) return vm.elapsed();
    await sleep(100);
  }
  throw new Error(`no ssh banner on port ${port} within ${timeoutMs} ms`);
}

/** Runs `command` in the guest over ssh, with the images' key; its stdout (throws on failure). */
export function ssh(port, key, command, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', ['-i', key, '-p', String(port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'ConnectTimeout=60', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', command], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d.toString(); });
    child.stderr.on('data', (d) => { err += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (status) => {
      clearTimeout(timer);
      if (status === 0) resolve(out);
      else reject(new Error(`ssh ${command.slice(0, 60)}: exit ${status}: ${err.trim()}`));
    });
  });
}

/** The init system's PSS and udevd's, in MB, from PROCESSES's lines. */
export function initMemory(text, kind) {
  const procs = [...text.matchAll(/^proc (\d+) (\S+) (\d+) (\S+)$/gm)].map((m) => ({ pid: Number(m[1]), comm: m[2], pssKB: Number(m[3]), exe: m[4] }));
  const mine = kind === 't6' ? procs.filter((p) => p.exe.startsWith('/usr/lib/t6/')) : procs.filter((p) => p.pid === 1 || p.comm === 'systemd-journal');
  const udevd = procs.filter((p) => p.comm === 'systemd-udevd');
  const mb = (list) => +(list.reduce((s, p) => s + p.pssKB, 0) / 1024).toFixed(1);
  return { initPssMB: mb(mine), initProcesses: mine.map((p) => `${p.pid} ${p.comm}`), udevdPssMB: mb(udevd) };
}

/** Logs in as root on the console and places the kernel's clock zero on the host's clock. */
async function login(vm) {
  vm.send('root\r');
  await vm.waitFor(PROMPT, 120_000, 'shell');
  // The echo of the command holds no digits after "UP-", so only the answer matches.
  vm.send("echo UP-$(cut -d' ' -f1 /proc/uptime)-MARK\r");
  const seen = await vm.waitFor(/UP-(\d+\.\d+)-MARK/, 60_000, 'uptime');
  return seen.ms - Number(seen.match[1]) * 1000;
}

/** dmesg's `Run … as init process` line, over ssh: its kernel time (s) and the program. */
async function runInit(port, key) {
  const run = /\[\s*([\d.]+)\] Run (\S+) as init process/.exec(await ssh(port, key, 'dmesg'));
  return { runInitS: run === null ? undefined : Number(run[1]), runInit: run?.[2] };
}

/** Whether the guest's ssh host keys are there (made at its first boot). */
async function hostKeysMade(port, key) {
  return (await ssh(port, key, 'ls /etc/ssh')).includes('ssh_host_ed25519_key');
}

/** Login and banner (ms from qemu's spawn) from the kernel's clock zero and from `Run /init`. */
function bootTimes(loginMs, sshMs, zeroMs, runInitS) {
  const runMs = runInitS === undefined ? undefined : zeroMs + runInitS * 1000;
  const r = (x, zero) => (zero === undefined ? undefined : Math.round(x - zero));
  return { loginMs, sshMs, loginFromKernelMs: r(loginMs, zeroMs), sshFromKernelMs: r(sshMs, zeroMs), loginFromInitMs: r(loginMs, runMs), sshFromInitMs: r(sshMs, runMs) };
}

/** What is read over ssh once the machine has settled: dmesg's Run line, memory, the plot. */
async function inspect(port, key, kind) {
  const run = await runInit(port, key);
  const memory = initMemory(await ssh(port, key, PROCESSES), kind);
  const svg = await ssh(port, key, kind === 't6' ? 't6-analyze plot' : 'systemd-analyze plot');
  const analyze = (await ssh(port, key, kind === 't6' ? 't6-analyze blame | head -15; t6-analyze critical-chain sshd'
    : 'systemd-analyze; systemd-analyze blame | head -15; systemd-analyze critical-chain ssh.service')).trim();
  return { ...run, memory, svg, analyze, keysMade: await hostKeysMade(port, key) };
}

/** One boot of `kind` from `disk`: boot, time login and ssh, settle, inspect, power off. */
async function oneBoot(assets, built, kind, disk, settleMs) {
  const port = await freePort();
  const vm = Vm.boot({ qemu: assets.qemu, kernel: built.kernel, initrd: built.initrd, append: KINDS[kind].append, memory: '1G', disk, sshPort: port, timeoutMs: 900_000 });
  try {
    const banner = waitBanner(vm, port, 600_000);
    banner.catch(() => {});
    const loginMs = (await vm.waitFor(/t6-debian login: /, 600_000, 'login')).ms;
    const zeroMs = await login(vm);
    const sshMs = await banner;
    if (KINDS[kind].floor === true) return await floorFigures(port, built.sshKey, zeroMs, loginMs, sshMs);
    await sleep(Math.max(0, sshMs + settleMs - vm.elapsed()));
    const seen = await inspect(port, built.sshKey, kind);
    vm.send('poweroff\r');
    const typed = vm.elapsed();
    const exit = await vm.waitExit(300_000);
    if (exit.code !== 0) throw new Error(`qemu exited ${exit.code ?? exit.signal} after poweroff`);
    return {
      figures: {
        ...bootTimes(loginMs, sshMs, zeroMs, seen.runInitS), shutdownMs: exit.ms - typed,
        initPssMB: seen.memory.initPssMB, udevdPssMB: seen.memory.udevdPssMB,
      },
      kernelZeroMs: Math.round(zeroMs), initProcesses: seen.memory.initProcesses, keysMade: seen.keysMade, svg: seen.svg, analyze: seen.analyze,
    };
  } catch (err) {
    err.message += `\n--- console (last 30 lines) ---\n${vm.transcript.split('\n').slice(-30).join('\n')}`;
    throw err;
  } finally {
    vm.kill();
    await vm.exited;
  }
}

/** The floor's boot: its times from the same zeros; it has no plot, no init memory to speak of, and no shutdown. */
async function floorFigures(port, key, zeroMs, loginMs, sshMs) {
  const { runInitS } = await runInit(port, key);
  return {
    figures: bootTimes(loginMs, sshMs, zeroMs, runInitS),
    kernelZeroMs: Math.round(zeroMs), initProcesses: ['1 sh'], keysMade: await hostKeysMade(port, key), svg: undefined, analyze: undefined,
  };
}

/** The two boots of a round: `first` (no host keys on the fresh copy) and `later` (the same disk again). */
export const PHASES = ['first', 'later'];

/** One round of `kind`: a fresh copy booted twice; each boot's result, or the error that ended the round. */
async function oneRound(assets, built, kind, settleMs) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `t6-debian-${kind}-`));
  const boots = {};
  try {
    const disk = freshDisk(built[KINDS[kind].image], dir, KINDS[kind].floor === true);
    for (const phase of PHASES) boots[phase] = await oneBoot(assets, built, kind, disk, settleMs);
  } catch (err) {
    boots.error = err;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return boots;
}

/** Both images (scripts/debian/build-systemd.mjs builds t6's layers too); its summary. */
function buildImages() {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/debian/build-systemd.mjs')], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) return { skipped: (r.stderr || `exit ${r.status}`).trim().split('\n').slice(-3).join(' / ') };
  return { ...JSON.parse(r.stdout), buildMs: Date.now() - t0 };
}

/** Alternating rounds; a failed boot is reported and left out (with the later boot, if it was the first). */
async function rounds(assets, built, n, settleMs) {
  const kinds = (process.env.BENCH_DEBIAN_KINDS ?? Object.keys(KINDS).join(',')).split(',').filter((k) => k in KINDS);
  const runs = Object.fromEntries(PHASES.map((p) => [p, Object.fromEntries(kinds.map((k) => [k, []]))]));
  const last = Object.fromEntries(PHASES.map((p) => [p, {}]));
  const failures = [];
  for (let i = 0; i < n; i++) {
    for (const kind of kinds) {
      const boots = await oneRound(assets, built, kind, settleMs);
      for (const phase of PHASES) {
        const b = boots[phase];
        if (b === undefined) continue;
        console.log(`round ${i + 1} ${kind} ${phase} boot: ${JSON.stringify(b.figures)} (init: ${b.initProcesses.join(', ')}; host keys there after boot: ${b.keysMade})`);
        runs[phase][kind].push({ ...b.figures, kernelZeroMs: b.kernelZeroMs, initProcesses: b.initProcesses });
        last[phase][kind] = b;
      }
      if (boots.error !== undefined) {
        const phase = PHASES.find((p) => boots[p] === undefined);
        const error = String(boots.error?.message ?? boots.error);
        console.log(`round ${i + 1} ${kind} ${phase} boot: FAILED: ${error.split('\n')[0]}`);
        failures.push({ round: i + 1, kind, phase, error });
      }
    }
  }
  return { runs, last, failures };
}

const FIGURES = ['loginMs', 'sshMs', 'loginFromKernelMs', 'sshFromKernelMs', 'loginFromInitMs', 'sshFromInitMs', 'shutdownMs', 'initPssMB', 'udevdPssMB'];

/** median, min, max of every figure of a kind's runs. */
export function stats(runs) {
  return Object.fromEntries(FIGURES.map((f) => {
    const xs = runs.map((r) => r[f]).filter((x) => typeof x === 'number' && Number.isFinite(x));
    return [f, xs.length === 0 ? undefined : { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) }];
  }));
}

const LABELS = {
  loginMs: 'qemu spawn → login: (ms)', sshMs: 'qemu spawn → ssh banner (ms)',
  loginFromKernelMs: 'kernel start → login: (ms)', sshFromKernelMs: 'kernel start → ssh banner (ms)',
  loginFromInitMs: 'Run /init → login: (ms)', sshFromInitMs: 'Run /init → ssh banner (ms)',
  shutdownMs: 'poweroff typed → qemu exits (ms)', initPssMB: 'init system at rest, PSS (MB)', udevdPssMB: 'systemd-udevd (both), PSS (MB)',
};

/** The table: per figure, median [min–max] of each, t6/systemd, the goal where there is one. */
export function tableRows(s) {
  const cell = (x) => (x === undefined ? '–' : `${fmt(x.median)} [${fmt(x.min)}–${fmt(x.max)}]`);
  const floor = s.floor !== undefined;
  const rows = [['figure (median [min–max])', 't6', 'systemd', ...(floor ? ['floor (sh)'] : []), 't6/systemd', ...(floor ? ['floor/systemd'] : []), 'goal', 'met']];
  for (const f of FIGURES) {
    const q = ratio(s.t6?.[f]?.median, s.systemd?.[f]?.median);
    const goal = GOAL[f] === undefined ? '' : `≤ ${GOAL[f]}`;
    const met = goal === '' || q === undefined ? '' : q <= GOAL[f] ? 'yes' : 'NO';
    const floorCells = floor ? [cell(s.floor[f])] : [];
    const floorRatio = floor ? [fmt(ratio(s.floor[f]?.median, s.systemd?.[f]?.median))] : [];
    rows.push([LABELS[f], cell(s.t6?.[f]), cell(s.systemd?.[f]), ...floorCells, fmt(q), ...floorRatio, goal, met]);
  }
  return rows;
}

/** Saves the last round's SVGs into bench/results (the later boot's with -later); their paths. */
function saveSvgs(last) {
  const day = new Date().toISOString().slice(0, 10);
  const saved = {};
  for (const phase of PHASES) {
    for (const [kind, b] of Object.entries(last[phase])) {
      if (!b.svg?.includes('<svg')) continue;
      fs.mkdirSync(RESULTS_DIR, { recursive: true });
      const file = path.join(RESULTS_DIR, `debian-boot-${kind}-${day}${phase === 'later' ? '-later' : ''}.svg`);
      fs.writeFileSync(file, b.svg);
      saved[`${kind} ${phase}`] = path.relative(ROOT, file);
    }
  }
  return saved;
}

const loadLine = (l) => l.map((x) => x.toFixed(2)).join(' ');

/** One phase's stats, table, judged goals; printed. */
function report(phase, runs) {
  const s = Object.fromEntries(Object.entries(runs).map(([kind, r]) => [kind, stats(r)]));
  console.log(`\n${phase === 'first' ? 'first boot (a fresh copy: host keys made at boot)' : 'later boot (the same disk again: host keys there)'}`);
  printTable(tableRows(s));
  const ratios = Object.fromEntries(Object.keys(GOAL).map((f) => [f, ratio(s.t6?.[f]?.median, s.systemd?.[f]?.median)]));
  for (const [f, q] of Object.entries(ratios)) console.log(`goal, ${phase} boot: ${LABELS[f]}, t6 ≤ ${GOAL[f]} × systemd: ${q === undefined ? 'not judged' : `${fmt(q)}, ${q <= GOAL[f] ? 'met' : 'NOT met'}`}`);
  const met = Object.fromEntries(Object.entries(ratios).map(([f, q]) => [f, q === undefined ? undefined : q <= GOAL[f]]));
  return { stats: s, ratios, met };
}

export async function run() {
  const assets = findVmAssets();
  if ('missing' in assets) { console.log(`debian-boot: skipped: ${assets.missing}`); return undefined; }
  for (const tool of ['ssh', 'debugfs']) {
    if (spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool]).status !== 0) { console.log(`debian-boot: skipped: ${tool} not found`); return undefined; }
  }
  const built = buildImages();
  if ('skipped' in built) { console.log(`debian-boot: skipped: ${built.skipped}`); return undefined; }
  const n = envInt('BENCH_DEBIAN_ROUNDS', 3);
  const settleMs = envInt('BENCH_DEBIAN_SETTLE_MS', 10_000);
  const before = { loadavg: os.loadavg(), at: new Date().toISOString() };
  console.log(`debian-boot: ${n} rounds of t6, systemd ${built.systemd}, each a first boot of a fresh copy (host keys made at boot) and a later boot of the same disk; images built in ${built.buildMs} ms; load average before: ${loadLine(before.loadavg)}`);
  const { runs, last, failures } = await rounds(assets, built, n, settleMs);
  const after = { loadavg: os.loadavg(), at: new Date().toISOString() };
  const phases = Object.fromEntries(PHASES.map((p) => [p, report(p, runs[p])]));
  console.log(`machine: load average before ${loadLine(before.loadavg)}, after ${loadLine(after.loadavg)} (${os.cpus().length} CPUs)`);
  for (const phase of PHASES) {
    for (const [kind, b] of Object.entries(last[phase])) if (b.analyze !== undefined) console.log(`${kind === 't6' ? 't6-analyze' : 'systemd-analyze'} (the last ${kind} ${phase} boot):\n${b.analyze}`);
  }
  const svgs = saveSvgs(last);
  for (const [what, file] of Object.entries(svgs)) console.log(`timeline (${what} boot): ${file}`);
  for (const f of failures) console.log(`failed: round ${f.round} ${f.kind} ${f.phase} boot: ${f.error.split('\n')[0]}`);
  const analyze = Object.fromEntries(PHASES.map((p) => [p, { t6: last[p].t6?.analyze, systemd: last[p].systemd?.analyze }]));
  const result = {
    rounds: n, settleMs, systemd: built.systemd, append: { t6: KINDS.t6.append, systemd: KINDS.systemd.append }, masked: built.masked,
    runs, phases, goal: GOAL, analyze, svgs, machine: { before, after }, failures,
  };
  writeResults('debian-boot', result);
  return result;
}

if (isMain(import.meta.url)) await run();
