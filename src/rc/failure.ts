/**
 * Why a transition failed, as a typed reason (dinit's stopped reasons do the same) rather
 * than a message to match text against: a oneshot that exited 99 and a longrun that timed
 * out are different facts, even though s6-rc words both "command exited 99". The wording
 * is s6-rc's (s6-spec/s6-rc.md §7), in one place.
 */
import { EXIT } from '../s6/exit.ts';
import { decodeWaitStatus } from '../sys/wait.ts';

/** Why a transition failed. */
export type TransitionFailure =
  /** A oneshot's command exited with a non-zero code. */
  | { kind: 'exited'; code: number }
  /** A oneshot's command was killed by a signal; `timedOut`: killed for running past its timeout. */
  | { kind: 'crashed'; signal: number; timedOut: boolean }
  /** A longrun did not reach its state in time (what `s6-svc -w` exits 99 for). */
  | { kind: 'timed-out' }
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
    case 'timed-out': return `command exited ${EXIT.timedOut}`;
    case 'failed': return `command exited ${EXIT.failed}`;
    case 'not-supervised': return `command exited ${EXIT.notSupervised} (${f.detail})`;
    case 'system': return `command exited ${EXIT.system} (${f.detail})`;
    case 'runner': return f.detail;
  }
}
