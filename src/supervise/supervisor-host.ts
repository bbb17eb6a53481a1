/** What a Supervisor needs from the outside world (supervisor.ts): the scanner provides it, tests fake it. */
import { type SpawnOptions } from '../sys/spawn.ts';
import { type Tain } from '../s6/tai.ts';
import type { SupervisorFiles } from './servicefiles.ts';
import type { TimerHandle } from './supervisedir.ts';
import type { Supervisor } from './supervisor.ts';
import type { NotifyHub } from './notify-hub.ts';

/**
 * The wait status given for an adopted process, which is not our child: its real status
 * cannot be read. It reads as "exited 111" (s6's code for a system error), so finish
 * scripts and the death tally see a failure, not a clean exit.
 */
export const UNKNOWN_WSTAT = 111 << 8;

/** What an event byte does not say, given with it where the supervisor knows it (the event stream's records). */
export interface EventDetail {
  /** `D` after a finish script: its wait status. */
  finishWstat?: number;
  /** `D`: the restart is due this many ms from now (0: at once); absent: no restart. */
  restartInMs?: number;
  /** `O`: why the restart policy gave the service up. */
  reason?: string;
  /** No byte: the service was found unhealthy (health.ts), for this reason; it is being restarted. */
  unhealthy?: string;
  /** No byte: the service said this STATUS= text. */
  statusText?: string;
}

/** Everything a Supervisor needs from the outside world; the scanner provides it, tests fake it. */
export interface SupervisorHost {
  /** Starts a process; `onExit` gets its raw wait status once it is reaped. Throws SysError. */
  spawn(opts: SpawnOptions, onExit: (wstat: number) => void): number;
  /**
   * Watches a process this image did not spawn: a child of the previous image (re-exec), or
   * a process that is no child at all (adoption, through a pidfd: its wait status cannot be
   * read, `onExit` gets UNKNOWN_WSTAT). false: it is gone already.
   */
  watch(pid: number, onExit: (wstat: number) => void, adopted: boolean): boolean;
  /** Sends a signal (no error if the process is gone). */
  kill(pid: number, signal: number): void;
  /** Monotonic milliseconds: deadlines, timeouts and the one-second rule (never stepped). */
  monotonicMs(): number;
  /** The real-time clock as TAI64N, read at each call: status stamps only, never a deadline. */
  now(): Tain;
  /** Calls `fn` once, `ms` from now, unless cancelled. */
  setTimer(ms: number, fn: () => void): TimerHandle;
  /** A diagnostic, already phrased for a person. */
  report(level: 'info' | 'warning' | 'error', message: string): void;
  /** The supervisor has ended (s6-supervise exited). */
  exited(sup: Supervisor): void;
  /** Event bytes were just sent (status already written), with what they alone do not say. Optional observer. */
  event?(sup: Supervisor, event: string, detail?: EventDetail): void;
  /** The files and fds of the service directory. */
  files: SupervisorFiles;
  /** The scanner's sd_notify socket, for services with flag-sd-notify (absent: none). */
  notifyHub?: NotifyHub;
}

