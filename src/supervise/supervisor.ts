/**
 * One Supervisor per service directory: s6-supervise's life as an object inside t6-svscan.
 *
 * The model (s6-spec/supervise-protocol.md §3): a service is in one of five states —
 * DOWN, UP (run alive), FINISH (finish alive), LASTUP and LASTFINISH (the same, but the
 * supervisor ends once the service is down). Every input (a control byte, the death of a
 * child, the timer, a request from the scanner) is looked up in ACTIONS[state][input]; the
 * action is the only code that changes anything. `#commit` is the only place that writes
 * `supervise/status` and then sends the matching event, in that order, so a client that
 * subscribes first and reads the status second never misses a transition.
 *
 * Inputs never throw: a failure becomes a warning (naming the file and the problem) plus a
 * state or a retry deadline.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type SpawnOptions, type FdSource } from '../sys/spawn.ts';
import { decodeWaitStatus } from '../sys/wait.ts';
import { O_CREAT, O_NONBLOCK, O_RDWR, O_WRONLY, close, mkfifo, open, pipe, tryLock } from '../sys/fd.ts';
import { describeError } from '../sys/errors.ts';
import { SIGNAL_COMMANDS, type SuperviseCommand, isSuperviseCommand } from '../s6/control.ts';
import { type SupervisorStatus, encodeStatus } from '../s6/status.ts';
import { type Tain } from '../s6/tai.ts';
import { makeFifodir, notifyFifodir } from '../s6/fifodir.ts';
import { DEFAULT_DEATH_TALLY, MAX_DEATH_TALLY, decodeDeathTally, deathFromWstat, encodeDeathTally } from '../s6/deathtally.ts';
import { exists, explainNotRunnable, readSignalSetting, readUintSetting } from '../s6/servicedir.ts';

/** The five states of s6-supervise. */
export type SupervisorState = 'down' | 'up' | 'finish' | 'lastup' | 'lastfinish';

/** Inputs besides control bytes: the timer, a child's death, and the scanner's requests (s6's signals to s6-supervise). */
export type SupervisorInput = SuperviseCommand | 'timeout' | 'death' | 'term' | 'hup' | 'quit';

/** The actions, by name, so the table can be read and tested against the spec. */
export type ActionName =
  | 'nop' | 'sig' | 'pause' | 'cont' | 'restart' | 'reload' | 'pgStop' | 'pgCont' | 'pgKill'
  | 'wantdown' | 'wantdownStart' | 'wantup' | 'wantupStart' | 'wantDOWN' | 'wantDOWNstop' | 'wantUP' | 'wantUPstart'
  | 'stop' | 'lastupStop' | 'lastupClose' | 'lastfinishClose' | 'close' | 'bail'
  | 'timeoutDown' | 'timeoutUp' | 'timeoutFinish' | 'deathUp' | 'deathLastup' | 'deathFinish' | 'deathLastfinish';

type Row = Record<SupervisorInput, ActionName>;

const signals = { a: 'sig', b: 'sig', q: 'sig', h: 'sig', k: 'sig', t: 'sig', i: 'sig', '1': 'sig', '2': 'sig', y: 'sig' } as const;
const noSignals = { a: 'nop', b: 'nop', q: 'nop', h: 'nop', k: 'nop', t: 'nop', i: 'nop', '1': 'nop', '2': 'nop', y: 'nop' } as const;
const processControl = { p: 'pause', c: 'cont', r: 'restart', l: 'reload', P: 'pgStop', C: 'pgCont', K: 'pgKill' } as const;
const noProcessControl = { p: 'nop', c: 'nop', r: 'nop', l: 'nop', P: 'nop', C: 'nop', K: 'nop' } as const;

/** s6-supervise's table: ACTIONS[state][input] (supervise-protocol.md §3.3 and §3.4). */
export const ACTIONS = {
  down: {
    ...noSignals, ...noProcessControl,
    o: 'wantdownStart', d: 'wantdown', u: 'wantupStart', D: 'wantDOWN', U: 'wantUPstart', x: 'bail', O: 'wantdown', Q: 'wantDOWN',
    timeout: 'timeoutDown', death: 'nop', term: 'bail', hup: 'bail', quit: 'bail',
  },
  up: {
    ...signals, ...processControl,
    o: 'wantdown', d: 'stop', u: 'wantup', D: 'wantDOWNstop', U: 'wantUP', x: 'lastupClose', O: 'wantdown', Q: 'wantDOWN',
    timeout: 'timeoutUp', death: 'deathUp', term: 'lastupStop', hup: 'lastupClose', quit: 'bail',
  },
  finish: {
    ...noSignals, ...noProcessControl,
    o: 'wantdown', d: 'wantdown', u: 'wantup', D: 'wantDOWN', U: 'wantUP', x: 'lastfinishClose', O: 'wantdown', Q: 'wantDOWN',
    timeout: 'timeoutFinish', death: 'deathFinish', term: 'lastfinishClose', hup: 'lastfinishClose', quit: 'bail',
  },
  lastup: {
    ...signals, ...processControl,
    o: 'wantdown', d: 'stop', u: 'wantup', D: 'wantDOWNstop', U: 'wantUP', x: 'close', O: 'wantdown', Q: 'wantDOWN',
    timeout: 'timeoutUp', death: 'deathLastup', term: 'stop', hup: 'close', quit: 'bail',
  },
  lastfinish: {
    ...noSignals, ...noProcessControl,
    o: 'wantdown', d: 'wantdown', u: 'wantup', D: 'wantDOWN', U: 'wantUP', x: 'close', O: 'wantdown', Q: 'wantDOWN',
    timeout: 'timeoutFinish', death: 'deathLastfinish', term: 'nop', hup: 'close', quit: 'bail',
  },
} as const satisfies Record<SupervisorState, Row>;

/** A cancellable timer. */
export interface TimerHandle {
  cancel(): void;
}

/** Everything a Supervisor needs from the outside world; the scanner provides it, tests fake it. */
export interface SupervisorHost {
  /** Starts a process; `onExit` gets its raw wait status once it is reaped. Throws SysError. */
  spawn(opts: SpawnOptions, onExit: (wstat: number) => void): number;
  /** Sends a signal (no error if the process is gone). */
  kill(pid: number, signal: number): void;
  /** Monotonic milliseconds (deadlines). */
  monotonicMs(): number;
  /** Wall-clock TAI64N (status stamps). */
  now(): Tain;
  setTimer(ms: number, fn: () => void): TimerHandle;
  /** A diagnostic, already phrased for a person. */
  report(level: 'info' | 'warning' | 'error', message: string): void;
  /** The supervisor has ended (s6-supervise exited). */
  exited(sup: Supervisor): void;
  /** An event byte was just sent (status already written). Optional observer. */
  event?(sup: Supervisor, event: string): void;
}

/** Where the service's stdin and stdout come from (the scanner's logger pipe, or inherited). */
export interface SupervisorStdio {
  stdin?: FdSource;
  stdout?: FdSource;
  stderr?: FdSource;
}

const SIGKILL = 9;
const SIGCONT = 18;
const SIGSTOP = 19;
const SIGTERM = 15;
const SIGHUP = 1;
const SPAWN_RETRY_MS = 10_000;
const KILL_REARM_MS = 5_000;
const STATUS_RETRY_MS = 1_000;
const DEFAULT_TIMEOUT_FINISH_MS = 5_000;
const FILES_RETRY_MS = 2_000;

/** Thrown by `Supervisor.open` when the service directory cannot be supervised. */
export class SupervisorSetupError extends Error {
  override name = 'SupervisorSetupError';
  /** true when another supervisor holds the lock. */
  readonly busy: boolean;
  constructor(message: string, busy = false) {
    super(message);
    this.busy = busy;
  }
}

/** One supervised service directory. */
export class Supervisor {
  /** The service's name as s6 gives it: `foo` or `foo/log`. */
  readonly name: string;
  /** Absolute path of the service directory. */
  readonly dir: string;
  #host: SupervisorHost;
  #stdio: SupervisorStdio;
  #state: SupervisorState | 'gone' = 'down';
  #status: SupervisorStatus;
  #runPid = 0;
  #finishPid = 0;
  #timer: TimerHandle | undefined;
  /** Monotonic time before which a restart must not happen (s6's nextstart); 0 = none. */
  #nextStart = 0;
  #pendingKill = false;
  #readiness: net.Socket | undefined;
  #lockFd = -1;
  /** supervise/control, open read-write: the reader, and the writer that keeps it from EOF. */
  #controlFd = -1;
  #control: net.Socket | undefined;
  #statusDirty = false;
  #statusRetry: TimerHandle | undefined;
  #statusFailing = false;
  /** false while supervise/ could not be set up (degraded: no control FIFO, no status file). */
  #filesReady = true;
  #filesRetry: TimerHandle | undefined;

  private constructor(name: string, dir: string, host: SupervisorHost, stdio: SupervisorStdio) {
    this.name = name;
    this.dir = dir;
    this.#host = host;
    this.#stdio = stdio;
    const now = host.now();
    this.#status = { stamp: now, readyStamp: now, pid: 0, wstat: 0, paused: false, finishing: false, wantUp: true, ready: true };
  }

  /**
   * Starts supervising `dir` as s6-supervise does at startup: event/ fifodir, supervise/
   * with its lock, control FIFO and status, death tally reset, then `s` and (if wanted up)
   * the first start. Throws SupervisorSetupError naming the file and the problem.
   */
  static open(name: string, dir: string, host: SupervisorHost, stdio: SupervisorStdio = {}): Supervisor {
    const sup = new Supervisor(name, dir, host, stdio);
    try {
      sup.#setUpFiles();
    } catch (err) {
      if (!(err instanceof SupervisorSetupError) || err.busy) throw err;
      // A read-only or full /run must not keep the service from running: supervise it
      // without its control files, and set them up as soon as the filesystem allows.
      sup.#filesReady = false;
      host.report('warning', `${err.message} - running ${name} without its control files; retrying every ${FILES_RETRY_MS / 1000} seconds`);
      sup.#retryFiles();
    }
    sup.#status.wantUp = !exists(path.join(dir, 'down'));
    sup.#commit('s');
    if (sup.#status.wantUp) sup.#input('timeout');
    return sup;
  }

  /** The current state ('gone' once the supervisor has ended). */
  get state(): SupervisorState | 'gone' {
    return this.#state;
  }

  /** A copy of the status record as last committed. */
  get status(): Readonly<SupervisorStatus> {
    return { ...this.#status };
  }

  /** pid of `run` while it lives, else 0. */
  get runPid(): number {
    return this.#runPid;
  }

  /** Applies control bytes in order, as if written to `supervise/control`; unknown bytes are ignored. */
  command(bytes: string): void {
    for (const ch of bytes) {
      if (this.#state === 'gone') return;
      if (isSuperviseCommand(ch)) this.#input(ch);
    }
  }

  /** The scanner's request to end: 'term' (down then exit), 'hup' (exit once the service dies), 'quit' (exit now). */
  request(kind: 'term' | 'hup' | 'quit'): void {
    this.#input(kind);
  }

  /** Replaces stdin/stdout for later spawns (the scanner closing a logger pipe). */
  setStdio(stdio: SupervisorStdio): void {
    this.#stdio = stdio;
  }

  #input(input: SupervisorInput, wstat = 0, cmd?: SuperviseCommand): void {
    if (this.#state === 'gone') return;
    const action: ActionName = ACTIONS[this.#state][input];
    try {
      this.#run(action, input, wstat, cmd ?? (input.length === 1 ? input as SuperviseCommand : undefined));
    } catch (err) {
      // The table's actions catch their own system errors; reaching here is a bug. Keep the
      // service in whatever state it is and say so, rather than taking pid 1 down.
      this.#host.report('error', `${this.name}: internal error in ${action} (${this.#state}/${input}): ${describeError(err)}`);
    }
  }

  #run(action: ActionName, input: SupervisorInput, wstat: number, cmd: SuperviseCommand | undefined): void {
    const st = this.#status;
    switch (action) {
      case 'nop': return;
      case 'sig': this.#signalRun(SIGNAL_COMMANDS[cmd as keyof typeof SIGNAL_COMMANDS]); return;
      case 'pause': this.#signalRun(SIGSTOP); st.paused = true; this.#commit(); return;
      case 'cont': this.#signalRun(SIGCONT); st.paused = false; this.#commit(); return;
      case 'restart': this.#signalRun(this.#downSignal()); return;
      case 'reload': this.#signalRun(this.#signalSetting('reload-signal', SIGHUP)); return;
      case 'pgStop': this.#host.kill(-this.#runPid, SIGSTOP); st.paused = true; this.#commit(); return;
      case 'pgCont': this.#host.kill(-this.#runPid, SIGCONT); st.paused = false; this.#commit(); return;
      case 'pgKill': this.#host.kill(-this.#runPid, SIGKILL); return;
      case 'wantdown': st.wantUp = false; this.#commit(); return;
      case 'wantup': st.wantUp = true; this.#commit(); return;
      case 'wantdownStart': st.wantUp = false; this.#commit(); this.#start(); return;
      case 'wantupStart': st.wantUp = true; this.#commit(); this.#start(); return;
      case 'wantDOWN': this.#downFile(true); st.wantUp = false; this.#commit(); return;
      case 'wantUP': this.#downFile(false); st.wantUp = true; this.#commit(); return;
      case 'wantUPstart': this.#downFile(false); st.wantUp = true; this.#commit(); this.#start(); return;
      case 'wantDOWNstop': this.#downFile(true); this.#stop(); return;
      case 'stop': this.#stop(); return;
      case 'lastupStop': this.#state = 'lastup'; this.#closeStdio(); this.#stop(); return;
      case 'lastupClose': this.#state = 'lastup'; this.#closeStdio(); return;
      case 'lastfinishClose': this.#state = 'lastfinish'; this.#closeStdio(); return;
      case 'close': this.#closeStdio(); return;
      case 'bail': this.#bail(); return;
      case 'timeoutDown': if (st.wantUp) this.#start(); return;
      case 'timeoutUp': this.#killTimeout(); return;
      case 'timeoutFinish': this.#killFinish(); return;
      case 'deathUp': this.#runDied(wstat, 'finish'); return;
      case 'deathLastup': this.#runDied(wstat, 'lastfinish'); return;
      case 'deathFinish': this.#finishDied(wstat, false); return;
      case 'deathLastfinish': this.#finishDied(wstat, true); this.#bail(); return;
    }
    void input;
  }

  // ---- actions ---------------------------------------------------------------------------

  #signalRun(signal: number): void {
    if (this.#runPid > 0) this.#host.kill(this.#runPid, signal);
  }

  #signalSetting(file: string, fallback: number): number {
    const setting = readSignalSetting(this.dir, file);
    if (setting.problem !== undefined) this.#host.report('warning', `${setting.problem} - using ${fallback === SIGTERM ? 'SIGTERM' : 'SIGHUP'}`);
    return setting.value ?? fallback;
  }

  #downSignal(): number {
    return this.#signalSetting('down-signal', SIGTERM);
  }

  #uintSetting(file: string, fallback: number): number {
    const setting = readUintSetting(this.dir, file);
    if (setting.problem !== undefined) this.#host.report('warning', `${setting.problem} - using the default`);
    return setting.value ?? fallback;
  }

  /** s6's "stop": want down, down-signal then SIGCONT, and arm timeout-kill if set. */
  #stop(): void {
    const st = this.#status;
    st.wantUp = false;
    this.#signalRun(this.#downSignal());
    this.#signalRun(SIGCONT);
    st.paused = false;
    this.#commit();
    const timeoutKill = this.#uintSetting('timeout-kill', 0);
    if (timeoutKill > 0 && this.#runPid > 0) {
      this.#pendingKill = true;
      this.#arm(timeoutKill);
    }
  }

  #killTimeout(): void {
    if (!this.#pendingKill || this.#runPid === 0) return;
    this.#host.report('warning', `${this.name}: timeout-kill reached - sending SIGKILL to pid ${this.#runPid}`);
    this.#host.kill(this.#runPid, SIGKILL);
    this.#host.kill(this.#runPid, SIGCONT);
    this.#arm(KILL_REARM_MS);
  }

  #killFinish(): void {
    if (this.#finishPid === 0) return;
    this.#host.report('warning', `${this.name}: finish script lifetime reached maximum value - sending it a SIGKILL`);
    this.#host.kill(this.#finishPid, SIGCONT);
    this.#host.kill(this.#finishPid, SIGKILL);
    this.#arm(KILL_REARM_MS);
  }

  #downFile(present: boolean): void {
    const file = path.join(this.dir, 'down');
    try {
      if (present) fs.writeFileSync(file, '', { flag: 'a' });
      else fs.rmSync(file, { force: true });
    } catch (err) {
      this.#host.report('warning', `unable to ${present ? 'touch' : 'unlink'} ${file}: ${describeError(err)}`);
    }
  }

  /** s6-supervise's "close": its stdin and stdout become /dev/null (a logger downstream can reach EOF). */
  #closeStdio(): void {
    this.#stdio = { ...this.#stdio, stdin: 'null', stdout: 'null' };
  }

  #stdioFds(): Map<number, FdSource> {
    const fds = new Map<number, FdSource>();
    if (this.#stdio.stdin !== undefined) fds.set(0, this.#stdio.stdin);
    if (this.#stdio.stdout !== undefined) fds.set(1, this.#stdio.stdout);
    if (this.#stdio.stderr !== undefined) fds.set(2, this.#stdio.stderr);
    return fds;
  }

  /** Spawns `run` now (s6's "start"). */
  #start(): void {
    const spawned = this.#spawnRun();
    if (spawned !== undefined) this.#started(spawned);
  }

  /**
   * The process half of "start": spawn `run` with its fds. On failure it says why and arms
   * the retry, and returns undefined; on success the caller must call #started.
   */
  #spawnRun(): { pid: number; readinessRead: number } | undefined {
    this.#disarm();
    const notificationFd = this.#uintSetting('notification-fd', -1);
    const lockFd = this.#uintSetting('lock-fd', -1);
    if (notificationFd >= 0 && notificationFd === lockFd) {
      this.#host.report('warning', `${this.name}: notification-fd and lock-fd are both ${lockFd} - not starting the service (fix one, then send u)`);
      return undefined;
    }
    const fds = this.#stdioFds();
    let readinessRead = -1;
    let readinessWrite = -1;
    let serviceLock = -1;
    try {
      if (notificationFd >= 0) {
        [readinessRead, readinessWrite] = pipe();
        fds.set(notificationFd, readinessWrite);
      }
      if (lockFd >= 0) {
        const lockPath = path.join(this.dir, 'supervise', 'service-lock');
        serviceLock = open(lockPath, O_WRONLY | O_CREAT, 0o644);
        if (!tryLock(serviceLock, lockPath)) {
          close(serviceLock);
          serviceLock = -1;
          throw new Error(`${lockPath} is locked: another instance of the service is still running - retrying in 1 second`);
        }
        fds.set(lockFd, serviceLock);
      }
      const runPath = path.join(this.dir, 'run');
      const pid = this.#host.spawn(
        { path: runPath, argv: ['./run', this.name], cwd: this.dir, fds },
        (wstat) => this.#childExited(pid, wstat),
      );
      this.#runPid = pid;
    } catch (err) {
      if (readinessRead >= 0) close(readinessRead);
      if (readinessWrite >= 0) close(readinessWrite);
      if (serviceLock >= 0) close(serviceLock);
      const locked = err instanceof Error && err.message.includes('is locked');
      const why = locked ? err.message : (explainNotRunnable(path.join(this.dir, 'run')) ?? describeError(err));
      this.#host.report('warning', locked ? why : `unable to spawn ${path.join(this.dir, 'run')}: ${why} - waiting ${SPAWN_RETRY_MS / 1000} seconds`);
      this.#arm(locked ? 1000 : SPAWN_RETRY_MS);
      return undefined;
    }
    if (readinessWrite >= 0) close(readinessWrite);
    if (serviceLock >= 0) close(serviceLock); // the child holds the lock through its copy
    return { pid: this.#runPid, readinessRead };
  }

  /** The bookkeeping half of "start": state UP, status, event u, readiness watch. */
  #started({ readinessRead }: { pid: number; readinessRead: number }): void {
    this.#nextStart = 0;
    this.#pendingKill = false;
    const st = this.#status;
    this.#state = 'up';
    st.pid = this.#runPid;
    st.finishing = false;
    st.ready = false;
    st.paused = false;
    st.stamp = this.#host.now();
    this.#commit('u');
    if (readinessRead >= 0) this.#watchReadiness(readinessRead);
  }

  #watchReadiness(fd: number): void {
    const socket = new net.Socket({ fd, readable: true, writable: false });
    this.#readiness = socket;
    const pid = this.#runPid;
    socket.on('data', (chunk: Buffer) => {
      if (this.#runPid !== pid || this.#readiness !== socket) return;
      if (!chunk.includes(0x0a)) return;
      this.#closeReadiness();
      const st = this.#status;
      st.ready = true;
      st.readyStamp = this.#host.now();
      this.#nextStart = this.#host.monotonicMs() + 1000;
      this.#commit('U');
    });
    socket.on('end', () => { if (this.#readiness === socket) this.#closeReadiness(); });
    socket.on('error', () => { if (this.#readiness === socket) this.#closeReadiness(); });
  }

  #closeReadiness(): void {
    const socket = this.#readiness;
    this.#readiness = undefined;
    socket?.destroy();
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
    const hasFinish = exists(finishPath);
    // A service ready for more than a second and with no finish restarts at once. Then
    // spawn first and do the bookkeeping after: the service's downtime is what its users
    // feel. Listeners still see status and events in their order: d, D, then u.
    let respawned: { pid: number; readinessRead: number } | 'failed' | undefined;
    if (next === 'finish' && !hasFinish && this.#status.wantUp && this.#nextStart > 0 && this.#nextStart <= this.#host.monotonicMs()) {
      respawned = this.#spawnRun() ?? 'failed';
    }
    const st = this.#status;
    st.wstat = wstat;
    st.paused = false;
    st.ready = false;
    st.stamp = this.#host.now();
    this.#recordDeath(st.stamp, wstat);
    if (hasFinish) {
      const ws = decodeWaitStatus(wstat);
      const argv = ['./finish', ws.exited ? String(ws.exitCode) : '256', String(ws.signal), this.name, String(st.pid)];
      const fds = this.#stdioFds();
      try {
        const pid = this.#host.spawn({ path: finishPath, argv, cwd: this.dir, fds }, (w) => this.#childExited(pid, w));
        this.#finishPid = pid;
      } catch (err) {
        this.#host.report('warning', `unable to spawn ${finishPath}: ${explainNotRunnable(finishPath) ?? describeError(err)}`);
      }
    }
    if (this.#finishPid > 0) {
      this.#state = next;
      st.pid = this.#finishPid;
      st.finishing = true;
      this.#commit('d');
      const timeoutFinish = this.#uintSetting('timeout-finish', DEFAULT_TIMEOUT_FINISH_MS);
      if (timeoutFinish > 0) this.#arm(timeoutFinish);
      return;
    }
    this.#state = 'down';
    const last = next === 'lastfinish';
    if (respawned !== undefined) {
      this.#downAndReady('dD', true); // no timer: the restart already happened (or its retry is armed)
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
    this.#state = 'down';
    this.#downAndReady(permanent ? 'OD' : 'D', last);
  }

  /**
   * Down and ready to start again: status, event, and (unless `noRestart`: the supervisor
   * is ending, or the restart is already done) the restart deadline by the 1-second rule.
   */
  #downAndReady(events: string, noRestart: boolean): void {
    const st = this.#status;
    st.pid = 0;
    st.finishing = false;
    st.ready = true;
    st.readyStamp = this.#host.now();
    this.#commit(events);
    if (noRestart || !st.wantUp) return;
    const now = this.#host.monotonicMs();
    const deadline = this.#nextStart > 0 ? this.#nextStart : now + 1000;
    this.#arm(deadline - now);
  }

  #recordDeath(stamp: Tain, wstat: number): void {
    if (!this.#filesReady) return;
    const max = Math.min(this.#uintSetting('max-death-tally', DEFAULT_DEATH_TALLY), MAX_DEATH_TALLY);
    if (max === 0) return;
    const file = path.join(this.dir, 'supervise', 'death_tally');
    try {
      let records: ReturnType<typeof decodeDeathTally> = [];
      try {
        records = decodeDeathTally(fs.readFileSync(file));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      records.push(deathFromWstat(stamp, wstat));
      if (records.length > max) records = records.slice(records.length - max);
      fs.writeFileSync(`${file}.new`, encodeDeathTally(records));
      fs.renameSync(`${file}.new`, file);
    } catch (err) {
      this.#host.report('warning', `unable to update ${file}: ${describeError(err)}`);
    }
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
    this.#timer = this.#host.setTimer(ms, () => {
      this.#timer = undefined;
      this.#input('timeout');
    });
  }

  #disarm(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #bail(): void {
    this.#disarm();
    this.#closeReadiness();
    this.#statusRetry?.cancel();
    this.#statusRetry = undefined;
    this.#filesRetry?.cancel();
    this.#filesRetry = undefined;
    this.#notify('x');
    this.#state = 'gone';
    this.#control?.destroy();
    this.#control = undefined;
    if (this.#lockFd >= 0) close(this.#lockFd);
    this.#controlFd = -1; // closed with the socket
    this.#lockFd = -1;
    this.#host.exited(this);
  }

  // ---- files -----------------------------------------------------------------------------

  #setUpFiles(resetDeathTally = true): void {
    const superviseDir = path.join(this.dir, 'supervise');
    const step = (what: string, fn: () => void): void => {
      try {
        fn();
      } catch (err) {
        throw new SupervisorSetupError(`unable to ${what}: ${describeError(err)}`);
      }
    };
    step(`create ${path.join(this.dir, 'event')}`, () => makeFifodir(path.join(this.dir, 'event')));
    step(`create ${superviseDir}`, () => {
      try {
        fs.mkdirSync(superviseDir, { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const lst = fs.lstatSync(superviseDir);
        // A `supervise` symlink to a directory that does not exist yet: create the target.
        if (lst.isSymbolicLink() && !exists(fs.realpathSync.native(path.dirname(superviseDir)))) throw err;
        if (lst.isSymbolicLink()) {
          try {
            fs.statSync(superviseDir);
          } catch {
            fs.mkdirSync(path.resolve(this.dir, fs.readlinkSync(superviseDir)), { mode: 0o700, recursive: true });
          }
        }
        if (!fs.statSync(superviseDir).isDirectory()) throw new Error('exists and is not a directory');
      }
    });
    const lockPath = path.join(superviseDir, 'lock');
    step(`open ${lockPath}`, () => { this.#lockFd = open(lockPath, O_WRONLY | O_CREAT | O_NONBLOCK, 0o644); });
    let locked = false;
    step(`lock ${lockPath}`, () => { locked = tryLock(this.#lockFd, lockPath); });
    if (!locked) {
      close(this.#lockFd);
      this.#lockFd = -1;
      throw new SupervisorSetupError(`${lockPath} is locked: another supervisor is already running on ${this.dir}`, true);
    }
    const controlPath = path.join(superviseDir, 'control');
    try {
      step(`create ${controlPath}`, () => mkfifo(controlPath, 0o600));
      step(`open ${controlPath}`, () => {
        // One read-write fd (Linux allows it on a FIFO) is both the reader and the writer that
        // keeps readers from seeing EOF: one fd per service instead of two, and every spawn
        // copies and closes t6-svscan's whole fd table.
        this.#controlFd = open(controlPath, O_RDWR | O_NONBLOCK);
      });
      const death = path.join(superviseDir, 'death_tally');
      if (resetDeathTally) step(`truncate ${death}`, () => fs.writeFileSync(death, ''));
    } catch (err) {
      if (this.#controlFd >= 0) close(this.#controlFd);
      close(this.#lockFd);
      this.#lockFd = this.#controlFd = -1;
      throw err;
    }
    const control = new net.Socket({ fd: this.#controlFd, readable: true, writable: false });
    control.on('data', (chunk: Buffer) => this.command(chunk.toString('latin1')));
    control.on('error', (err) => this.#host.report('error', `${this.name}: control FIFO: ${describeError(err)}`));
    this.#control = control;
  }

  /** Writes status (atomically, before any event) and then sends `events`, one write per byte group. */
  #commit(events?: string): void {
    this.#writeStatus();
    if (events !== undefined) this.#notify(events);
  }

  #notify(events: string): void {
    notifyFifodir(path.join(this.dir, 'event'), events);
    this.#host.event?.(this, events);
  }

  #retryFiles(): void {
    this.#filesRetry = this.#host.setTimer(FILES_RETRY_MS, () => {
      this.#filesRetry = undefined;
      if (this.#state === 'gone') return;
      try {
        this.#setUpFiles(false);
      } catch (err) {
        if (err instanceof SupervisorSetupError && err.busy) {
          this.#host.report('error', `${err.message} - ${this.name} is now supervised twice; stop one of them`);
          return;
        }
        this.#retryFiles();
        return;
      }
      this.#filesReady = true;
      this.#host.report('info', `${path.join(this.dir, 'supervise')} is set up: ${this.name} can be controlled again`);
      this.#writeStatus();
    });
  }

  #writeStatus(): void {
    if (!this.#filesReady) return;
    const file = path.join(this.dir, 'supervise', 'status');
    try {
      fs.writeFileSync(`${file}.new`, encodeStatus(this.#status));
      fs.renameSync(`${file}.new`, file);
      this.#statusDirty = false;
      if (this.#statusFailing) {
        this.#statusFailing = false;
        this.#host.report('info', `${file} is being written again`);
      }
    } catch (err) {
      this.#statusDirty = true;
      if (!this.#statusFailing) {
        this.#statusFailing = true;
        this.#host.report('warning', `unable to write ${file}: ${describeError(err)} - the service goes on; retrying every second`);
      }
      if (this.#statusRetry === undefined) {
        this.#statusRetry = this.#host.setTimer(STATUS_RETRY_MS, () => {
          this.#statusRetry = undefined;
          if (this.#statusDirty && this.#state !== 'gone') this.#writeStatus();
        });
      }
    }
  }
}
