/**
 * A supervisor's s6 event bytes, as records of the event log (events.ts): the byte, the
 * status it was committed with, and what the supervisor added (EventDetail) make one
 * record each, or two where s6 folds two things into one byte (`d` with a finish script
 * starting; `D` with a finish script's end and the restart that follows).
 */
import { decodeWaitStatus } from '../sys/wait.ts';
import type { EventDetail } from './supervisor-host.ts';
import type { EventFields, EventLog } from './events.ts';

/** A run shorter than this, restarted after a wait, is a crash loop being throttled. */
const SHORT_RUN_MS = 1000;

/** What a supervisor's records are made of. */
export interface SupervisorView {
  readonly name: string;
  readonly status: { readonly pid: number; readonly wstat: number; readonly finishing: boolean };
}

/** An exit code or a signal, from a raw wait status. */
export function exitFields(wstat: number): Pick<EventFields, 'exitCode' | 'signal'> {
  const ws = decodeWaitStatus(wstat);
  return ws.signaled ? { signal: ws.signal } : { exitCode: ws.exitCode };
}

/** Turns supervisors' event bytes into records. */
export class ServiceEvents {
  readonly #log: EventLog;
  /** When each service's `run` last came up (monotonic ms), and how long the last one lived. */
  readonly #upAt = new Map<string, number>();
  readonly #lived = new Map<string, number>();
  /** Services in a streak of short-lived runs (a `throttled` record was published): one record per streak. */
  readonly #throttled = new Set<string>();

  constructor(log: EventLog) {
    this.#log = log;
  }

  /** Publishes the records for `bytes`, just sent by `sup` (its status already written). */
  supervisor(sup: SupervisorView, bytes: string, detail: EventDetail | undefined): void {
    const service = sup.name;
    const st = sup.status;
    if (detail?.unhealthy !== undefined) this.#log.publish({ kind: 'unhealthy', service, reason: detail.unhealthy });
    if (detail?.statusText !== undefined) this.#log.publish({ kind: 'status-text', service, text: detail.statusText });
    for (const byte of bytes) {
      switch (byte) {
        case 's': this.#log.publish({ kind: 'supervised', service }); break;
        case 'u': this.#upAt.set(service, this.#log.publish({ kind: 'up', service, pid: st.pid }).mono); break;
        case 'U': this.#log.publish({ kind: 'ready', service }); break;
        case 'd': {
          const at = this.#log.publish({ kind: 'down', service, ...exitFields(st.wstat) }).mono;
          this.#lived.set(service, at - (this.#upAt.get(service) ?? -Infinity));
          if (st.finishing) this.#log.publish({ kind: 'finish-started', service, pid: st.pid });
          break;
        }
        case 'D': this.#downAndReady(service, detail); break;
        case 'O': this.#log.publish({ kind: 'given-up', service, ...(detail?.reason === undefined ? {} : { reason: detail.reason }) }); break;
        case 'x':
          this.#forget(service);
          this.#log.publish({ kind: 'supervisor-exited', service });
          break;
      }
    }
  }

  #downAndReady(service: string, detail: EventDetail | undefined): void {
    if (detail?.finishWstat !== undefined) this.#log.publish({ kind: 'finish-ended', service, ...exitFields(detail.finishWstat) });
    const delayMs = detail?.restartInMs;
    if (delayMs === undefined) return;
    const rounded = Math.round(delayMs);
    this.#log.publish({ kind: 'restart-scheduled', service, delayMs: rounded });
    // Throttled: the restart waits because run died within a second of coming up (a crash
    // loop), not merely because it never said it was ready (s6 waits a second then too).
    const shortLived = (this.#lived.get(service) ?? Infinity) < SHORT_RUN_MS;
    if (!shortLived) {
      this.#throttled.delete(service);
    } else if (rounded > 0 && !this.#throttled.has(service)) {
      this.#throttled.add(service);
      this.#log.publish({ kind: 'throttled', service, delayMs: rounded });
    }
  }

  #forget(service: string): void {
    this.#upAt.delete(service);
    this.#lived.delete(service);
    this.#throttled.delete(service);
  }
}
