/**
 * Real containers for tests, under Debian's podman as root (../shared/CONTAINER-LAB.md):
 * runc (crun refuses these machines' hybrid cgroup layout), the cgroupfs manager, ulimits
 * within the machine's hard limits, and `--rootfs DIR` (no registry).
 *
 * A rootfs is built once per test process (`buildRootfs`): a static busybox and its applet
 * links, the self-contained t6 folder of scripts/package-opt.mjs at /opt/t6, the shared
 * libraries its Node needs, and a minimal /etc. A test takes a copy made of hard links
 * (`rootfsCopy`, milliseconds) and adds its own files; the container runs on an overlay of
 * it (`--rootfs DIR:O`), so nothing a container writes reaches a file shared by links.
 *
 * Every container gets a unique name, is removed (`podman rm -f`) in t.after and again at
 * the process's exit; podman is spawned without a shell, so only what we started is touched.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { TestContext } from 'node:test';
import { elfLinkage, missingInImage, sharedLibraries } from '../../scripts/vm/elf.ts';
import { packageOpt, treeBytes } from '../../scripts/package-opt.mjs';
import { tmpdir } from './harness.ts';

/** podman's global options on these machines (CONTAINER-LAB.md). */
export const PODMAN_GLOBAL = ['--runtime', 'runc', '--cgroup-manager=cgroupfs'];
/** `podman run` limits at or below this machine's hard limits (podman's defaults are above). */
export const PODMAN_ULIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];
/** The static busybox (Debian's busybox-static); Debian's `busybox` package would replace it with a dynamic one. */
export const BUSYBOX = '/bin/busybox';

const liveNames = new Set<string>();
// A safety net for a test process that ends without its t.after hooks (an uncaught error).
process.on('exit', () => {
  for (const name of liveNames) spawnSync('podman', ['rm', '-f', '-t', '0', name], { stdio: 'ignore' });
});

let nameCount = 0;
/** A container name no other test (or process) uses. */
export function uniqueName(prefix = 't6-test'): string {
  return `${prefix}-${process.pid}-${++nameCount}-${Math.random().toString(36).slice(2, 8)}`;
}

/** `podman ARGS…` with the global options, synchronously. */
export function podman(args: string[], timeoutMs = 60_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('podman', [...PODMAN_GLOBAL, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error === undefined ? '' : String(r.error.message)) };
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((dir) => {
    try { fs.accessSync(path.join(dir || '.', cmd), fs.constants.X_OK); return true; } catch { return false; }
  });
}

let usable: { why: string | undefined } | undefined;

/**
 * undefined when podman can run a container here; else exactly why not (not root, not
 * installed, busybox not static, or the error of a trivial container run once).
 */
export function podmanUsable(): string | undefined {
  usable ??= { why: probePodman() };
  return usable.why;
}

function probePodman(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: these tests run podman as root';
  for (const cmd of ['podman', 'runc']) {
    if (!onPath(cmd)) return `${cmd} is not installed (apt-get install -y --no-install-recommends podman runc)`;
  }
  if (!fs.existsSync(BUSYBOX) || elfLinkage(BUSYBOX).interpreter !== undefined) {
    return `${BUSYBOX} is missing or dynamically linked (apt-get install busybox-static; never Debian's busybox)`;
  }
  const root = tmpdir('t6-podman-probe-');
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp']) fs.mkdirSync(path.join(root, d));
  fs.copyFileSync(BUSYBOX, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  fs.symlinkSync('busybox', path.join(root, 'bin/sh'));
  const name = uniqueName('t6-probe');
  liveNames.add(name);
  try {
    const r = podman(['run', '--rm', '--name', name, ...PODMAN_ULIMITS, '--rootfs', `${root}:O`, '/bin/sh', '-c', 'echo t6-probe-$((40+2))']);
    if (r.status === 0 && r.stdout.includes('t6-probe-42')) return undefined;
    return `podman cannot run a trivial container (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ')}`;
  } finally {
    spawnSync('podman', ['rm', '-f', '-t', '0', name], { stdio: 'ignore' });
    liveNames.delete(name);
  }
}

/** A built rootfs and what building it cost. */
export interface Rootfs {
  dir: string;
  /** Build time, ms (0 when this process had built it already). */
  ms: number;
  bytes: number;
  /** /opt/t6's size, bytes. */
  optBytes: number;
  libraries: string[];
}

/** What to build into a rootfs. */
export interface RootfsOptions {
  /** Strip the Node binary (default true: 18 MB less for about a second). */
  strip?: boolean;
}

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n';

const built = new Map<string, Rootfs>();

/**
 * The rootfs for `podman run --rootfs`, built once per process and options: busybox-static
 * with its applets, /opt/t6, Node's shared libraries at their paths, a minimal /etc, and
 * the mount points. Never write into it: take a `rootfsCopy`.
 */
export function buildRootfs(opts: RootfsOptions = {}): Rootfs {
  const key = JSON.stringify({ strip: opts.strip ?? true });
  const cached = built.get(key);
  if (cached !== undefined) return { ...cached, ms: 0 };
  const started = performance.now();
  const dir = path.join(tmpdir('t6-rootfs-'), 'root');
  const at = (p: string): string => path.join(dir, p);
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'root', 'home/user', 'opt']) fs.mkdirSync(at(d), { recursive: true });
  fs.chmodSync(at('tmp'), 0o1777);
  fs.chmodSync(at('root'), 0o700);
  fs.chownSync(at('home/user'), 1000, 1000);
  fs.copyFileSync(BUSYBOX, at('bin/busybox'));
  fs.chmodSync(at('bin/busybox'), 0o755);
  // Relative links (never `busybox --install`, which would link to this host path). init
  // is left out: a container's init is t6.
  const applets = spawnSync(BUSYBOX, ['--list-full'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const rel of applets) {
    if (/(^|\/)(init|linuxrc|busybox)$/.test(rel)) continue;
    fs.mkdirSync(path.dirname(at(rel)), { recursive: true });
    fs.symlinkSync(path.relative(path.dirname(rel), 'bin/busybox'), at(rel));
  }
  const opt = packageOpt(at('opt/t6'), { strip: opts.strip ?? true });
  // glibc finds them in the multiarch folders without an ld.so.cache.
  const libraries = [...new Set([
    ...sharedLibraries(at('opt/t6/node_modules/node/bin/node')),
    ...sharedLibraries(at('opt/t6/node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node')),
  ])].sort();
  for (const lib of libraries) {
    fs.mkdirSync(path.dirname(at(lib)), { recursive: true });
    fs.copyFileSync(lib, at(lib));
    fs.chmodSync(at(lib), fs.statSync(lib).mode & 0o7777);
  }
  fs.writeFileSync(at('etc/passwd'), PASSWD, { mode: 0o644 });
  fs.writeFileSync(at('etc/group'), GROUP, { mode: 0o644 });
  const missing = missingInImage(dir);
  if (missing.length > 0) throw new Error(`rootfs: these binaries cannot run in it:\n  ${missing.join('\n  ')}`);
  const rootfs: Rootfs = { dir, ms: Math.round(performance.now() - started), bytes: treeBytes(dir), optBytes: opt.totalBytes, libraries };
  built.set(key, rootfs);
  return rootfs;
}

/**
 * A per-test copy of `base` made of hard links (`cp -al`: the 100 MB Node is not copied),
 * removed after the test. Add files by creating new ones (never write into a linked file:
 * that would change `base`); the container itself runs on an overlay (`runContainer`).
 */
export function rootfsCopy(t: TestContext, base: Rootfs): string {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 't6-rootfs-copy-')), 'root');
  const r = spawnSync('cp', ['-al', base.dir, dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cp -al ${base.dir} ${dir}: ${r.stderr}`);
  t.after(() => fs.rmSync(path.dirname(dir), { recursive: true, force: true }));
  return dir;
}

/** `podman run` options. */
export interface RunOptions {
  /** The test: the container is removed in its t.after. */
  t: TestContext;
  name?: string;
  user?: string;
  readOnly?: boolean;
  env?: Record<string, string>;
  /** Run on the rootfs itself, not an overlay of it (default false: writes go to the overlay). */
  noOverlay?: boolean;
  /** More `podman run` options, before --rootfs. */
  extra?: string[];
}

/** How a container ended: podman run's own exit status is the container's exit code. */
export interface ContainerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** ms from spawning `podman run`. */
  ms: number;
}

/** A running container: its output as it comes, and the ways to end it. */
export class Container {
  readonly name: string;
  readonly exited: Promise<ContainerExit>;
  exit: ContainerExit | undefined;
  /** Complete lines so far, stdout and stderr in arrival order. */
  readonly lines: string[] = [];
  /** When each of `lines` arrived, ms from spawning `podman run` (same index). */
  readonly lineMs: number[] = [];
  /** The same lines, per stream. */
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly #child: ChildProcess;
  readonly #start = performance.now();
  readonly #partial = { stdout: '', stderr: '' };
  readonly #waiters = new Set<() => void>();

  constructor(name: string, argv: string[]) {
    this.name = name;
    liveNames.add(name);
    this.#child = spawn('podman', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const which of ['stdout', 'stderr'] as const) {
      this.#child[which]!.on('data', (chunk: Buffer) => {
        const parts = (this.#partial[which] + chunk.toString('utf8')).split('\n');
        this.#partial[which] = parts.pop()!;
        this.lines.push(...parts);
        const at = this.elapsed();
        for (let i = 0; i < parts.length; i++) this.lineMs.push(at);
        this[which].push(...parts);
        this.#wake();
      });
    }
    this.exited = new Promise((resolve) => {
      // 'close', not 'exit': it comes once stdout and stderr are read to their end.
      this.#child.on('close', (code, signal) => {
        for (const which of ['stdout', 'stderr'] as const) {
          if (this.#partial[which] !== '') { this.lines.push(this.#partial[which]); this.lineMs.push(this.elapsed()); this[which].push(this.#partial[which]); }
        }
        this.exit = { code, signal, ms: this.elapsed() };
        this.#wake();
        resolve(this.exit);
      });
    });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** ms since `podman run` was spawned. */
  elapsed(): number {
    return Math.round(performance.now() - this.#start);
  }

  /** The output so far, one string. */
  get text(): string {
    return this.lines.join('\n');
  }

  /** Waits for a line matching `re` (searching from line `from`); returns it with when it came (ms from spawn). */
  waitLine(re: RegExp, timeoutMs = 60_000, from = 0): Promise<{ line: string; index: number; ms: number }> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const index = this.lines.findIndex((l, i) => i >= from && re.test(l));
        if (index >= 0) { done(); resolve({ line: this.lines[index]!, index, ms: this.elapsed() }); return; }
        if (this.exit !== undefined) { done(); reject(new Error(`container ${this.name} exited (${this.exit.code}) before a line matched ${re}:\n${this.text.slice(-3000)}`)); }
      };
      const timer = setTimeout(() => { done(); reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re} in ${this.name}:\n${this.text.slice(-3000)}`)); }, timeoutMs);
      const done = (): void => { clearTimeout(timer); this.#waiters.delete(check); };
      this.#waiters.add(check);
      check();
    });
  }

  /** `podman stop -t SECONDS NAME`: the stop signal, then SIGKILL after SECONDS. Resolves with podman stop's status. */
  stop(seconds = 10): Promise<number | null> {
    return new Promise((resolve) => {
      const p = spawn('podman', [...PODMAN_GLOBAL, 'stop', '-t', String(seconds), this.name], { stdio: 'ignore' });
      p.on('exit', (code) => resolve(code));
    });
  }

  /** `podman kill -s SIGNAL NAME`. */
  kill(signal: string): { status: number | null; stderr: string } {
    return podman(['kill', '-s', signal, this.name]);
  }

  /** `podman exec NAME ARGV…`, synchronously. */
  exec(argv: string[]): { status: number | null; stdout: string; stderr: string } {
    return podman(['exec', this.name, ...argv]);
  }

  /** The host pid of the container's pid 1 (`podman inspect`); undefined if it does not run. */
  hostPid(): number | undefined {
    const r = podman(['inspect', '--format', '{{.State.Pid}}', this.name]);
    const pid = Number(r.stdout.trim());
    return r.status === 0 && pid > 0 ? pid : undefined;
  }

  /** `podman rm -f`: ends the container at once if it runs; a removed one is fine. */
  remove(): void {
    spawnSync('podman', [...PODMAN_GLOBAL, 'rm', '-f', '-t', '0', this.name], { stdio: 'ignore' });
    if (this.exit === undefined) this.#child.kill('SIGKILL');
    liveNames.delete(this.name);
  }
}

/** The `podman run` command line of runContainer (exported for the report in test output). */
export function podmanRunArgs(rootfs: string, argv: string[], opts: Omit<RunOptions, 't'> & { name: string }): string[] {
  const env = Object.entries(opts.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  return [
    ...PODMAN_GLOBAL, 'run', '--rm', ...PODMAN_ULIMITS, '--name', opts.name,
    ...(opts.user === undefined ? [] : ['--user', opts.user]),
    ...(opts.readOnly === true ? ['--read-only'] : []),
    ...env, ...(opts.extra ?? []),
    '--rootfs', opts.noOverlay === true ? rootfs : `${rootfs}:O`, ...argv,
  ];
}

/** Starts `argv` in a container on `rootfs`; it is removed in t.after whatever happens. */
export function runContainer(rootfs: string, argv: string[], opts: RunOptions): Container {
  const name = opts.name ?? uniqueName();
  const c = new Container(name, podmanRunArgs(rootfs, argv, { ...opts, name }));
  opts.t.after(async () => {
    c.remove();
    await c.exited;
  });
  return c;
}

/** Every process in the tree under host pid `pid` (itself included), with its state letter and name from /proc/PID/stat. */
export function processTree(pid: number, childrenOf: (pid: number) => number[]): Array<{ pid: number; state: string; comm: string }> {
  const out: Array<{ pid: number; state: string; comm: string }> = [];
  const visit = (p: number): void => {
    let stat: string;
    try { stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8'); } catch { return; }
    const close = stat.lastIndexOf(')');
    out.push({ pid: p, comm: stat.slice(stat.indexOf('(') + 1, close), state: stat.slice(close + 2, close + 3) });
    for (const c of childrenOf(p)) visit(c);
  };
  visit(pid);
  return out;
}
