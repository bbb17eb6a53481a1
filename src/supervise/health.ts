/**
 * What a Supervisor watches in a running service, one ServiceHealth each: s6's readiness
 * pipe (notification-fd), and t6's additions, each opt-in by a file of the service
 * directory (DESIGN.md decision 12):
 *
 *   flag-sd-notify    `run` gets NOTIFY_SOCKET; READY=1 is readiness (the same `U`), and
 *                     STATUS=, STOPPING=1, RELOADING=1, MAINPID=, WATCHDOG=1,
 *                     WATCHDOG_USEC=, EXTEND_TIMEOUT_USEC=, ERRNO= are taken (notify-hub.ts)
 *   watchdog-timeout  ms: without a keep-alive (WATCHDOG=1) for this long the service is
 *                     unhealthy; a WATCHDOG_USEC= from the service sets it too
 *   probe/            a readiness probe, and a liveness one with probe/liveness (probes.ts)
 *
 * An unhealthy service (a missed watchdog, a liveness probe failing N times, a readiness
 * probe out of attempts, WATCHDOG=trigger) is the Supervisor's to stop and restart; the
 * reason goes into `supervise/t6-health` with the rest of what s6's status cannot hold:
 * the STATUS= text, the main pid, and a give-up's reason. That file is written only when
 * something changed, at most once per HEALTH_WRITE_MS, and is absent for a service that
 * uses none of this.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TimerHandle } from './supervisedir.ts';
import { HEALTH_FILE, type HealthRecord, emptyHealth } from '../s6/healthfile.ts';

export { HEALTH_FILE, type HealthRecord } from '../s6/healthfile.ts';
import type { ReadinessPipe } from './servicefiles.ts';
import type { ServiceSettings } from './settings.ts';
import type { NotifyRegistration } from './notify-hub.ts';
import type { SupervisorHost } from './supervisor-host.ts';
import type { NotifyMessage } from './sd-notify.ts';
import { bugText } from '../sys/errors.ts';
import { withProbeClock } from './probe-clock.ts';
import { Prober, type ProberDeps } from './probes.ts';
import { readProbeSpec } from './probe-spec.ts';

/** Coalesces STATUS= floods: the health file is written at most this often. */
const HEALTH_WRITE_MS = 100;

/** What a ServiceHealth needs from its Supervisor and the host. */
export interface HealthHost {
  readonly name: string;
  dir(): string;
  readonly settings: ServiceSettings;
  /** The Supervisor's host: processes, timers, reports, and the scanner's sd_notify socket. */
  readonly system: ProberDeps & Pick<SupervisorHost, 'report' | 'notifyHub'>;
  /** Writes (or, with undefined, removes) the health file; throws. Default: writeHealthFile. */
  writeHealth?(file: string, text: string | undefined): void;
}

/** What a ServiceHealth tells its Supervisor. */
export interface HealthEvents {
  /** Readiness from sd_notify or a probe (ignored by the Supervisor if already ready). */
  ready(): void;
  /** Stop `run` and restart it, for this reason. */
  unhealthy(reason: string): void;
  /** A record of the event stream's, beyond s6's bytes (the STATUS= text). */
  said(kind: 'status-text', text: string): void;
}

/** Does the record say anything (else the file is absent)? */
export function healthSaysAnything(r: HealthRecord): boolean {
  return r.statusText !== null || r.mainPid !== null || r.stopping || r.reloading || r.errno !== null ||
    r.watchdogMs !== null || r.lastFailure !== null || r.givenUp !== null;
}

/** Writes the health file atomically (a `.new`, then rename), or removes it (undefined). */
export function writeHealthFile(file: string, text: string | undefined): void {
  if (text === undefined) {
    fs.rmSync(file, { force: true });
    return;
  }
  fs.writeFileSync(`${file}.new`, text);
  fs.renameSync(`${file}.new`, file);
}

/** One service's sd_notify, watchdog and probes. */
export class ServiceHealth {
  readonly #host: HealthHost;
  readonly #events: HealthEvents;
  #record: HealthRecord = emptyHealth();
  /** The record as last written (JSON), '' when the file is absent. */
  #written = '';
  #writeTimer: TimerHandle | undefined;
  /** notification-fd's pipe, until it says ready (or `run` dies). */
  #pipe: ReadinessPipe | undefined;
  #registration: NotifyRegistration | undefined;
  #prober: Prober | undefined;
  #watchdog: TimerHandle | undefined;
  #watchdogDue = 0;

  constructor(host: HealthHost, events: HealthEvents) {
    this.#host = host;
    // What the Supervisor does with an event must not reach the socket, the Prober or a timer
    // that called it (the shared notify socket would close for every service): said, not thrown.
    const guard = <A extends unknown[]>(what: string, fn: (...args: A) => void) => (...args: A): void => {
      try {
        fn(...args);
      } catch (err) {
        host.system.report('error', `${host.name}: internal error on ${what}: ${bugText(err)}`);
      }
    };
    this.#events = {
      ready: guard('readiness', () => events.ready()),
      unhealthy: guard('a failed health check', (reason: string) => events.unhealthy(reason)),
      said: guard('STATUS=', (kind: 'status-text', text: string) => events.said(kind, text)),
    };
  }

  /** What the health file says now. */
  get record(): Readonly<HealthRecord> { return this.#record; }

  /**
   * The variables `run` gets besides t6-svscan's own: NOTIFY_SOCKET with flag-sd-notify,
   * WATCHDOG_USEC with a watchdog-timeout. Empty for a service without them (s6's env).
   */
  env(): string[] {
    if (!this.#host.settings.has('flag-sd-notify')) return [];
    const address = this.#host.system.notifyHub?.address();
    if (address === undefined) return [];
    const vars = [`NOTIFY_SOCKET=${address}`];
    const watchdogMs = this.#host.settings.uint('watchdog-timeout', 0);
    if (watchdogMs > 0) vars.push(`WATCHDOG_USEC=${watchdogMs * 1000}`);
    return vars;
  }

  /** `run` was spawned as `runPid`: listen, probe, watch (each if its file is there). */
  started(runPid: number, pipe: ReadinessPipe | undefined): void {
    this.#stopMonitors();
    const hasReadiness = pipe !== undefined;
    if (pipe !== undefined) this.#watchPipe(pipe);
    const r = this.#record;
    Object.assign(r, { statusText: null, mainPid: null, stopping: false, reloading: false, errno: null, watchdogMs: null });
    const settings = this.#host.settings;
    if (settings.has('flag-sd-notify')) {
      this.#registration = this.#host.system.notifyHub?.register(runPid, (msg) => this.#message(msg));
    }
    if (settings.has('probe')) this.#startProbe();
    const watchdogMs = settings.uint('watchdog-timeout', 0);
    if (watchdogMs > 0) {
      r.watchdogMs = watchdogMs;
      // A service that will say it is ready is watched from then; any other from now.
      if (!hasReadiness && !settings.has('flag-sd-notify') && !settings.has('probe')) this.#petWatchdog();
    }
    this.#changed();
  }

  /** The service became ready (any source): the watchdog starts, the probe turns to liveness. */
  becameReady(): void {
    if (this.#record.watchdogMs !== null && this.#watchdog === undefined) this.#petWatchdog();
  }

  /** `run` died: every monitor stops. */
  ended(): void {
    this.#stopMonitors();
    this.#record.watchdogMs = null;
    this.#changed();
  }

  /** The Supervisor stops the service as unhealthy: noted with its reason. */
  failed(reason: string): void {
    this.#record.lastFailure = reason;
    this.#stopMonitors();
    this.#changed();
  }

  /** Given up (or no longer, with undefined): noted. */
  setGivenUp(reason: string | undefined): void {
    this.#record.givenUp = reason ?? null;
    this.#changed();
  }

  /** Re-exec: the record travels, and the readiness pipe's read end, still open; monitors are started again by `resumed`. */
  handOver(): { record: HealthRecord; readinessFd: number | undefined } {
    const readinessFd = this.#pipe?.handOver();
    this.#pipe = undefined;
    this.#stopMonitors();
    this.#writeTimer?.cancel();
    this.#writeTimer = undefined;
    return { record: { ...this.#record }, readinessFd };
  }

  /** The next image: the record back, and monitors again for a `run` still running. */
  resumed(record: HealthRecord | undefined, runPid: number, ready: boolean, pipe: ReadinessPipe | undefined): void {
    if (record !== undefined) this.#record = { ...emptyHealth(), ...record };
    this.#written = record === undefined ? '' : JSON.stringify(this.#record);
    if (pipe !== undefined) this.#watchPipe(pipe);
    if (runPid <= 0) return;
    const settings = this.#host.settings;
    if (settings.has('flag-sd-notify')) this.#registration = this.#host.system.notifyHub?.register(runPid, (msg) => this.#message(msg));
    if (settings.has('probe') && (!ready || settings.has('probe/liveness'))) this.#startProbe(ready);
    if (ready && this.#record.watchdogMs !== null) this.#petWatchdog();
  }

  /** Supervisor gone: every monitor and timer stops. */
  close(): void {
    this.#stopMonitors();
    this.#writeTimer?.cancel();
    this.#writeTimer = undefined;
  }

  #watchPipe(pipe: ReadinessPipe): void {
    this.#pipe = pipe;
    pipe.watch(() => {
      if (this.#pipe !== pipe) return;
      this.#pipe = undefined;
      this.#events.ready();
    });
  }

  #startProbe(alreadyReady = false): void {
    const dir = this.#host.dir();
    const read = readProbeSpec(dir);
    if (read.problem !== undefined) {
      this.#host.system.report('warning', `${this.#host.name}: ${read.problem} - not probing`);
      return;
    }
    if (read.spec === undefined) return;
    this.#prober = new Prober(read.spec, dir, withProbeClock(this.#host.system), {
      onReady: () => this.#events.ready(),
      onGaveUp: (reason) => this.#events.unhealthy(reason),
      onUnhealthy: (reason) => this.#events.unhealthy(reason),
    }, alreadyReady);
  }

  #message(msg: NotifyMessage): void {
    const r = this.#record;
    if (msg.mainPid !== undefined && this.#registration !== undefined) {
      if (this.#registration.alias(msg.mainPid)) r.mainPid = msg.mainPid;
      else this.#host.system.report('warning', `${this.#host.name}: MAINPID=${msg.mainPid} refused: not a process of the service`);
    }
    if (msg.status !== undefined && msg.status !== r.statusText) {
      r.statusText = msg.status;
      this.#events.said('status-text', msg.status);
    }
    if (msg.errno !== undefined) r.errno = msg.errno;
    if (msg.stopping) r.stopping = true;
    if (msg.reloading) r.reloading = true;
    if (msg.watchdogUsec !== undefined) {
      r.watchdogMs = msg.watchdogUsec > 0 ? Math.max(1, Math.round(msg.watchdogUsec / 1000)) : null;
      if (r.watchdogMs === null) this.#stopWatchdog();
      else this.#petWatchdog();
    }
    if (msg.extendTimeoutUsec !== undefined && this.#watchdog !== undefined) {
      const until = this.#host.system.monotonicMs() + msg.extendTimeoutUsec / 1000;
      if (until > this.#watchdogDue) this.#armWatchdog(until - this.#host.system.monotonicMs());
    }
    if (msg.watchdog === 'ping' && r.watchdogMs !== null) this.#petWatchdog();
    if (msg.ready) {
      r.reloading = false;
      this.#events.ready();
    }
    this.#changed();
    if (msg.watchdog === 'trigger') this.#events.unhealthy('watchdog: the service asked to be restarted (WATCHDOG=trigger)');
  }

  #petWatchdog(): void {
    const ms = this.#record.watchdogMs;
    if (ms !== null) this.#armWatchdog(ms);
  }

  #armWatchdog(ms: number): void {
    this.#watchdog?.cancel();
    this.#watchdogDue = this.#host.system.monotonicMs() + ms;
    this.#watchdog = this.#host.system.setTimer(ms, () => {
      this.#watchdog = undefined;
      this.#events.unhealthy(`watchdog: no keep-alive (WATCHDOG=1) within ${this.#record.watchdogMs ?? ms} ms`);
    });
  }

  #stopWatchdog(): void {
    this.#watchdog?.cancel();
    this.#watchdog = undefined;
  }

  #stopMonitors(): void {
    this.#pipe?.close();
    this.#pipe = undefined;
    this.#registration?.cancel();
    this.#registration = undefined;
    this.#prober?.stop();
    this.#prober = undefined;
    this.#stopWatchdog();
  }

  /** Something in the record changed: the file follows, coalesced. */
  #changed(): void {
    if (this.#writeTimer !== undefined) return;
    const text = this.#text();
    if (text === this.#written) return;
    this.#write(text);
    // Whatever changes in the next HEALTH_WRITE_MS waits for this timer.
    this.#writeTimer = this.#host.system.setTimer(HEALTH_WRITE_MS, () => {
      this.#writeTimer = undefined;
      const next = this.#text();
      if (next !== this.#written) this.#write(next);
    });
  }

  /** The file's text: '' (absent) while the record says nothing. */
  #text(): string {
    return healthSaysAnything(this.#record) ? JSON.stringify(this.#record) : '';
  }

  #write(text: string): void {
    const file = path.join(this.#host.dir(), 'supervise', HEALTH_FILE);
    try {
      (this.#host.writeHealth ?? writeHealthFile)(file, text === '' ? undefined : `${text}\n`);
      this.#written = text;
    } catch (err) {
      this.#host.system.report('warning', `unable to write ${file}: ${(err as Error).message}`);
    }
  }
}
