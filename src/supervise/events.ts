/**
 * t6-svscan's event log: every state change of the tree as one record, numbered, stamped
 * on both clocks, kept in a ring of the latest ones and handed to every subscriber as it
 * happens. s6 has a fifodir per service; this is one stream for the whole tree.
 *
 * A record is one JSON object per line on the wire (event-server.ts):
 *
 *   {"seq":12,"time":"2026-12-06T17:02:03.456Z","mono":81234.5,"kind":"up","service":"web","pid":321}
 *
 * `seq` grows by one per record and survives a re-exec with the ring (no gap, no reuse);
 * `time` is the real-time clock (ISO 8601, read at each record: a clock step shows);
 * `mono` is CLOCK_MONOTONIC in ms (for durations). The other fields depend on `kind`.
 *
 * Subscribers are called synchronously, in order; each decides what to do with a record
 * it cannot pass on at once (event-server.ts keeps a bounded backlog, then drops it).
 * Nothing here can grow without bound: the ring has a fixed size.
 */

/** What happened. */
export type EventKind =
  /** A supervisor started (s6's `s`). */
  | 'supervised'
  /** `run` was spawned and runs (`u`): pid. */
  | 'up'
  /** The service said it is ready (`U`). */
  | 'ready'
  /** `run` died (`d`): exit code or signal. */
  | 'down'
  /** `finish` was spawned: pid. */
  | 'finish-started'
  /** `finish` ended: its exit code or signal. */
  | 'finish-ended'
  /** A restart is due in delayMs (0: at once). */
  | 'restart-scheduled'
  /** The restart waits (delayMs) because `run` died too soon after it started (s6's one-second rule). */
  | 'throttled'
  /** The service will not be restarted: finish exited 125 (s6's permanent failure, `O`), or the restart policy gave up (reason). */
  | 'given-up'
  /** t6 found the service unhealthy (a missed watchdog, a failing probe: reason) and restarts it. */
  | 'unhealthy'
  /** The service said a STATUS= text over sd_notify (text). */
  | 'status-text'
  /** The supervisor ended (`x`). */
  | 'supervisor-exited'
  /** A logger cannot take more input (a full disk, a slow script): its service's writes wait. */
  | 'logger-blocked'
  /** The logger takes input again. */
  | 'logger-resumed'
  /** A t6-rc transition: action start/stop, phase requested/done/failed (with reason). */
  | 'rc'
  /** A stage of the machine's shutdown. */
  | 'shutdown'
  /** t6-svscan itself: started, re-executed. */
  | 'scanner'
  /** Records a subscriber did not get (lost: how many; its connection ends after this). */
  | 'lost';

/** Every EventKind, for validation. */
export const EVENT_KINDS: readonly EventKind[] = [
  'supervised', 'up', 'ready', 'down', 'finish-started', 'finish-ended', 'restart-scheduled', 'throttled',
  'given-up', 'unhealthy', 'status-text', 'supervisor-exited', 'logger-blocked', 'logger-resumed', 'rc', 'shutdown', 'scanner', 'lost',
];

/** Fields a record may carry besides its number and stamps. */
export interface EventFields {
  kind: EventKind;
  /** The service's name as s6 gives it (`web`, `web/log`), or an rc service's name. */
  service?: string;
  pid?: number;
  /** The process exited with this code… */
  exitCode?: number;
  /** …or was killed by this signal (a number: names differ between systems). */
  signal?: number;
  delayMs?: number;
  /** rc: start or stop. */
  action?: 'start' | 'stop';
  /** rc: requested, done or failed; shutdown: the stage's name; scanner: started, re-executed. */
  phase?: string;
  /** Why (an rc failure, a re-exec, a give-up, an unhealthy service). */
  reason?: string;
  /** status-text: what the service said. */
  text?: string;
  /** lost: how many records were not delivered. */
  lost?: number;
  /** logger-blocked, logger-resumed: how long the logger has been blocked. */
  blockedMs?: number;
}

/** One record. */
export interface T6Event extends EventFields {
  seq: number;
  /** Real time, ISO 8601. */
  time: string;
  /** CLOCK_MONOTONIC, ms. */
  mono: number;
}

/** What survives a re-exec: the next number and the ring. */
export interface EventLogSnapshot {
  nextSeq: number;
  ring: T6Event[];
}

/** Records kept for subscribers that ask for the past (`since`). */
export const EVENT_RING_SIZE = 1024;

/** A subscriber: called with each record, in order, and its JSON line (made once for all). */
export type EventSubscriber = (event: T6Event, line: string) => void;

/** The event log of one tree. */
export class EventLog {
  readonly #ring: T6Event[] = [];
  readonly #size: number;
  readonly #monotonicMs: () => number;
  #nextSeq = 1;
  readonly #subscribers = new Set<EventSubscriber>();

  constructor(monotonicMs: () => number, size = EVENT_RING_SIZE) {
    this.#monotonicMs = monotonicMs;
    this.#size = size;
  }

  /** The number the next record will get. */
  get nextSeq(): number { return this.#nextSeq; }

  /** The oldest record still in the ring (its seq), or nextSeq when the ring is empty. */
  get oldestSeq(): number { return this.#ring[0]?.seq ?? this.#nextSeq; }

  /** Subscribers now. */
  get subscribers(): number { return this.#subscribers.size; }

  /** Numbers, stamps and keeps `fields`, then hands the record to every subscriber. */
  publish(fields: EventFields): T6Event {
    const event: T6Event = { seq: this.#nextSeq++, time: new Date().toISOString(), mono: Math.round(this.#monotonicMs() * 1000) / 1000, ...fields };
    this.#ring.push(event);
    if (this.#ring.length > this.#size) this.#ring.shift();
    if (this.#subscribers.size > 0) {
      const line = `${JSON.stringify(event)}\n`;
      for (const subscriber of this.#subscribers) {
        // Publishing runs inside a supervisor's commit: a subscriber that throws is dropped, never passed on.
        try { subscriber(event, line); } catch { this.#subscribers.delete(subscriber); }
      }
    }
    return event;
  }

  /** The records of the ring numbered `seq` or later, oldest first. */
  since(seq: number): T6Event[] {
    const first = this.#ring.findIndex((e) => e.seq >= seq);
    return first < 0 ? [] : this.#ring.slice(first);
  }

  /** Adds a subscriber; returns its removal. */
  subscribe(subscriber: EventSubscriber): () => void {
    this.#subscribers.add(subscriber);
    return () => { this.#subscribers.delete(subscriber); };
  }

  /** Re-exec: the numbering and the ring, for the next image. */
  snapshot(): EventLogSnapshot {
    return { nextSeq: this.#nextSeq, ring: [...this.#ring] };
  }

  /** The next image: carries on from `snap` (a record that is not one is left out). */
  restore(snap: EventLogSnapshot): void {
    if (Number.isSafeInteger(snap.nextSeq) && snap.nextSeq > this.#nextSeq) this.#nextSeq = snap.nextSeq;
    const ring = Array.isArray(snap.ring) ? snap.ring.filter((e) => typeof e === 'object' && e !== null && Number.isSafeInteger(e.seq) && e.seq < this.#nextSeq) : [];
    this.#ring.splice(0, this.#ring.length, ...ring.slice(-this.#size));
  }
}
