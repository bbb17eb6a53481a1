/**
 * The client side of s6's supervision interfaces, as s6-svc, s6-svok, s6-svstat, s6-svwait
 * and s6-svscanctl use them. Works the same against t6-svscan and the real s6-supervise.
 *
 * - Commands: open `DIR/supervise/control` write-only and non-blocking (ENXIO: nobody
 *   reads, "supervisor not listening"), then write all the bytes in one write(2).
 * - "Is it supervised?": does anyone hold a write lock on `DIR/supervise/lock`
 *   (s6_svc_ok's F_GETLK probe). t6-svstat first tries a cheaper sign that needs no
 *   koffi: a reader on the control FIFO (see controlHasReader).
 * - Status: the 35-byte `DIR/supervise/status`, plus whether `DIR/down` exists.
 * - Waiting: subscribe to `DIR/event` first, read the status second, act third, then follow
 *   the events; a transition can then never fall between reading and listening.
 *
 * This module never prints and never exits; failures are `ClientError`s whose `code` says
 * which of s6's outcomes it is. It loads the koffi-based system layer only when it must
 * (a lock probe, a full FIFO, a wait), so that `t6-svc -u` starts without it.
 */
import type { Dirent } from 'node:fs';
import { STATUS_SIZE, type SupervisorStatus, decodeStatus } from './status.ts';
import { meets, stateOfStatus, step, wantOf, type WaitState, type WaitWant } from './svwait.ts';
import { strerror } from '../sys/errors.ts';
import { isDirectory } from '../sys/stat.ts';

// Built-in modules through getBuiltinModule: an ESM `import fs from 'node:fs'` builds the
// module's ESM facade, which runs every lazy getter of fs (fs.promises, streams, readline…)
// and costs about 3 ms of every client command's start-up.
const fs = process.getBuiltinModule('node:fs');

/** The errno name (ENOENT…) of an error thrown by fs or by the sys layer. */
function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Which of s6's outcomes a failure is. */
export type ClientErrorCode =
  /** No supervisor reads the control FIFO (s6-svc HEAD exit 102). */
  | 'not-supervised'
  /** The supervise (or .s6-svscan) directory exists but is not usable (s6-svc HEAD exit 1). */
  | 'broken-supervise-dir'
  /** A system call failed (exit 111). */
  | 'system';

/** A failed client operation; `message` is s6's text without the `prog: fatal: ` prefix. */
export class ClientError extends Error {
  override name = 'ClientError';
  readonly code: ClientErrorCode;
  /** The directory the operation was about. */
  readonly dir: string;
  /** The errno name behind it (ENOENT…), when there is one. */
  readonly errno: string | undefined;
  constructor(code: ClientErrorCode, dir: string, message: string, errno?: string) {
    super(message);
    this.code = code;
    this.dir = dir;
    this.errno = errno;
  }
}

// Loaded on first use: the system layer brings in koffi (about 10 ms of start-up).
let sysFd: Promise<typeof import('../sys/fd.ts')> | undefined;
function loadSysFd(): Promise<typeof import('../sys/fd.ts')> {
  sysFd ??= import('../sys/fd.ts');
  return sysFd;
}

// --- Sending commands ------------------------------------------------------------------

const { O_WRONLY, O_NONBLOCK, O_RDONLY, O_DIRECTORY } = fs.constants;

/**
 * s6_svc_writectl: writes `bytes` to `DIR/SUB/control` in one write(2). Throws a
 * ClientError: 'not-supervised' (no reader, or no `SUB` directory), 'broken-supervise-dir'
 * (`SUB` exists but its control FIFO does not), 'system' (anything else, DIR missing too).
 */
async function writeControl(dir: string, sub: string, bytes: Buffer): Promise<void> {
  const fifo = `${dir}/${sub}/control`;
  let fd: number;
  try {
    fd = fs.openSync(fifo, O_WRONLY | O_NONBLOCK);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENXIO') throw notListening(dir);
    if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EISDIR') throw unableToControl(dir, err);
    throw investigate(dir, sub, err);
  }
  try {
    try {
      fs.writeSync(fd, bytes);
    } catch (err) {
      if (errorCode(err) !== 'EAGAIN') throw err;
      // The FIFO is full: wait for room as s6-svc does, on a blocking descriptor. (A write
      // of at most PIPE_BUF bytes is all or nothing, so nothing was written yet.)
      const { setNonblocking } = await loadSysFd();
      setNonblocking(fd, false);
      fs.writeSync(fd, bytes);
    }
  } catch (err) {
    throw unableToControl(dir, err);
  } finally {
    fs.closeSync(fd);
  }
}

/** Why the control FIFO could not be opened, decided as s6_svc_writectl does. */
function investigate(dir: string, sub: string, openError: unknown): ClientError {
  let dirFd: number;
  try {
    dirFd = fs.openSync(dir, O_RDONLY | O_DIRECTORY);
  } catch (err) {
    return unableToControl(dir, err);
  }
  fs.closeSync(dirFd);
  let reason = openError;
  try {
    fs.closeSync(fs.openSync(`${dir}/${sub}`, O_RDONLY | O_DIRECTORY));
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return notListening(dir);
    reason = err;
  }
  // s6-svscanctl words it slightly differently from s6-svc.
  const what = sub === 'supervise' ? 'directory' : 'directory. errno reported';
  return new ClientError('broken-supervise-dir', dir,
    `something is wrong with the ${dir}/${sub} ${what}: ${strerror(reason)}`, errorCode(reason));
}

function notListening(dir: string): ClientError {
  return new ClientError('not-supervised', dir, `unable to control ${dir}: supervisor not listening`);
}

function unableToControl(dir: string, err: unknown): ClientError {
  return new ClientError('system', dir, `unable to control ${dir}: ${strerror(err)}`, errorCode(err));
}

/** Sends control bytes to the supervisor of `dir` (what `s6-svc` does). */
export function svcSend(dir: string, commands: string): Promise<void> {
  return writeControl(dir, 'supervise', Buffer.from(commands, 'latin1'));
}

/** Sends control bytes to the scanner of `scandir` (what `s6-svscanctl` does). */
export function svscanctlSend(scandir: string, commands: string): Promise<void> {
  return writeControl(scandir, '.s6-svscan', Buffer.from(commands, 'latin1'));
}

// --- Is it supervised? ------------------------------------------------------------------

/** s6_svc_ok with the system layer loaded: open the lock read-only, probe with F_GETLK. */
function svOkSync(dir: string, isLocked: (fd: number, path?: string) => boolean): boolean {
  const lock = `${dir}/supervise/lock`;
  let fd: number;
  try {
    fd = fs.openSync(lock, O_RDONLY);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return false;
    throw new ClientError('system', dir, `unable to check ${dir}: ${strerror(err)}`, errorCode(err));
  }
  try {
    return isLocked(fd, lock);
  } catch (err) {
    throw new ClientError('system', dir, `unable to check ${dir}: ${strerror(err)}`, errorCode(err));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * s6_svc_ok: does a supervisor hold the lock on `DIR/supervise/lock`? false when the lock
 * file does not exist. Throws ClientError 'system' ("unable to check DIR") on other errors.
 */
export async function svOk(dir: string): Promise<boolean> {
  const { isLocked } = await loadSysFd();
  return svOkSync(dir, isLocked);
}

// --- Status -----------------------------------------------------------------------------

/** A service's status file and its `down` file. */
export interface ServiceStatus {
  status: SupervisorStatus;
  /** No `DIR/down` file. */
  normallyUp: boolean;
}

const statusBuf = Buffer.alloc(STATUS_SIZE);

/** Reads and decodes `DIR/supervise/status` (s6_svstatus_read); a short file is EPIPE. */
export function readStatusFile(dir: string): SupervisorStatus {
  let n: number;
  try {
    const fd = fs.openSync(`${dir}/supervise/status`, O_RDONLY);
    try {
      n = fs.readSync(fd, statusBuf, 0, STATUS_SIZE, null);
      // A read(2) of a regular file returns all 35 bytes when they exist; loop anyway.
      while (n < STATUS_SIZE) {
        const more = fs.readSync(fd, statusBuf, n, STATUS_SIZE - n, null);
        if (more === 0) break;
        n += more;
      }
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    throw new ClientError('system', dir, `unable to read status for ${dir}: ${strerror(err)}`, errorCode(err));
  }
  const status = n === STATUS_SIZE ? decodeStatus(statusBuf) : undefined;
  if (status === undefined) throw new ClientError('system', dir, `unable to read status for ${dir}: Broken pipe`, 'EPIPE');
  return status;
}

/** Does `DIR/down` exist? (ENOENT: no; any other error is a ClientError.) */
export function hasDownFile(dir: string): boolean {
  const file = `${dir}/down`;
  try {
    return fs.statSync(file, { throwIfNoEntry: false }) !== undefined;
  } catch (err) {
    throw new ClientError('system', dir, `unable to access ${file}: ${strerror(err)}`, errorCode(err));
  }
}

/** The status file and whether the service is normally up. Does not check supervision. */
export function readStatus(dir: string): ServiceStatus {
  const status = readStatusFile(dir);
  return { status, normallyUp: !hasDownFile(dir) };
}

/** What s6-svstat learns about one service directory. */
export type ServiceProbe =
  | { supervised: false }
  | ({ supervised: true } & ServiceStatus);

/**
 * A fast "yes" for t6-svstat: is some process reading `DIR/supervise/control`? Only a live
 * supervisor does (s6-supervise and t6-svscan open it close-on-exec for their whole life,
 * and it is how s6-svc decides "supervisor not listening"), and the test needs no koffi.
 * false means "do not know": the caller then asks the lock, so a "not supervised" answer
 * always comes from s6's own test (F_GETLK on `supervise/lock`).
 */
function controlHasReader(dir: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(`${dir}/supervise/control`, O_WRONLY | O_NONBLOCK);
  } catch {
    return false; // ENXIO (no reader), ENOENT, EACCES…: undecided
  }
  try {
    return fs.fstatSync(fd).isFIFO();
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Does a supervisor run on `dir`? A reader on its control FIFO says yes at once (plain
 * open(2): no libc binding to load, so a t6-svok of a supervised service costs only Node's
 * start); without one, the lock probe decides (svOk), as s6_svc_ok does. Throws ClientError 'system'.
 */
export async function isSupervised(dir: string): Promise<boolean> {
  return controlHasReader(dir) || (await svOk(dir));
}

function statusProbe(dir: string): ServiceProbe {
  return { supervised: true, ...readStatus(dir) };
}

/**
 * s6-svstat's reading: supervised? then the status and `down`. "Supervised" is decided by a
 * reader on the control FIFO when there is one, else by the lock probe (svOk).
 * Throws ClientError 'system'.
 */
export async function probeService(dir: string): Promise<ServiceProbe> {
  if (await isSupervised(dir)) return statusProbe(dir);
  return { supervised: false };
}

/** One service of a scan directory, as `t6-svstat -a` reports it. */
export type ScanEntry = { name: string; dir: string } & (ServiceProbe | { supervised: 'error'; error: ClientError });

/**
 * Every service of a scan directory in name order: each non-dot entry that is a directory
 * (symlinks followed), and its `log/` when that is a directory, named `NAME/log`. A failure
 * on one service is reported in its entry; an unreadable scandir throws ClientError 'system'.
 * Costs about seven system calls per service, and loads koffi only if some service has no
 * reader on its control FIFO.
 */
export async function scanServices(scandir: string): Promise<ScanEntry[]> {
  let entries: Dirent[];
  try {
    entries = fs.readdirSync(scandir, { withFileTypes: true });
  } catch (err) {
    throw new ClientError('system', scandir, `unable to read directory ${scandir}: ${strerror(err)}`, errorCode(err));
  }
  const names: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    if (e.isDirectory() || (e.isSymbolicLink() && isDirectory(`${scandir}/${e.name}`))) names.push(e.name);
  }
  names.sort();
  const out: ScanEntry[] = [];
  const undecided: number[] = [];
  const probe = (i: number, decide: (dir: string) => ServiceProbe | undefined): void => {
    const { name, dir } = out[i]!;
    try {
      const p = decide(dir);
      if (p === undefined) undecided.push(i);
      else out[i] = { name, dir, ...p };
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      out[i] = { name, dir, supervised: 'error', error: err };
    }
  };
  const fast = (dir: string): ServiceProbe | undefined => (controlHasReader(dir) ? statusProbe(dir) : undefined);
  for (const name of names) {
    const dir = `${scandir}/${name}`;
    out.push({ name, dir, supervised: false });
    probe(out.length - 1, fast);
    if (isDirectory(`${dir}/log`)) {
      out.push({ name: `${name}/log`, dir: `${dir}/log`, supervised: false });
      probe(out.length - 1, fast);
    }
  }
  if (undecided.length > 0) {
    const { isLocked } = await loadSysFd();
    for (const i of undecided) probe(i, (dir) => (svOkSync(dir, isLocked) ? statusProbe(dir) : { supervised: false }));
  }
  return out;
}

// --- Waiting for a state ----------------------------------------------------------------

/**
 * What to wait for: up (`u`), up and ready (`U`), down (`d`), down with finish done (`D`),
 * restarted (`r`: down, then up), restarted and ready (`R`).
 */
export type WaitGoal = 'u' | 'U' | 'd' | 'D' | 'r' | 'R';

/** How a wait ended. */
export interface WaitResult {
  /** Every (or, with 'any', one) service reached the goal, counting permanent failures as reached. */
  reached: boolean;
  /** Services that reported a permanent failure (`O` while waiting for up) or whose supervisor exited (`x`) short of the goal. */
  failures: number;
  /** The deadline passed first. */
  timedOut: boolean;
}

/** Options of `waitFor` beyond s6-svwait's. */
export interface WaitOptions {
  /**
   * For `r`/`R`, what "down" means in the first phase: `d` (run died; s6-svwait) or `D`
   * (finish done too; s6-svlisten and s6-svc -w with commands). Default `d`.
   */
  restartVia?: 'd' | 'D';
}

/** One phase of a wait: the state wanted, by every service or by any one. */
interface Want extends WaitWant {
  any: boolean;
}

/**
 * Waits until the services of `dirs` reach `goal`, as s6-svwait does (or s6-svlisten when
 * `action` is given): subscribe to every `DIR/event`, read every status, run `action` (for
 * instance: send the commands), then follow the events. `timeoutMs` 0 waits forever.
 * Subscribing before reading, and reading before acting, means no transition is missed.
 * Listeners and the timer are always released before this returns.
 *
 * Throws ClientError 'system' when a subscription or a status read fails, and whatever
 * `action` throws. One difference from s6: when the first phase of a restart ends in the
 * middle of a burst of events, s6 drops the rest of the burst; t6 hands it to the second
 * phase (so `dDu` arriving at once still counts as a restart).
 */
export async function waitFor(
  dirs: readonly string[],
  goal: WaitGoal,
  mode: 'all' | 'any',
  timeoutMs: number,
  action?: () => unknown,
  options: WaitOptions = {},
): Promise<WaitResult> {
  const any = mode === 'any';
  const phases: Want[] = goal === 'r' || goal === 'R'
    ? [{ ...wantOf(options.restartVia ?? 'd'), any: false }, { ...wantOf(goal === 'R' ? 'U' : 'u'), any }]
    : [{ ...wantOf(goal), any }];
  const states: WaitState[] = [];
  let phase = 0;
  let failures = 0;
  let started = false;
  const queue: [number, string][] = [];
  let finish: ((r: WaitResult) => void) | undefined;
  let result: WaitResult | undefined;

  const got = (want: Want): boolean => {
    const test = (i: number): boolean => meets(states[i]!, want);
    return want.any ? dirs.some((_, i) => test(i)) : dirs.every((_, i) => test(i));
  };
  // Moves through the phases while their goals hold; sets `result` at the end. As in
  // s6-svwait, failures in the first phase of a restart end the wait there.
  const advance = (): void => {
    while (result === undefined && got(phases[phase]!)) {
      if (phase + 1 < phases.length && failures === 0) phase++;
      else result = { reached: phase === phases.length - 1, failures, timedOut: false };
    }
  };
  const onEvent = (i: number, byte: string): void => {
    if (result !== undefined) return;
    if (!started) {
      queue.push([i, byte]);
      return;
    }
    const next = step(states[i]!, phases[phase]!, byte);
    if (next === undefined) return;
    states[i] = next.state;
    if (next.failure) failures++;
    advance();
    if (result !== undefined) finish?.(result);
  };

  const { listenFifodir } = await import('./fifodir.ts');
  const listeners: { close(): void }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<WaitResult>((resolve) => {
    finish = resolve;
    if (timeoutMs > 0) timer = setTimeout(() => resolve({ reached: false, failures, timedOut: true }), timeoutMs);
  });
  try {
    dirs.forEach((dir, i) => {
      try {
        listeners.push(listenFifodir(`${dir}/event`, (byte) => onEvent(i, byte)));
      } catch (err) {
        throw new ClientError('system', dir, `unable to subscribe to events for ${dir}: ${strerror(err)}`, errorCode(err));
      }
    });
    dirs.forEach((dir, i) => { states[i] = stateOfStatus(readStatusFile(dir)); });
    if (action !== undefined) await action();
    started = true;
    advance();
    for (const [i, byte] of queue.splice(0)) onEvent(i, byte);
    if (result !== undefined) return result;
    return await deadline;
  } finally {
    clearTimeout(timer);
    for (const l of listeners) l.close();
  }
}
