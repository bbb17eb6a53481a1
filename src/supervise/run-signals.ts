/**
 * A Supervisor's signals to its processes: the control bytes' signals to `run` (or its
 * process group), s6's "stop" (down-signal, SIGCONT, then SIGKILL at timeout-kill), the
 * same for a service t6 found unhealthy, and the SIGKILL of a finish script out of time.
 * The Supervisor keeps the pids and the one timer; this keeps whether a kill is pending.
 */
import path from 'node:path';
import { SIGNALS } from '../sys/signals.ts';
import type { ServiceSettings } from './settings.ts';

const KILL_REARM_MS = 5_000;
/** An unhealthy service that ignores its down-signal is killed after this, without a timeout-kill of its own. */
const UNHEALTHY_KILL_MS = 5_000;

/** What RunSignals needs from its Supervisor and the host. */
export interface RunSignalsDeps {
  readonly name: string;
  dir(): string;
  runPid(): number;
  finishPid(): number;
  kill(pid: number, signal: number): void;
  exists(file: string): boolean;
  report(level: 'warning', message: string): void;
  /** Arms the Supervisor's one timer (its `timeout` input comes back here as killRun/killFinish). */
  arm(ms: number): void;
  readonly settings: ServiceSettings;
}

/** Signals to one service's `run` and `finish`. */
export class RunSignals {
  readonly #deps: RunSignalsDeps;
  /** A stop is under way and the timer, when it fires, means SIGKILL. */
  pendingKill = false;

  constructor(deps: RunSignalsDeps) {
    this.#deps = deps;
  }

  /** A signal to `run`, if it lives. */
  run(signal: number): void {
    const pid = this.#deps.runPid();
    if (pid > 0) this.#deps.kill(pid, signal);
  }

  /** killpg(run): run leads its own session. Never with no pid: kill(-0) is our own group. */
  group(signal: number): void {
    const pid = this.#deps.runPid();
    if (pid > 0) this.#deps.kill(-pid, signal);
  }

  /** The down-signal (SIGTERM unless `down-signal` says otherwise). */
  downSignal(): number { return this.#deps.settings.signal('down-signal', SIGNALS.TERM); }

  /** s6's "stop", signal half: down-signal then SIGCONT; SIGKILL armed at timeout-kill if set. */
  stop(): void {
    this.run(this.downSignal());
    this.run(SIGNALS.CONT);
    const timeoutKill = this.#deps.settings.uint('timeout-kill', 0);
    if (timeoutKill > 0 && this.#deps.runPid() > 0) {
      this.pendingKill = true;
      this.#deps.arm(timeoutKill);
    }
  }

  /** t6's unhealthy service: as a stop, but SIGKILL always follows (timeout-kill, else 5 s), and the service stays wanted up. */
  stopUnhealthy(): void {
    this.run(this.downSignal());
    this.run(SIGNALS.CONT);
    this.pendingKill = true;
    this.#deps.arm(this.#deps.settings.uint('timeout-kill', 0) || UNHEALTHY_KILL_MS);
  }

  /** timeout-kill reached: SIGKILL and SIGCONT to run, or to its process group with flag-timeout-killpg (s6 ≥ 2.13). */
  killRun(): void {
    const pid = this.#deps.runPid();
    if (!this.pendingKill || pid === 0) return;
    const group = this.#deps.exists(path.join(this.#deps.dir(), 'flag-timeout-killpg'));
    this.#deps.report('warning', `${this.#deps.name}: timeout-kill reached - sending SIGKILL to ${group ? 'process group' : 'pid'} ${pid}`);
    const target = group ? -pid : pid;
    this.#deps.kill(target, SIGNALS.KILL);
    this.#deps.kill(target, SIGNALS.CONT);
    this.#deps.arm(KILL_REARM_MS);
  }

  /** timeout-finish reached: SIGKILL to finish, re-armed in case it lingers. */
  killFinish(): void {
    const pid = this.#deps.finishPid();
    if (pid === 0) return;
    this.#deps.report('warning', `${this.#deps.name}: finish script lifetime reached maximum value - sending it a SIGKILL`);
    this.#deps.kill(pid, SIGNALS.CONT);
    this.#deps.kill(pid, SIGNALS.KILL);
    this.#deps.arm(KILL_REARM_MS);
  }
}
