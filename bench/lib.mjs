/**
 * Shared machinery of the benchmarks: the three supervisors (t6-svscan, Debian's
 * s6-svscan, runit's runsvdir), each run as pid 1 of its own pid namespace; service
 * directories whose `run` signals "I run" by writing one byte into a FIFO the bench reads
 * (no polling); process-tree walks for PSS and CPU; statistics and report tables.
 *
 * Every benchmark file imports this and is runnable alone:
 *   node_modules/.bin/node bench/<name>.mjs
 * bench/run.mjs runs them all and prints one summary table.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = path.join(ROOT, 'bin');
export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');

/** RLIMIT_NOFILE for every supervision tree (t6 holds a few fds per service in one process). */
const NOFILE = 65536;

// ---- the supervisors ------------------------------------------------------------------

/**
 * The peers. `command(scandir)` is what runs as the namespace's pid 1; `supervisorComms`
 * are the process names that make up the supervision machinery (everything else below
 * pid 1 is a service); `readiness` says whether notification-fd is honoured.
 */
export const SUPERVISORS = {
  t6: {
    name: 't6',
    title: 't6-svscan',
    command: (scandir) => [t6Bin('t6-svscan'), '-c', '4000', scandir],
    supervisorComms: ['t6-svscan', 'node'],
    readiness: true,
    available: () => fs.existsSync(path.join(BIN, 't6-svscan')),
  },
  s6: {
    name: 's6',
    title: 's6-svscan 2.11.3.2',
    command: (scandir) => ['s6-svscan', '-c', '4000', scandir],
    supervisorComms: ['s6-svscan', 's6-supervise'],
    readiness: true,
    available: () => hasProgram('s6-svscan'),
  },
  runit: {
    name: 'runit',
    title: 'runsvdir (runit 2.1.2)',
    command: (scandir) => ['runsvdir', scandir],
    supervisorComms: ['runsvdir', 'runsv'],
    readiness: false,
    available: () => hasProgram('runsvdir'),
  },
};
export const PEERS = ['t6', 's6', 'runit'];

/**
 * A private copy of t6's build, made once per bench process: DIR/bin (the generated
 * wrappers, unchanged), DIR/dist (the bundles), DIR/node_modules/* -> ROOT/node_modules/*.
 * Everything t6 runs from it, so a rebuild of dist/ during the run (others work in this
 * tree) neither breaks the bench nor mixes two builds in one set of results.
 *
 * With `privateNode`, DIR/node_modules/node/bin/node is a copy of the Node binary rather
 * than a link. PSS divides a shared page among the processes that map it; on a real
 * machine t6-svscan is the only long-lived Node process, but here the bench itself and
 * anyone's tests run the same binary and would take a share of t6's pages.
 */
function snapshotT6(dir, privateNode) {
  fs.cpSync(path.join(ROOT, 'bin'), path.join(dir, 'bin'), { recursive: true });
  fs.cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'node_modules'));
  for (const name of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
    if (privateNode && name === 'node') continue;
    fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(dir, 'node_modules', name));
  }
  if (privateNode) {
    const node = path.join(dir, 'node_modules', 'node', 'bin', 'node');
    fs.mkdirSync(path.dirname(node), { recursive: true });
    fs.copyFileSync(fs.realpathSync(path.join(ROOT, 'node_modules', 'node', 'bin', 'node')), node);
    fs.chmodSync(node, 0o755);
  }
  // The wrappers name their bundle (dist/t6-NAME.js or .cjs, as the build decides).
  const wrapper = fs.readFileSync(path.join(dir, 'bin', 't6-svscan'), 'utf8');
  const bundle = wrapper.match(/\/dist\/(t6-svscan\.[a-z]+)/)?.[1];
  if (bundle === undefined || !fs.existsSync(path.join(dir, 'dist', bundle))) {
    throw new Error(`bin/t6-svscan names no bundle present in dist/: run \`npm run build\` (or a build was under way)`);
  }
  return dir;
}

let snapshotDir;

/** Path of t6 command `name` (e.g. 't6-svstat') in this run's private copy of the build. */
export function t6Bin(name) {
  snapshotDir ??= snapshotT6(makeTemp('t6-bench-build-', os.tmpdir()), false);
  return path.join(snapshotDir, 'bin', name);
}

/** The t6 peer, running on a private copy of the Node binary (made in `dir`). */
export function privateNodeT6(dir) {
  snapshotT6(dir, true);
  return {
    ...SUPERVISORS.t6,
    command: (scandir) => [path.join(dir, 'bin', 't6-svscan'), ...SUPERVISORS.t6.command(scandir).slice(1)],
  };
}

export function hasProgram(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

// ---- temporary directories and cleanup ------------------------------------------------

const liveTrees = new Set();
const tempDirs = new Set();

/**
 * Where scan directories go: BENCH_TMPDIR, else /dev/shm when it is a tmpfs, else the
 * system's temporary directory. A real scan directory lives on a tmpfs (/run/service),
 * and a disk file system distorts the comparison: after the bench has created and removed
 * tens of thousands of inodes, ext4 spends most of a create or mkdir in its inode
 * allocator (recently_deleted), which a one-process supervisor pays serially and
 * 1,000 supervise processes pay on every CPU at once.
 */
export const SCAN_BASE = process.env.BENCH_TMPDIR || (fsType('/dev/shm') === 'tmpfs' ? '/dev/shm' : os.tmpdir());

/** The file system type of the mount holding `dir` (from /proc/self/mountinfo), or undefined. */
export function fsType(dir) {
  try {
    const real = fs.realpathSync(dir);
    let best = { mount: '', type: undefined };
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [left, right] = line.split(' - ');
      if (right === undefined) continue;
      const mount = left.split(' ')[4].replace(/\\040/g, ' ');
      const inside = real === mount || real.startsWith(mount.endsWith('/') ? mount : `${mount}/`);
      if (inside && mount.length >= best.mount.length) best = { mount, type: right.split(' ')[0] };
    }
    return best.type;
  } catch {
    return undefined;
  }
}

/**
 * A fresh temporary directory, removed at exit (or by `removeTemp`): under SCAN_BASE
 * (for service trees) unless `base` says otherwise.
 */
export function makeTemp(prefix = 't6-bench-', base = SCAN_BASE) {
  const dir = fs.mkdtempSync(path.join(base, prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTemp(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

function cleanupAll() {
  for (const tree of liveTrees) tree.killNow();
  for (const dir of tempDirs) {
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
  tempDirs.clear();
}
process.on('exit', cleanupAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { cleanupAll(); process.exit(130); });
}

// ---- service directories --------------------------------------------------------------

/** A FIFO that the bench reads; every `run` script writes one byte into it. */
export class ByteFifo {
  /** @param {string} file path of the FIFO to create */
  constructor(file) {
    this.path = file;
    const r = spawnSync('mkfifo', ['-m', '0666', file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mkfifo ${file}: ${r.stderr}`);
    // O_RDWR: writers never block on open and we never see EOF between writers.
    this.fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    this.count = 0;
    /** arrival times (performance.now()) of the first and of the most recent byte */
    this.firstAt = 0;
    this.lastAt = 0;
    this.waiters = [];
    this.socket = new net.Socket({ fd: this.fd, readable: true, writable: false });
    this.socket.on('data', (chunk) => {
      const at = performance.now();
      if (this.count === 0) this.firstAt = at;
      this.count += chunk.length;
      this.lastAt = at;
      for (const w of [...this.waiters]) {
        if (this.count >= w.n) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          clearTimeout(w.timer);
          w.resolve(at);
        }
      }
    });
  }

  /** Resolves with the arrival time of the byte that brings the count to `n`. */
  waitFor(n, timeoutMs = 60_000, what = `${n} bytes`) {
    if (this.count >= n) return Promise.resolve(this.lastAt);
    return new Promise((resolve, reject) => {
      const w = { n, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (got ${this.count})`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  close() {
    this.socket.destroy();
  }
}

/** The `run` script of a benchmark service: one byte into the FIFO, then a long sleep. */
export function runScript(fifo, { readiness = false } = {}) {
  const lines = ['#!/bin/sh', `printf x >${shellQuote(fifo)}`];
  // With notification-fd (t6, s6): say ready on fd 3 and do not keep it open.
  if (readiness) lines.push('if [ -e notification-fd ]; then echo >&3; exec sleep 1d 3>&-; fi');
  lines.push('exec sleep 1d', '');
  return lines.join('\n');
}

export function shellQuote(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

/**
 * Creates `count` service directories s0001… in `scandir`, each with the given `run`
 * script (same script for every supervisor) and, if asked, `notification-fd` = 3.
 */
export function makeServices(scandir, count, run, { notificationFd = false, prefix = 's' } = {}) {
  fs.mkdirSync(scandir, { recursive: true });
  const width = String(count).length;
  const dirs = [];
  for (let i = 0; i < count; i++) {
    const dir = path.join(scandir, `${prefix}${String(i).padStart(width, '0')}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'run'), run, { mode: 0o755 });
    if (notificationFd) fs.writeFileSync(path.join(dir, 'notification-fd'), '3\n');
    dirs.push(dir);
  }
  // A scan directory prepared in advance: runsvdir sleeps one second before scanning a
  // directory modified in the current second (runsvdir.c: `if (now <= mtime) sleep(1)`),
  // which would measure that guard instead of runit. Harmless for t6 and s6.
  const past = new Date(Date.now() - 10_000);
  fs.utimesSync(scandir, past, past);
  return dirs;
}

// ---- supervision trees in pid namespaces ----------------------------------------------

/**
 * A supervisor running as pid 1 of its own pid namespace:
 * `unshare --pid --fork --mount-proc --kill-child <supervisor> SCANDIR`.
 * unshare ignores SIGTERM, so stopping kills the namespace's pid 1.
 */
export class Tree {
  /**
   * Starts the tree; returns at once (the supervisor is launching).
   * `startedAt` is performance.now() just before the spawn.
   */
  static start(sup, scandir) {
    const cmd = sup.command(scandir);
    const script = `ulimit -n ${NOFILE} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec unshare --pid --fork --mount-proc --kill-child "$@"`;
    const startedAt = performance.now();
    const proc = spawn('sh', ['-c', script, 'sh', ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    return new Tree(sup, scandir, proc, startedAt);
  }

  constructor(sup, scandir, proc, startedAt) {
    this.sup = sup;
    this.scandir = scandir;
    this.proc = proc;
    this.startedAt = startedAt;
    this.output = '';
    const keep = (chunk) => {
      this.output += chunk.toString();
      if (this.output.length > 65536) this.output = this.output.slice(-32768);
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    this.alive = true;
    this.exited.then(() => { this.alive = false; liveTrees.delete(this); });
    liveTrees.add(this);
  }

  /** Outer pid of the namespace's pid 1 (the supervisor), or undefined if not there yet. */
  get pid1() {
    const pid = this.proc.pid;
    try {
      const kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      return kids.length > 0 ? Number(kids[0]) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Every process of the tree (outer pids) with its comm, from pid 1 down. */
  processes() {
    const root = this.pid1;
    if (root === undefined) return [];
    return descendants(root, true);
  }

  /** The supervision machinery: pid 1 and every process named like a supervisor. */
  supervisorProcesses() {
    const root = this.pid1;
    return this.processes().filter((p) => p.pid === root || this.sup.supervisorComms.includes(p.comm));
  }

  /** Kills the namespace (SIGKILL to its pid 1) and waits until unshare has exited. */
  async stop(timeoutMs = 20_000) {
    if (!this.alive) return this.exited;
    this.killNow();
    const t = setTimeout(() => { try { this.proc.kill('SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }

  killNow() {
    const p1 = this.pid1;
    if (p1 !== undefined) { try { process.kill(p1, 'SIGKILL'); } catch { /* gone */ } }
    else { try { this.proc.kill('SIGKILL'); } catch { /* gone */ } }
  }

  /** Throws (with the tree's output) if the tree has already exited. */
  checkAlive(what) {
    if (!this.alive) throw new Error(`${this.sup.title} exited during ${what}:\n${this.output.slice(-3000)}`);
  }
}

/** Children (outer pids) of a process, over all its threads. */
export function childrenOf(pid) {
  const out = [];
  let tasks;
  try { tasks = fs.readdirSync(`/proc/${pid}/task`); } catch { return out; }
  for (const t of tasks) {
    try {
      for (const c of fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/)) if (c) out.push(Number(c));
    } catch { /* thread gone */ }
  }
  return out;
}

export function commOf(pid) {
  try { return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return undefined; }
}

/** The process tree below `root` as [{pid, comm, ppid}]. */
export function descendants(root, includeRoot = false) {
  const out = includeRoot ? [{ pid: root, comm: commOf(root), ppid: 0 }] : [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop();
    for (const c of childrenOf(pid)) {
      out.push({ pid: c, comm: commOf(c), ppid: pid });
      stack.push(c);
    }
  }
  return out;
}

/** Waits for `predicate()` to return a truthy value, checking every `stepMs`. */
export async function until(what, predicate, timeoutMs = 10_000, stepMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = predicate();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// ---- /proc readings -------------------------------------------------------------------

/** Pss, Rss and private (USS) kB of one process from smaps_rollup. */
export function memoryOf(pid) {
  const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name) => {
    const m = text.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : 0;
  };
  return { pss: field('Pss'), rss: field('Rss'), uss: field('Private_Clean') + field('Private_Dirty') };
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/**
 * CPU use of one process, all threads: utime+stime (clock ticks, from /proc/PID/stat),
 * on-CPU nanoseconds and context switches (sums over /proc/PID/task/*).
 */
export function cpuOf(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]); // fields 14 and 15: utime, stime
  let runNs = 0;
  let switches = 0;
  const perThread = {};
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const ns = Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      const st = fs.readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
      const sw = Number(st.match(/^voluntary_ctxt_switches:\s+(\d+)/m)?.[1] ?? 0)
        + Number(st.match(/^nonvoluntary_ctxt_switches:\s+(\d+)/m)?.[1] ?? 0);
      perThread[t] = { comm: st.match(/^Name:\s+(.*)$/m)?.[1] ?? '?', runNs: ns, switches: sw };
      runNs += ns;
      switches += sw;
    } catch { /* thread gone */ }
  }
  return { ticks, cpuMs: (ticks * 1000) / CLK_TCK, runNs, switches, threads: Object.keys(perThread).length, perThread };
}

// ---- statistics and reports -----------------------------------------------------------

export function median(xs) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** median, min, max, quartiles and the relative spread (IQR / median) of samples. */
export function summarize(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const med = median(s);
  const q1 = quantile(s, 0.25);
  const q3 = quantile(s, 0.75);
  return { n: s.length, median: med, min: s[0], max: s[s.length - 1], q1, q3, spread: med ? (q3 - q1) / med : 0, samples };
}

export function fmt(x, digits = 2) {
  if (x === undefined || x === null || Number.isNaN(x)) return '–';
  if (typeof x === 'string') return x;
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(Math.min(digits, 1));
  return x.toFixed(digits);
}

export function ratio(a, b) {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return undefined;
  return a / b;
}

/** Prints a table: `rows` are arrays of cells, the first row is the header. */
export function printTable(rows, out = console.log) {
  const widths = [];
  for (const row of rows) row.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, String(c).length); });
  const line = (row) => row.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  out(line(rows[0]));
  out(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows.slice(1)) out(line(row));
}

/** One line per peer: samples, median, quartiles, spread. */
export function printSamples(label, stats, unit = 'ms') {
  console.log(`  ${label}: median ${fmt(stats.median)} ${unit}, min ${fmt(stats.min)}, q1 ${fmt(stats.q1)}, q3 ${fmt(stats.q3)}, max ${fmt(stats.max)}, IQR/median ${(stats.spread * 100).toFixed(0)}%`);
  console.log(`    samples: ${stats.samples.map((x) => fmt(x)).join(' ')}`);
}

/** Jiffies from the first line of /proc/stat: [busy, total]. */
function cpuJiffies() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = f[3] + (f[4] ?? 0); // idle + iowait
  return [total - idle, total];
}

/** Fraction (0–1) of the machine's CPU time that was busy over the next `ms` milliseconds. */
export async function cpuBusy(ms = 1000) {
  const [b0, t0] = cpuJiffies();
  await sleep(ms);
  const [b1, t1] = cpuJiffies();
  return t1 > t0 ? (b1 - b0) / (t1 - t0) : 0;
}

/**
 * Waits (up to `maxWaitS`) until the machine is quiet — less than `maxBusy` of its CPU
 * busy over a second — since other work on it distorts every timing. Returns the last
 * busy fraction measured; warns if the machine never got quiet.
 */
export async function waitQuiet(maxBusy = envInt('BENCH_QUIET_MAX_PERCENT', 15) / 100, maxWaitS = envInt('BENCH_QUIET_WAIT_S', 60)) {
  const deadline = Date.now() + maxWaitS * 1000;
  let busy = await cpuBusy(1000);
  let said = false;
  while (busy > maxBusy && Date.now() < deadline) {
    if (!said) console.log(`waiting for the machine to be quiet: ${(busy * 100).toFixed(0)}% CPU busy (want < ${(maxBusy * 100).toFixed(0)}%, up to ${maxWaitS} s)…`);
    said = true;
    await sleep(4000);
    busy = await cpuBusy(1000);
  }
  if (busy > maxBusy) console.log(`warning: the machine is busy (${(busy * 100).toFixed(0)}% CPU outside this bench): timings are distorted`);
  return busy;
}

/** What the run looked like: machine, load, competing node processes. */
export function environment() {
  // Node processes other than this one (Node 24 names its main thread MainThread) and t6-svscans.
  const others = spawnSync('ps', ['-eo', 'pid=,comm='], { encoding: 'utf8' }).stdout.split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([pid, comm]) => Number(pid) !== process.pid && ['node', 'MainThread', 't6-svscan'].includes(comm)).length;
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memTotalMB: Math.round(os.totalmem() / 2 ** 20),
    loadavg: os.loadavg(),
    kernel: os.release(),
    scanDirBase: SCAN_BASE,
    scanDirFs: fsType(SCAN_BASE),
    otherNodeProcesses: others,
    commit: spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim(),
    // t6 is measured as built in dist/ when the run began: with these uncommitted changes to src/.
    uncommittedSrc: spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean),
  };
}

/** Writes `data` to bench/results/<name>-<stamp>.json and <name>-latest.json. */
export function writeResults(name, data) {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const body = JSON.stringify({ benchmark: name, environment: environment(), ...data }, null, 2) + '\n';
  const file = path.join(RESULTS_DIR, `${name}-${stamp}.json`);
  fs.writeFileSync(file, body);
  fs.writeFileSync(path.join(RESULTS_DIR, `${name}-latest.json`), body);
  return file;
}

/** Integer from the environment, or the default. */
export function envInt(name, dflt) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, not ${JSON.stringify(v)}`);
  return n;
}

/** Peers selected with BENCH_PEERS (default all that are installed/built). */
export function selectedPeers() {
  const wanted = (process.env.BENCH_PEERS ?? PEERS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  const out = [];
  for (const name of wanted) {
    const sup = SUPERVISORS[name];
    if (sup === undefined) throw new Error(`unknown peer ${name} in BENCH_PEERS (known: ${PEERS.join(', ')})`);
    if (!sup.available()) console.log(`note: ${sup.title} is not available here; skipped${name === 't6' ? ' (run `npm run build`)' : ''}`);
    else out.push(sup);
  }
  return out;
}

/** True when `file` (an import.meta.url) is the script node was started with. */
export function isMain(url) {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(url);
}

// ---- a counting HTTP server, for the probe benches ---------------------------------------

const COUNTING_HTTP_SERVER = `
const http = require('node:http');
let requests = 0;
const server = http.createServer((req, res) => { requests++; res.end('ok'); });
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
process.stdin.on('data', () => process.stdout.write(requests + '\\n'));
`;

/** An HTTP server in a process of its own (its CPU is not the bench's): its port, a request counter, and a stop. */
export async function startServer() {
  const child = spawn(process.execPath, ['-e', COUNTING_HTTP_SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  let waiting;
  child.stdout.setEncoding('utf8').on('data', (d) => {
    for (const l of d.split('\n').filter(Boolean)) lines.push(l);
    waiting?.();
  });
  const nextLine = () => new Promise((resolve) => {
    const take = () => { if (lines.length > 0) { waiting = undefined; resolve(lines.shift()); } };
    waiting = take;
    take();
  });
  const port = Number(await nextLine());
  return {
    port,
    requests: async () => { child.stdin.write('\n'); return Number(await nextLine()); },
    stop: () => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); }),
  };
}
