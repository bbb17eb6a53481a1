/**
 * Everything the Scanner needs from the outside world — the clock and timers, processes,
 * the scan directory's files and fds — as one interface, as the Supervisor has its
 * SupervisorHost. `systemScannerHost` is the real one (libc through src/sys, the file
 * system, one Reaper for every child); unit tests pass a fake that records spawns and
 * supervisors, moves time by hand and injects failures.
 */
import { EventServer, type EventServerReport } from './event-server.ts';
import type { EventLog } from './events.ts';
import fs from 'node:fs';
import { O_CREAT, O_NONBLOCK, O_RDWR, O_WRONLY, close, dupCloexec, mkfifo, open, pipe, reserveFds, tryLock } from '../sys/fd.ts';
import { kill as sysKill, type SpawnOptions } from '../sys/spawn.ts';
import { tainNow } from '../s6/tai.ts';
import { readSetting, type Setting } from '../s6/servicedir.ts';
import { Reaper, reapedSpawns } from '../sys/reaper.ts';
import { realServicedir } from './realdir.ts';
import { OneshotRunner, type RunnerHost } from './runner.ts';
import { Supervisor, UNKNOWN_WSTAT, type SupervisorHost, type SupervisorStdio, type TimerHandle } from './supervisor.ts';
import { FsSupervisorFiles, SYSTEM_FD_CALLS, readControlFifo, type SupervisorFiles } from './servicefiles.ts';
import { FdReserve } from '../sys/fdreserve.ts';
import type { SupervisorSnapshot } from './handover.ts';
import { PidWatcher } from '../sys/pidwatch.ts';
import { adoptLoggerPipe, adoptionSnapshot } from './adopt.ts';
import { strerror } from '../sys/errors.ts';

/** What a stat of a scan dir entry tells the scanner. */
export interface EntryStat {
  dev: number;
  ino: number;
  isDirectory: boolean;
}

/** A byte stream being read (a FIFO): stop it with close(). */
export interface Reading {
  close(): void;
}

/** A listening oneshot runner. */
export interface Listening {
  close(): void;
  /** Serves a request made inside this process (runner.ts). */
  request?(line: string, reply: (obj: object, last: boolean) => void): void;
}

/** The scanner's runner for a service manager in the same process (pid 1's t6-rc). */
export interface LocalRunner {
  /** Scans now; the entries that have a supervisor (a runner scan request's answer). */
  scan(): string[];
  /** A runner request line, answered through `reply` (undefined: the runner is not listening). */
  request: ((line: string, reply: (obj: object, last: boolean) => void) => void) | undefined;
}

/** The file and fd operations of the scanner. Each throws what the system call throws. */
export interface ScannerFiles {
  readdir(dir: string): string[];
  /** stat(2), links followed; throws (ENOENT for a dangling link). */
  stat(path: string): EntryStat;
  /** Like stat, but undefined when the path does not exist. */
  statIfExists(path: string): EntryStat | undefined;
  /** lstat(2) (a link is not followed), undefined when the path does not exist. */
  lstatIfExists(path: string): EntryStat | undefined;
  /** realpath(3). */
  realpath(path: string): string;
  /** Where SCANDIR/NAME really lives (see realdir.ts); `cache` lives for one scan. */
  realServicedir(scandir: string, name: string, cache: Map<string, string>): string;
  /** A name setting of a service directory (`producer-for`). */
  readSetting(dir: string, file: string): Setting<string>;
  exists(path: string): boolean;
  mkdir(path: string, mode: number): void;
  /** Opens (creating) a lock file, write-only and non-blocking. */
  openLockFile(path: string): number;
  /** Takes a whole-file write lock without waiting: false if someone else holds it. */
  tryLock(fd: number, path: string): boolean;
  mkfifo(path: string, mode: number): void;
  /** Opens a FIFO read-write and non-blocking: the reader, and the writer that keeps it from EOF. */
  openFifo(path: string): number;
  /** Reads a FIFO on the event loop, a bounded read at a time (each chunk valid only during the call); takes ownership of `fd`. */
  readFifo(fd: number, onData: (chunk: Buffer) => void, onError: (err: Error) => void): Reading;
  pipe(): [number, number];
  /** The pipe a still-running logger of `logDir` reads (adoption, adopt.ts), if any. */
  adoptPipe(logDir: string): [number, number] | undefined;
  /** A close-on-exec duplicate of `fd` (a re-exec keeps it when the reader's own is closed). */
  dup(fd: number): number;
  close(fd: number): void;
  /** Grows the fd table to hold `count` fds in one step. */
  reserveFds(count: number): void;
}

/** The scanner's outside world. */
export interface ScannerHost {
  /** Monotonic milliseconds: every deadline and throttle (never stepped, unlike `now`). */
  monotonicMs(): number;
  setTimer(ms: number, fn: () => void): TimerHandle;
  /** Starts a child of the scanner (a signal script); `onExit` gets its wait status. Throws SysError. */
  spawn(opts: SpawnOptions, onExit: (wstat: number) => void): number;
  /** Starts supervising a service directory (Supervisor.open with `supervisorHost`). Throws SupervisorSetupError. */
  openSupervisor(name: string, dir: string, supervisorHost: SupervisorHost, stdio: SupervisorStdio): Supervisor;
  /** A supervisor carrying on from a snapshot (Supervisor.resume). Throws SupervisorSetupError. */
  resumeSupervisor(snap: SupervisorSnapshot, supervisorHost: SupervisorHost, stdio: SupervisorStdio, elapsedMs: number, adopted: boolean): Supervisor;
  /** Watches a process not spawned by this image (SupervisorHost.watch). */
  watch: SupervisorHost['watch'];
  /** Listens for oneshot requests on `socketPath` (runner.ts). Throws if it cannot. */
  listenRunner(socketPath: string, runnerHost: RunnerHost): Listening;
  /** Serves the event stream on `socketPath` (event-server.ts); absent: no stream socket. Throws if it cannot. */
  listenEvents?(socketPath: string, log: EventLog, report: EventServerReport): Listening;
  /** Collects every child; its `reap()` runs on SIGCHLD. */
  readonly reaper: Reaper;
  readonly files: ScannerFiles;
  /** The file operations of every Supervisor (servicefiles.ts). */
  readonly supervisorFiles: SupervisorFiles;
  /** The real-time clock as TAI64N, read at each call: stamps (status, logs), never deadlines. */
  now: SupervisorHost['now'];
  /** Sends a signal (no error if the process is gone). Throws on any other failure. */
  kill(pid: number, signal: number): void;
  /** Starts a process off the event loop (oneshots); the pid comes later. */
  spawnAsync(opts: SpawnOptions, onExit: (wstat: number) => void): Promise<number>;
}

const toEntryStat = (st: fs.Stats): EntryStat => ({ dev: st.dev, ino: st.ino, isDirectory: st.isDirectory() });

/** The real file operations. */
export const systemScannerFiles: ScannerFiles = {
  readdir: (dir) => fs.readdirSync(dir),
  stat: (p) => toEntryStat(fs.statSync(p)),
  statIfExists: (p) => {
    // Mostly absent (a service without log/): no exception for that, it costs more than the stat.
    const st = fs.statSync(p, { throwIfNoEntry: false });
    return st === undefined ? undefined : toEntryStat(st);
  },
  lstatIfExists: (p) => {
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    return st === undefined ? undefined : toEntryStat(st);
  },
  realpath: (p) => fs.realpathSync.native(p),
  realServicedir,
  readSetting,
  exists: (p) => fs.existsSync(p),
  mkdir: (p, mode) => fs.mkdirSync(p, { mode }),
  openLockFile: (p) => open(p, O_WRONLY | O_CREAT | O_NONBLOCK, 0o600),
  tryLock: (fd, p) => tryLock(fd, p),
  mkfifo,
  openFifo: (p) => open(p, O_RDWR | O_NONBLOCK),
  readFifo: (fd, onData, onError) => {
    const sock = readControlFifo(fd, onData, onError);
    return { close: () => sock.destroy() };
  },
  pipe: () => pipe(),
  adoptPipe: adoptLoggerPipe,
  dup: dupCloexec,
  close,
  reserveFds,
};

/**
 * The real world: libc through src/sys, one Reaper. `allCloexec`: every fd above 2 of this
 * process is close-on-exec (t6-svscan makes it so), so spawns need not close fds in the child.
 */
export function systemScannerHost(opts: { allCloexec: boolean; onReapError(err: unknown): void }): ScannerHost {
  const reaper = new Reaper({ onError: opts.onReapError });
  let pidWatcher: PidWatcher | undefined;
  return {
    monotonicMs: () => performance.now(),
    setTimer: (ms, fn) => {
      const t = setTimeout(fn, ms);
      return { cancel: () => clearTimeout(t) };
    },
    // posix_spawn holds its caller until the child has exec'd: oneshots start off the
    // event loop (spawnAsync), and their pid may come after the child has died.
    ...reapedSpawns(reaper, opts.allCloexec),
    kill: (pid, signal) => { sysKill(pid, signal); },
    now: tainNow,
    openSupervisor: (name, dir, supervisorHost, stdio) => {
      // A process left running by a predecessor that was killed is taken over, not doubled.
      const adopt = adoptionSnapshot(name, dir, tainNow());
      if (adopt === undefined) return Supervisor.open(name, dir, supervisorHost, stdio);
      const sup = Supervisor.resume(adopt, supervisorHost, stdio, 0, true);
      supervisorHost.report('info', `${name}: adopted pid ${adopt.runPid}, left running by a previous supervisor`);
      return sup;
    },
    resumeSupervisor: (snap, supervisorHost, stdio, elapsedMs, adopted) => Supervisor.resume(snap, supervisorHost, stdio, elapsedMs, adopted),
    watch: (pid, onExit, adopted) => {
      if (!adopted) { reaper.watch(pid, onExit); return true; }
      // Not our child: its exit is seen through a pidfd, its status is lost (UNKNOWN_WSTAT).
      pidWatcher ??= new PidWatcher({ onError: opts.onReapError });
      return pidWatcher.watch(pid, () => onExit(UNKNOWN_WSTAT));
    },
    listenRunner: (socketPath, runnerHost) => OneshotRunner.listen(socketPath, runnerHost),
    listenEvents: (socketPath, log, report) => EventServer.listen(socketPath, log, report),
    reaper,
    files: systemScannerFiles,
    // The spare fd is taken now, while fds are to be had (see sys/fdreserve.ts).
    supervisorFiles: new FsSupervisorFiles(SYSTEM_FD_CALLS, new FdReserve()),
  };
}

/** A kill that reports instead of throwing (a supervisor's signal to a process that may be gone). */
export function reportingKill(host: ScannerHost, report: (level: 'warning', message: string) => void): (pid: number, signal: number) => void {
  return (pid, signal) => {
    try {
      host.kill(pid, signal);
    } catch (err) {
      report('warning', `unable to send signal ${signal} to ${pid}: ${strerror(err)}`);
    }
  };
}
