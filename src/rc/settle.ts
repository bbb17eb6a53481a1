/**
 * Starting a longrun under a settle time (issue 14: failures that stop dependents). s6-rc
 * counts a longrun up at `u` (run spawned), or at `U` with readiness, and keeps waiting
 * through deaths and restarts until its timeout. With a settle time — the longrun's
 * `up-settle`, or `t6-rc --settle` for the whole change — it counts as up only
 * - without readiness: once it has stayed up for the settle time after its `u`;
 * - with readiness: at `U`, as before;
 * and a death (`d`) before that fails the transition at once, with the death's exit code
 * or signal (from supervise/status, written before the event), so its dependents are not
 * started on a service that is not there.
 *
 * The rule is `SettleRule`, pure (fed the state read from the status file, then event
 * bytes); `startSettled` does the I/O as s6-svc -uwu does it from outside: subscribe to
 * the service's event fifodir, read its status, send `u`, follow the events. It follows
 * the fifodir rather than waiting in a runner session's control request, which answers
 * only at the goal or the timeout and would not tell a death; `u` itself still goes the
 * engine's way (options.send).
 */
import { type TransitionFailure } from './failure.ts';
import { ClientError, readStatusFile, svcSend } from '../s6/client.ts';
import { listenFifodir } from '../s6/fifodir.ts';
import { type WaitState, stateOfStatus } from '../s6/svwait.ts';
import { strerror } from '../sys/errors.ts';

/**
 * What one input means: keep waiting, start the settle timer now ('arm'), counted up,
 * died before that, or failed for good (the supervisor ended, `x`; or finish said 125, `O`).
 */
export type SettleStep = 'wait' | 'arm' | 'up' | 'died' | 'failed';

/** The settle rule for one start, fed the initial state then each event byte. */
export class SettleRule {
  readonly readiness: boolean;
  readonly settleMs: number;
  #up = false;

  constructor(readiness: boolean, settleMs: number) {
    this.readiness = readiness;
    this.settleMs = settleMs;
  }

  /** Is run up (spawned and not dead since)? */
  get up(): boolean {
    return this.#up;
  }

  /** The state read from supervise/status once subscribed (it may already be up). */
  start(initial: WaitState): SettleStep {
    this.#up = initial.up;
    if (!initial.up) return 'wait';
    if (this.readiness) return initial.ready ? 'up' : 'wait';
    return this.#spawned();
  }

  /** One event byte of the service's fifodir. */
  event(byte: string): SettleStep {
    switch (byte) {
      case 'u': {
        if (this.#up) return 'wait';
        this.#up = true;
        return this.readiness ? 'wait' : this.#spawned();
      }
      case 'U': {
        // `U` without a `u` before it (missed in a burst) still means run is up.
        const was = this.#up;
        this.#up = true;
        if (this.readiness) return 'up';
        return was ? 'wait' : this.#spawned();
      }
      case 'd': {
        // A `d` while down (a previous run's finish ending) is no death of this start.
        if (!this.#up) return 'wait';
        this.#up = false;
        return 'died';
      }
      case 'D': this.#up = false; return 'wait';
      case 'x': case 'O': return 'failed';
      default: return 'wait';
    }
  }

  /** Run spawned, without readiness: up at once with no settle time, else when the timer fires. */
  #spawned(): SettleStep {
    return this.settleMs === 0 ? 'up' : 'arm';
  }
}

/** How to start one longrun under a settle time. */
export interface SettleOptions {
  readiness: boolean;
  settleMs: number;
  /** The transition's timeout, ms; 0 = none. */
  timeoutMs: number;
  /** Aborted when the change ends (a global timeout): listener and timers go. */
  signal?: AbortSignal;
  /**
   * Sends `u` (resolving with why not, if it cannot): the engine's way, through t6-svscan's
   * runner session where it serves one (pid 1 must not write to its own control FIFO: a
   * full one would block it for good); by default the control FIFO, as s6-svc.
   */
  send?: () => Promise<TransitionFailure | undefined>;
}

/**
 * Sends `u` to the supervisor of `dir` and follows its events under the settle rule;
 * resolves undefined once it counts as up, else with why not. Never rejects.
 */
export async function startSettled(dir: string, o: SettleOptions): Promise<TransitionFailure | undefined> {
  const rule = new SettleRule(o.readiness, o.settleMs);
  let resolveEnd: (f: TransitionFailure | undefined) => void = () => {};
  const end = new Promise<TransitionFailure | undefined>((resolve) => { resolveEnd = resolve; });
  const timers: NodeJS.Timeout[] = [];
  let spawnedAt = performance.now();
  let started = false;
  const early: string[] = [];
  const apply = (step: SettleStep): void => {
    switch (step) {
      case 'wait': return;
      case 'up': resolveEnd(undefined); return;
      case 'arm': spawnedAt = performance.now(); timers.push(setTimeout(() => resolveEnd(undefined), o.settleMs)); return;
      case 'failed': resolveEnd({ kind: 'failed' }); return;
      case 'died': resolveEnd(deathOf(dir, performance.now() - spawnedAt, o.readiness)); return;
    }
  };
  const onByte = (byte: string): void => {
    if (!started) { early.push(byte); return; }
    if (byte === 'u') spawnedAt = performance.now();
    apply(rule.event(byte));
  };
  let listener: { close(): void } | undefined;
  const onAbort = (): void => resolveEnd({ kind: 'system', detail: 'the change ended first' });
  try {
    listener = listenFifodir(`${dir}/event`, onByte);
    const initial = stateOfStatus(readStatusFile(dir));
    const refused = o.send === undefined ? await svcSend(dir, 'u') : await o.send();
    if (refused !== undefined) return refused;
    spawnedAt = performance.now();
    started = true;
    if (o.timeoutMs > 0) {
      timers.push(setTimeout(() => resolveEnd({ kind: 'timed-out', ms: o.timeoutMs, waiting: awaited(rule), settleMs: o.settleMs }), o.timeoutMs));
    }
    o.signal?.addEventListener('abort', onAbort);
    if (o.signal?.aborted === true) onAbort();
    apply(rule.start(initial));
    for (const byte of early.splice(0)) onByte(byte);
    return await end;
  } catch (err) {
    if (err instanceof ClientError && err.code === 'not-supervised') return { kind: 'not-supervised', detail: err.message };
    return { kind: 'system', detail: strerror(err) };
  } finally {
    for (const t of timers) clearTimeout(t);
    o.signal?.removeEventListener('abort', onAbort);
    listener?.close();
  }
}

/** What the start was waiting for, for a timeout's message. */
function awaited(rule: SettleRule): 'readiness' | 'up' | 'settle' {
  if (rule.readiness) return 'readiness';
  return rule.up ? 'settle' : 'up';
}

/** The failure of a death seen `afterMs` after the start, with its wait status (supervise/status, written before `d`). */
function deathOf(dir: string, afterMs: number, beforeReady: boolean): TransitionFailure {
  let wstat: number | undefined;
  try {
    wstat = readStatusFile(dir).wstat;
  } catch {
    wstat = undefined; // the message goes without the exit code
  }
  return { kind: 'died', afterMs: Math.round(afterMs), wstat, beforeReady };
}
