/**
 * Why a transition failed, as a typed reason (dinit's stopped reasons do the same) rather
 * than a message to match text against: a oneshot that exited 99 and a longrun that timed
 * out are different facts, even though s6-rc words both "command exited 99". The wording
 * is s6-rc's (s6-spec/s6-rc.md §7), in one place, except for what s6-rc has no words for
 * or words wrongly (issue 14): a longrun that died before it counted as up, and a
 * longrun's timeout, which s6-rc reports as s6-svc's exit code 99 ("command exited 99"
 * while no command exited 99) and t6 as what was waited for and how long.
 */
import { EXIT } from '../s6/exit.ts';
import { signalName } from '../s6/signals.ts';
import { decodeWaitStatus } from '../sys/wait.ts';

/** What a longrun's transition was waiting for when its timeout passed. */
export type AwaitedState =
  /** `U`: readiness (notification-fd, sd_notify, a probe). */
  | 'readiness'
  /** `u`: run spawned. */
  | 'up'
  /** up for its settle time, after `u`. */
  | 'settle'
  /** `D`: down, finish done. */
  | 'down';

/** Why a transition failed. */
export type TransitionFailure =
  /** A oneshot's command exited with a non-zero code. */
  | { kind: 'exited'; code: number }
  /** A oneshot's command was killed by a signal; `timedOut`: killed for running past its timeout. */
  | { kind: 'crashed'; signal: number; timedOut: boolean }
  /** A longrun did not reach its state within `ms` (what `s6-svc -w` exits 99 for); `settleMs` with 'settle'. */
  | { kind: 'timed-out'; ms: number; waiting: AwaitedState; settleMs?: number }
  /**
   * A longrun died (`d`) before it counted as up (settle time, issue 14): `afterMs` after its
   * `u`, with the wait status of its death from supervise/status (undefined: unreadable).
   */
  | { kind: 'died'; afterMs: number; wstat: number | undefined; beforeReady: boolean }
  /** A longrun failed permanently, or its supervisor ended (`s6-svc -w` exits 1). */
  | { kind: 'failed' }
  /** A longrun's directory is not supervised (`s6-svc` exits 102). */
  | { kind: 'not-supervised'; detail: string }
  /** t6-svscan could not be reached or the transition could not be followed (exit 111). */
  | { kind: 'system'; detail: string }
  /** The oneshot runner could not run the command (refused, spawn failed, connection lost). */
  | { kind: 'runner'; detail: string };

/** The failure of a oneshot that ended with wait status `wstat` (undefined: success). */
export function failureOfWaitStatus(wstat: number, timedOut: boolean): TransitionFailure | undefined {
  const ws = decodeWaitStatus(wstat);
  if (ws.exited) return ws.exitCode === 0 ? undefined : { kind: 'exited', code: ws.exitCode };
  return { kind: 'crashed', signal: ws.signaled ? ws.signal : wstat & 0x7f, timedOut };
}

/** A failure in s6-rc's words: `command exited 1`, `command crashed with signal 9`. */
export function describeFailure(f: TransitionFailure): string {
  switch (f.kind) {
    case 'exited': return `command exited ${f.code}`;
    case 'crashed': return `command crashed with signal ${f.signal}${f.timedOut ? ' (timed out)' : ''}`;
    case 'timed-out': return `timed out after ${f.ms} ms waiting for ${AWAITED[f.waiting]}${f.waiting === 'settle' ? ` ${f.settleMs ?? 0} ms (its settle time)` : ''}`;
    case 'died': return `died ${f.afterMs} ms after starting${f.beforeReady ? ', before it was ready' : ''}${f.wstat === undefined ? '' : ` (${deathOf(f.wstat)})`}`;
    case 'failed': return `command exited ${EXIT.failed}`;
    case 'not-supervised': return `command exited ${EXIT.notSupervised} (${f.detail})`;
    case 'system': return `command exited ${EXIT.system} (${f.detail})`;
    case 'runner': return f.detail;
  }
}

/** The end of the waiting phrase, by what was awaited. */
const AWAITED: Record<AwaitedState, string> = {
  readiness: 'readiness',
  up: 'it to start',
  settle: 'it to stay up for',
  down: 'it to stop',
};

/** A death in words: `exit code 127`, `killed by SIGKILL`. */
function deathOf(wstat: number): string {
  const ws = decodeWaitStatus(wstat);
  return ws.signaled ? `killed by ${signalName(ws.signal)}` : `exit code ${ws.exitCode}`;
}

/**
 * A failed start, with the dependents of this change it leaves down: named only after the
 * reasons t6 words itself (a death, a timeout), so that s6-rc's own lines stay s6-rc's.
 */
export function describeStartFailure(f: TransitionFailure, leftDown: readonly string[]): string {
  const text = describeFailure(f);
  if ((f.kind !== 'died' && f.kind !== 'timed-out') || leftDown.length === 0) return text;
  return `${text} - not starting: ${leftDown.join(', ')}`;
}
