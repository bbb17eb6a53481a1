/**
 * A subscriber of t6-svscan's event stream (event-server.ts), for `t6 events` and tests.
 *
 * With `follow`, the stream goes on across a re-exec of t6-svscan and across a drop for
 * being slow: the connection is made again (for up to RECONNECT_MS) asking for the records
 * after the last one seen, which the ring still holds unless too many came meanwhile — then
 * the server's `lost` record says how many are gone. Without `follow`: the ring, then the end.
 */
import net from 'node:net';
import path from 'node:path';
import type { T6Event } from './events.ts';

/** How long a follower keeps trying to connect again after losing the stream. */
export const RECONNECT_MS = 30_000;
const RETRY_STEP_MS = 100;
/** A line longer than this is not a record (the server never writes one): the stream is broken. */
const MAX_LINE = 1 << 20;

/** The event socket of a scan directory. */
export function eventSocket(scandir: string): string {
  return path.join(scandir, '.s6-svscan', 'events');
}

/** Thrown when there is no stream to read (nothing listens, or it refused). */
export class EventStreamError extends Error {
  override name = 'EventStreamError';
}

/** What to read. */
export interface FollowOptions {
  /** First record wanted (null: only new ones). */
  since: number | null;
  follow: boolean;
  /** Called each time the stream is (again) being served: the server has taken the request. */
  onConnect?(): void;
}

/** How one connection ended. */
type Outcome = { kind: 'stopped' | 'ended' | 'lost' } | { kind: 'absent' | 'refused'; message: string };

/** A stream being read: `done` settles when it ends; `stop()` ends it. */
export interface EventReader {
  done: Promise<void>;
  stop(): void;
}

/**
 * Reads records and calls `onEvent` for each, in order. `done` resolves when the stream ends
 * (without `follow`) or on `stop()`; it rejects with EventStreamError when there is no stream
 * (nothing listens, or it refuses), or when a follower cannot get it back within RECONNECT_MS.
 */
export function readEvents(socketPath: string, opts: FollowOptions, onEvent: (e: T6Event) => void): EventReader {
  let current: { stop(): void } | undefined;
  let stopped = false;
  const done = (async () => {
    let since = opts.since;
    let connected = false;
    let lostAt: number | undefined;
    for (;;) {
      const conn = connectOnce(socketPath, since, opts.follow, (e) => {
        since = e.seq + 1;
        onEvent(e);
      }, (nextSeq) => { connected = true; lostAt = undefined; since ??= nextSeq; opts.onConnect?.(); });
      current = conn;
      if (stopped) conn.stop();
      const outcome = await conn.outcome;
      if (outcome.kind === 'stopped' || outcome.kind === 'ended' || stopped) return;
      if (outcome.kind === 'refused') throw new EventStreamError(`${socketPath}: ${outcome.message}`);
      if (!connected || !opts.follow) {
        if (outcome.kind === 'absent') throw new EventStreamError(`unable to connect to ${socketPath}: ${outcome.message} (is t6-svscan running there?)`);
        if (!opts.follow) return;
      }
      lostAt ??= performance.now();
      if (performance.now() - lostAt > RECONNECT_MS) throw new EventStreamError(`lost the event stream at ${socketPath} and could not get it back for ${RECONNECT_MS / 1000} seconds`);
      await new Promise((r) => setTimeout(r, RETRY_STEP_MS));
    }
  })();
  return { done, stop: () => { stopped = true; current?.stop(); } };
}

/** One connection: the request, the header line (`onHeader` with the server's next number), the records. */
function connectOnce(socketPath: string, since: number | null, follow: boolean, onEvent: (e: T6Event) => void, onHeader: (nextSeq: number) => void): { outcome: Promise<Outcome>; stop(): void } {
  const sock = net.connect(socketPath);
  let settle!: (o: Outcome) => void;
  const outcome = new Promise<Outcome>((resolve) => {
    settle = (o) => { resolve(o); sock.destroy(); };
  });
  let buf = '';
  let header = false;
  sock.setEncoding('utf8');
  sock.on('connect', () => sock.write(`${JSON.stringify({ since, follow })}\n`));
  sock.on('error', (err) => settle(header ? { kind: 'lost' } : { kind: 'absent', message: err.message }));
  sock.on('close', () => settle(follow || !header ? { kind: 'lost' } : { kind: 'ended' }));
  sock.on('data', (chunk: string) => {
    buf += chunk;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let rec: Record<string, unknown>;
      try { rec = JSON.parse(line) as Record<string, unknown>; } catch { continue; }
      if (typeof rec.error === 'string') { settle({ kind: 'refused', message: rec.error }); return; }
      if (rec.stream === 't6-events') { header = true; onHeader(Number(rec.nextSeq)); continue; }
      // Dropped for being slow: ask again from here (the ring may still hold what was not sent).
      if (rec.kind === 'lost' && rec.reason === 'slow' && follow) { settle({ kind: 'lost' }); return; }
      onEvent(rec as unknown as T6Event);
    }
    if (buf.length > MAX_LINE) settle({ kind: 'lost' });
  });
  return { outcome, stop: () => settle({ kind: 'stopped' }) };
}
