/**
 * One coarse clock for every liveness probe of a supervisor host (issue 14). 1,000
 * services probed each second would otherwise arm two timers per attempt (the attempt and
 * its deadline), each a wake of pid 1 at its own moment: 2,000 wakes a second. Here every
 * timer falls on a shared grid of PROBE_TICK_MS, and one host timer serves the whole grid,
 * armed only while some timer is pending: 20 wakes a second at most, none when idle.
 *
 * A timer never fires early: it fires at the first grid point at or after its due time, so
 * up to one tick late. The Prober schedules each attempt from the start of the one before,
 * so an interval that is a multiple of the tick keeps its exact average; readiness probes
 * keep the host's precise timers (a service's start is not delayed by the grid).
 */
import type { ProberDeps } from './probes.ts';

/** The grid's step, in ms: what a liveness attempt or its deadline may be late by. */
export const PROBE_TICK_MS = 50;

/** A pending timer; cancel() is idempotent. */
export interface CoarseTimer {
  cancel(): void;
}

/** What the clock needs from its host: one precise timer at a time, and the time. */
export interface ClockHost {
  setTimer(ms: number, fn: () => void): { cancel(): void };
  monotonicMs(): number;
}

/** One pending timer of the grid; it is its own handle (one object per timer: they live a second, long enough to be promoted). */
class Entry implements CoarseTimer {
  fn: (() => void) | undefined;
  readonly #onCancel: (entry: Entry) => void;

  constructor(fn: () => void, onCancel: (entry: Entry) => void) {
    this.fn = fn;
    this.#onCancel = onCancel;
  }

  cancel(): void {
    this.#onCancel(this);
  }
}

/** Timers on a shared grid, served by one host timer (see the file's header). */
export class ProbeClock {
  readonly #host: ClockHost;
  readonly #tickMs: number;
  /** Pending entries by the grid point they fall due at. */
  readonly #buckets = new Map<number, Entry[]>();
  /** The buckets' grid points, ascending. */
  readonly #points: number[] = [];
  /** Entries not yet fired or cancelled: at 0 the host timer is disarmed. */
  #live = 0;
  #armed: { cancel(): void } | undefined;
  #armedAt = Infinity;
  /** Inside #fire: timers set by its callbacks are armed once it is over. */
  #firing = false;

  constructor(host: ClockHost, tickMs = PROBE_TICK_MS) {
    this.#host = host;
    this.#tickMs = tickMs;
  }

  /** Timers pending now. */
  get pending(): number {
    return this.#live;
  }

  /** Calls `fn` once, at the first grid point at least `ms` from now, unless cancelled. */
  setTimer(ms: number, fn: () => void): CoarseTimer {
    const now = this.#host.monotonicMs();
    const point = Math.ceil((now + Math.max(0, ms)) / this.#tickMs) * this.#tickMs;
    const entry = new Entry(fn, this.#cancel);
    let bucket = this.#buckets.get(point);
    if (bucket === undefined) {
      bucket = [];
      this.#buckets.set(point, bucket);
      this.#insertPoint(point);
    }
    bucket.push(entry);
    this.#live++;
    if (!this.#firing && point < this.#armedAt) this.#arm(point, now);
    return entry;
  }

  readonly #cancel = (entry: Entry): void => {
    if (entry.fn === undefined) return;
    entry.fn = undefined;
    if (--this.#live === 0) this.#clear();
  };

  /** Nothing pending: no host timer, no buckets (idle costs nothing). */
  #clear(): void {
    this.#armed?.cancel();
    this.#armed = undefined;
    this.#armedAt = Infinity;
    this.#buckets.clear();
    this.#points.length = 0;
  }

  /** Grid points mostly arrive in order (due times grow), so the search starts from the end. */
  #insertPoint(point: number): void {
    const points = this.#points;
    let i = points.length;
    while (i > 0 && points[i - 1]! > point) i--;
    points.splice(i, 0, point);
  }

  #arm(point: number, now: number): void {
    this.#armed?.cancel();
    this.#armedAt = point;
    this.#armed = this.#host.setTimer(Math.max(0, point - now), this.#fire);
  }

  /**
   * The host timer: every bucket due by now runs (those added while running wait for the
   * next arming, so a callback that schedules at once cannot hold the loop). What a callback
   * throws is rethrown once the others have run and the timer is armed again.
   */
  readonly #fire = (): void => {
    this.#armed = undefined;
    this.#armedAt = Infinity;
    this.#firing = true;
    // The host's timers run on the event loop's cached clock, which may lag ours by a ms.
    const now = this.#host.monotonicMs() + 1;
    const due: Entry[][] = [];
    while (this.#points.length > 0 && this.#points[0]! <= now) {
      const point = this.#points.shift()!;
      due.push(this.#buckets.get(point)!);
      this.#buckets.delete(point);
    }
    let thrown: { err: unknown } | undefined;
    for (const bucket of due) {
      for (const entry of bucket) {
        const fn = entry.fn;
        if (fn === undefined) continue;
        entry.fn = undefined;
        this.#live--;
        try {
          fn();
        } catch (err) {
          thrown ??= { err };
        }
      }
    }
    this.#firing = false;
    if (this.#live === 0) this.#clear();
    else this.#arm(this.#points[0]!, this.#host.monotonicMs());
    if (thrown !== undefined) throw thrown.err;
  };
}

/** Per host object: its deps with the shared clock added, so every Prober of a supervisor host shares one grid. */
const withClock = new WeakMap<ProberDeps, ProberDeps>();

/** `deps` (a supervisor host's) with `coarseTimer` on the host's one ProbeClock, made on first use. */
export function withProbeClock(deps: ProberDeps): ProberDeps {
  let wrapped = withClock.get(deps);
  if (wrapped === undefined) {
    const clock = new ProbeClock(deps);
    wrapped = {
      spawn: (opts, onExit) => deps.spawn(opts, onExit),
      kill: (pid, signal) => deps.kill(pid, signal),
      setTimer: (ms, fn) => deps.setTimer(ms, fn),
      monotonicMs: () => deps.monotonicMs(),
      coarseTimer: (ms, fn) => clock.setTimer(ms, fn),
      ...(deps.transport === undefined ? {} : { transport: deps.transport }),
    };
    withClock.set(deps, wrapped);
  }
  return wrapped;
}
