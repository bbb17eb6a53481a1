/**
 * The scanner's half of a re-exec (handover.ts has the document): what is handed over,
 * in two steps, and how the next image takes it back.
 *
 * 1. `prepare` (asynchronous): the scan stops, the control FIFO is no longer read and the
 *    runner stops listening (what comes meanwhile waits in the FIFO, or is refused); every
 *    in-process logger stops reading its pipe, writes and syncs what it has read, and gives
 *    back its partial line; the catch-all goes last, and from then on pid 1's messages are
 *    kept for the next image. Supervisors go on supervising all along.
 * 2. `snapshot` (synchronous, right before execve, so nothing happens in between): every
 *    supervisor hands over, and the table, pipes and pipelines are written down.
 *
 * `restore` is the next image's side: the table, pipes, readers and supervisors again,
 * each process watched as the child it still is; then the control bytes clients wrote
 * during the exec are acted on, before the event loop can bring anything else. If the exec fails, the same `restore`
 * runs in the same process: one path, whichever image carries on.
 */
import path from 'node:path';
import type { Logging, PipeClient } from './logging.ts';
import type { Plumbing } from './plumbing.ts';
import type { ScandirControl } from './scandir-control.ts';
import type { ScannerHost } from './scanner-host.ts';
import type { Supervisor, SupervisorHost } from './supervisor.ts';
import { newSlot, slots, type ServiceEntry, type ServiceTable, type Slot } from './slots.ts';
import type { EntrySnapshot, ScannerSnapshot, SlotSnapshot } from './handover.ts';
import { strerror } from '../sys/errors.ts';

/** What the re-exec works with (the scanner's parts). */
export interface ReexecContext {
  scandir: string;
  table: ServiceTable;
  plumbing: Plumbing;
  logging: Logging;
  control: ScandirControl;
  host: ScannerHost;
  supervisorHost: SupervisorHost;
  /** The scanner's own timers (periodic rescan, scan retry) stop. */
  stopTimers(): void;
  report(level: 'info' | 'warning' | 'error', message: string): void;
}

/** What `prepare` gathered, for `snapshot`. */
export interface Prepared {
  control: { lockFd: number; controlFd?: number };
  partials: Map<ServiceEntry, { kind: 'logger' | 'sink'; partial: Buffer }>;
  catchAll: { pipe: [number, number]; partial: Buffer; queued: string[] } | undefined;
}

/** Step 1: the control files and the logs hand over; supervision goes on. */
export async function prepareHandOver(ctx: ReexecContext): Promise<Prepared> {
  ctx.stopTimers();
  const control = ctx.control.handOver();
  const partials = new Map<ServiceEntry, { kind: 'logger' | 'sink'; partial: Buffer }>();
  const readers: [ServiceEntry, PipeClient][] = [];
  for (const entry of ctx.table.entries()) if (entry.reader !== undefined) readers.push([entry, entry.reader]);
  await Promise.all(readers.map(async ([entry, reader]) => {
    partials.set(entry, { kind: reader.takesStderr ? 'sink' : 'logger', partial: await reader.handOver() });
  }));
  const catchAll = await ctx.logging.handOverCatchAll();
  return { control, partials, catchAll };
}

/** Step 2: every supervisor hands over; the whole table written down. */
export function snapshotScanner(ctx: ReexecContext, prepared: Prepared, nowMs: number): ScannerSnapshot {
  const entries: EntrySnapshot[] = [];
  for (const entry of ctx.table.entries()) {
    const reader = prepared.partials.get(entry);
    entries.push({
      key: entry.key, name: entry.name, active: entry.active, dir: path.join(ctx.scandir, entry.name),
      writeClosed: entry.writeClosed,
      ...(entry.pipe === undefined ? {} : { pipe: entry.pipe }),
      ...(entry.producerFor === undefined ? {} : { producerFor: entry.producerFor }),
      ...(reader === undefined ? {} : { reader: { kind: reader.kind, partial: reader.partial.toString('base64') } }),
      main: slotSnapshot(entry.main, nowMs),
      ...(entry.log === undefined ? {} : { log: slotSnapshot(entry.log, nowMs) }),
    });
  }
  const ca = prepared.catchAll;
  return {
    lockFd: prepared.control.lockFd,
    ...(prepared.control.controlFd === undefined ? {} : { controlFd: prepared.control.controlFd }),
    entries,
    pipelines: ctx.plumbing.pipelineSnapshot(),
    ...(ca === undefined ? {} : { catchAll: { pipe: ca.pipe, partial: ca.partial.toString('base64') } }),
    messages: [...(ca?.queued ?? []), ...ctx.logging.takeHeldMessages()],
    signals: [],
  };
}

function slotSnapshot(slot: Slot, nowMs: number): SlotSnapshot {
  slot.restart?.cancel();
  slot.restart = undefined;
  const sup = slot.sup?.handOver();
  return {
    name: slot.name,
    ...(slot.lastStart > 0 ? { lastStartAgoMs: nowMs - slot.lastStart } : {}),
    ...(sup === undefined ? {} : { sup }),
  };
}

/**
 * The next image: control files, catch-all, entries with their pipes and readers, and every
 * supervisor, `elapsedMs` after the snapshot. A supervisor that cannot be resumed is
 * reported; its slot is started afresh by the next scan.
 */
export function restoreScanner(ctx: ReexecContext, snap: ScannerSnapshot, catchAllName: string, elapsedMs: number): void {
  ctx.control.resume(snap.lockFd, snap.controlFd);
  if (snap.catchAll !== undefined) ctx.logging.resumeCatchAll(catchAllName, snap.catchAll.pipe, Buffer.from(snap.catchAll.partial, 'base64'));
  for (const line of snap.messages) ctx.logging.log(line);
  ctx.plumbing.restorePipelines(snap.pipelines);
  const now = ctx.host.monotonicMs();
  const resumed: Supervisor[] = [];
  for (const e of snap.entries) {
    const entry = ctx.table.entry(e.key, e.name);
    entry.active = e.active;
    entry.pipe = e.pipe;
    entry.writeClosed = e.writeClosed;
    entry.producerFor = e.producerFor;
    if (e.log !== undefined) entry.log = newSlot(e.log.name);
    if (e.reader !== undefined && e.pipe !== undefined) {
      const partial = Buffer.from(e.reader.partial, 'base64');
      entry.reader = e.reader.kind === 'sink' ? ctx.logging.sink(e.name, e.pipe[0], partial) : ctx.logging.logger(e.name, e.dir, e.pipe[0], partial);
    }
    for (const [slot, s] of slots(entry).map((sl, i) => [sl, i === 0 ? e.main : e.log] as const)) {
      if (s === undefined) continue;
      if (s.lastStartAgoMs !== undefined) slot.lastStart = now - s.lastStartAgoMs - elapsedMs;
      const sup = s.sup === undefined ? undefined : resumeSlot(ctx, entry, slot, s.sup, elapsedMs);
      if (sup !== undefined) resumed.push(sup);
    }
  }
  // Once the whole table is back: what clients wrote meanwhile is acted on before anything else.
  for (const sup of resumed) sup.takeWaitingControl();
}

function resumeSlot(ctx: ReexecContext, entry: ServiceEntry, slot: Slot, snap: NonNullable<SlotSnapshot['sup']>, elapsedMs: number): Supervisor | undefined {
  let sup: Supervisor;
  try {
    sup = ctx.host.resumeSupervisor(snap, ctx.supervisorHost, ctx.plumbing.stdioFor(entry, slot), elapsedMs, false);
  } catch (err) {
    // Its fds close, so the lock is free for the supervisor the next scan starts.
    for (const fd of [snap.held?.lockFd, snap.held?.controlFd, snap.readinessFd]) if (fd !== undefined) ctx.host.files.close(fd);
    ctx.report('error', `unable to carry on supervising ${snap.dir} after the re-exec: ${strerror(err)}`);
    return undefined;
  }
  ctx.table.attach(sup, entry, slot);
  return sup;
}
