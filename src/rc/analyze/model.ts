/**
 * Boot analysis, reading side: what the analyses share about a TimingRecord (timings.ts).
 * A transition is "done" when a start is ready (or up, without readiness) or a stop is
 * down; a failed or unmeasured one is done when t6-rc learnt its end. Times shown are ms
 * from the record's origin: for a boot, the kernel's `Run /sbin/init` when known, else the
 * first step of stage 1; for a later change, its start.
 */
import type { Instant, ServiceTiming, TimingRecord } from '../timings.ts';

/** When the transition was over, as the analyses count it. */
export function doneAt(t: ServiceTiming): Instant {
  if (t.failure !== undefined) return t.ended;
  return (t.direction === 'up' ? t.ready ?? t.up : t.down) ?? t.ended;
}

/** How long the transition took, requested → done, in ms (never negative). */
export function tookMs(t: ServiceTiming): number {
  return Math.max(0, doneAt(t).mono - t.requested.mono);
}

/** The kernel's line that starts a boot's record: `Run /sbin/init`, or `Run /init` (an initramfs) and so on. */
export function kernelInitLine(r: TimingRecord): string {
  return `Run ${r.kernelInitPath ?? '/sbin/init'}`;
}

/** The record's time zero (CLOCK_MONOTONIC ms) and what it is. */
export function originOf(r: TimingRecord): { mono: number; what: string } {
  if (r.kernelInit !== undefined) return { mono: r.kernelInit, what: `the kernel's ${kernelInitLine(r)}` };
  const first = r.stages[0];
  if (first !== undefined && first.start <= r.started.mono) return { mono: first.start, what: `the start of ${first.name}` };
  return { mono: r.started.mono, what: r.kind === 'boot' ? 'the start of the boot change' : `the start of change ${r.seq}` };
}

/**
 * The transitions that had to be done before `t` could start: for a start, those of its
 * dependencies; for a stop, those of the services that depend on it (stopped first).
 */
export function gatesOf(r: TimingRecord, t: ServiceTiming): ServiceTiming[] {
  return r.services.filter((o) => o.direction === t.direction && o !== t
    && (t.direction === 'up' ? t.deps.includes(o.name) : o.deps.includes(t.name)));
}

/** A duration for people: `850ms`, `12.3ms`, `1.234s`. */
export function formatMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(3)}s`;
  if (ms >= 10) return `${Math.round(ms)}ms`;
  return `${ms.toFixed(1)}ms`;
}
