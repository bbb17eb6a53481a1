/**
 * The t6 demo (`npm run demo`): a small supervision tree under one t6-svscan, shown live.
 *
 * The services (templates in demo/services/, copied into a fresh scan directory):
 *  - `ready`: readiness through notification-fd: up at once, ready 2 seconds later;
 *  - `crashy`: exits 1 after half a second; t6 restarts it, at most once a second;
 *  - `finisher`: exits 3 after 2 seconds; t6 runs its `./finish` with the exit code,
 *    the signal and the service's name, then restarts it.
 *
 * t6-svscan runs as pid 1 of a private pid namespace (`unshare --pid --fork`) when we are
 * root, else as our child (it makes itself a child subreaper). The demo is only a client
 * of the tree's on-disk interface, as s6-svstat and s6-svwait are: it subscribes to each
 * service's `event/` fifodir before the tree starts, reads `supervise/status` and
 * `supervise/death_tally` after every event (and once a second, for the clocks), shows the
 * output of the tree, and stops the tree by writing `t` to `.s6-svscan/control`.
 *
 * Environment: DEMO_SECONDS=N stops by itself after N seconds, as Ctrl-C would;
 * DEMO_NO_NAMESPACE=1 runs t6-svscan as a subreaper even as root.
 * When stdout is not a terminal the live table gives way to one line per event.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listenFifodir, type FifodirListener } from '../src/s6/fifodir.ts';
import { decodeStatus, isUp, type SupervisorStatus } from '../src/s6/status.ts';
import { DEFAULT_DEATH_TALLY, decodeDeathTally, type DeathRecord } from '../src/s6/deathtally.ts';
import { tainNow, tainSecondsBetween } from '../src/s6/tai.ts';
import { signalName } from '../src/s6/signals.ts';
import { decodeWaitStatus } from '../src/sys/wait.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SVSCAN = path.join(ROOT, 'bin', 't6-svscan');
const TEMPLATES = path.join(ROOT, 'demo', 'services');
const SERVICES = ['ready', 'crashy', 'finisher'] as const;
/** How long t6-svscan may take to start listening. */
const START_TIMEOUT_MS = 15_000;
/** How long the tree may take to stop before its pid 1 is killed. */
const STOP_TIMEOUT_MS = 5_000;
/** A second Ctrl-C this long after the first kills the tree at once (npm forwards the first one again). */
const ESCALATE_AFTER_MS = 1_000;
/** Lines of output kept for the live view (and the longest line kept, in characters). */
const KEPT_LINES = 200;
const MAX_LINE = 1_000;

type Mode = 'namespace' | 'subreaper';

/** What the demo knows about one service, from its files and events. */
interface ServiceView {
  name: string;
  dir: string;
  /** Has a notification-fd file: readiness is meaningful. */
  notifies: boolean;
  status: SupervisorStatus | undefined;
  deaths: DeathRecord[];
  /** `u` events seen: how many times run was started. */
  starts: number;
  /** performance.now() of the last `u`, to time readiness. */
  lastUpAt: number;
  /** Seconds from start to readiness, for each start that became ready. */
  readyDelays: number[];
  listener: FifodirListener | undefined;
}

/** The running demo: the tree, its services, and the screen. */
class Demo {
  readonly tty = process.stdout.isTTY === true;
  readonly tmp = fs.mkdtempSync(path.join(os.tmpdir(), 't6-demo-'));
  readonly scandir = path.join(this.tmp, 'scandir');
  readonly services: ServiceView[];
  /** Recent tree output and event lines, for the live view. */
  readonly recent: string[] = [];
  /** Every line ./finish printed. */
  readonly finishLines: string[] = [];
  mode: Mode = 'subreaper';
  child: ChildProcess | undefined;
  /** Host pid of t6-svscan (the namespace's pid 1 when mode is namespace). */
  svscanPid = 0;
  startedAt = performance.now();
  stopRequestedAt = 0;
  stopReason = '';
  killed = false;
  #exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  #renderPending = false;
  #ticker: NodeJS.Timeout | undefined;
  #screenActive = false;

  constructor() {
    fs.cpSync(TEMPLATES, this.scandir, { recursive: true });
    this.services = SERVICES.map((name) => {
      const dir = path.join(this.scandir, name);
      return {
        name, dir, notifies: fs.existsSync(path.join(dir, 'notification-fd')),
        status: undefined, deaths: [], starts: 0, lastUpAt: 0, readyDelays: [], listener: undefined,
      };
    });
  }

  // ---- the tree ----------------------------------------------------------------------------

  /** Subscribes to every service's events: before the tree starts, so that none is missed. */
  subscribe(): void {
    for (const v of this.services) {
      v.listener = listenFifodir(path.join(v.dir, 'event'), (byte) => this.#onEvent(v, byte));
    }
  }

  /** Starts t6-svscan in `mode` and resolves once it listens on its control FIFO (-d 3). */
  async start(mode: Mode): Promise<void> {
    this.mode = mode;
    const svscan = [SVSCAN, '-d', '3', this.scandir];
    const [cmd, ...args] = mode === 'namespace' ? ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child', ...svscan] : svscan;
    // Its own session: Ctrl-C reaches the demo only, and the demo tells the tree to stop.
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], detached: true });
    this.startedAt = performance.now();
    this.child = child;
    this.#exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    this.#captureOutput(child.stdout!);
    this.#captureOutput(child.stderr!);
    const notify = child.stdio[3] as NodeJS.ReadableStream;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL'); // with --kill-child, that takes the namespace along
        reject(new Error(`t6-svscan did not start listening within ${START_TIMEOUT_MS / 1000} seconds`));
      }, START_TIMEOUT_MS);
      notify.once('data', () => { clearTimeout(timer); resolve(); });
      child.once('error', (err) => { clearTimeout(timer); reject(err); });
      child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`${cmd} exited (${exitText(code, signal)}) before t6-svscan was listening`)); });
    });
    this.svscanPid = mode === 'namespace' ? namespacePid1(child.pid!) : child.pid!;
    child.once('exit', (code, signal) => {
      if (this.stopRequestedAt === 0) void this.stop(`t6-svscan exited unexpectedly (${exitText(code, signal)})`, false);
    });
  }

  /** Tells the tree to stop and waits for it (killing it after STOP_TIMEOUT_MS); then summary, clean-up, exit. */
  async stop(reason: string, ask = true): Promise<void> {
    if (this.stopRequestedAt !== 0) {
      if (ask && performance.now() - this.stopRequestedAt > ESCALATE_AFTER_MS && !this.killed) {
        this.say(`${reason} again: killing the tree now`);
        this.#kill();
      }
      return;
    }
    this.stopRequestedAt = performance.now();
    this.stopReason = reason;
    let timer: NodeJS.Timeout | undefined;
    if (ask) {
      this.say(`${reason}: telling the tree to terminate (writing t to ${path.join(this.scandir, '.s6-svscan/control')})`);
      try {
        writeControl(path.join(this.scandir, '.s6-svscan', 'control'), 't');
        timer = setTimeout(() => {
          this.say(`t6-svscan did not exit within ${STOP_TIMEOUT_MS / 1000} seconds: killing it`);
          this.#kill();
        }, STOP_TIMEOUT_MS);
      } catch (err) {
        this.say(`unable to write to the control FIFO (${(err as Error).message}): killing the tree`);
        this.#kill();
      }
    } else {
      this.say(reason);
    }
    const exit = this.#exited === undefined ? { code: null, signal: null } : await this.#exited;
    clearTimeout(timer);
    const tookMs = performance.now() - this.stopRequestedAt;
    this.#leaveScreen();
    for (const v of this.services) {
      v.listener?.close();
      this.#read(v);
    }
    const clean = ask && !this.killed && exit.code === 0;
    this.say(`t6-svscan exited (${exitText(exit.code, exit.signal)}) ${(tookMs / 1000).toFixed(1)} s after ${ask ? 'the request' : 'that'}`);
    this.#summary();
    const leftovers = this.#sweepLeftovers();
    fs.rmSync(this.tmp, { recursive: true, force: true });
    this.say(`removed ${this.tmp}`);
    if (clean && leftovers === 0) {
      this.say('clean shutdown');
      process.exit(0);
    }
    this.say(`unclean shutdown${leftovers > 0 ? ` (${leftovers} leftover process${leftovers === 1 ? '' : 'es'} killed)` : ''}`);
    process.exit(1);
  }

  /** Kills the tree's pid 1: in a pid namespace that takes every process of the tree with it. */
  #kill(): void {
    this.killed = true;
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    let pid1 = this.svscanPid;
    if (this.mode === 'namespace') {
      // unshare ignores SIGTERM and SIGINT; its child is the namespace's pid 1.
      try { pid1 = namespacePid1(child.pid!); } catch { pid1 = 0; }
    }
    try {
      if (pid1 > 0) process.kill(pid1, 'SIGKILL');
      else child.kill('SIGKILL'); // --kill-child takes the namespace down with unshare
    } catch { /* already gone */ }
  }

  /**
   * Processes still working in the scan directory once the tree is gone (there should be
   * none: a pid namespace dies with its pid 1; a subreaper t6 stops every service before
   * exiting). Kills them, and returns how many there were.
   */
  #sweepLeftovers(): number {
    let found = 0;
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let cwd: string;
      try { cwd = fs.readlinkSync(`/proc/${entry}/cwd`); } catch { continue; }
      if (cwd !== this.tmp && !cwd.startsWith(`${this.tmp}/`)) continue;
      found++;
      let cmdline = '';
      try { cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'latin1').replaceAll('\0', ' ').trim(); } catch { /* gone */ }
      this.say(`leftover process ${entry} (${cmdline}) in ${cwd}: killing it`);
      try { process.kill(Number(entry), 'SIGKILL'); } catch { /* gone */ }
    }
    return found;
  }

  // ---- events and files --------------------------------------------------------------------

  #read(v: ServiceView): void {
    try {
      v.status = decodeStatus(fs.readFileSync(path.join(v.dir, 'supervise', 'status'))) ?? v.status;
    } catch { /* not written yet */ }
    try {
      v.deaths = decodeDeathTally(fs.readFileSync(path.join(v.dir, 'supervise', 'death_tally')));
    } catch { /* not written yet */ }
  }

  #onEvent(v: ServiceView, byte: string): void {
    // t6 writes supervise/status before it sends the event: what we read is at least this new.
    this.#read(v);
    const now = performance.now();
    if (byte === 'u') {
      v.starts++;
      v.lastUpAt = now;
    } else if (byte === 'U' && v.lastUpAt > 0) {
      v.readyDelays.push((now - v.lastUpAt) / 1000);
    }
    this.#line(`event ${v.name} ${byte}: ${describeEvent(v, byte)}`);
  }

  #captureOutput(stream: NodeJS.ReadableStream): void {
    let partial = '';
    stream.setEncoding?.('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!.slice(0, MAX_LINE);
      for (const line of lines) this.#outputLine(line);
    });
    stream.on('end', () => { if (partial !== '') this.#outputLine(partial); });
  }

  #outputLine(line: string): void {
    const text = line.slice(0, MAX_LINE);
    if (/^\S+\/finish: /.test(text)) this.finishLines.push(text);
    this.#line(`| ${text}`);
  }

  // ---- the screen ------------------------------------------------------------------------------

  /** A line from the tree (output or event), stamped with the time since the tree started. */
  #line(text: string): void {
    const stamped = `[${((performance.now() - this.startedAt) / 1000).toFixed(2).padStart(6)}s] ${text}`;
    if (!this.#screenActive) {
      process.stdout.write(`${stamped}\n`);
      return;
    }
    this.recent.push(stamped);
    if (this.recent.length > KEPT_LINES) this.recent.splice(0, this.recent.length - KEPT_LINES);
    this.#scheduleRender();
  }

  /** A message of the demo itself. */
  say(text: string): void {
    if (this.#screenActive) this.#line(`demo: ${text}`);
    else process.stdout.write(`demo: ${text}\n`);
  }

  /** Starts the live view (a terminal only): alternate screen, redrawn on events and every second. */
  enterScreen(): void {
    if (!this.tty) return;
    this.#screenActive = true;
    process.stdout.write('\x1b[?1049h\x1b[?25l');
    process.on('exit', () => this.#leaveScreen());
    process.stdout.on('resize', () => this.#scheduleRender());
    this.#ticker = setInterval(() => this.#render(), 1000);
    this.#render();
  }

  #leaveScreen(): void {
    clearInterval(this.#ticker);
    if (!this.#screenActive) return;
    this.#screenActive = false;
    process.stdout.write('\x1b[?25h\x1b[?1049l');
  }

  #scheduleRender(): void {
    if (this.#renderPending) return;
    this.#renderPending = true;
    setImmediate(() => { this.#renderPending = false; this.#render(); });
  }

  #render(): void {
    if (!this.#screenActive) return;
    const cols = process.stdout.columns || 100;
    const rows = process.stdout.rows || 30;
    const elapsed = Math.floor((performance.now() - this.startedAt) / 1000);
    const head = [
      `${bold('t6 demo')}  ${this.#modeText()}  ${elapsed} s`,
      dim(`scan dir ${this.scandir}`),
      this.stopRequestedAt === 0 ? dim('Ctrl-C stops the tree') : yellow(`stopping: ${this.stopReason}`),
      '',
      ...this.#table(true),
      '',
      bold('Output and events of the tree (latest last):'),
    ];
    const room = Math.max(rows - head.length - 1, 1);
    const tail = this.recent.slice(-room).map((l) => dimIfEvent(clip(l, cols)));
    const screen = [...head, ...tail].map((l) => `${l}\x1b[K`).join('\n');
    process.stdout.write(`\x1b[H${screen}\x1b[J`);
  }

  #modeText(): string {
    return this.mode === 'namespace'
      ? `t6-svscan is pid 1 of a private pid namespace (host pid ${this.svscanPid})`
      : `t6-svscan (pid ${this.svscanPid}) is a child subreaper`;
  }

  /** The status table: one row per service, read from its files. */
  #table(color: boolean): string[] {
    const now = tainNow();
    const widths = [10, 10, 8, 14, 8, 7, 16];
    const row = (cells: string[], paint: ((s: string) => string)[] = []): string =>
      cells.map((c, i) => (paint[i] ?? ((s: string) => s))(i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join(' ');
    const lines = [row(['SERVICE', 'STATE', 'PID', 'READY', 'SECONDS', 'DEATHS', 'LAST EXIT'], color ? Array(7).fill(bold) : [])];
    for (const v of this.services) {
      const s = v.status;
      if (s === undefined) {
        lines.push(row([v.name, 'starting']));
        continue;
      }
      const up = isUp(s);
      const state = s.finishing ? 'finishing' : up ? 'up' : 'down';
      const pid = s.pid !== 0 ? String(s.pid) : '-';
      const ready = !v.notifies || !up ? '-' : s.ready ? `yes, ${tainSecondsBetween(s.readyStamp, now)} s` : 'not yet';
      const seconds = String(tainSecondsBetween(s.stamp, now));
      const deaths = v.deaths.length >= DEFAULT_DEATH_TALLY ? `${v.deaths.length}+` : String(v.deaths.length);
      const last = v.deaths.at(-1);
      const lastExit = last === undefined ? '-' : last.signal !== 0 ? signalName(last.signal) : `exit ${last.exitCode}`;
      const stateColor = state === 'up' ? green : state === 'down' ? red : yellow;
      lines.push(row([v.name, state, pid, ready, seconds, deaths, lastExit], color ? [bold, stateColor] : []));
    }
    return lines;
  }

  #summary(): void {
    const seconds = ((this.stopRequestedAt - this.startedAt) / 1000).toFixed(1);
    this.say(`summary after ${seconds} s; ${this.#modeText()}; final status:`);
    for (const line of this.#table(false)) process.stdout.write(`  ${line}\n`);
    for (const v of this.services) {
      const parts = [`started ${plural(v.starts, 'time')}`, `died ${plural(v.deaths.length, 'time')}`];
      if (v.readyDelays.length > 0) parts.push(`ready ${v.readyDelays[0]!.toFixed(1)} s after its first start`);
      const finishes = this.finishLines.filter((l) => l.startsWith(`${v.name}/finish:`));
      if (fs.existsSync(path.join(TEMPLATES, v.name, 'finish'))) parts.push(`./finish ran ${plural(finishes.length, 'time')}`);
      process.stdout.write(`  ${v.name}: ${parts.join(', ')}\n`);
      for (const l of finishes) process.stdout.write(`    ${l}\n`);
    }
  }
}

/** What an event byte means (s6-spec/supervise-protocol.md), with the status read after it. */
function describeEvent(v: ServiceView, byte: string): string {
  const s = v.status;
  switch (byte) {
    case 's': return 'supervisor started';
    case 'u': return `up (pid ${s?.pid ?? '?'})`;
    case 'U': return `ready (it wrote a newline to its notification fd ${v.readyDelays.at(-1)?.toFixed(1) ?? '?'} s after start)`;
    case 'd': {
      const finishing = s?.finishing === true ? `, running ./finish (pid ${s.pid})` : '';
      return `down (${s === undefined ? '?' : wstatText(s.wstat)})${finishing}, ${plural(v.deaths.length, 'death')} so far`;
    }
    case 'D': return s?.wantUp === false ? 'down and ready' : 'down and ready: t6 restarts it within a second';
    case 'O': return './finish exited 125: t6 will not restart it';
    case 'x': return 'supervisor exited';
    default: return 'unknown event';
  }
}

function wstatText(wstat: number): string {
  const w = decodeWaitStatus(wstat);
  return w.signaled ? `killed by ${signalName(w.signal)}` : `exit ${w.exitCode}`;
}

function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `killed by ${signal}` : `exit code ${code}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The namespace's pid 1, as a pid of ours: the only child of `unshare --fork`. */
function namespacePid1(unsharePid: number): number {
  const children = fs.readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim().split(/\s+/);
  const pid = Number(children[0]);
  if (!(pid > 0)) throw new Error(`unshare (pid ${unsharePid}) has no child`);
  return pid;
}

function writeControl(fifo: string, bytes: string): void {
  const fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  try { fs.writeSync(fd, bytes); } finally { fs.closeSync(fd); }
}

function clip(text: string, cols: number): string {
  return text.length <= cols ? text : `${text.slice(0, Math.max(cols - 1, 0))}…`;
}

const sgr = (code: string) => (s: string): string => `\x1b[${code}m${s}\x1b[0m`;
const bold = sgr('1');
const dim = sgr('2');
const red = sgr('31');
const green = sgr('32');
const yellow = sgr('33');
const dimIfEvent = (line: string): string => (/^\[[ \d.]+s\] \| /.test(line) ? line : dim(line));

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(ROOT, 'dist', 't6-svscan.cjs'))) {
    process.stderr.write('demo: fatal: t6 is not built: run `npm run demo` (or `npm run build` first)\n');
    process.exit(100);
  }
  const seconds = process.env.DEMO_SECONDS === undefined ? undefined : Number(process.env.DEMO_SECONDS);
  if (seconds !== undefined && !(seconds > 0)) {
    process.stderr.write(`demo: fatal: DEMO_SECONDS must be a positive number of seconds, not ${JSON.stringify(process.env.DEMO_SECONDS)}\n`);
    process.exit(100);
  }
  const demo = new Demo();
  const onSignal = (sig: NodeJS.Signals): void => { void demo.stop(sig === 'SIGINT' ? 'Ctrl-C' : sig); };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  process.on('uncaughtException', (err) => {
    demo.say(`internal error: ${err.stack ?? err.message}`);
    void demo.stop('internal error', true);
  });

  demo.say(`scan directory ${demo.scandir} (services: ${SERVICES.join(', ')})`);
  demo.subscribe();
  const wantNamespace = process.getuid?.() === 0 && process.env.DEMO_NO_NAMESPACE !== '1';
  try {
    if (!wantNamespace) throw new Error('not root (or DEMO_NO_NAMESPACE=1)');
    await demo.start('namespace');
    demo.say(`t6-svscan is pid 1 of a private pid namespace (unshare pid ${demo.child!.pid}, t6-svscan host pid ${demo.svscanPid})`);
  } catch (err) {
    if (wantNamespace) demo.say(`no private pid namespace (${(err as Error).message}): running t6-svscan as a subreaper instead`);
    try {
      await demo.start('subreaper');
    } catch (err2) {
      demo.say(`fatal: unable to start t6-svscan: ${(err2 as Error).message}`);
      fs.rmSync(demo.tmp, { recursive: true, force: true });
      process.exit(111);
    }
    demo.say(`t6-svscan is a child subreaper (pid ${demo.svscanPid})`);
  }
  if (seconds !== undefined) {
    demo.say(`stopping by itself after ${plural(seconds, 'second')} (DEMO_SECONDS)`);
    setTimeout(() => void demo.stop(`time is up (DEMO_SECONDS=${seconds})`), seconds * 1000);
  } else {
    demo.say('Ctrl-C stops the tree');
  }
  demo.enterScreen();
}

await main();
