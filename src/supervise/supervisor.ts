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
import { type ReadinessPipe, type SupervisorFiles } from './servicefiles.ts';
import { SuperviseDir, type TimerHandle } from './supervisedir.ts';
import { ServiceSettings } from './settings.ts';
import { Launcher, type SpawnedRun, type SupervisorStdio } from './launch.ts';
import { strerror, bugText } from '../sys/errors.ts';

export { ACTIONS, type ActionName, type SupervisorInput, type SupervisorState } from './actions.ts';
export { SupervisorSetupError, type SupervisorFiles } from './servicefiles.ts';
export { type TimerHandle } from './supervisedir.ts';
export { type SupervisorStdio } from './launch.ts';
export { UNKNOWN_WSTAT, type EventDetail, type SupervisorHost } from './supervisor-host.ts';

const KILL_REARM_MS = 5_000;
const DEFAULT_TIMEOUT_FINISH_MS = 5_000;

/** One supervised service directory. */
export class Supervisor {
  /** The service's name as s6 gives it: `foo` or `foo/log`. */
  readonly name: string;
  #host: SupervisorHost;
  #files: SupervisorFiles;
  #launcher: Launcher;
  #settings: ServiceSettings;
  #state: SupervisorState | 'gone' = 'down';
  #status: SupervisorStatus;
  #runPid = 0;
  #finishPid = 0;
  #timer: TimerHandle | undefined;
  /** Monotonic time the timer is due at (for a re-exec's snapshot). */
  #timerDue = 0;
  /** Monotonic time before which a restart must not happen (s6's nextstart); 0 = none. */
  #nextStart = 0;
  #pendingKill = false;
  #readiness: ReadinessPipe | undefined;
  /** supervise/ and event/: lock, control FIFO, status, events, death tally. */
  #superviseDir: SuperviseDir;
  /** What the event being committed does not say by itself (#commit sets it for its length). */
  #detail: EventDetail | undefined;

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
    }, stdio);
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

  #input(input: SupervisorInput, wstat = 0): void {
    if (this.#state === 'gone') return;
    const action: ActionName = ACTIONS[this.#state][input];
    try {
      this.#run(action, input, wstat);
    } catch (err) {
      // The table's actions catch their own system errors; reaching here is a bug. Keep the
      // service in whatever state it is and say so, rather than taking pid 1 down.
      this.#host.report('error', `${this.name}: internal error in ${action} (${this.#state}/${input}): ${bugText(err)}`);
    }
  }

  #run(action: ActionName, input: SupervisorInput, wstat: number): void {
    const st = this.#status;
    switch (action) {
      case 'nop': return;
      case 'sig': this.#signalRun(SIGNAL_COMMANDS[input as keyof typeof SIGNAL_COMMANDS]); return;
      case 'pause': this.#signalRun(SIGNALS.STOP); st.paused = true; this.#commit(); return;
      case 'cont': this.#signalRun(SIGNALS.CONT); st.paused = false; this.#commit(); return;
      case 'restart': this.#signalRun(this.#settings.signal('down-signal', SIGNALS.TERM)); return;
      case 'reload': this.#signalRun(this.#settings.signal('reload-signal', SIGNALS.HUP)); return;
      case 'pgStop': this.#signalGroup(SIGNALS.STOP); st.paused = true; this.#commit(); return;
      case 'pgCont': this.#signalGroup(SIGNALS.CONT); st.paused = false; this.#commit(); return;
      case 'pgKill': this.#signalGroup(SIGNALS.KILL); return;
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
      case 'timeoutUp': this.#killTimeout(); return;
      case 'timeoutFinish': this.#killFinish(); return;
      case 'deathUp': this.#runDied(wstat, 'finish'); return;
      case 'deathLastup': this.#runDied(wstat, 'lastfinish'); return;
      case 'deathFinish': this.#finishDied(wstat, false); return;
      case 'deathLastfinish': this.#finishDied(wstat, true); this.#bail(); return;
    }
  }

  // ---- actions ---------------------------------------------------------------------------

  #signalRun(signal: number): void { if (this.#runPid > 0) this.#host.kill(this.#runPid, signal); }

  /** killpg(run): run leads its own session. Never with no pid: kill(-0) is our own group. */
  #signalGroup(signal: number): void { if (this.#runPid > 0) this.#host.kill(-this.#runPid, signal); }

  /** s6's "stop": want down, down-signal then SIGCONT, and arm timeout-kill if set. */
  #stop(): void {
    const st = this.#status;
    st.wantUp = false;
    this.#signalRun(this.#settings.signal('down-signal', SIGNALS.TERM));
    this.#signalRun(SIGNALS.CONT);
    st.paused = false;
    this.#commit();
    const timeoutKill = this.#settings.uint('timeout-kill', 0);
    if (timeoutKill > 0 && this.#runPid > 0) {
      this.#pendingKill = true;
      this.#arm(timeoutKill);
    }
  }

  /** timeout-kill reached: SIGKILL and SIGCONT to run, or to its process group with flag-timeout-killpg (s6 ≥ 2.13). */
  #killTimeout(): void {
    if (!this.#pendingKill || this.#runPid === 0) return;
    const group = this.#files.exists(path.join(this.dir, 'flag-timeout-killpg'));
    this.#host.report('warning', `${this.name}: timeout-kill reached - sending SIGKILL to ${group ? 'process group' : 'pid'} ${this.#runPid}`);
    const target = group ? -this.#runPid : this.#runPid;
    this.#host.kill(target, SIGNALS.KILL);
    this.#host.kill(target, SIGNALS.CONT);
    this.#arm(KILL_REARM_MS);
  }

  #killFinish(): void {
    if (this.#finishPid === 0) return;
    this.#host.report('warning', `${this.name}: finish script lifetime reached maximum value - sending it a SIGKILL`);
    this.#host.kill(this.#finishPid, SIGNALS.CONT);
    this.#host.kill(this.#finishPid, SIGNALS.KILL);
    this.#arm(KILL_REARM_MS);
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
    this.#nextStart = 0;
    this.#pendingKill = false;
    const st = this.#status;
    this.#enter('up');
    st.pid = this.#runPid;
    this.#superviseDir.recordStart(st.pid);
    st.finishing = false;
    st.ready = false;
    st.paused = false;
    st.stamp = this.#host.now();
    this.#commit('u');
    if (readiness !== undefined) this.#watchReadiness(readiness);
  }

  #watchReadiness(readiness: ReadinessPipe): void {
    this.#readiness = readiness;
    const pid = this.#runPid;
    readiness.watch(() => {
      if (this.#runPid !== pid || this.#readiness !== readiness) return;
      this.#readiness = undefined;
      const st = this.#status;
      st.ready = true;
      st.readyStamp = this.#host.now();
      this.#nextStart = this.#host.monotonicMs() + 1000;
      this.#commit('U');
    });
  }

  #closeReadiness(): void {
    const readiness = this.#readiness;
    this.#readiness = undefined;
    readiness?.close();
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
    this.#closeReadiness();
    this.#pendingKill = false;
    const finishPath = path.join(this.dir, 'finish');
    const hasFinish = this.#files.exists(finishPath);
    // A service ready for more than a second and with no finish restarts at once. Then
    // spawn first and do the bookkeeping after: the service's downtime is what its users
    // feel. Listeners still see status and events in their order: d, D, then u.
    let respawned: SpawnedRun | 'failed' | undefined;
    if (next === 'finish' && !hasFinish && this.#status.wantUp && this.#nextStart > 0 && this.#nextStart <= this.#host.monotonicMs()) {
      respawned = this.#spawnRun() ?? 'failed';
    }
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
    const now = this.#host.monotonicMs();
    const restartInMs = noRestart || !st.wantUp ? undefined : (this.#nextStart > 0 ? this.#nextStart : now + 1000) - now;
    this.#commit(events, restartInMs === undefined ? detail : { ...detail, restartInMs: Math.max(0, restartInMs) });
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
      runPid: this.#runPid, finishPid: this.#finishPid, pendingKill: this.#pendingKill,
      ...(this.#timer === undefined ? {} : { timerInMs: this.#timerDue - now }),
      ...(this.#nextStart > 0 ? { nextStartInMs: this.#nextStart - now } : {}),
    };
    this.#disarm();
    const readinessFd = this.#readiness?.handOver();
    const held = this.#superviseDir.handOver();
    this.#readiness = undefined;
    this.#enter('gone');
    return { ...snap, ...(readinessFd === undefined ? {} : { readinessFd }), ...(held === undefined ? {} : { held }) };
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
    sup.#pendingKill = snap.pendingKill;
    // A past nextstart stays a past one (> 0, <= now): the one-second rule is already met.
    if (snap.nextStartInMs !== undefined) sup.#nextStart = Math.max(Number.MIN_VALUE, host.monotonicMs() + snap.nextStartInMs - elapsedMs);
    sup.#runPid = snap.runPid;
    sup.#finishPid = snap.finishPid;
    if (snap.readinessFd !== undefined) sup.#watchReadiness(host.files.readinessFrom(snap.readinessFd));
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
    this.#closeReadiness();
    this.#superviseDir.notify('x');
    this.#enter('gone');
    this.#superviseDir.close();
    this.#host.exited(this);
  }

  /** Writes status, then sends `events` (see SuperviseDir.commit), `detail` going with them to the host. */
  #commit(events?: string, detail?: EventDetail): void {
    this.#detail = detail;
    this.#superviseDir.commit(events);
    this.#detail = undefined;
  }
}
