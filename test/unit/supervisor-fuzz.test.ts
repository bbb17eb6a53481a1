/**
 * The Supervisor fed random inputs on a fake host: control bytes, random bytes, deaths of
 * run and finish with random wait statuses, timer expiries, readiness, the scanner's
 * term/hup/quit, failing spawns and status writes, settings files changing under it. After
 * every step the invariants are checked: nothing throws (nor reaches the "internal error"
 * net); at most one of run and finish lives; every signal goes to a live process, never to
 * pid 0 or its group; each event is sent right after a status write that says what the
 * event says; the status file decodes and matches the state; once the supervisor has ended,
 * no timer is armed and nothing it opened is left open.
 *
 * Seeded (test/lib/random.ts): the seed is printed; T6_TEST_SEED=<seed> replays a run,
 * T6_FUZZ_RUNS=<n> changes how many supervisors are fuzzed (default below, a few seconds at most).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Supervisor } from '../../src/supervise/supervisor.ts';
import { SUPERVISE_COMMANDS } from '../../src/s6/control.ts';
import { decodeStatus, encodeStatus, type SupervisorStatus } from '../../src/s6/status.ts';
import { tmpdir } from '../lib/harness.ts';
import { SEED_VARIABLE, seededRandom } from '../lib/random.ts';
import { FakeFiles, FakeHost, type JournalEntry } from '../lib/supervisorhost.ts';

const RUNS = Number(process.env.T6_FUZZ_RUNS ?? 150);
const STEPS = 150;

/** A fake host that knows which children live and checks every spawn and kill against that. */
class FuzzHost extends FakeHost {
  live = new Map<number, { kind: 'run' | 'finish'; onExit: (wstat: number) => void }>();
  violations: string[] = [];
  override spawn(opts: Parameters<FakeHost['spawn']>[0], onExit: (w: number) => void): number {
    const pid = super.spawn(opts, onExit);
    if (this.live.size > 0) this.violations.push(`spawned ${opts.argv[0]} while ${[...this.live.values()].map((l) => l.kind).join(', ')} lives`);
    this.live.set(pid, { kind: opts.argv[0] === './finish' ? 'finish' : 'run', onExit });
    return pid;
  }
  override kill(pid: number, signal: number): void {
    super.kill(pid, signal);
    if (pid === 0 || !this.live.has(Math.abs(pid))) this.violations.push(`signal ${signal} sent to ${pid}, not a live child`);
  }
  /** Delivers the death of the live child of this kind, if any. */
  die(kind: 'run' | 'finish', wstat: number): void {
    for (const [pid, child] of this.live) {
      if (child.kind !== kind) continue;
      this.live.delete(pid);
      child.onExit(wstat);
      return;
    }
  }
}

/** What the status written right before `events` must say. */
function statusFits(events: string, st: SupervisorStatus): boolean {
  switch (events) {
    case 's': return st.pid === 0 && !st.finishing;
    case 'u': return st.pid > 0 && !st.finishing && !st.ready;
    case 'U': return st.pid > 0 && !st.finishing && st.ready;
    case 'd': return st.pid > 0 && st.finishing;
    case 'D': case 'dD': return st.pid === 0 && !st.finishing && st.ready;
    case 'OD': return st.pid === 0 && !st.finishing && st.ready && !st.wantUp;
    default: return false;
  }
}

function describe(st: SupervisorStatus): string {
  return `pid ${st.pid}${st.finishing ? ' finishing' : ''}${st.ready ? ' ready' : ''}${st.wantUp ? ' want-up' : ''}${st.paused ? ' paused' : ''}`;
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** A random wait status: an exit code (sometimes 125, finish's "permanent failure"), or a signal. */
function randomWstat(rand: () => number): number {
  const r = rand();
  if (r < 0.15) return 125 << 8;
  if (r < 0.6) return Math.floor(rand() * 256) << 8;
  return 1 + Math.floor(rand() * 31);
}

function writeSettings(dir: string, rand: () => number): void {
  const maybe = (p: number, name: string, text: string): void => {
    if (rand() < p) fs.writeFileSync(path.join(dir, name), text);
    else fs.rmSync(path.join(dir, name), { force: true });
  };
  maybe(0.5, 'finish', '#!/bin/sh\n');
  maybe(0.5, 'timeout-kill', `${Math.floor(rand() * 3000)}\n`);
  maybe(0.5, 'timeout-finish', `${Math.floor(rand() * 6000)}\n`);
  maybe(0.3, 'notification-fd', `${3 + Math.floor(rand() * 3)}\n`);
  maybe(0.2, 'lock-fd', `${3 + Math.floor(rand() * 3)}\n`);
  maybe(0.2, 'down-signal', rand() < 0.5 ? 'SIGUSR1\n' : 'junk\n');
  maybe(0.2, 'max-death-tally', `${Math.floor(rand() * 5)}\n`);
  maybe(0.3, 'flag-timeout-killpg', '');
  maybe(0.1, 'flag-newpidns', '');
}

/** One supervisor, `STEPS` random inputs; returns the first broken invariant, or undefined. */
function fuzzOne(rand: () => number, base: string, index: number): string | undefined {
  const dir = path.join(base, `svc${index}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'run'), '#!/bin/sh\n', { mode: 0o755 });
  if (rand() < 0.3) fs.writeFileSync(path.join(dir, 'down'), '');
  writeSettings(dir, rand);
  const files = new FakeFiles();
  files.fakeReadiness = true;
  const host = new FuzzHost(files);
  host.keepChildFds = false;
  const fdsBefore = openFds();
  const sup = Supervisor.open('svc', dir, host);
  let checked = 0;
  let lastWritten: SupervisorStatus | undefined;
  let lastFailed = false;
  const check = (): string | undefined => {
    if (host.violations.length > 0) return host.violations.join('; ');
    const internal = host.reports.find((r) => r.includes('internal error'));
    if (internal !== undefined) return internal;
    for (; checked < files.journal.length; checked++) {
      const entry: JournalEntry = files.journal[checked]!;
      if (entry.kind === 'status') {
        lastFailed = !entry.written;
        if (entry.written) lastWritten = entry.status;
        continue;
      }
      if (entry.events === 'x') continue; // s6 sends x without a status write
      const previous = files.journal[checked - 1];
      if (previous?.kind !== 'status') return `event ${entry.events} not right after a status write`;
      if (!statusFits(entry.events, previous.status)) return `event ${entry.events} after status ${describe(previous.status)}`;
    }
    const runs = [...host.live.values()].filter((l) => l.kind === 'run').length;
    const finishes = host.live.size - runs;
    if (host.live.size > 1) return `${host.live.size} children live`;
    const state = sup.state;
    if (state !== 'gone') {
      if ((state === 'up' || state === 'lastup') !== (runs === 1)) return `state ${state} with ${runs} run alive`;
      if ((state === 'finish' || state === 'lastfinish') !== (finishes === 1)) return `state ${state} with ${finishes} finish alive`;
    }
    const bytes = fs.readFileSync(path.join(dir, 'supervise/status'));
    const st = decodeStatus(bytes);
    if (st === undefined) return 'supervise/status does not decode';
    if (lastWritten === undefined || !bytes.equals(encodeStatus(lastWritten))) return 'supervise/status is not the last status written';
    // Unless the last write failed (and waits for its retry), the file says what the state is.
    if (!lastFailed && state !== 'gone') {
      const livePid = [...host.live.keys()][0] ?? 0;
      if (st.pid !== livePid) return `status pid ${st.pid}, live child ${livePid}`;
      if (st.finishing !== (finishes === 1)) return `status finishing ${st.finishing} in ${state}`;
    }
    if (state === 'gone') {
      if (host.liveTimers().length > 0) return `${host.liveTimers().length} timer(s) armed after the end`;
      if (files.held.size > 0) return `still open after the end: ${[...files.held.values()].join(', ')}`;
      if (openFds() !== fdsBefore) return `${openFds() - fdsBefore} fd(s) left open after the end`;
      if (host.exitedCount !== 1) return `exited told ${host.exitedCount} times`;
      if (host.events.at(-1) !== 'x') return `last event ${host.events.at(-1)}, not x`;
    }
    return undefined;
  };
  const steps: string[] = [];
  let afterEnd = 0;
  try {
    for (let step = 0; step <= STEPS; step++) {
      // A few inputs after the end (they must change nothing), then the next supervisor.
      if (sup.state === 'gone' && ++afterEnd > 3) break;
      const input = step === STEPS ? 'quit' : pickInput(rand);
      steps.push(input);
      try {
        apply(input, rand, sup, host, files, dir);
      } catch (err) {
        return `step ${step} (${input}) threw: ${err instanceof Error ? err.stack : String(err)}`;
      }
      const broken = check();
      if (broken !== undefined) return `step ${step} (${input}): ${broken}\n  inputs: ${steps.join(' ')}`;
    }
    return undefined;
  } finally {
    sup.request('quit'); // after a failure too: its control FIFO would keep the test process alive
  }
}

const INPUT_WEIGHTS: [string, number][] = [
  ['byte', 30], ['random', 4], ['runDeath', 14], ['finishDeath', 10], ['timer', 16], ['advance', 5],
  ['ready', 6], ['term', 1], ['hup', 1], ['quit', 1], ['failSpawn', 3], ['failStatus', 2], ['settings', 3],
];
const TOTAL_WEIGHT = INPUT_WEIGHTS.reduce((sum, [, w]) => sum + w, 0);

function pickInput(rand: () => number): string {
  let r = rand() * TOTAL_WEIGHT;
  for (const [name, w] of INPUT_WEIGHTS) {
    r -= w;
    if (r < 0) return name;
  }
  return 'byte';
}

function apply(input: string, rand: () => number, sup: Supervisor, host: FuzzHost, files: FakeFiles, dir: string): void {
  switch (input) {
    case 'byte': {
      let byte = SUPERVISE_COMMANDS[Math.floor(rand() * SUPERVISE_COMMANDS.length)]!;
      if (byte === 'x' && rand() < 0.8) byte = 'u'; // x ends the supervisor: not too soon
      sup.command(byte);
      return;
    }
    case 'random': sup.command(String.fromCharCode(...Array.from({ length: 1 + Math.floor(rand() * 5) }, () => Math.floor(rand() * 256)))); return;
    case 'runDeath': host.die('run', randomWstat(rand)); return;
    case 'finishDeath': host.die('finish', randomWstat(rand)); return;
    case 'timer': {
      const next = host.liveTimers().sort((a, b) => a.at - b.at)[0];
      if (next !== undefined) host.advance(next.at - host.mono);
      return;
    }
    case 'advance': host.advance(Math.floor(rand() * 3000)); return;
    case 'ready': files.signalReady(); return;
    case 'term': case 'hup': case 'quit': sup.request(input); return;
    case 'failSpawn': host.failSpawn = host.failSpawn === undefined ? 'EAGAIN' : undefined; return;
    case 'failStatus': files.failStatus = files.failStatus === undefined ? Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }) : undefined; return;
    case 'settings': writeSettings(dir, rand); return;
  }
}

test('random inputs keep the Supervisor\'s invariants', (t) => {
  const random = seededRandom(t);
  t.diagnostic(`${RUNS} supervisors × ${STEPS} inputs`);
  const base = tmpdir('t6-fuzz-');
  for (let i = 0; i < RUNS; i++) {
    const broken = fuzzOne(random.next, base, i);
    assert.equal(broken, undefined, `supervisor ${i}, seed ${random.seed} (replay with ${SEED_VARIABLE}=${random.seed}): ${broken}`);
  }
});
