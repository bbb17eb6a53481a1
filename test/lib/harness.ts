/**
 * Test harness: t6-svscan (or real s6-svscan) as pid 1 of its own pid namespace, with
 * helpers to build service directories and to wait on events — never on fixed sleeps.
 * child_process is fine here: this is the test process, not the supervisor.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listenFifodir } from '../../src/s6/fifodir.ts';
import { decodeStatus, type SupervisorStatus } from '../../src/s6/status.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin');

const madeDirs: string[] = [];
// Temporary directories go when the test file's process ends (its trees are stopped by then).
process.on('exit', () => {
  for (const dir of madeDirs) {
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
});

/** A fresh temporary directory, removed when the test process exits. */
export function tmpdir(prefix = 't6-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

/**
 * The children of a process, over all its threads: t6-svscan starts services from worker
 * threads too (posix_spawn off the event loop), and /proc lists a child under the thread
 * that made it.
 */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const text = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text !== '') out.push(...text.split(/\s+/).map(Number));
    } catch { /* the thread ended */ }
  }
  return out;
}

/** What to put in a service directory. */
export interface ServiceSpec {
  run?: string;
  finish?: string;
  files?: Record<string, string>;
  log?: ServiceSpec;
  down?: boolean;
}

/** Writes a service directory: `run`/`finish` scripts (made executable) and small files. */
export function makeService(dir: string, spec: ServiceSpec): string {
  fs.mkdirSync(dir, { recursive: true });
  if (spec.run !== undefined) fs.writeFileSync(path.join(dir, 'run'), spec.run, { mode: 0o755 });
  if (spec.finish !== undefined) fs.writeFileSync(path.join(dir, 'finish'), spec.finish, { mode: 0o755 });
  for (const [name, content] of Object.entries(spec.files ?? {})) fs.writeFileSync(path.join(dir, name), content);
  if (spec.down === true) fs.writeFileSync(path.join(dir, 'down'), '');
  if (spec.log !== undefined) makeService(path.join(dir, 'log'), spec.log);
  return dir;
}

/**
 * How long a wait may take before the test fails. A bound, never a pause: waits end as soon
 * as their event comes, so the bound is generous (a loaded machine, `npm run test:stress`).
 */
export const WAIT_MS = 30_000;

/** Waits until `check` returns a value (not undefined/false), re-checking on every event or tick. */
export async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = WAIT_MS, stepMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** The bit of `sig` in a signal mask of /proc/PID/status (SigPnd, ShdPnd, SigBlk…). */
export function signalBit(sig: NodeJS.Signals): bigint {
  return 1n << BigInt(os.constants.signals[sig] - 1);
}

/** Signals pending for a process (its shared queue and each thread's own), or undefined once it is gone. */
export function pendingSignals(pid: number): bigint | undefined {
  let mask = 0n;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      let status: string;
      try { status = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'); } catch { continue; /* the thread ended */ }
      for (const m of status.matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)) mask |= BigInt(`0x${m[1]}`);
    }
  } catch {
    return undefined;
  }
  return mask;
}

/**
 * Sends `sig` to `pid` and waits until the process has taken it (no longer pending: its
 * handler ran). Node queues a signal it takes to its event loop in the order taken, so a
 * signal sent after this returns is handled after this one: a later signal with a visible
 * effect (SIGALRM's rotation) then proves that this one was handled, and what it did.
 */
export async function signalTaken(pid: number, sig: NodeJS.Signals): Promise<void> {
  process.kill(pid, sig);
  const bit = signalBit(sig);
  await until(`process ${pid} to take ${sig}`, () => {
    const pending = pendingSignals(pid);
    if (pending === undefined) throw new Error(`process ${pid} is gone (it did not survive ${sig})`);
    return (pending & bit) === 0n;
  }, WAIT_MS, 1);
}

/** Reads a service's supervise/status, or undefined if not there yet. */
export function readStatus(dir: string): SupervisorStatus | undefined {
  try {
    return decodeStatus(fs.readFileSync(path.join(dir, 'supervise', 'status')));
  } catch {
    return undefined;
  }
}

/** Subscribes to a service's event/ fifodir; collects every event byte with its arrival time. */
export class EventLog {
  readonly events: { byte: string; at: number }[] = [];
  #listener: ReturnType<typeof listenFifodir>;
  #waiters: (() => void)[] = [];
  constructor(dir: string) {
    this.#listener = listenFifodir(path.join(dir, 'event'), (byte) => {
      this.events.push({ byte, at: performance.now() });
      for (const w of this.#waiters.splice(0)) w();
    });
  }
  /** Path of this subscription's FIFO in the fifodir. */
  get fifoPath(): string {
    return this.#listener.fifoPath;
  }
  /** The bytes received so far. */
  get text(): string {
    return this.events.map((e) => e.byte).join('');
  }
  /** Resolves once the received bytes match `re` (checked on every event). */
  async waitFor(re: RegExp, timeoutMs = WAIT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.text)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for events ${re}; got ${JSON.stringify(this.text)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.text;
  }
  close(): void {
    this.#listener.close();
  }
}

/** Collects a child's output and lets tests wait for a line. */
export class OutputLog {
  text = '';
  #waiters: (() => void)[] = [];
  attach(stream: NodeJS.ReadableStream | null): void {
    stream?.on('data', (chunk: Buffer) => {
      this.text += chunk.toString();
      for (const w of this.#waiters.splice(0)) w();
    });
  }
  async waitFor(re: RegExp, timeoutMs = WAIT_MS): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.text.match(re);
      if (m !== null) return m;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for output ${re}; got:\n${this.text.slice(-3000)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }
}

/** A supervision tree running as pid 1 of its own pid namespace. */
export class Tree {
  readonly scandir: string;
  readonly proc: ChildProcess;
  /** stdout and stderr, as they came. */
  readonly output = new OutputLog();
  /** stdout alone (collected from the start, so that nothing is missed). */
  readonly stdout = new OutputLog();
  readonly exited: Promise<number | null>;
  /** Resolves once the tree has exited and its stdout and stderr are read to their end. */
  readonly closed: Promise<void>;

  private constructor(scandir: string, proc: ChildProcess) {
    this.scandir = scandir;
    this.proc = proc;
    this.output.attach(proc.stdout);
    this.output.attach(proc.stderr);
    this.stdout.attach(proc.stdout);
    this.exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    this.closed = new Promise((resolve) => proc.on('close', () => resolve()));
  }

  /**
   * Starts `t6-svscan` (or `command`, e.g. real s6-svscan) on scandir inside
   * `unshare --pid --fork --mount-proc --kill-child`, and waits until it listens (-d 3).
   */
  static async start(scandir: string, opts: { command?: string[]; args?: string[]; env?: Record<string, string> } = {}): Promise<Tree> {
    const cmd = opts.command ?? [path.join(BIN, 't6-svscan'), '-d', '3', ...(opts.args ?? [])];
    const proc = spawn('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', ...cmd, scandir], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    });
    const tree = new Tree(scandir, proc);
    const notify = proc.stdio[3] as NodeJS.ReadableStream;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`scanner did not become ready:\n${tree.output.text}`)), WAIT_MS);
      notify.once('data', () => { clearTimeout(t); resolve(); });
      proc.once('exit', (code) => { clearTimeout(t); reject(new Error(`scanner exited ${code}:\n${tree.output.text}`)); });
    });
    return tree;
  }

  /** pid (in our namespace) of the tree's pid 1. */
  get pid1(): number {
    const pid = this.proc.pid!;
    const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
    return Number(children[0]);
  }

  /**
   * The pid in our namespace of a process the tree knows as `nsPid` (status files hold
   * namespace pids; signalling those numbers from here would hit the wrong process).
   */
  hostPid(nsPid: number): number {
    const queue = [this.pid1];
    while (queue.length > 0) {
      const pid = queue.shift()!;
      let status: string;
      try { status = fs.readFileSync(`/proc/${pid}/status`, 'utf8'); } catch { continue; }
      const ns = status.match(/^NSpid:\s+(.*)$/m)?.[1]?.trim().split(/\s+/);
      if (ns !== undefined && Number(ns[ns.length - 1]) === nsPid) return pid;
      queue.push(...childrenOf(pid));
    }
    throw new Error(`no process ${nsPid} in the tree's namespace`);
  }

  /** Sends a signal to a process of the tree, named by its pid inside the namespace. */
  signalNs(nsPid: number, sig: NodeJS.Signals): void {
    process.kill(this.hostPid(nsPid), sig);
  }

  /** Sends a signal to the tree's pid 1. */
  signal(sig: NodeJS.Signals): void {
    process.kill(this.pid1, sig);
  }

  /** Writes bytes to `.s6-svscan/control`. */
  control(bytes: string): void {
    const fd = fs.openSync(path.join(this.scandir, '.s6-svscan', 'control'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    try { fs.writeSync(fd, bytes); } finally { fs.closeSync(fd); }
  }

  /** Stops the tree: asks it to terminate, and kills the namespace if it does not end in time. */
  async stop(timeoutMs = WAIT_MS): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    try { this.control('t'); } catch { /* not listening: kill below */ }
    const t = setTimeout(() => this.kill(), timeoutMs);
    await this.exited;
    clearTimeout(t);
  }

  /** Kills the namespace's pid 1 (and with it everything in the namespace). */
  kill(): void {
    try { process.kill(this.pid1, 'SIGKILL'); } catch { /* gone */ }
    try { this.proc.kill('SIGKILL'); } catch { /* gone */ }
  }
}

/** Runs one of t6's commands (bin/t6-NAME) synchronously. */
export function t6(name: string, args: string[], opts: { input?: string } = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(path.join(BIN, `t6-${name}`), args, { encoding: 'utf8', input: opts.input ?? '' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs any program synchronously (real s6 tools). */
export function run(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
