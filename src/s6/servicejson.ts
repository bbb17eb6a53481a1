/**
 * The service object: the one JSON shape in which every `--json` output of t6 describes a
 * service (`t6-svstat --json`, single and -a; `t6-rc list|listall|diff --json`). The schema
 * is docs/service.schema.json; README.md ("JSON output") says what each field means.
 *
 * Every object has every field: what a tool cannot know is null, never absent, so a program
 * reads `o.pid` without first asking whether it is there. These builders are pure
 * functions of what the tools read (servicefacts.ts reads it): the status record, the
 * `down` file, the death tally, the logger's files, and t6-rc's state bit.
 */
import type { DeathRecord } from './deathtally.ts';
import type { HealthRecord } from './healthfile.ts';
import { type SupervisorStatus, isUp } from './status.ts';
import { signalName } from './signals.ts';
import { type ServiceView, effectiveStamp } from './svstat.ts';
import { type Tain, tainToUnixMs } from './tai.ts';
import { decodeWaitStatus } from '../sys/wait.ts';

/** The kinds of service an object can describe (the schema's `type` enum). */
export const SERVICE_TYPES = ['longrun', 'oneshot', 'inside-scanner'] as const;
/** `longrun`, `oneshot`, or `inside-scanner` (a directory t6-svscan serves itself). */
export type ServiceType = (typeof SERVICE_TYPES)[number];

/** The states that `supervise/status` tells apart (the schema's `state` enum, null aside). */
export const SERVICE_STATES = ['up', 'finishing', 'down'] as const;
/** `up`: run runs; `finishing`: run died and finish runs; `down`: neither runs. */
export type ServiceState = (typeof SERVICE_STATES)[number];

/** Where a service's output goes (the schema's `logger` enum). */
export const LOGGER_KINDS = ['in-process', 'external', 'none'] as const;
/** `in-process` (log/t6-log), `external` (log/run, or a pipeline's consumer), `none`. */
export type LoggerJson = (typeof LOGGER_KINDS)[number];

/** What t6-svscan does itself in a directory with no `run` (the schema's `insideScanner` enum). */
export const INSIDE_SCANNER_KINDS = ['logger', 'shutdownd'] as const;
/** `logger`: an in-process logger (a `t6-log` file); `shutdownd`: the shutdown daemon's FIFO. */
export type InsideScanner = (typeof INSIDE_SCANNER_KINDS)[number];

/** `up` or `down`: a want, or t6-rc's bit. */
export type UpDown = 'up' | 'down';

/** How `run` last ended: exactly one of `code` and `signal` is non-null. */
export interface LastExit {
  /** The exit code, or null when a signal killed it. */
  code: number | null;
  /** `SIGTERM`…, or null when it exited. */
  signal: string | null;
  /** The signal's number, or null when it exited. */
  signum: number | null;
  /** When it ended (ISO 8601), or null when only the status file knows of it. */
  at: string | null;
}

/** One service, as docs/service.schema.json describes it. */
export interface ServiceJson {
  name: string;
  type: ServiceType;
  /** A supervisor holds the directory's lock (false for oneshots and inside-scanner directories). */
  supervised: boolean;
  insideScanner: InsideScanner | null;
  /** t6-rc's state bit; null outside t6-rc. */
  rc: UpDown | null;
  want: UpDown | null;
  state: ServiceState | null;
  /** run's pid while `state` is up. */
  pid: number | null;
  since: string | null;
  ready: boolean | null;
  readySince: string | null;
  normallyUp: boolean | null;
  paused: boolean | null;
  lastExit: LastExit | null;
  deathTally: number | null;
  restarts: number | null;
  logger: LoggerJson;
  /** t6's health record (supervise/t6-health: sd_notify STATUS=, watchdog, give-up…), or null when there is none. */
  health: HealthRecord | null;
  /** Why the rest is unknown, when reading the directory failed. */
  error: string | null;
}

/** ISO 8601 (UTC, milliseconds) of a TAI64N stamp; null for one no Date can hold (a zeroed stamp). */
export function isoOf(t: Tain): string | null {
  const date = new Date(tainToUnixMs(t));
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

const upDown = (up: boolean): UpDown => (up ? 'up' : 'down');

/** An object that knows only its name, type and logger: every other fact null. */
export function unknownService(name: string, type: ServiceType, logger: LoggerJson): ServiceJson {
  return {
    name, type, supervised: false, insideScanner: null, rc: null, want: null, state: null, pid: null,
    since: null, ready: null, readySince: null, normallyUp: null, paused: null, lastExit: null,
    deathTally: null, restarts: null, logger, health: null, error: null,
  };
}

/** The state that a status record says. */
export function stateOf(s: SupervisorStatus): ServiceState {
  if (isUp(s)) return 'up';
  return s.finishing ? 'finishing' : 'down';
}

/**
 * The last end of run: the death tally's last record (it has the time), else the status
 * record's wait status when it is not 0 (max-death-tally 0 keeps no tally); null when
 * neither knows of one: a fresh supervisor zeroes both.
 */
export function lastExitOf(s: SupervisorStatus, deaths: readonly DeathRecord[]): LastExit | null {
  const last = deaths.at(-1);
  if (last !== undefined) {
    const at = isoOf(last.stamp);
    if (last.signal !== 0) return { code: null, signal: signalName(last.signal), signum: last.signal, at };
    return { code: last.exitCode, signal: null, signum: null, at };
  }
  if (s.wstat === 0) return null;
  const ws = decodeWaitStatus(s.wstat);
  if (ws.signaled) return { code: null, signal: signalName(ws.signal), signum: ws.signal, at: null };
  return { code: ws.exitCode, signal: null, signum: null, at: null };
}

/**
 * Restarts as far as the death tally remembers: every death of run was followed by a new
 * start, except the last one while run is not running. A lower bound once the tally is
 * full (max-death-tally records, 100 by default), since the oldest deaths are forgotten.
 */
export function restartsOf(state: ServiceState, deaths: number): number {
  return Math.max(0, state === 'up' ? deaths : deaths - 1);
}

/** A servicedir that a supervisor holds: its status record, `down` file and death tally. */
export function supervisedService(name: string, logger: LoggerJson, view: ServiceView, deaths: readonly DeathRecord[]): ServiceJson {
  const s = view.status;
  const state = stateOf(s);
  // As `t6-svstat -o ready`: the flag counts only while a process runs.
  const ready = s.pid !== 0 && s.ready;
  return {
    ...unknownService(name, 'longrun', logger),
    supervised: true,
    want: upDown(s.wantUp),
    state,
    pid: state === 'up' ? s.pid : null,
    since: isoOf(effectiveStamp(view)),
    ready,
    readySince: ready ? isoOf(s.readyStamp) : null,
    normallyUp: view.normallyUp,
    paused: s.paused,
    lastExit: lastExitOf(s, deaths),
    deathTally: deaths.length,
    restarts: restartsOf(state, deaths.length),
  };
}

/** A oneshot, as t6-rc's state file has it: up means its `up` script succeeded (so it counts as ready). */
export function oneshotService(name: string, up: boolean): ServiceJson {
  return { ...unknownService(name, 'oneshot', 'none'), rc: upDown(up), want: upDown(up), state: upDown(up), ready: up };
}

/** The same object with t6-rc's state bit. */
export function withRcBit(o: ServiceJson, up: boolean): ServiceJson {
  return { ...o, rc: upDown(up) };
}
