/**
 * One Supervisor per service directory: s6-supervise's life as an object inside t6-svscan.
 *
 * The model (s6-spec/supervise-protocol.md §3): a service is in one of five states —
 * DOWN, UP (run alive), FINISH (finish alive), LASTUP and LASTFINISH (the same, but the
 * supervisor ends once the service is down). Every input (a control byte, the death of a
 * child, the timer, a request from the scanner) is looked up in ACTIONS[state][input]
 * (actions.ts); the action is the only code that changes anything, and `#enter` the only
 * place that changes the state. `#commit` (SuperviseDir.commit, supervisedir.ts) is the
 * only place that writes `supervise/status` and then sends the matching event, in that
 * order, so a client that subscribes first and reads the status second never misses a
 * transition. Starting `run` and `finish` is the Launcher's (launch.ts).
 *
 * The outside world comes through the host: processes, signals, clocks and timers, and
 * every file and fd (`host.files`, servicefiles.ts). Inputs never throw: a failure becomes
 * a warning (naming the file and the problem) plus a state or a retry deadline.
 */
import path from 'node:path';
import { decodeWaitStatus } from '../sys/wait.ts';
import { SIGNALS } from '../sys/signals.ts';
import { SIGNAL_COMMANDS, isSuperviseCommand } from '../s6/control.ts';
import { type SupervisorStatus } from '../s6/status.ts';
import { UNKNOWN_WSTAT, type EventDetail, type SupervisorHost } from './supervisor-host.ts';
import { statusFromSnapshot, statusSnapshot, type SupervisorSnapshot } from './handover.ts';
import { DEFAULT_DEATH_TALLY, MAX_DEATH_TALLY } from '../s6/deathtally.ts';
import { ACTIONS, type ActionName, type SupervisorInput, type SupervisorState } from './actions.ts';
import { SuperviseDir, type TimerHandle } from './supervisedir.ts';
import { ServiceSettings } from './settings.ts';
import { Launcher, type SpawnedRun, type SupervisorStdio } from './launch.ts';
import { strerror, bugText } from '../sys/errors.ts';
import { RestartPolicy } from './restart-policy.ts';
import { RunSignals } from './run-signals.ts';
import { ServiceHealth, healthSaysAnything } from './health.ts';

export { ACTIONS, type ActionName, type SupervisorInput, type SupervisorState } from './actions.ts';
export { SupervisorSetupError, type SupervisorFiles } from './servicefiles.ts';
export { type TimerHandle } from './supervisedir.ts';
export { type SupervisorStdio } from './launch.ts';
export { UNKNOWN_WSTAT, type EventDetail, type SupervisorHost } from './supervisor-host.ts';

const DEFAULT_TIMEOUT_FINISH_MS = 5_000;

/** One supervised service directory. */
export class Supervisor {
  /** The service's name as s6 gives it: `foo` or `foo/log`. */
  readonly name: string;
  #host: SupervisorHost;
  #files: SupervisorHost['files'];
  #launcher: Launcher;
  #settings: ServiceSettings;
  #state: SupervisorState | 'gone' = 'down';
  #status: SupervisorStatus;
  #runPid = 0;
  #finishPid = 0;
  #timer: TimerHandle | undefined;
  /** Monotonic time the timer is due at (for a re-exec's snapshot). */
  #timerDue = 0;
  /** Signals to run and finish, and whether a SIGKILL is pending (run-signals.ts). */
  #signals: RunSignals;
  /** supervise/ and event/: lock, control FIFO, status, events, death tally. */
  #superviseDir: SuperviseDir;
  /** What the event being committed does not say by itself (#commit sets it for its length). */
  #detail: EventDetail | undefined;
  /** When a service restarts: s6's one-second rule, or backoff and give-up (restart-policy.ts). */
  #policy: RestartPolicy;
  /** Readiness (notification-fd, sd_notify, probes), the watchdog, liveness (health.ts). */
  #health: ServiceHealth;

  private constructor(name: string, dir: string, host: SupervisorHost, stdio: SupervisorStdio) {
    this.name = name;
    this.#host = host;
    this.#files = host.files;
    const where = (): string => this.#superviseDir.dir;
    this.#settings = new ServiceSettings(host.files, where, (m) => host.report('warning', m));
    this.#launcher = new Launcher({
      name, dir: where, files: host.files,
      spawn: (opts, onExit) => host.spawn(opts, onExit),
      report: (level, message) => host.report(level, message),
      uintSetting: (file, fallback) => this.#settings.uint(file, fallback),
      env: () => this.#health.env(),
    }, stdio);
    this.#policy = new RestartPolicy(this.#settings);
    this.#signals = new RunSignals({
      name, dir: where, settings: this.#settings, runPid: () => this.#runPid, finishPid: () => this.#finishPid,
      kill: (pid, sig) => host.kill(pid, sig), exists: (f) => host.files.exists(f), report: (l, m) => host.report(l, m), arm: (ms) => this.#arm(ms),
    });
    this.#health = new ServiceHealth({ name, dir: where, settings: this.#settings, system: host }, {
      ready: () => this.#becameReady(),
      unhealthy: (reason) => this.#input('unhealthy', 0, reason),
      said: (_kind, text) => host.event?.(this, '', { statusText: text }),
    });
    const now = host.now();
    this.#status = { stamp: now, readyStamp: now, pid: 0, wstat: 0, paused: false, finishing: false, wantUp: true, ready: true };
    this.#superviseDir = new SuperviseDir({
      name, dir, files: host.files,
      status: () => this.#status,
      onControl: (bytes) => this.command(bytes),
      onEvent: (events) => host.event?.(this, events, this.#detail),
      report: (level, message) => host.report(level, message),
      setTimer: (ms, fn) => host.setTimer(ms, fn),
    });
  }

  /**
   * Starts supervising `dir` as s6-supervise does at startup: event/ fifodir, supervise/
   * with its lock, control FIFO and status, death tally reset, then `s` and (if wanted up)
   * the first start. Throws SupervisorSetupError naming the file and the problem.
   */
  static open(name: string, dir: string, host: SupervisorHost, stdio: SupervisorStdio = {}): Supervisor {
    const sup = new Supervisor(name, dir, host, stdio);
    sup.#superviseDir.open();
    sup.#status.wantUp = !sup.#files.exists(path.join(dir, 'down'));
    sup.#commit('s');
    if (sup.#status.wantUp) sup.#input('timeout');
    return sup;
  }

  /** Absolute real path of the service directory (s6-supervise's cwd). */
  get dir(): string { return this.#superviseDir.dir; }

  /** The directory (same device and inode) is now at `dir` (t6-rc-update renames carried-over servicedirs): later uses go there, as s6-supervise's cwd follows a rename. */
  moveTo(dir: string): void { this.#superviseDir.moveTo(dir); }

  /** The current state ('gone' once the supervisor has ended). */
  get state(): SupervisorState | 'gone' { return this.#state; }

  /** A copy of the status record as last committed. */
  get status(): Readonly<SupervisorStatus> { return { ...this.#status }; }

  /** pid of `run` while it lives, else 0. */
  get runPid(): number { return this.#runPid; }

  /** Applies control bytes in order, as if written to `supervise/control`; unknown bytes are ignored. */
  command(bytes: string): void {
    for (const ch of bytes) {
      if (this.#state === 'gone') return;
      if (isSuperviseCommand(ch)) this.#input(ch);
    }
  }

  /** The scanner's request to end: 'term' (down then exit), 'hup' (exit once the service dies), 'quit' (exit now). */
  request(kind: 'term' | 'hup' | 'quit'): void { this.#input(kind); }

  /** Replaces stdin/stdout for later spawns (the scanner closing a logger pipe). */
  setStdio(stdio: SupervisorStdio): void { this.#launcher.stdio = stdio; }

  /** The only place the state changes. */
  #enter(next: SupervisorState | 'gone'): void { this.#state = next; }

  #input(input: SupervisorInput, wstat = 0, reason = ''): void {
    if (this.#state === 'gone') return;
    const action: ActionName = ACTIONS[this.#state][input];
    try {
      this.#run(action, input, wstat, reason);
    } catch (err) {
      // The table's actions catch their own system errors; reaching here is a bug. Keep the
      // service in whatever state it is and say so, rather than taking pid 1 down.
      this.#host.report('error', `${this.name}: internal error in ${action} (${this.#state}/${input}): ${bugText(err)}`);
    }
  }

  #run(action: ActionName, input: SupervisorInput, wstat: number, reason: string): void {
    const st = this.#status;
    if (input === 'u' || input === 'U') this.#clearGiveUp();
    switch (action) {
      case 'nop': return;
      case 'sig': this.#signals.run(SIGNAL_COMMANDS[input as keyof typeof SIGNAL_COMMANDS]); return;
      case 'pause': this.#signals.run(SIGNALS.STOP); st.paused = true; this.#commit(); return;
      case 'cont': this.#signals.run(SIGNALS.CONT); st.paused = false; this.#commit(); return;
      case 'restart': this.#signals.run(this.#signals.downSignal()); return;
      case 'reload': this.#signals.run(this.#settings.signal('reload-signal', SIGNALS.HUP)); return;
      case 'pgStop': this.#signals.group(SIGNALS.STOP); st.paused = true; this.#commit(); return;
      case 'pgCont': this.#signals.group(SIGNALS.CONT); st.paused = false; this.#commit(); return;
      case 'pgKill': this.#signals.group(SIGNALS.KILL); return;
      case 'wantdown': st.wantUp = false; this.#commit(); return;
      case 'wantup': st.wantUp = true; this.#commit(); return;
      case 'wantdownStart': st.wantUp = false; this.#commit(); this.#start(); return;
      case 'wantupStart': st.wantUp = true; this.#commit(); this.#start(); return;
      case 'wantDOWN': this.#downFile(true); st.wantUp = false; this.#commit(); return;
      case 'wantUP': this.#downFile(false); st.wantUp = true; this.#commit(); return;
      case 'wantUPstart': this.#downFile(false); st.wantUp = true; this.#commit(); this.#start(); return;
      case 'wantDOWNstop': this.#downFile(true); this.#stop(); return;
      case 'stop': this.#stop(); return;
      case 'lastupStop': this.#enter('lastup'); this.#launcher.closeStdio(); this.#stop(); return;
      case 'lastupClose': this.#enter('lastup'); this.#launcher.closeStdio(); return;
      case 'lastfinishClose': this.#enter('lastfinish'); this.#launcher.closeStdio(); return;
      case 'close': this.#launcher.closeStdio(); return;
      case 'bail': this.#bail(); return;
      case 'timeoutDown': if (st.wantUp) this.#start(); return;
      case 'timeoutUp': this.#signals.killRun(); return;
      case 'timeoutFinish': this.#signals.killFinish(); return;
      case 'deathUp': this.#runDied(wstat, 'finish'); return;
      case 'deathLastup': this.#runDied(wstat, 'lastfinish'); return;
      case 'deathFinish': this.#finishDied(wstat, false); return;
      case 'deathLastfinish': this.#finishDied(wstat, true); this.#bail(); return;
      case 'unhealthyStop': this.#unhealthy(reason); return;
    }
  }

  // ---- actions ---------------------------------------------------------------------------

  /** s6's "stop": want down, down-signal then SIGCONT, and arm timeout-kill if set. */
  #stop(): void {
    this.#status.wantUp = false;
    this.#status.paused = false;
    this.#signals.stop();
    this.#commit();
  }

  /** t6's health check failed (health.ts): down-signal, SIGKILL if it lingers, and the usual restart. */
  #unhealthy(reason: string): void {
    this.#host.report('warning', `${this.name}: ${reason} - restarting the service`);
    this.#health.failed(reason);
    this.#host.event?.(this, '', { unhealthy: reason });
    this.#signals.stopUnhealthy();
  }

  /** `u`: a given-up service is wanted again, with a fresh count. */
  #clearGiveUp(): void {
    if (this.#policy.givenUp === undefined) return;
    this.#policy.clear();
    this.#health.setGivenUp(undefined);
  }

  #downFile(present: boolean): void {
    try {
      this.#files.setDownFile(this.dir, present);
    } catch (err) {
      this.#host.report('warning', `unable to ${present ? 'touch' : 'unlink'} ${path.join(this.dir, 'down')}: ${strerror(err)}`);
    }
  }

  /** Spawns `run` now (s6's "start"). */
  #start(): void {
    const spawned = this.#spawnRun();
    if (spawned !== undefined) this.#started(spawned);
  }

  /**
   * The process half of "start": spawn `run` (launch.ts). On failure the Launcher says why
   * and the retry is armed, and it returns undefined; on success the caller must call #started.
   */
  #spawnRun(): SpawnedRun | undefined {
    this.#disarm();
    const started = this.#launcher.startRun((pid, wstat) => this.#childExited(pid, wstat));
    if ('pid' in started) {
      this.#runPid = started.pid;
      return started;
    }
    if (started.retryMs !== undefined) this.#arm(started.retryMs);
    return undefined;
  }

  /** The bookkeeping half of "start": state UP, status, event u, readiness watch. */
  #started({ readiness }: SpawnedRun): void {
    this.#policy.started(this.#host.monotonicMs());
    this.#signals.pendingKill = false;
    const st = this.#status;
    this.#enter('up');
    st.pid = this.#runPid;
    this.#superviseDir.recordStart(st.pid);
    st.finishing = false;
    st.ready = false;
    st.paused = false;
    st.stamp = this.#host.now();
    this.#commit('u');
    this.#health.started(st.pid, readiness);
  }

  /** Readiness, from notification-fd, sd_notify or a probe: the first one counts (`U`). */
  #becameReady(): void {
    const st = this.#status;
    if (this.#runPid === 0 || st.ready || (this.#state !== 'up' && this.#state !== 'lastup')) return;
    st.ready = true;
    st.readyStamp = this.#host.now();
    this.#policy.ready(this.#host.monotonicMs());
    this.#commit('U');
    this.#health.becameReady();
  }

  #childExited(pid: number, wstat: number): void {
    if (pid === this.#runPid) {
      this.#runPid = 0;
      this.#input('death', wstat);
    } else if (pid === this.#finishPid) {
      this.#finishPid = 0;
      this.#input('death', wstat);
    }
  }

  /** `run` died: record it, then run `finish` (→ next) or go straight to down-and-ready. */
  #runDied(wstat: number, next: 'finish' | 'lastfinish'): void {
    this.#disarm();
    this.#health.ended();
    this.#signals.pendingKill = false;
    const { atOnce } = this.#policy.runDied(this.#host.monotonicMs());
    const finishPath = path.join(this.dir, 'finish');
    const hasFinish = this.#files.exists(finishPath);
    // A service ready for more than a second and with no finish restarts at once. Then
    // spawn first and do the bookkeeping after: the service's downtime is what its users
    // feel. Listeners still see status and events in their order: d, D, then u.
    const respawned = next === 'finish' && !hasFinish && atOnce && this.#status.wantUp ? this.#spawnRun() ?? 'failed' : undefined;
    const st = this.#status;
    st.wstat = wstat;
    st.paused = false;
    st.ready = false;
    st.stamp = this.#host.now();
    if (this.#superviseDir.ready) {
      this.#superviseDir.recordDeath(st.stamp, wstat, Math.min(this.#settings.uint('max-death-tally', DEFAULT_DEATH_TALLY), MAX_DEATH_TALLY));
    }
    if (hasFinish) this.#finishPid = this.#launcher.startFinish(wstat, st.pid, (pid, w) => this.#childExited(pid, w));
    if (this.#finishPid > 0) {
      this.#enter(next);
      st.pid = this.#finishPid;
      st.finishing = true;
      this.#commit('d');
      const timeoutFinish = this.#settings.uint('timeout-finish', DEFAULT_TIMEOUT_FINISH_MS);
      if (timeoutFinish > 0) this.#arm(timeoutFinish);
      return;
    }
    this.#enter('down');
    const last = next === 'lastfinish';
    if (respawned !== undefined) {
      // No timer: the restart already happened (or its retry is armed).
      this.#downAndReady('dD', true, respawned === 'failed' ? {} : { restartInMs: 0 });
      if (respawned !== 'failed') this.#started(respawned);
      return;
    }
    this.#downAndReady('dD', last);
    if (last) this.#bail();
  }

  #finishDied(wstat: number, last: boolean): void {
    this.#disarm();
    const ws = decodeWaitStatus(wstat);
    const permanent = ws.exited && ws.exitCode === 125;
    if (permanent) this.#status.wantUp = false;
    this.#enter('down');
    this.#downAndReady(permanent ? 'OD' : 'D', last, { finishWstat: wstat });
  }

  /**
   * Down and ready to start again: status, event, and (unless `noRestart`: the supervisor
   * is ending, or the restart is already done) the restart deadline by the 1-second rule.
   */
  #downAndReady(events: string, noRestart: boolean, detail: EventDetail = {}): void {
    const st = this.#status;
    st.pid = 0;
    st.finishing = false;
    st.ready = true;
    st.readyStamp = this.#host.now();
    const decision = this.#policy.schedule(this.#host.monotonicMs());
    if ('giveUp' in decision && st.wantUp && !noRestart) {
      // t6's give-up is s6's permanent failure: wanted down, and an `O` before the `D`.
      st.wantUp = false;
      this.#host.report('warning', `${this.name}: given up after ${decision.giveUp} - send u to start it again`);
      this.#health.setGivenUp(decision.giveUp);
      this.#commit(events.replace('D', 'OD'), { ...detail, reason: decision.giveUp });
      return;
    }
    const restartInMs = noRestart || !st.wantUp || !('delayMs' in decision) ? undefined : decision.delayMs;
    this.#commit(events, restartInMs === undefined ? detail : { ...detail, restartInMs });
    if (restartInMs !== undefined) this.#arm(restartInMs);
  }

  /** Arms the single timer `ms` from now; a deadline already past fires at once. */
  #arm(ms: number): void {
    this.#disarm();
    if (ms <= 0) {
      // No detour through the timer queue: a ready service killed >1 s after readiness
      // restarts in the same turn of the event loop.
      this.#input('timeout');
      return;
    }
    this.#timerDue = this.#host.monotonicMs() + ms;
    this.#timer = this.#host.setTimer(ms, () => {
      this.#timer = undefined;
      this.#input('timeout');
    });
  }

  #disarm(): void { this.#timer?.cancel(); this.#timer = undefined; }

  /**
   * Re-exec: everything the next image needs to carry on, in a snapshot; this supervisor
   * stops (timer cancelled, control FIFO and readiness pipe no longer read, their fds left
   * open for the next image) without a word to the service.
   */
  handOver(): SupervisorSnapshot {
    const now = this.#host.monotonicMs();
    const snap: SupervisorSnapshot = {
      name: this.name, dir: this.dir, state: this.#state === 'gone' ? 'down' : this.#state, status: statusSnapshot(this.#status),
      runPid: this.#runPid, finishPid: this.#finishPid, pendingKill: this.#signals.pendingKill,
      ...(this.#timer === undefined ? {} : { timerInMs: this.#timerDue - now }),
    };
    this.#disarm();
    const { record: health, readinessFd } = this.#health.handOver();
    const held = this.#superviseDir.handOver();
    const { nextStartInMs, ...policy } = this.#policy.snapshot(now);
    this.#enter('gone');
    return {
      ...snap, ...(nextStartInMs === undefined ? {} : { nextStartInMs }),
      ...(readinessFd === undefined ? {} : { readinessFd }), ...(held === undefined ? {} : { held }),
      ...(healthSaysAnything(health) ? { health } : {}), ...(policy.streak > 0 || policy.givenUp !== null ? { policy } : {}),
    };
  }

  /**
   * The other side: a supervisor carrying on from a snapshot `elapsedMs` old, its processes
   * watched through the host (children after a re-exec; adopted after a predecessor died).
   * A process already gone is handled as a death, by the table.
   */
  static resume(snap: SupervisorSnapshot, host: SupervisorHost, stdio: SupervisorStdio, elapsedMs: number, adopted: boolean): Supervisor {
    const sup = new Supervisor(snap.name, snap.dir, host, stdio);
    sup.#status = statusFromSnapshot(snap.status, host.now());
    sup.#superviseDir.resume(snap.held);
    sup.#enter(snap.state);
    sup.#signals.pendingKill = snap.pendingKill;
    const policy = snap.policy ?? { streak: 0, deathsAgoMs: [], givenUp: null };
    sup.#policy.restore({ ...policy, ...(snap.nextStartInMs === undefined ? {} : { nextStartInMs: snap.nextStartInMs }) }, host.monotonicMs(), elapsedMs);
    sup.#runPid = snap.runPid;
    sup.#finishPid = snap.finishPid;
    const readiness = snap.readinessFd === undefined ? undefined : host.files.readinessFrom(snap.readinessFd);
    sup.#health.resumed(snap.health, snap.state === 'up' || snap.state === 'lastup' ? snap.runPid : 0, sup.#status.ready, readiness);
    const gone = [snap.runPid, snap.finishPid].filter((pid) => pid > 0 && !host.watch(pid, (wstat) => sup.#childExited(pid, wstat), adopted));
    if (snap.timerInMs !== undefined) sup.#arm(snap.timerInMs - elapsedMs);
    if (adopted) sup.#commit(); // the predecessor may have died before writing it
    for (const pid of gone) sup.#childExited(pid, UNKNOWN_WSTAT);
    return sup;
  }

  /** The next image, once this supervisor is in the table: acts now on control bytes written during the exec. */
  takeWaitingControl(): void { this.#superviseDir.takeWaitingControl(); }

  #bail(): void {
    this.#disarm();
    this.#health.close();
    this.#enter('gone');
    this.#superviseDir.close(); // the lock before `x`: whoever `x` wakes finds the directory unsupervised
    this.#superviseDir.notify('x');
    this.#host.exited(this);
  }

  /** Writes status, then sends `events` (see SuperviseDir.commit), `detail` going with them to the host. */
  #commit(events?: string, detail?: EventDetail): void {
    this.#detail = detail;
    this.#superviseDir.commit(events);
    this.#detail = undefined;
  }
}
