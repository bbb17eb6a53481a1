/**
 * Adoption: a t6-svscan started on a scan directory whose services still run (its
 * predecessor was killed) takes them over instead of starting second copies.
 *
 * A service is adopted when `supervise/t6-start` (written right after each spawn of `run`:
 * its pid and its start time in /proc/PID/stat) names a process that is alive and started
 * at that same time — a pid reused by another process does not match. The new supervisor
 * then carries on from `supervise/status` (want up or down, stamps), watches the process
 * through a pidfd and restarts it by the usual rules when it dies.
 *
 * What cannot be taken over (README, "What t6 survives"): the exit status of the adopted
 * process, which is not our child (UNKNOWN_WSTAT); the in-process loggers' and the
 * catch-all's pipes, whose read ends died with the predecessor (a service writing to them
 * gets EPIPE/SIGPIPE and is restarted on a new pipe); the readiness of a service that was
 * not ready yet; a `finish` that was running (the service is then started afresh); and
 * the pending deadlines (timeout-kill, the one-second rule), which start over.
 *
 * A service with a supervised logger (`log/run`) keeps its pipe: both ends are opened
 * again through the adopted logger's `/proc/PID/fd/0`, so the service, its logger and a
 * restart of either go on writing into the same pipe.
 */
import fs from 'node:fs';
import path from 'node:path';
import { decodeStatus } from '../s6/status.ts';
import { procStartTime } from '../sys/proc.ts';
import { O_NONBLOCK, O_RDONLY, O_WRONLY, O_CLOEXEC, open, close, setNonblocking } from '../sys/fd.ts';
import { START_RECORD } from './servicefiles.ts';
import { statusSnapshot, type SupervisorSnapshot } from './handover.ts';
import type { Tain } from '../s6/tai.ts';

/** The live process `dir`'s `run` started, if `supervise/t6-start` names one that still runs. */
export function adoptablePid(dir: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, 'supervise', START_RECORD), 'latin1');
  } catch {
    return undefined;
  }
  const m = /^(\d+) (\d+)\n$/.exec(text);
  if (m === null) return undefined;
  const pid = Number(m[1]);
  if (pid <= 1) return undefined;
  let start: bigint | undefined;
  try { start = procStartTime(pid); } catch { return undefined; }
  return start !== undefined && start === BigInt(m[2]!) ? pid : undefined;
}

/** A snapshot to resume `dir`'s supervisor from, if its `run` still runs (see the header); `now` stamps a status that does not name it. */
export function adoptionSnapshot(name: string, dir: string, now: Tain): SupervisorSnapshot | undefined {
  const pid = adoptablePid(dir);
  if (pid === undefined) return undefined;
  let status;
  try { status = decodeStatus(fs.readFileSync(path.join(dir, 'supervise', 'status'))); } catch { /* none: made below */ }
  if (status === undefined || status.pid !== pid || status.finishing) {
    // The status was not written after that spawn (the predecessor died in between): it is up.
    status = { stamp: now, readyStamp: now, pid, wstat: 0, paused: false, finishing: false, wantUp: status?.wantUp ?? true, ready: false };
  }
  return { name, dir, state: 'up', status: statusSnapshot(status), runPid: pid, finishPid: 0, pendingKill: false };
}

/**
 * The pipe an adopted logger (`dir/log`) reads, opened again through its /proc/PID/fd/0:
 * [read end, write end], close-on-exec and blocking; undefined if there is no such logger
 * or its stdin is not a pipe that can be opened.
 */
export function adoptLoggerPipe(logDir: string): [number, number] | undefined {
  const pid = adoptablePid(logDir);
  if (pid === undefined) return undefined;
  const stdin = `/proc/${pid}/fd/0`;
  try {
    if (!fs.statSync(stdin).isFIFO()) return undefined;
  } catch {
    return undefined;
  }
  let read = -1;
  try {
    // Non-blocking opens (a FIFO's blocking open waits for the other side), then blocking fds.
    read = open(stdin, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    const write = open(stdin, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    setNonblocking(read, false);
    setNonblocking(write, false);
    return [read, write];
  } catch {
    if (read >= 0) close(read);
    return undefined;
  }
}
