/**
 * Starting a service's processes for its Supervisor (s6-supervise's spawn of `run` and
 * `finish`): stdin and stdout from the scanner (or /dev/null once the supervisor was told
 * to close them), the notification-fd readiness pipe, the lock-fd service lock, and for
 * `finish` run's exit code (or 256), signal, the service's name and run's pid. With a
 * `flag-newpidns` file, `run` is pid 1 of a new pid namespace (s6 ≥ 2.13.1); where that
 * cannot be done the start fails and is retried, as in s6.
 *
 * The Launcher decides nothing about states: it starts a process or says why it could not,
 * in a warning that names the file, and tells the Supervisor how long to wait before the
 * next try. It never throws.
 */
import path from 'node:path';
import { type FdSource, type SpawnOptions, currentEnv } from '../sys/spawn.ts';
import { decodeWaitStatus } from '../sys/wait.ts';
import { type ReadinessPipe, type ServiceLock, type SupervisorFiles } from './servicefiles.ts';
import { strerror } from '../sys/errors.ts';
import { isFdShortage } from '../sys/fdreserve.ts';

/** Where the service's stdin and stdout come from (the scanner's logger pipe, or inherited). */
export interface SupervisorStdio {
  stdin?: FdSource;
  stdout?: FdSource;
  stderr?: FdSource;
}

/** A `run` just spawned, and its readiness pipe if it has a notification-fd. */
export interface SpawnedRun {
  pid: number;
  readiness: ReadinessPipe | undefined;
}

/** `run` could not be started: retry in `retryMs` (undefined: only on the next command). */
export interface RunNotStarted {
  retryMs: number | undefined;
}

/** What a Launcher needs: the Supervisor's host and its settings reader. */
export interface LauncherOptions {
  name: string;
  /** The service directory as it is now (it follows a rename: Supervisor.moveTo). */
  dir: () => string;
  files: SupervisorFiles;
  spawn: (opts: SpawnOptions, onExit: (wstat: number) => void) => number;
  report: (level: 'warning', message: string) => void;
  /** An unsigned settings file, the fallback when absent or invalid (invalid is warned about). */
  uintSetting: (file: string, fallback: number) => number;
  /** Variables `run` gets besides t6-svscan's environment (NOTIFY_SOCKET…: health.ts); none for s6's services. */
  env?: () => string[];
}

const SPAWN_RETRY_MS = 10_000;
/**
 * Out of fds (EMFILE, ENFILE): tried again sooner. In t6-svscan they come back within
 * moments (a scan that starts thousands of services holds each one's readiness pipe until
 * the event loop reads it), where s6's 10 seconds would hold the last few services back.
 */
const FD_SHORTAGE_SPAWN_RETRY_MS = 500;
const SERVICE_LOCK_RETRY_MS = 1_000;

/** Starts `run` and `finish` for one Supervisor. */
export class Launcher {
  #opts: LauncherOptions;
  #stdio: SupervisorStdio;

  constructor(opts: LauncherOptions, stdio: SupervisorStdio) {
    this.#opts = opts;
    this.#stdio = stdio;
  }

  /** Replaces stdin/stdout/stderr for later spawns. */
  set stdio(stdio: SupervisorStdio) {
    this.#stdio = stdio;
  }

  /** s6-supervise's "close": stdin and stdout become /dev/null (a logger downstream can reach EOF). */
  closeStdio(): void {
    this.#stdio = { ...this.#stdio, stdin: 'null', stdout: 'null' };
  }

  /** Spawns `run` with its fds; `onExit` gets the pid and wait status once it is reaped. */
  startRun(onExit: (pid: number, wstat: number) => void): SpawnedRun | RunNotStarted {
    const { name, files } = this.#opts;
    const dir = this.#opts.dir();
    const notificationFd = this.#opts.uintSetting('notification-fd', -1);
    const lockFd = this.#opts.uintSetting('lock-fd', -1);
    if (notificationFd >= 0 && notificationFd === lockFd) {
      this.#opts.report('warning', `${name}: notification-fd and lock-fd are both ${lockFd} - not starting the service (fix one, then send u)`);
      return { retryMs: undefined };
    }
    const runPath = path.join(dir, 'run');
    const newPidNamespace = files.exists(path.join(dir, 'flag-newpidns'));
    const fds = this.#stdioFds();
    let readiness: ReadinessPipe | undefined;
    let serviceLock: ServiceLock | undefined;
    let pid: number;
    try {
      if (notificationFd >= 0) {
        readiness = files.readinessPipe();
        fds.set(notificationFd, readiness.childFd);
      }
      if (lockFd >= 0) {
        serviceLock = files.lockService(dir);
        if (serviceLock === undefined) {
          readiness?.close();
          this.#opts.report('warning', `${path.join(dir, 'supervise', 'service-lock')} is locked: another instance of the service is still running - retrying in 1 second`);
          return { retryMs: SERVICE_LOCK_RETRY_MS };
        }
        fds.set(lockFd, serviceLock.fd);
      }
      const extra = this.#opts.env?.() ?? [];
      const spawnOpts: SpawnOptions = {
        path: runPath, argv: ['./run', name], cwd: dir, fds, ...(newPidNamespace ? { newPidNamespace } : {}), ...(extra.length > 0 ? { env: withEnv(extra) } : {}),
      };
      pid = this.#opts.spawn(spawnOpts, (wstat) => onExit(pid, wstat));
    } catch (err) {
      readiness?.close();
      serviceLock?.close();
      const why = files.explainNotRunnable(runPath) ?? strerror(err);
      const where = newPidNamespace ? ` as pid 1 of a new pid namespace (${path.join(dir, 'flag-newpidns')})` : '';
      const retryMs = isFdShortage(err) ? FD_SHORTAGE_SPAWN_RETRY_MS : SPAWN_RETRY_MS;
      this.#opts.report('warning', `unable to spawn ${runPath}${where}: ${why} - waiting ${retryMs / 1000} seconds`);
      return { retryMs };
    }
    readiness?.closeChildEnd();
    serviceLock?.close(); // the child holds the lock through its copy
    return { pid, readiness };
  }

  /** Spawns `finish` after run (`runPid`) died with `wstat`; returns its pid, or 0 if it could not start. */
  startFinish(wstat: number, runPid: number, onExit: (pid: number, wstat: number) => void): number {
    const { name, files } = this.#opts;
    const dir = this.#opts.dir();
    const finishPath = path.join(dir, 'finish');
    const ws = decodeWaitStatus(wstat);
    const argv = ['./finish', ws.exited ? String(ws.exitCode) : '256', String(ws.signal), name, String(runPid)];
    try {
      const pid = this.#opts.spawn({ path: finishPath, argv, cwd: dir, fds: this.#stdioFds() }, (w) => onExit(pid, w));
      return pid;
    } catch (err) {
      this.#opts.report('warning', `unable to spawn ${finishPath}: ${files.explainNotRunnable(finishPath) ?? strerror(err)}`);
      return 0;
    }
  }

  #stdioFds(): Map<number, FdSource> {
    const fds = new Map<number, FdSource>();
    if (this.#stdio.stdin !== undefined) fds.set(0, this.#stdio.stdin);
    if (this.#stdio.stdout !== undefined) fds.set(1, this.#stdio.stdout);
    if (this.#stdio.stderr !== undefined) fds.set(2, this.#stdio.stderr);
    return fds;
  }
}

/** t6-svscan's environment with `extra` (`NAME=value`) replacing or adding those names. */
function withEnv(extra: readonly string[]): string[] {
  const names = new Set(extra.map((kv) => kv.slice(0, kv.indexOf('=') + 1)));
  return [...currentEnv().filter((kv) => !names.has(kv.slice(0, kv.indexOf('=') + 1))), ...extra];
}
