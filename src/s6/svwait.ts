/**
 * s6-svwait's logic for one service (supervise-protocol.md §7), pure: the state it follows
 * (up, ready), set by each event byte, and the goal test. Used by s6/client.ts's waitFor
 * (t6-svwait, t6-svc -w…, from outside through the event FIFOs) and by supervise/waiter.ts
 * (the same wait inside t6-svscan, for t6-rc).
 *
 *   start    up = pid ≠ 0 and not finishing; ready = the status's ready flag   (§7 step 3)
 *   d D u U  set (up, ready) to (0,0) (0,1) (1,0) (1,1)                       (§7 step 5)
 *   O        waiting for up: a failure, and the service counts as arrived; else ignored
 *   x        the supervisor ends: a failure if the state is not the wanted one; either
 *            way the service counts as arrived
 *   goal     -u up · -U up and ready · -d down · -D down and ready (finish done)  (§7 step 6)
 */
import type { SupervisorStatus } from './status.ts';

/** A service's state as a waiter follows it. */
export interface WaitState {
  readonly up: boolean;
  readonly ready: boolean;
}

/** What one wait (or one phase of a restart wait) wants: up or down, and whether ready. */
export type WaitWant = WaitState;

/** s6-svwait's single-phase goals: up, up and ready, down, down and finished. */
export type WaitPhaseGoal = 'u' | 'U' | 'd' | 'D';

/** The state each of the four transition events sets. */
export const EVENT_STATE = {
  d: { up: false, ready: false },
  D: { up: false, ready: true },
  u: { up: true, ready: false },
  U: { up: true, ready: true },
} as const satisfies Record<WaitPhaseGoal, WaitState>;

/** What a goal letter wants (the same table: `-D` wants the state `D` sets). */
export function wantOf(goal: WaitPhaseGoal): WaitWant {
  return EVENT_STATE[goal];
}

/** The state a wait starts from, read from `supervise/status` after subscribing. */
export function stateOfStatus(s: Pick<SupervisorStatus, 'pid' | 'finishing' | 'ready'>): WaitState {
  return { up: s.pid !== 0 && !s.finishing, ready: s.ready };
}

/** Whether `state` meets `want`: up or down as wanted, and ready if readiness is wanted. */
export function meets(state: WaitState, want: WaitWant): boolean {
  return state.up === want.up && (!want.ready || state.ready);
}

/** One event byte's effect: the next state and whether it counts a failure; undefined when it changes nothing. */
export function step(state: WaitState, want: WaitWant, byte: string): { state: WaitState; failure: boolean } | undefined {
  if (Object.hasOwn(EVENT_STATE, byte)) return { state: EVENT_STATE[byte as WaitPhaseGoal], failure: false };
  if (byte === 'x') return { state: want, failure: state.up !== want.up || state.ready !== want.ready };
  if (byte === 'O' && want.up) return { state: want, failure: true };
  return undefined;
}
