/**
 * The engine of t6-rc (s6-spec/s6-rc.md §6.3–§7): carries out the planner's phases
 * against the live state.
 *
 * - Longruns: up = send `u` and wait for `U` (readiness) or `u`, then remove `down`; on
 *   failure send `d`. Down = send `d`, wait for `D`, then create `down`. Waits subscribe
 *   before sending (s6/client.ts waitFor), so no event is missed. With a settle time (the
 *   longrun's up-settle, or --settle for the change), up is settle.ts's rule instead: a
 *   death before it counts as up fails the start at once, naming what it leaves down.
 * - Oneshots: the argv goes to t6-svscan's built-in runner (`SCANDIR/.s6-svscan/run`;
 *   under another scanner, the s6rc-oneshot-runner service's, foreign.ts),
 *   with t6-svscan's environment (env: null) plus RC_NAME=name, cwd the live directory;
 *   exit 0 is success. The oneshot is t6-svscan's child, not ours: it survives t6-rc.
 * - Per-transition timeout: the service's timeout-up/down, cut to what is left of -t.
 * - The state file is rewritten atomically after every successful transition, so it is
 *   true whenever t6-rc stops, however it stops.
 * - abort() (SIGINT/SIGTERM): no new transition is launched; those under way — oneshots
 *   and longruns alike, each bounded by its own timeout — are waited for and recorded.
 *   (s6-rc kills its pending s6-svc children instead; t6 lets them finish so that the
 *   state file still says exactly what runs.)
 * - Global timeout (-t): "timed out", exit 2; what is under way is left alone.
 */
import fs from 'node:fs';
import { type LongrunService, type OneshotService, atomicsOf } from './db.ts';
import { type Live, liveServicedir, writeState } from './live.ts';
import { type Graph, type Phase, PhaseRun, planChange } from './plan.ts';
import { type ControlResult, RunnerSession, runOneshot, runnerSocket } from './oneshot.ts';
import { ClientError, svcSend, waitFor } from '../s6/client.ts';
import { type TransitionFailure, describeFailure, describeStartFailure, failureOfWaitStatus } from './failure.ts';
import { startSettled } from './settle.ts';
import { type ReadView, UnknownServiceError, selectIn } from './read-view.ts';
import { strerror } from '../sys/errors.ts';
import { foreignRunnerSocket } from './foreign.ts';
import type { LocalRunner } from '../supervise/scanner-host.ts';
import { EXIT } from '../s6/exit.ts';
import { monotonicMs } from '../sys/clock.ts';

/** Where oneshots run: t6-svscan's runner, or, under another scanner, s6rc-oneshot-runner (foreign.ts). */
function oneshotSocket(live: Live): string {
  return foreignRunnerSocket(live.dir) ?? runnerSocket(live.scandir);
}

/** The planner's view of a database. */
export function graphOf(live: Live): Graph {
  const atomics = live.db.services.slice(0, live.db.atomics) as (LongrunService | OneshotService)[];
  return { atomics: live.db.atomics, deps: atomics.map((s) => s.deps), essential: atomics.map((s) => s.essential) };
}

/** The readers' view (read-view.ts) of a loaded live state. */
export function viewOfLive(live: Live): ReadView {
  const services = live.db.services;
  let deps: number[][] | undefined;
  return {
    dir: live.dir,
    longruns: live.db.longruns,
    atomics: live.db.atomics,
    up: (i) => live.state[i]!,
    indexOf: (name) => live.db.byName.get(name)?.index,
    nameOf: (i) => services[i]!.name,
    namesOf: (indexes) => indexes.map((i) => services[i]!.name),
    atomicsOf: (i) => atomicsOf(services[i]!),
    dependencies: () => (deps ??= graphOf(live).deps as number[][]),
  };
}

/** The atomic services that `names` stand for, plus (with `addUp`) every service that is up. */
export function select(live: Live, names: readonly string[], addUp: boolean): Set<number> {
  return selectIn(viewOfLive(live), names, addUp);
}

/** Thrown by select (read-view.ts holds it: the readers' bundle throws it too). */
export { UnknownServiceError };

/** How t6-rc talks: already filtered by verbosity. */
export interface Say {
  info(text: string): void;
  warn(text: string): void;
  fatal(text: string): void;
}

/**
 * Watches a change's transitions as they happen (boot analysis, an event stream, a progress
 * display). `i` is the service's index, `up` the direction, `at` CLOCK_MONOTONIC in ms
 * (sys/clock.ts monotonicMs). Calls must not throw; one that does is reported and ignored.
 */
export interface TransitionObserver {
  /** The change is planned: at most this many transitions (before any is requested); `nameOf` names a service by index. */
  planned?(transitions: number, nameOf: (i: number) => string): void;
  /** The transition is launched (its dependencies are done). */
  requested(i: number, up: boolean, at: number): void;
  /** A oneshot's script runs: the runner's `{"pid"}` reply. */
  spawned?(i: number, up: boolean, pid: number, at: number): void;
  /** The transition is over: `failure` undefined on success. */
  ended(i: number, up: boolean, failure: TransitionFailure | undefined, at: number): void;
}

/** Options of a change. */
export interface ChangeOptions {
  up: boolean;
  prune: boolean;
  /** -D: essentials go down too. */
  stopEssentials: boolean;
  dryRun: boolean;
  /** Global timeout in ms; 0 = none. */
  timeoutMs: number;
  /**
   * --settle: the settle time (ms) of every longrun this change starts that has no
   * `up-settle` of its own (settle.ts); undefined: s6-rc's rule for those.
   */
  settleMs?: number;
  verbosity: number;
  /** pid 1's own t6-rc: the scanner's runner in this process, reached without a socket. */
  local?: LocalRunner['request'];
  /** Told of every transition. */
  observer?: TransitionObserver;
}

/** A running change; `abort()` stops launching new transitions. */
export class Change {
  readonly done: Promise<number>;
  /** Transitions the plan holds, at most (services already where they should be are skipped). */
  readonly transitions: number;
  #aborted = false;
  #live: Live;
  #opts: ChangeOptions;
  #say: Say;
  #deadline: number;
  #cwd: string;
  /** Every transition goes through one session with t6-svscan's runner, while it serves one. */
  #session: RunnerSession;
  /** Aborted when the change ends: settle watches still under way (a global timeout) let go. */
  #ending = new AbortController();

  constructor(live: Live, selection: Set<number>, opts: ChangeOptions, say: Say) {
    this.#live = live;
    this.#opts = opts;
    this.#say = say;
    this.#deadline = opts.timeoutMs > 0 ? performance.now() + opts.timeoutMs : Infinity;
    try {
      this.#cwd = fs.realpathSync(live.dir);
    } catch {
      this.#cwd = '/';
    }
    this.#session = new RunnerSession(oneshotSocket(live), opts.local);
    const phases = planChange(graphOf(live), selection, live.state, { up: opts.up, prune: opts.prune });
    this.transitions = phases.reduce((n, p) => n + p.set.size, 0);
    this.#observe((o) => o.planned?.(this.transitions, (i) => this.#name(i)));
    this.done = this.#run(phases);
  }

  /** SIGINT/SIGTERM: launch nothing more; what is under way finishes and is recorded. */
  abort(): void {
    this.#aborted = true;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  async #run(phases: Phase[]): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      if (this.#deadline !== Infinity) timer = setTimeout(() => resolve('timeout'), this.#deadline - performance.now());
    });
    try {
      let failed = false;
      for (const phase of phases) {
        if (this.#opts.verbosity >= 3) this.#say.info(`bringing selected services ${phase.up ? 'up' : 'down'}`);
        const r = await Promise.race([this.#runPhase(phase), timedOut]);
        // A transition whose timeout -t cut short ends at the deadline too (up to the 1 ms
        // #timeout floors away), and may be told before the -t timer fires: that is -t's.
        if (r === 'timeout' || (r && performance.now() >= this.#deadline - 1)) {
          this.#say.fatal('timed out');
          return EXIT.rcTimedOut;
        }
        if (r) failed = true;
        if (this.#aborted) return EXIT.failed;
      }
      return failed ? EXIT.failed : EXIT.ok;
    } finally {
      clearTimeout(timer);
      this.#ending.abort();
      this.#session.close();
    }
  }

  /** Runs one phase to its end; resolves true if some transition failed. */
  #runPhase(phase: Phase): Promise<boolean> {
    const { state } = this.#live;
    const run = new PhaseRun(graphOf(this.#live), phase, state, this.#opts.stopEssentials);
    let settledSeen = 0;
    let inflight = 0;
    // Transitions that ended since the last flush. They are recorded together, once per
    // turn of the event loop (setImmediate): one state file write and one planning pass
    // for all that ended at once, instead of one each — with a thousand services the
    // planner's pass and the write were a tenth of t6-rc's time. The state file is still
    // written before the next turn, and before any timer (such as -t) can run.
    let ended: [number, TransitionFailure | undefined][] = [];
    let flushing: NodeJS.Immediate | undefined;
    return new Promise((resolve) => {
      const flush = (): void => {
        flushing = undefined;
        const batch = ended;
        ended = [];
        let changed = false;
        for (const [i, failure] of batch) {
          run.finish(i, failure === undefined);
          if (failure === undefined) {
            state[i] = phase.up;
            changed = true;
          }
        }
        if (changed && !this.#opts.dryRun) {
          try {
            writeState(this.#live.dir, state);
          } catch (err) {
            this.#say.warn(`unable to write ${this.#live.dir}/state: ${strerror(err)}`);
          }
        }
        for (const [i, failure] of batch) {
          if (failure === undefined) this.#say.info(`${this.#dry()}service ${this.#name(i)} successfully ${phase.up ? 'started' : 'stopped'}`);
          else this.#say.warn(`${this.#opts.dryRun ? '(dry run) ' : ''}unable to ${phase.up ? 'start' : 'stop'} service ${this.#name(i)}: ${phase.up ? describeStartFailure(failure, this.#leftDown(run, i)) : describeFailure(failure)}`);
        }
        pump();
      };
      const pump = (): void => {
        const ready = this.#aborted ? [] : run.next();
        for (; settledSeen < run.settled.length; settledSeen++) {
          const [i, how] = run.settled[settledSeen]!;
          const name = this.#name(i);
          if (how === 'kept') this.#say.warn(`service ${name} is marked as essential, not stopping it`);
          else if (this.#opts.verbosity >= 3) this.#say.info(`service ${name}: already ${phase.up ? 'up' : 'down'}`);
        }
        for (const i of ready) {
          inflight++;
          this.#say.info(`${this.#dry()}service ${this.#name(i)}: ${phase.up ? 'starting' : 'stopping'}`);
          this.#observe((o) => o.requested(i, phase.up, monotonicMs()));
          void this.#transition(i, phase.up).then((failure) => {
            inflight--;
            this.#observe((o) => o.ended(i, phase.up, failure, monotonicMs()));
            ended.push([i, failure]);
            flushing ??= setImmediate(flush);
          });
        }
        if (inflight === 0 && ended.length === 0) resolve(run.failed);
      };
      pump();
    });
  }

  /** Tells the observer, if any; what it throws is a warning, never the change's failure. */
  #observe(tell: (o: TransitionObserver) => void): void {
    const o = this.#opts.observer;
    if (o === undefined) return;
    try {
      tell(o);
    } catch (err) {
      this.#say.warn(`transition observer: ${strerror(err)}`);
    }
  }

  /** After `i` failed to start: the services of this change it leaves down, by name. */
  #leftDown(run: PhaseRun, i: number): string[] {
    return run.blockedBy(i).filter((j) => this.#live.state[j] !== true).map((j) => this.#name(j));
  }

  #dry(): string {
    return this.#opts.dryRun ? 'dry run: ' : '';
  }

  #name(i: number): string {
    return this.#live.db.services[i]!.name;
  }

  /** The per-transition timeout: the service's own, cut to what is left of -t (at least 1 ms); 0 = none. */
  #timeout(own: number): number {
    if (this.#deadline === Infinity) return own;
    const left = Math.max(1, Math.floor(this.#deadline - performance.now()));
    return own === 0 ? left : Math.min(own, left);
  }

  /** Performs one transition; resolves undefined on success, else why it failed. */
  async #transition(i: number, up: boolean): Promise<TransitionFailure | undefined> {
    if (this.#opts.dryRun) return undefined;
    const s = this.#live.db.services[i] as LongrunService | OneshotService;
    const action = up ? 'start' : 'stop';
    // The event stream's record of it (t6-svscan's, through the runner session).
    this.#session.publish({ kind: 'rc', service: s.name, action, phase: 'requested' });
    let failure: TransitionFailure | undefined;
    try {
      failure = s.type === 'oneshot' ? await this.#oneshot(s, up) : await this.#longrun(s, up);
    } catch (err) {
      failure = { kind: 'system', detail: strerror(err) };
    }
    this.#session.publish(failure === undefined ? { kind: 'rc', service: s.name, action, phase: 'done' } : { kind: 'rc', service: s.name, action, phase: 'failed', reason: describeFailure(failure) });
    return failure;
  }

  async #oneshot(s: OneshotService, up: boolean): Promise<TransitionFailure | undefined> {
    const argv = up ? s.up : s.down;
    if (argv.length === 0) return undefined;
    const req = {
      argv, cwd: this.#cwd, env: null, setenv: [`RC_NAME=${s.name}`],
      timeoutMs: this.#timeout(up ? s.timeoutUp : s.timeoutDown),
    };
    const onPid = (pid: number): void => this.#observe((o) => o.spawned?.(s.index, up, pid, monotonicMs()));
    let r = await this.#session.run(req, onPid);
    // A t6-svscan without sessions: one connection for this oneshot.
    if (r === 'unsupported') r = await runOneshot(oneshotSocket(this.#live), req, onPid);
    if (r.kind !== 'exited') return { kind: 'runner', detail: r.message };
    return failureOfWaitStatus(r.wstat, r.timedOut);
  }

  /**
   * A longrun goes up (or down) as `s6-svc -uwU` (or `-dwD`) would, and fails as it would;
   * with a settle time (its own up-settle, else --settle), up as settle.ts says.
   */
  async #longrun(s: LongrunService, up: boolean): Promise<TransitionFailure | undefined> {
    const dir = liveServicedir(this.#live.dir, s.name);
    const timeoutMs = this.#timeout(up ? s.timeoutUp : s.timeoutDown);
    const settleMs = up ? s.upSettle ?? this.#opts.settleMs : undefined;
    const failure = settleMs !== undefined
      ? await startSettled(dir, { readiness: s.readiness, settleMs, timeoutMs, signal: this.#ending.signal, send: () => this.#controlAndWait(dir, true, undefined, 0) })
      : await this.#controlAndWait(dir, up, up ? (s.readiness ? 'U' : 'u') : 'D', timeoutMs);
    if (failure !== undefined) {
      // As s6-rc: a longrun that failed to start is sent down, not left restarting.
      if (up) await svcSend(dir, 'd').catch(() => {});
      return failure;
    }
    try {
      if (up) fs.rmSync(`${dir}/down`, { force: true });
      else fs.writeFileSync(`${dir}/down`, '');
    } catch (err) {
      this.#say.warn(`unable to ${up ? 'remove' : 'create'} ${dir}/down: ${strerror(err)}`);
    }
    return undefined;
  }

  /**
   * Sends `u` or `d` and waits for `goal` (undefined: sends only): inside t6-svscan (one
   * request on its runner session) when it can; else as s6-svc (-w) does, through the
   * service's control FIFO and event FIFOs.
   */
  async #controlAndWait(dir: string, up: boolean, goal: 'u' | 'U' | 'D' | undefined, timeoutMs: number): Promise<TransitionFailure | undefined> {
    const svc = up ? 'u' : 'd';
    let r: ControlResult = await this.#session.control({ svc, dir, wait: goal, timeoutMs });
    if (r.kind === 'unsupported') {
      try {
        if (goal === undefined) {
          await svcSend(dir, svc);
          return undefined;
        }
        const w = await waitFor([dir], goal, 'all', timeoutMs, () => svcSend(dir, svc));
        r = { kind: 'done', reached: w.reached, failures: w.failures, timedOut: w.timedOut };
      } catch (err) {
        if (err instanceof ClientError && err.code === 'not-supervised') return { kind: 'not-supervised', detail: err.message };
        return { kind: 'system', detail: strerror(err) };
      }
    }
    switch (r.kind) {
      case 'done':
        if (r.timedOut) return { kind: 'timed-out', ms: timeoutMs, waiting: goal === 'U' ? 'readiness' : goal === 'u' ? 'up' : 'down' };
        return r.failures > 0 ? { kind: 'failed' } : undefined;
      case 'error':
        if (r.reason === 'not-supervised') return { kind: 'not-supervised', detail: r.message };
        // The runner turned the connection away: its words, not an s6-svc exit code.
        if (r.reason === 'too-many-clients') return { kind: 'runner', detail: r.message };
        return { kind: 'system', detail: r.message };
      case 'lost': return { kind: 'system', detail: r.message };
    }
  }
}
