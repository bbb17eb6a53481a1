/**
 * The state one t6-svscan image hands to the next when it re-executes itself (re-exec with
 * hand-over, systemd's daemon-reexec): a versioned JSON document in a memfd whose number
 * is in the environment variable T6_HANDOVER_FD. The fds it names (locks, control FIFOs,
 * readiness and logger pipes) are kept open across execve; the processes stay children,
 * since execve keeps the pid.
 *
 * Times: deadlines are written as "in N ms" from `writtenAtMs`, a reading of the monotonic
 * clock (CLOCK_MONOTONIC, which execve does not reset), so the next image subtracts the
 * time the exec took. Stamps are TAI64N text.
 */
import type { EventLogSnapshot } from './events.ts';
import fs from 'node:fs';
import { memfdCreate, setCloexec } from '../sys/fd.ts';
import type { SupervisorState } from './actions.ts';
import type { HealthRecord } from './health.ts';
import type { NotifyHandOver } from './notify-hub.ts';
import type { RestartPolicySnapshot } from './restart-policy.ts';
import type { SupervisorStatus } from '../s6/status.ts';
import { tainFormat, tainParse, type Tain } from '../s6/tai.ts';

/** The environment variable that carries the hand-over memfd's number. */
export const HANDOVER_ENV = 'T6_HANDOVER_FD';
/** Bumped whenever a field changes meaning: an image refuses a document of another version. */
export const HANDOVER_VERSION = 1;
/** Bound on the document (a corrupt fd must not make the next image read gigabytes). */
const MAX_HANDOVER_BYTES = 64 * 1024 * 1024;

/** A status record with its stamps as TAI64N text (derived: the record's fields stay one list). */
export type StatusSnapshot = Omit<SupervisorStatus, 'stamp' | 'readyStamp'> & { stamp: string; readyStamp: string };

/** A status record as the document holds it. */
export function statusSnapshot(st: SupervisorStatus): StatusSnapshot {
  return { ...st, stamp: tainFormat(st.stamp), readyStamp: tainFormat(st.readyStamp) };
}

/** A status record from the document; a malformed stamp becomes `now`. */
export function statusFromSnapshot(s: StatusSnapshot, now: Tain): SupervisorStatus {
  return { ...s, stamp: tainParse(s.stamp) ?? now, readyStamp: tainParse(s.readyStamp) ?? now };
}

/** `supervise/lock` and `supervise/control`, still open. */
export interface HeldFds {
  /**
   * Absent: the lock was parked in the lock keeper's fd table (sys/lockkeeper.ts), which
   * execve ends; the next image locks the file again (it is unlocked in between).
   */
  lockFd?: number;
  controlFd: number;
}

/** One Supervisor. */
export interface SupervisorSnapshot {
  name: string;
  dir: string;
  state: SupervisorState;
  status: StatusSnapshot;
  runPid: number;
  finishPid: number;
  pendingKill: boolean;
  /** The supervisor's one timer, due in so many ms; absent: none armed. */
  timerInMs?: number;
  /** s6's nextstart (the one-second rule), in so many ms (negative: past); absent: none. */
  nextStartInMs?: number;
  /** The read end of run's readiness pipe, while it is watched. */
  readinessFd?: number;
  /** Absent: supervise/ was not set up (degraded mode); the next image sets it up afresh. */
  held?: HeldFds;
  /** t6's health record (health.ts), when it says anything. */
  health?: HealthRecord;
  /** The restart policy's count (restart-policy.ts), when it has one. */
  policy?: RestartPolicySnapshot;
}

/** One supervisor place of an entry. */
export interface SlotSnapshot {
  name: string;
  /** The last supervisor start was so many ms ago (the one-second spacing of restarts). */
  lastStartAgoMs?: number;
  sup?: SupervisorSnapshot;
}

/** What reads an entry's pipe inside t6-svscan, and the bytes it had read but not yet logged. */
export interface ReaderSnapshot {
  kind: 'logger' | 'sink';
  /** base64 of the partial line (and anything read after it). */
  partial: string;
}

/** One service directory of the scan directory. */
export interface EntrySnapshot {
  key: string;
  name: string;
  active: boolean;
  dir: string;
  pipe?: [number, number];
  writeClosed: boolean;
  producerFor?: string;
  reader?: ReaderSnapshot;
  main: SlotSnapshot;
  log?: SlotSnapshot;
}

/** The whole scanner. */
export interface ScannerSnapshot {
  /** `.s6-svscan/lock`, held. */
  lockFd: number;
  /** `.s6-svscan/control`, open read-write; absent if it was not set up. */
  controlFd?: number;
  entries: EntrySnapshot[];
  pipelines: { name: string; read: number; write?: number }[];
  catchAll?: { pipe: [number, number]; partial: string };
  /** pid 1's own messages that came while the logs were being handed over, in order. */
  messages: string[];
  /** Signals that came during the hand-over, for the next image to act on. */
  signals: string[];
  /** The event log's numbering and ring (events.ts); absent from an older image. */
  events?: EventLogSnapshot;
  /** The sd_notify socket (notify-hub.ts), still bound; absent: none was. */
  notify?: NotifyHandOver;
}

/** The document. */
export interface Handover {
  version: number;
  /** Monotonic ms (CLOCK_MONOTONIC) when it was written. */
  writtenAtMs: number;
  /** Why the image re-executed (a request, or the fault that forced it). */
  reason: string;
  scanner: ScannerSnapshot;
}

/** CLOCK_MONOTONIC in ms: the same clock in both images (performance.now() restarts at 0). */
export function monotonicNowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Every fd a snapshot names, to be kept open across execve. */
export function handoverFds(s: ScannerSnapshot): number[] {
  const fds: number[] = [s.lockFd];
  if (s.controlFd !== undefined) fds.push(s.controlFd);
  for (const p of s.pipelines) fds.push(p.read, ...(p.write === undefined ? [] : [p.write]));
  if (s.catchAll !== undefined) fds.push(...s.catchAll.pipe);
  if (s.notify !== undefined) fds.push(s.notify.fd);
  for (const e of s.entries) {
    if (e.pipe !== undefined) fds.push(e.pipe[0], ...(e.writeClosed ? [] : [e.pipe[1]]));
    for (const slot of [e.main, e.log]) {
      const sup = slot?.sup;
      if (sup === undefined) continue;
      if (sup.held?.lockFd !== undefined) fds.push(sup.held.lockFd);
      if (sup.held !== undefined) fds.push(sup.held.controlFd);
      if (sup.readinessFd !== undefined) fds.push(sup.readinessFd);
    }
  }
  return fds;
}

/** Writes the document into a memfd kept across execve, and clears close-on-exec on every fd it names; returns the memfd. */
export function writeHandover(doc: Handover): number {
  const fd = memfdCreate('t6-handover', true);
  const data = Buffer.from(JSON.stringify(doc));
  let off = 0;
  while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, off);
  for (const kept of handoverFds(doc.scanner)) setCloexec(kept, false);
  return fd;
}

/** Reads and closes the document named by the environment, which is then removed from it; undefined when there is none. Throws on a bad one. */
export function takeHandover(env: NodeJS.ProcessEnv = process.env): Handover | undefined {
  const text = env[HANDOVER_ENV];
  if (text === undefined) return undefined;
  delete env[HANDOVER_ENV];
  const fd = Number(text);
  if (!Number.isInteger(fd) || fd < 3) throw new Error(`${HANDOVER_ENV}=${text}: not an fd`);
  try {
    const size = fs.fstatSync(fd).size;
    if (size > MAX_HANDOVER_BYTES) throw new Error(`hand-over document of ${size} bytes (the bound is ${MAX_HANDOVER_BYTES})`);
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = fs.readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    const doc = JSON.parse(buf.subarray(0, off).toString('utf8')) as Handover;
    if (doc.version !== HANDOVER_VERSION) throw new Error(`hand-over document version ${String(doc.version)} (this t6-svscan reads ${HANDOVER_VERSION})`);
    return doc;
  } finally {
    fs.closeSync(fd);
  }
}

/** Keeps an fd close-on-exec again once the next image owns it. */
export function ownFds(s: ScannerSnapshot): void {
  for (const fd of handoverFds(s)) {
    try { setCloexec(fd, true); } catch { /* reported where it is used */ }
  }
}
