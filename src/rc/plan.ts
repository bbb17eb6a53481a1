/**
 * The planner of t6-rc: pure functions over the compiled database's dependency graph, no
 * I/O. The engine (engine.ts) asks it what to do and tells it what happened.
 *
 * Model (s6-rc's):
 * - A selection is a set of atomic services. For `-u` it is closed over dependencies
 *   (everything it needs comes up too); for `-d` over reverse dependencies (everything that
 *   needs it goes down first).
 * - A change is one or two phases (two with `-p`), each a direction and a closed set.
 * - Within a phase a service is *ready* once every dependency (up) / reverse dependency
 *   (down) that is in the phase's set has succeeded; all ready services run in parallel.
 *   A service already in the wanted state succeeds at once. A failure is final for the
 *   phase: whatever waits on it is never attempted; independent branches go on.
 * - Essential services are not stopped by `-d` (only by `-D`). t6 treats such a service as
 *   *kept*: it is not stopped, and so neither is anything it depends on (stopping a
 *   dependency under a running essential would break it). Kept is not a failure.
 */

/** The part of the database the planner needs. */
export interface Graph {
  /** Number of atomic services (indexes 0..atomics-1). */
  atomics: number;
  /** deps[i]: the atomic services i depends on directly. */
  deps: readonly (readonly number[])[];
  essential: readonly boolean[];
}

/** rdeps[i]: the atomic services that depend directly on i. */
export function reverseDeps(g: Graph): number[][] {
  const r: number[][] = Array.from({ length: g.atomics }, () => []);
  for (let i = 0; i < g.atomics; i++) for (const d of g.deps[i]!) r[d]!.push(i);
  return r;
}

/** The selection closed over dependencies (`up`) or reverse dependencies (down). */
export function closure(g: Graph, selection: Iterable<number>, up: boolean): Set<number> {
  const edges = up ? g.deps : reverseDeps(g);
  const out = new Set<number>();
  const stack = [...selection];
  while (stack.length > 0) {
    const i = stack.pop()!;
    if (out.has(i)) continue;
    out.add(i);
    for (const j of edges[i]!) if (!out.has(j)) stack.push(j);
  }
  return out;
}

/** One phase of a change: bring `set` up or down. */
export interface Phase {
  up: boolean;
  set: Set<number>;
}

/** Options of a change. */
export interface ChangeOptions {
  up: boolean;
  /** -p: also bring everything outside the selection to the other state. */
  prune: boolean;
}

/**
 * The phases of `t6-rc change`: with -u, [down the rest (if -p), up the closure]; with -d,
 * [down the closure, up the rest (if -p)]. `isUp` is the live state (only the -p "rest" of
 * the up direction needs it: only what is up is brought down).
 */
export function planChange(g: Graph, selection: Iterable<number>, isUp: readonly boolean[], opts: ChangeOptions): Phase[] {
  const closed = closure(g, selection, opts.up);
  const rest = new Set<number>();
  for (let i = 0; i < g.atomics; i++) if (!closed.has(i)) rest.add(i);
  if (opts.up) {
    const phases: Phase[] = [];
    if (opts.prune) {
      const down = new Set([...rest].filter((i) => isUp[i]));
      // Closed already: a reverse dependency of something outside the up-closure is outside it too.
      if (down.size > 0) phases.push({ up: false, set: down });
    }
    phases.push({ up: true, set: closed });
    return phases;
  }
  const phases: Phase[] = [{ up: false, set: closed }];
  if (opts.prune && rest.size > 0) phases.push({ up: true, set: rest });
  return phases;
}

/** What became of a service in a phase. */
export type Outcome = 'pending' | 'running' | 'done' | 'already' | 'failed' | 'kept';

/**
 * The scheduler of one phase. `next()` hands out the services that may start now (each
 * once); `finish(i, ok)` records a result. Services already in the wanted state, and
 * essentials kept up, are settled without being handed out (see `settled`).
 */
export class PhaseRun {
  readonly up: boolean;
  readonly outcome = new Map<number, Outcome>();
  /** Services settled without running, in the order it happened: [index, 'already' | 'kept']. */
  readonly settled: [number, 'already' | 'kept'][] = [];
  #waitsOn = new Map<number, number[]>();
  #g: Graph;
  #isUp: readonly boolean[];
  #stopEssentials: boolean;

  /** `stopEssentials`: -D (essentials go down too). */
  constructor(g: Graph, phase: Phase, isUp: readonly boolean[], stopEssentials: boolean) {
    this.up = phase.up;
    this.#g = g;
    this.#isUp = isUp;
    this.#stopEssentials = stopEssentials;
    const edges = phase.up ? g.deps : reverseDeps(g);
    for (const i of [...phase.set].sort((a, b) => a - b)) {
      this.outcome.set(i, 'pending');
      this.#waitsOn.set(i, edges[i]!.filter((j) => phase.set.has(j)));
    }
  }

  /** Services that may start now; each is returned once and becomes 'running'. */
  next(): number[] {
    const out: number[] = [];
    for (let progress = true; progress;) {
      progress = false;
      for (const [i, o] of this.outcome) {
        if (o !== 'pending') continue;
        const waits = this.#waitsOn.get(i)!.map((j) => this.outcome.get(j)!);
        if (waits.some((w) => w === 'failed' || w === 'kept')) {
          // Never attempted: something it waits on failed, or (down) a dependent is kept up.
          if (!this.up && waits.includes('kept') && !waits.includes('failed')) {
            this.outcome.set(i, 'kept');
            progress = true;
          }
          continue;
        }
        if (!waits.every((w) => w === 'done' || w === 'already')) continue;
        if (this.#isUp[i] === this.up) {
          this.outcome.set(i, 'already');
          this.settled.push([i, 'already']);
          progress = true;
        } else if (!this.up && this.#g.essential[i] && !this.#stopEssentials) {
          this.outcome.set(i, 'kept');
          this.settled.push([i, 'kept']);
          progress = true;
        } else {
          this.outcome.set(i, 'running');
          out.push(i);
        }
      }
    }
    return out;
  }

  /** Records the end of a running service's transition. */
  finish(i: number, ok: boolean): void {
    if (this.outcome.get(i) !== 'running') throw new Error(`service ${i} is not running`);
    this.outcome.set(i, ok ? 'done' : 'failed');
  }

  /**
   * The services of this phase that wait, directly or through others, on `i` and have not
   * been attempted: after `i` failed, what it leaves undone (index order).
   */
  blockedBy(i: number): number[] {
    const out = new Set<number>();
    const stack = [i];
    while (stack.length > 0) {
      const j = stack.pop()!;
      for (const [k, waits] of this.#waitsOn) {
        if (out.has(k) || !waits.includes(j) || this.outcome.get(k) !== 'pending') continue;
        out.add(k);
        stack.push(k);
      }
    }
    return [...out].sort((a, b) => a - b);
  }

  /** Is anything still running? */
  get busy(): boolean {
    for (const o of this.outcome.values()) if (o === 'running') return true;
    return false;
  }

  /** Did any transition fail? */
  get failed(): boolean {
    for (const o of this.outcome.values()) if (o === 'failed') return true;
    return false;
  }
}

/**
 * Runs every phase with instant success (for `-n` and for tests): the order in which
 * transitions would be launched, as [up, index] pairs, one inner list per wave.
 */
export function simulate(g: Graph, phases: Phase[], isUp: readonly boolean[], stopEssentials: boolean): { up: boolean; wave: number[] }[] {
  const state = [...isUp];
  const waves: { up: boolean; wave: number[] }[] = [];
  for (const phase of phases) {
    const run = new PhaseRun(g, phase, state, stopEssentials);
    for (let wave = run.next(); wave.length > 0; wave = run.next()) {
      waves.push({ up: phase.up, wave });
      for (const i of wave) { run.finish(i, true); state[i] = phase.up; }
    }
  }
  return waves;
}
