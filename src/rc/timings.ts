/**
 * Boot analysis, recording side: what a change did and when. A TimingRecorder is a change's
 * TransitionObserver (engine.ts); at the change's end it holds one TimingRecord, which
 * timings-store.ts writes into LIVE/timings/.
 *
 * Every instant is kept on both clocks: CLOCK_MONOTONIC (the kernel's printk clock, the
 * same in every process, never stepped) and the real-time clock (what a person reads; it
 * may be stepped, by NTP at boot for instance). A longrun's start and readiness come from
 * its supervise/status, read as the transition ends: those stamps are TAI64N real time,
 * brought to the monotonic clock with the real − monotonic offset read at that moment.
 * A oneshot's start is the runner's `{"pid"}` reply; its success is its being up.
 */
import { type LongrunService, type OneshotService } from './db.ts';
import { type Live, liveServicedir } from './live.ts';
import type { TransitionObserver } from './engine.ts';
import { type TransitionFailure, describeFailure } from './failure.ts';
import { readStatusFile } from '../s6/client.ts';
import type { SupervisorStatus } from '../s6/status.ts';
import { tainToUnixMs } from '../s6/tai.ts';
import { monotonicMs, realtimeNow } from '../sys/clock.ts';

/** The version of the record format. */
export const TIMINGS_VERSION = 1;

/** One instant: `mono` CLOCK_MONOTONIC ms, `real` unix time ms (both to the µs). */
export interface Instant {
  mono: number;
  real: number;
}

/** One transition of one service. Absent instants did not happen (or are not known). */
export interface ServiceTiming {
  name: string;
  type: 'oneshot' | 'longrun';
  /** Started (up) or stopped (down). */
  direction: 'up' | 'down';
  /** Direct dependencies, by name, as the database had them. */
  deps: string[];
  /** A longrun that says when it is ready (notification-fd). */
  readiness: boolean;
  /** t6-rc launched the transition (its dependencies were done). */
  requested: Instant;
  /** The process began: the longrun's `run` (status stamp), the oneshot's script (runner's pid reply). */
  spawned?: Instant;
  /** Up: the longrun's `run` started; the oneshot succeeded. */
  up?: Instant;
  /** Ready: the longrun's readiness (or its start, without readiness); the oneshot's success. */
  ready?: Instant;
  /** Down: the longrun down and ready (status); the oneshot's down script succeeded. */
  down?: Instant;
  /** t6-rc learnt the transition was over. */
  ended: Instant;
  /** Why the transition failed (absent: it succeeded). */
  failure?: string;
  pid?: number;
}

/** A step of the boot before the service manager (stage 1), CLOCK_MONOTONIC ms. */
export interface Stage {
  name: string;
  start: number;
  end: number;
}

/** What pid 1 knows of the boot before its change: stage 1's steps; whether the kernel's log is the machine's (not a container's host). */
export interface BootTimings {
  stages: readonly Stage[];
  kernel: boolean;
}

/** One change, as LIVE/timings/ keeps it. */
export interface TimingRecord {
  version: typeof TIMINGS_VERSION;
  /** pid 1's boot change, or a later `t6-rc change`. */
  kind: 'boot' | 'change';
  /** The change's number in this live directory (the boot's is 0). */
  seq: number;
  /** What was asked: the names and the direction, prune. */
  request: { names: string[]; up: boolean; prune: boolean };
  /** Each name of the request → the atomic services it stands for. */
  targets: Record<string, string[]>;
  started: Instant;
  ended: Instant;
  exitCode: number;
  /** The kernel's `Run /sbin/init` (printk time, CLOCK_MONOTONIC ms), when it could be read. */
  kernelInit?: number;
  /**
   * The program that line names: the init, or an initramfs's `/init`, whose time (modules,
   * finding the root, switch_root) then comes before stage 1. Absent in older records.
   */
  kernelInitPath?: string;
  /** Stage 1's steps (boot only). */
  stages: Stage[];
  /** Transitions, in the order they were launched. */
  services: ServiceTiming[];
}

/** The real-time clock now, unix ms. */
function realMs(): number {
  const { sec, nsec } = realtimeNow();
  return Number(sec) * 1000 + nsec / 1e6;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** The instant of monotonic time `mono`, which is now or just past. */
function instantAt(mono: number): Instant {
  const real = realMs() - (monotonicMs() - mono);
  return { mono: round3(mono), real: round3(real) };
}

/** A real-time stamp (unix ms) on both clocks, with the offset read now. */
function instantOfReal(real: number): Instant {
  const offset = realMs() - monotonicMs();
  return { mono: round3(real - offset), real: round3(real) };
}

/** What a recorder is told of its change. */
export interface RecordRequest {
  kind: 'boot' | 'change';
  names: readonly string[];
  up: boolean;
  prune: boolean;
}

/** Fills a TimingRecord from a change's transitions (its `observer`). */
export class TimingRecorder {
  readonly observer: TransitionObserver;
  readonly #live: Live;
  readonly #request: RecordRequest;
  readonly #started = instantAt(monotonicMs());
  readonly #byIndex = new Map<number, ServiceTiming>();
  readonly #order: ServiceTiming[] = [];
  /** Launched and not over yet (a change that timed out leaves some). */
  readonly #open = new Set<ServiceTiming>();

  constructor(live: Live, request: RecordRequest) {
    this.#live = live;
    this.#request = request;
    this.observer = {
      requested: (i, up, at) => this.#requested(i, up, at),
      spawned: (i, _up, pid, at) => {
        const t = this.#byIndex.get(i);
        if (t === undefined) return;
        t.spawned = instantAt(at);
        t.pid = pid;
      },
      ended: (i, up, failure, at) => this.#ended(i, up, failure, at),
    };
  }

  #requested(i: number, up: boolean, at: number): void {
    const s = this.#live.db.services[i] as LongrunService | OneshotService;
    const t: ServiceTiming = {
      name: s.name, type: s.type, direction: up ? 'up' : 'down',
      deps: s.deps.map((d) => this.#live.db.services[d]!.name),
      readiness: s.type === 'longrun' && s.readiness,
      requested: instantAt(at), ended: instantAt(at),
    };
    this.#byIndex.set(i, t);
    this.#order.push(t);
    this.#open.add(t);
  }

  #ended(i: number, up: boolean, failure: TransitionFailure | undefined, at: number): void {
    const t = this.#byIndex.get(i);
    if (t === undefined) return;
    this.#open.delete(t);
    t.ended = instantAt(at);
    if (failure !== undefined) {
      t.failure = describeFailure(failure);
      return;
    }
    if (t.type === 'oneshot') {
      if (up) t.up = t.ready = t.ended;
      else t.down = t.ended;
      return;
    }
    this.#longrunStamps(t, up);
  }

  /** A longrun's start, readiness or end from its supervise/status, as the transition ends. */
  #longrunStamps(t: ServiceTiming, up: boolean): void {
    let st: SupervisorStatus;
    try {
      st = readStatusFile(liveServicedir(this.#live.dir, t.name));
    } catch {
      return; // unreadable: only t6-rc's own instants are known
    }
    if (up) {
      t.spawned = t.up = instantOfReal(tainToUnixMs(st.stamp));
      if (st.pid !== 0) t.pid = st.pid;
      t.ready = t.readiness && st.ready ? instantOfReal(tainToUnixMs(st.readyStamp)) : t.up;
    } else {
      t.down = st.pid === 0 && st.ready ? instantOfReal(tainToUnixMs(st.readyStamp)) : t.ended;
    }
  }

  /**
   * The boot's steps, and the change's own set-up after them (its locks and the database
   * read), which is boot time too.
   */
  #stages(before: readonly Stage[]): Stage[] {
    const out = before.map((s) => ({ name: s.name, start: round3(s.start), end: round3(s.end) }));
    const last = out.at(-1);
    if (last !== undefined && this.#started.mono > last.end) out.push({ name: 'change set-up', start: last.end, end: this.#started.mono });
    return out;
  }

  /** The record of the change, ended now with `exitCode`. */
  record(exitCode: number, seq: number, boot?: BootTimings & { kernelInit?: number | undefined; kernelInitPath?: string | undefined }): TimingRecord {
    const { db } = this.#live;
    const targets: Record<string, string[]> = {};
    for (const name of this.#request.names) {
      const s = db.byName.get(name);
      if (s === undefined) continue;
      targets[name] = (s.type === 'bundle' ? s.contents : [s.index]).map((i) => db.services[i]!.name);
    }
    const ended = instantAt(monotonicMs());
    for (const t of this.#open) {
      t.ended = ended;
      t.failure = 'still under way when the change ended';
    }
    return {
      version: TIMINGS_VERSION, kind: this.#request.kind, seq,
      request: { names: [...this.#request.names], up: this.#request.up, prune: this.#request.prune },
      targets, started: this.#started, ended, exitCode,
      ...(boot?.kernelInit === undefined ? {} : { kernelInit: round3(boot.kernelInit) }),
      ...(boot?.kernelInitPath === undefined ? {} : { kernelInitPath: boot.kernelInitPath }),
      stages: this.#stages(boot?.stages ?? []),
      services: this.#order,
    };
  }
}
