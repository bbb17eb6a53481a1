/** `t6 analyze blame`: the transitions of a record, longest first (systemd-analyze blame). */
import type { TimingRecord } from '../timings.ts';
import { doneAt, formatMs, originOf, tookMs } from './model.ts';

/** One line of blame. */
export interface BlameEntry {
  name: string;
  type: 'oneshot' | 'longrun';
  direction: 'up' | 'down';
  /** requested → ready (or up without readiness; down for a stop), ms. */
  ms: number;
  /** When it was requested and done, ms from the record's origin. */
  requestedAt: number;
  doneAt: number;
  failure?: string;
}

/** Every transition of the record by the time it took, longest first (ties: by name). */
export function blame(r: TimingRecord): BlameEntry[] {
  const origin = originOf(r).mono;
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return r.services.map((t) => ({
    name: t.name, type: t.type, direction: t.direction, ms: round(tookMs(t)),
    requestedAt: round(t.requested.mono - origin), doneAt: round(doneAt(t).mono - origin),
    ...(t.failure === undefined ? {} : { failure: t.failure }),
  })).sort((a, b) => b.ms - a.ms || a.name.localeCompare(b.name));
}

/** Blame as text: the time right-aligned, then the name (and what went wrong). */
export function blameText(entries: readonly BlameEntry[]): string {
  const times = entries.map((e) => formatMs(e.ms));
  const width = Math.max(0, ...times.map((t) => t.length));
  return entries.map((e, i) => `${times[i]!.padStart(width)} ${e.name}${e.direction === 'down' ? ' (stop)' : ''}${e.failure === undefined ? '' : ` (failed: ${e.failure})`}\n`).join('');
}
