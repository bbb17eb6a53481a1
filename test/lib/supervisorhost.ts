/**
 * A fake world for the Supervisor: no process is started, kills are recorded, the clock and
 * timers move only when told. Files are real (FsSupervisorFiles in a temp directory), seen
 * through FakeFiles, which keeps a journal of status writes and events in their order,
 * counts what is held open, and injects faults: failing status writes, fd system calls that
 * throw (through FsSupervisorFiles' FdCalls), and a readiness pipe driven by the test.
 */
import fs from 'node:fs';
import { type SupervisorHost, type Supervisor } from '../../src/supervise/supervisor.ts';
import {
  type ControlReader, type FdCalls, FsSupervisorFiles, type HeldSuperviseDir, type ReadinessPipe, type ServiceLock,
  type SupervisorFiles, SYSTEM_FD_CALLS,
} from '../../src/supervise/servicefiles.ts';
import { type SupervisorStatus } from '../../src/s6/status.ts';
import { type HeldFds } from '../../src/supervise/handover.ts';
import { type DeathRecord } from '../../src/s6/deathtally.ts';
import { type OwedEvents } from '../../src/s6/fifodir.ts';
import { type Setting } from '../../src/s6/servicedir.ts';
import { tainFromUnixMs } from '../../src/s6/tai.ts';

/** One entry of FakeFiles' journal: a status write (`written` false if it failed), or events sent. */
export type JournalEntry = { kind: 'status'; status: SupervisorStatus; written: boolean } | { kind: 'event'; events: string };

/** FsSupervisorFiles with a journal, a count of open handles, and faults on demand. */
export class FakeFiles implements SupervisorFiles {
  readonly real: FsSupervisorFiles;
  journal: JournalEntry[] = [];
  /** What is held open now: a name per handle (supervise dir, readiness pipe, service lock). */
  held = new Map<object, string>();
  /** When set, writeStatus throws this. */
  failStatus: Error | undefined;
  /** When true, readiness pipes are in memory and `signalReady` plays the child's newline. */
  fakeReadiness = false;
  #watchers: (() => void)[] = [];
  #fakeFd = 1000;

  constructor(fdCalls: Partial<FdCalls> = {}) {
    this.real = new FsSupervisorFiles({ ...SYSTEM_FD_CALLS, ...fdCalls });
  }

  /** `handle`, counted in `held` until it is closed (by its owner, or by itself once ready). */
  #hold<T extends { close(): void; watch?: (onReady: () => void) => void; handOver?: () => unknown }>(handle: T, what: string): T {
    const held = this.held;
    const wrapped: T = {
      ...handle,
      close: () => { held.delete(wrapped); handle.close(); },
      ...(handle.handOver === undefined ? {} : { handOver: () => { held.delete(wrapped); return handle.handOver!(); } }),
      ...(handle.watch === undefined ? {} : { watch: (onReady: () => void) => handle.watch!(() => { held.delete(wrapped); onReady(); }) }),
    };
    held.set(wrapped, what);
    return wrapped;
  }

  setUp(dir: string, resetDeathTally: boolean, control: ControlReader): HeldSuperviseDir {
    return this.#hold(this.real.setUp(dir, resetDeathTally, control), 'supervise dir');
  }
  resumeHeld(dir: string, fds: HeldFds, control: ControlReader): HeldSuperviseDir {
    return this.#hold(this.real.resumeHeld(dir, fds, control), 'supervise dir');
  }
  readinessFrom(readFd: number): ReadinessPipe {
    return this.#hold(this.real.readinessFrom(readFd), 'readiness pipe');
  }
  writeStatus(dir: string, status: SupervisorStatus): void {
    const entry: JournalEntry = { kind: 'status', status: { ...status }, written: false };
    this.journal.push(entry);
    if (this.failStatus !== undefined) throw this.failStatus;
    this.real.writeStatus(dir, status);
    entry.written = true;
  }
  recordDeath(dir: string, record: DeathRecord, max: number): void { this.real.recordDeath(dir, record, max); }
  recordStart(): void { /* fake pids: nothing to record */ }
  setDownFile(dir: string, present: boolean): void { this.real.setDownFile(dir, present); }
  exists(file: string): boolean { return this.real.exists(file); }
  explainNotRunnable(file: string): string | undefined { return this.real.explainNotRunnable(file); }
  uintSetting(dir: string, name: string): Setting<number> { return this.real.uintSetting(dir, name); }
  signalSetting(dir: string, name: string): Setting<number> { return this.real.signalSetting(dir, name); }
  readinessPipe(): ReadinessPipe {
    if (!this.fakeReadiness) return this.#hold(this.real.readinessPipe(), 'readiness pipe');
    let open = true;
    const watchers = this.#watchers;
    const pipe: ReadinessPipe = {
      childFd: this.#fakeFd++,
      closeChildEnd: () => {},
      watch: (onReady) => { watchers.push(() => { if (open) { pipe.close(); onReady(); } }); },
      close: () => { open = false; },
      handOver: () => undefined,
    };
    return this.#hold(pipe, 'readiness pipe');
  }
  lockService(dir: string): ServiceLock | undefined {
    const lock = this.real.lockService(dir);
    return lock === undefined ? undefined : this.#hold(lock, 'service lock');
  }
  notify(dir: string, events: string, owed: OwedEvents): void {
    if (events !== '') this.journal.push({ kind: 'event', events });
    this.real.notify(dir, events, owed);
  }
  /** With fakeReadiness: the child writes its newline on every pipe being watched. */
  signalReady(): void {
    for (const fn of this.#watchers.splice(0)) fn();
  }
}

/** What a fake spawn recorded. */
export interface Spawned {
  pid: number;
  path: string;
  argv: readonly string[];
  fds: ReadonlyMap<number, unknown> | undefined;
  newPidNamespace: boolean;
  /** The environment given, if not the scanner's own. */
  env: readonly string[] | undefined;
  onExit: (w: number) => void;
  /** The child's own copies of its fds above 2 (with `keepChildFds`). */
  childFds: Map<number, number>;
}

/** A fake world: spawns are recorded, kills are recorded, time moves only when told. */
export class FakeHost implements SupervisorHost {
  /** The fake real-time clock in unix ms: moves with `advance`, and steps with `setRealtime` alone. */
  realMs = 1_700_000_000_000;
  /** The fake monotonic clock (ms): only `advance` moves it. */
  mono = 0;
  nextPid = 100;
  spawned: Spawned[] = [];
  kills: [number, number][] = [];
  reports: string[] = [];
  events: string[] = [];
  timers: { at: number; fn: () => void; live: boolean }[] = [];
  exitedCount = 0;
  failSpawn: string | undefined;
  /** Like a real child, keep a copy of each fd above 2 given to the child (the supervisor closes its own). */
  keepChildFds = true;
  files: FakeFiles;
  /** Resolvers waiting for an event (see `nextEvent`). */
  #eventWaiters: { event: string; resolve: () => void }[] = [];

  constructor(files: FakeFiles = new FakeFiles()) {
    this.files = files;
  }

  spawn(opts: { path: string; argv: readonly string[]; fds?: ReadonlyMap<number, unknown>; newPidNamespace?: boolean; env?: readonly string[] }, onExit: (w: number) => void): number {
    if (this.failSpawn !== undefined) throw Object.assign(new Error(this.failSpawn), { code: this.failSpawn });
    const pid = this.nextPid++;
    const childFds = new Map<number, number>();
    for (const [target, source] of opts.fds ?? []) {
      if (this.keepChildFds && target > 2 && typeof source === 'number') childFds.set(target, fs.openSync(`/proc/self/fd/${source}`, 'w'));
    }
    this.spawned.push({ pid, path: opts.path, argv: opts.argv, fds: opts.fds, newPidNamespace: opts.newPidNamespace === true, env: opts.env, onExit, childFds });
    return pid;
  }
  /** Processes watched without being spawned here (a resumed supervisor's): pid → exit callback. */
  watched = new Map<number, (w: number) => void>();
  /** pids `watch` reports as gone already. */
  gonePids = new Set<number>();
  watch(pid: number, onExit: (w: number) => void): boolean {
    if (this.gonePids.has(pid)) return false;
    this.watched.set(pid, onExit);
    return true;
  }
  kill(pid: number, signal: number): void { this.kills.push([pid, signal]); }
  monotonicMs(): number { return this.mono; }
  now() { return tainFromUnixMs(this.realMs); }
  /** Steps the real-time clock (an NTP step, `date -s`) without moving the monotonic one. */
  setRealtime(unixMs: number): void { this.realMs = unixMs; }
  setTimer(ms: number, fn: () => void) {
    const t = { at: this.mono + ms, fn, live: true };
    this.timers.push(t);
    return { cancel: () => { t.live = false; } };
  }
  report(level: string, message: string): void { this.reports.push(`${level}: ${message}`); }
  exited(): void { this.exitedCount++; }
  event(_sup: Supervisor, event: string): void {
    this.events.push(event);
    for (const w of [...this.#eventWaiters]) {
      if (!event.includes(w.event)) continue;
      this.#eventWaiters.splice(this.#eventWaiters.indexOf(w), 1);
      w.resolve();
    }
  }
  /** Resolves when an event group containing `event` is sent (from now on). */
  nextEvent(event: string): Promise<void> {
    return new Promise((resolve) => this.#eventWaiters.push({ event, resolve }));
  }
  /** Moves the clock forward, firing due timers in order. */
  advance(ms: number): void {
    const end = this.mono + ms;
    for (;;) {
      const due = this.liveTimers().filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      due.live = false;
      this.#moveTo(Math.max(this.mono, due.at));
      due.fn();
    }
    this.#moveTo(end);
  }
  /** Both clocks move forward together, as they do when nobody sets the time. */
  #moveTo(mono: number): void {
    this.realMs += mono - this.mono;
    this.mono = mono;
  }
  /** Timers armed and neither fired nor cancelled. */
  liveTimers(): { at: number; fn: () => void; live: boolean }[] {
    return this.timers.filter((t) => t.live);
  }
  last(): Spawned { return this.spawned[this.spawned.length - 1]!; }
  get eventText(): string { return this.events.join(''); }
}
