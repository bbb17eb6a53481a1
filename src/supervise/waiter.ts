/**
 * Control-and-wait inside t6-svscan: what `s6-svc -uwU DIR` does from outside (subscribe
 * to DIR/event, read the status, send the command, follow the events until the goal), done
 * where the events are made. t6-rc asks for it on the runner socket (runner.ts) for each
 * longrun transition: one connection, no event FIFO, no status file read, and no FIFO
 * write per event on t6-svscan's side.
 *
 * The goal logic is s6-svwait's for one service, from s6/svwait.ts (as s6/client.ts's
 * waitFor uses it): `u`/`U` is up (and ready), `d`/`D` down (and ready); an `x` (the
 * supervisor ends) short of the goal, or an `O` while waiting for up, is a failure and
 * ends the wait.
 */
import { meets, stateOfStatus, step, wantOf } from '../s6/svwait.ts';
import type { Supervisor, TimerHandle } from './supervisor.ts';
import type { ControlGoal, ControlOutcome, ControlRequest, Refusal } from './runner-protocol.ts';

export type { ControlGoal, ControlOutcome } from './runner-protocol.ts';

/**
 * Per-supervisor event subscriptions for control-and-wait requests: one per request under
 * way, so bounded by the runner's (runner-connection.ts: MAX_OPEN_PER_CLIENT per client,
 * runner.ts: MAX_CLIENTS clients).
 */
export class Waiters {
  #subs = new Map<Supervisor, Set<(event: string) => void>>();
  #setTimer: (ms: number, fn: () => void) => TimerHandle;

  constructor(setTimer: (ms: number, fn: () => void) => TimerHandle) {
    this.#setTimer = setTimer;
  }

  /** The scanner's hook: every event byte group of every supervisor. */
  event(sup: Supervisor, events: string): void {
    const subs = this.#subs.get(sup);
    if (subs === undefined) return;
    for (const fn of [...subs]) for (const e of events) fn(e);
  }

  /**
   * Subscribes to `sup`, reads its state, sends `command`, and calls `done` once the goal
   * holds (at once if it already does), on failure, or after `timeoutMs` (0: no limit).
   * Returns a cancel function (the client went away); `done` is called at most once.
   */
  control(sup: Supervisor, command: string, goal: ControlGoal, timeoutMs: number, done: (o: ControlOutcome) => void): () => void {
    const want = wantOf(goal);
    let state = stateOfStatus(sup.status);
    let failures = 0;
    let ended = false;
    let timer: TimerHandle | undefined;
    const end = (o: ControlOutcome): void => {
      if (ended) return;
      ended = true;
      cancel();
      done(o);
    };
    const check = (): void => {
      if (meets(state, want)) end({ reached: failures === 0, failures, timedOut: false });
    };
    const onEvent = (byte: string): void => {
      const next = step(state, want, byte);
      if (next === undefined) return;
      state = next.state;
      if (next.failure) failures++;
      check();
    };
    const cancel = (): void => {
      timer?.cancel();
      const subs = this.#subs.get(sup);
      subs?.delete(onEvent);
      if (subs?.size === 0) this.#subs.delete(sup);
    };
    let subs = this.#subs.get(sup);
    if (subs === undefined) this.#subs.set(sup, subs = new Set());
    subs.add(onEvent);
    if (timeoutMs > 0) timer = this.#setTimer(timeoutMs, () => end({ reached: false, failures, timedOut: true }));
    // Events the command causes at once arrive through onEvent, after the state read above.
    sup.command(command);
    if (!ended) check();
    return () => { ended = true; cancel(); };
  }
}

/**
 * Serves one control request: finds the supervisor of `req.dir` with `supervisorOf`, then
 * sends and waits. Returns the cancel function, or why it cannot.
 */
export function controlRequest(
  supervisorOf: (dir: string) => Supervisor | undefined,
  waiters: Waiters,
  req: ControlRequest,
  done: (o: ControlOutcome) => void,
): (() => void) | Refusal {
  let sup: Supervisor | undefined;
  try {
    sup = supervisorOf(req.dir);
  } catch {
    sup = undefined;
  }
  if (sup === undefined || sup.state === 'gone') return { reason: 'not-supervised', message: `${req.dir} is not supervised here` };
  if (req.wait === undefined) {
    sup.command(req.svc);
    done({ reached: true, failures: 0, timedOut: false });
    return () => {};
  }
  return waiters.control(sup, req.svc, req.wait, req.timeoutMs, done);
}
