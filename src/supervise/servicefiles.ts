/**
 * Everything a Supervisor does with files and file descriptors, behind one interface:
 * setting up `event/` and `supervise/` (lock and control FIFO), writing `supervise/status`
 * atomically, the death tally, the `down` file, the settings files, the readiness pipe,
 * `supervise/service-lock`, and the events sent to `event/` listeners.
 *
 * The Supervisor decides; this module only touches the disk. The scanner hands the real
 * implementation (FsSupervisorFiles) to every Supervisor through its host; unit tests wrap
 * it to watch the order of writes and events, to count what is held open, and to inject
 * faults (FsSupervisorFiles takes its fd system calls as a parameter for that).
 *
 * Errors: setUp throws SupervisorSetupError (the message names the file and the action);
 * the other writes throw what the system said and the Supervisor words the warning;
 * `notify`, `exists`, `explainNotRunnable` and the settings reads never throw.
 *
 * Out of fds: the writes that must not fail (status, events, death tally) run again in
 * the slot of a spare fd (sys/fdreserve.ts) when they fail with EMFILE or ENFILE; events
 * that still cannot go out are kept in the caller's OwedEvents for its retry.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { O_CREAT, O_NONBLOCK, O_RDWR, O_WRONLY, close, dupCloexec, mkfifo, open, pipe, tryLock } from '../sys/fd.ts';
import type { HeldFds } from './handover.ts';
import { procStartTime } from '../sys/proc.ts';
import { type HeldLock, holdLock } from '../sys/lockkeeper.ts';

/** In `supervise/`: the pid and start time of the process `run` started last (t6's, for adoption). */
export const START_RECORD = 't6-start';
import { type SupervisorStatus, encodeStatus } from '../s6/status.ts';
import { type OwedEvents, makeFifodir, notifyFifodir } from '../s6/fifodir.ts';
import { type DeathRecord, decodeDeathTally, encodeDeathTally } from '../s6/deathtally.ts';
import { type Setting, exists, explainNotRunnable, readSignalSetting, readUintSetting } from '../s6/servicedir.ts';
import { errorCode, strerror } from '../sys/errors.ts';
import { type FdReserve } from '../sys/fdreserve.ts';

/**
 * Control bytes read from a control FIFO at once (`supervise/control`, `.s6-svscan/control`),
 * into one buffer shared by every FIFO, each read acted on before the next: all pid 1 ever
 * holds of a control stream. One read takes what a full FIFO holds (64 KiB, as libuv's own
 * reads did); more waits in the kernel, whose writers then find the FIFO full.
 */
export const CONTROL_READ_BYTES = 64 * 1024;
const controlReadBuffer = Buffer.allocUnsafe(CONTROL_READ_BYTES);

/**
 * Reads a control FIFO on the event loop; `onChunk` gets each read, in a buffer valid only
 * during the call (copy what is kept). The socket owns `fd`.
 */
export function readControlFifo(fd: number, onChunk: (chunk: Buffer) => void, onError: (err: Error) => void): net.Socket {
  const socket = new net.Socket({
    fd, readable: true, writable: false,
    onread: { buffer: controlReadBuffer, callback: (n: number, b: Uint8Array) => { onChunk(Buffer.from(b.buffer, b.byteOffset, n)); return true; } },
  } as net.SocketConstructorOpts);
  socket.on('error', onError);
  return socket;
}

/** Thrown by `Supervisor.open` (and SupervisorFiles.setUp) when the service directory cannot be supervised. */
export class SupervisorSetupError extends Error {
  override name = 'SupervisorSetupError';
  /** true when another supervisor holds the lock. */
  readonly busy: boolean;
  /** The errno code of the step that failed (EMFILE: out of fds), if the system said one. */
  readonly code: string | undefined;
  constructor(message: string, busy = false, code?: string) {
    super(message);
    this.busy = busy;
    this.code = code;
  }
}

/** `supervise/` as a supervisor holds it: the lock, and the control FIFO being read. */
export interface HeldSuperviseDir {
  /** Stops reading the control FIFO and releases the lock. Idempotent. */
  close(): void;
  /** Re-exec: stops reading the control FIFO and gives up its fds, still open (and the lock still held), to the caller. */
  handOver(): HeldFds;
  /**
   * The next image, once the supervisor is whole again: acts now on the bytes that waited in
   * the FIFO during the exec (one read's worth; the event loop reads any more).
   */
  takeWaiting(): void;
  /** resumeHeld only: why the lock could not be taken again (then it is not held), else undefined. */
  readonly unlocked: string | undefined;
}

/** Where the bytes written to `supervise/control` go. */
export interface ControlReader {
  /** Bytes as they arrive, one latin1 character per byte. */
  onBytes(bytes: string): void;
  /** A read error on the FIFO. */
  onError(err: unknown): void;
}

/** The notification-fd pipe: the child gets `childFd`, the supervisor watches the other end. */
export interface ReadinessPipe {
  /** The write end, to be given to `run` as its notification-fd. */
  readonly childFd: number;
  /** Closes the supervisor's copy of the write end (once the child has its own). */
  closeChildEnd(): void;
  /** Calls `onReady` once a newline arrives; the pipe is then closed (also on EOF or error, without a call). */
  watch(onReady: () => void): void;
  /** Closes both ends. Idempotent. */
  close(): void;
  /** Re-exec: stops watching and gives up the read end, still open (undefined if it is closed). */
  handOver(): number | undefined;
}

/** `supervise/service-lock`, open and locked, for a service with `lock-fd`. */
export interface ServiceLock {
  /** The locked fd, to be given to `run` as its lock-fd. */
  readonly fd: number;
  /** Closes the supervisor's copy (the child keeps the lock through its own). */
  close(): void;
}

/** The file and fd operations of a Supervisor (one object serves every supervisor). */
export interface SupervisorFiles {
  /**
   * s6-supervise's start-up files: `event/` fifodir, `supervise/` (0700), its lock (taken),
   * its control FIFO (read into `control`), and (if asked) an empty death tally. Throws
   * SupervisorSetupError; `busy` when another supervisor holds the lock.
   */
  setUp(dir: string, resetDeathTally: boolean, control: ControlReader): HeldSuperviseDir;
  /**
   * The next image's side of a re-exec: serves `supervise/` from the fds the previous image
   * held; without a lock fd (it was parked, sys/lockkeeper.ts), locks `supervise/lock` again.
   */
  resumeHeld(dir: string, fds: HeldFds, control: ControlReader): HeldSuperviseDir;
  /** Writes `supervise/status` atomically (status.new, then rename). Throws. */
  writeStatus(dir: string, status: SupervisorStatus): void;
  /** Writes `supervise/t6-start`: `run`'s pid and start time (for adoption, adopt.ts). Throws. */
  recordStart(dir: string, pid: number): void;
  /** Appends a record to `supervise/death_tally`, keeping the last `max`, atomically. Throws. */
  recordDeath(dir: string, record: DeathRecord, max: number): void;
  /** Creates (empty) or removes `dir/down`. Throws. */
  setDownFile(dir: string, present: boolean): void;
  /** Does this file exist (any type)? Never throws. */
  exists(file: string): boolean;
  /** Why this file cannot be executed, in words, or undefined if it looks runnable. */
  explainNotRunnable(file: string): string | undefined;
  /** An unsigned decimal settings file of `dir`, read fresh (servicedir.md §2). */
  uintSetting(dir: string, name: string): Setting<number>;
  /** A signal settings file of `dir`, read fresh. */
  signalSetting(dir: string, name: string): Setting<number>;
  /** A new readiness pipe. Throws SysError. */
  readinessPipe(): ReadinessPipe;
  /** A readiness pipe of which only the read end is left (handed over by a re-exec). */
  readinessFrom(readFd: number): ReadinessPipe;
  /** Opens and locks `supervise/service-lock`; undefined while someone else holds it. Throws SysError. */
  lockService(dir: string): ServiceLock | undefined;
  /**
   * Sends `events` to every listener of `dir/event`, after what `owed` holds for it; what
   * cannot go out for lack of fds is added to `owed` (call again, with '', to retry). Never throws.
   */
  notify(dir: string, events: string, owed: OwedEvents): void;
}

/** The fd system calls FsSupervisorFiles makes (sys/fd.ts's); tests replace some to inject faults. */
export interface FdCalls {
  open: typeof open;
  close: typeof close;
  mkfifo: typeof mkfifo;
  pipe: typeof pipe;
  tryLock: typeof tryLock;
}

/** The real system calls. */
export const SYSTEM_FD_CALLS: FdCalls = { open, close, mkfifo, pipe, tryLock };

/** SupervisorFiles on the real filesystem. */
export class FsSupervisorFiles implements SupervisorFiles {
  #fd: FdCalls;
  /** The spare fd for the writes that must not fail (none: they fail as the system says). */
  #reserve: FdReserve | undefined;

  constructor(fdCalls: FdCalls = SYSTEM_FD_CALLS, reserve?: FdReserve) {
    this.#fd = fdCalls;
    this.#reserve = reserve;
  }

  /** Runs a must-not-fail write, again in the spare fd's slot if it ran out of fds. */
  #mustWrite(fn: () => void): void {
    if (this.#reserve === undefined) fn();
    else this.#reserve.run(fn);
  }

  setUp(dir: string, resetDeathTally: boolean, control: ControlReader): HeldSuperviseDir {
    const fd = this.#fd;
    const superviseDir = path.join(dir, 'supervise');
    step(`create ${path.join(dir, 'event')}`, () => makeFifodir(path.join(dir, 'event')));
    step(`create ${superviseDir}`, () => makeSuperviseDir(dir, superviseDir));
    const lockPath = path.join(superviseDir, 'lock');
    let lockFd = -1;
    step(`open ${lockPath}`, () => { lockFd = fd.open(lockPath, O_WRONLY | O_CREAT | O_NONBLOCK, 0o644); });
    let locked = false;
    try {
      step(`lock ${lockPath}`, () => { locked = fd.tryLock(lockFd, lockPath); });
    } catch (err) {
      fd.close(lockFd); // else every retry of the set-up (each 2 s) would leak one fd
      throw err;
    }
    if (!locked) {
      fd.close(lockFd);
      throw new SupervisorSetupError(`${lockPath} is locked: another supervisor is already running on ${dir}`, true);
    }
    // Held for the supervisor's life; parked out of this fd table when it fills (sys/lockkeeper.ts).
    const lock = holdLock(lockFd, lockPath, fd.close);
    const controlPath = path.join(superviseDir, 'control');
    let controlFd = -1;
    try {
      step(`create ${controlPath}`, () => fd.mkfifo(controlPath, 0o600));
      step(`open ${controlPath}`, () => {
        // One read-write fd (Linux allows it on a FIFO) is both the reader and the writer that
        // keeps readers from seeing EOF: one fd per service instead of two, and every spawn
        // copies and closes t6-svscan's whole fd table.
        controlFd = fd.open(controlPath, O_RDWR | O_NONBLOCK);
      });
      const death = path.join(superviseDir, 'death_tally');
      if (resetDeathTally) step(`truncate ${death}`, () => fs.writeFileSync(death, ''));
    } catch (err) {
      if (controlFd >= 0) fd.close(controlFd);
      lock.close();
      throw err;
    }
    return this.#serve(controlFd, lock, undefined, control);
  }

  resumeHeld(dir: string, fds: HeldFds, control: ControlReader): HeldSuperviseDir {
    const lockPath = path.join(dir, 'supervise', 'lock');
    if (fds.lockFd !== undefined) return this.#serve(fds.controlFd, holdLock(fds.lockFd, lockPath, this.#fd.close), undefined, control);
    // The previous image had parked the lock: execve released it. Taken again here; if
    // someone took it in between, this supervisor carries on without it (and says so).
    let lockFd = -1;
    try {
      lockFd = this.#fd.open(lockPath, O_WRONLY | O_CREAT | O_NONBLOCK, 0o644);
      if (this.#fd.tryLock(lockFd, lockPath)) return this.#serve(fds.controlFd, holdLock(lockFd, lockPath, this.#fd.close), undefined, control);
      this.#fd.close(lockFd);
      return this.#serve(fds.controlFd, undefined, `${lockPath} is locked: another supervisor took it during the re-exec`, control);
    } catch (err) {
      if (lockFd >= 0) this.#fd.close(lockFd);
      return this.#serve(fds.controlFd, undefined, `unable to lock ${lockPath} again after the re-exec: ${strerror(err)}`, control);
    }
  }

  /** `supervise/` as held: the control FIFO read into `control`, and the lock (if held). */
  #serve(controlFd: number, lock: HeldLock | undefined, unlocked: string | undefined, control: ControlReader): HeldSuperviseDir {
    const socket = readControlFifo(controlFd, (chunk) => control.onBytes(chunk.toString('latin1')), (err) => control.onError(err));
    let closed = false;
    return {
      unlocked,
      close: () => {
        if (closed) return;
        closed = true;
        socket.destroy(); // closes the control fd
        lock?.close();
      },
      handOver: () => {
        // libuv owns the socket's fd: a duplicate outlives it (unread bytes wait in the FIFO).
        closed = true;
        const kept = dupCloexec(controlFd);
        socket.destroy();
        // A parked lock hands over no fd: execve releases it, and the next image locks again.
        const lockFd = lock?.handOver();
        return { ...(lockFd === undefined ? {} : { lockFd }), controlFd: kept };
      },
      takeWaiting: () => {
        // Not left to the event loop: its first poll may bring a scandir command that
        // re-executes at once, before these bytes are reached, image after image.
        if (closed) return;
        let n = 0;
        try {
          n = fs.readSync(controlFd, controlReadBuffer, 0, CONTROL_READ_BYTES, null);
        } catch (err) {
          if (errorCode(err) !== 'EAGAIN') control.onError(err);
          return;
        }
        if (n > 0) control.onBytes(controlReadBuffer.toString('latin1', 0, n));
      },
    };
  }

  writeStatus(dir: string, status: SupervisorStatus): void {
    const file = path.join(dir, 'supervise', 'status');
    const bytes = encodeStatus(status);
    this.#mustWrite(() => {
      fs.writeFileSync(`${file}.new`, bytes);
      fs.renameSync(`${file}.new`, file);
    });
  }

  recordStart(dir: string, pid: number): void {
    const start = procStartTime(pid);
    if (start === undefined) return;
    fs.writeFileSync(path.join(dir, 'supervise', START_RECORD), `${pid} ${start}\n`);
  }

  recordDeath(dir: string, record: DeathRecord, max: number): void {
    const file = path.join(dir, 'supervise', 'death_tally');
    this.#mustWrite(() => {
      let records: DeathRecord[] = [];
      try {
        records = decodeDeathTally(fs.readFileSync(file));
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') throw err;
      }
      records.push(record);
      if (records.length > max) records = records.slice(records.length - max);
      fs.writeFileSync(`${file}.new`, encodeDeathTally(records));
      fs.renameSync(`${file}.new`, file);
    });
  }

  setDownFile(dir: string, present: boolean): void {
    const file = path.join(dir, 'down');
    if (present) fs.writeFileSync(file, '', { flag: 'a' });
    else fs.rmSync(file, { force: true });
  }

  exists(file: string): boolean {
    return exists(file);
  }

  explainNotRunnable(file: string): string | undefined {
    return explainNotRunnable(file);
  }

  uintSetting(dir: string, name: string): Setting<number> {
    return readUintSetting(dir, name);
  }

  signalSetting(dir: string, name: string): Setting<number> {
    return readSignalSetting(dir, name);
  }

  readinessPipe(): ReadinessPipe {
    const [readEnd, writeEnd] = this.#fd.pipe();
    return this.#readiness(readEnd, writeEnd);
  }

  readinessFrom(readFd: number): ReadinessPipe {
    return this.#readiness(readFd, -1);
  }

  #readiness(readEnd: number, writeEnd: number): ReadinessPipe {
    const fd = this.#fd;
    let writeOpen = writeEnd >= 0;
    let readOpen = true;
    let socket: net.Socket | undefined;
    const closeChildEnd = (): void => {
      if (writeOpen) fd.close(writeEnd);
      writeOpen = false;
    };
    const close = (): void => {
      closeChildEnd();
      if (!readOpen) return;
      readOpen = false;
      if (socket === undefined) fd.close(readEnd);
      else socket.destroy(); // closes the read end
    };
    return {
      childFd: writeEnd,
      closeChildEnd,
      close,
      handOver: () => {
        if (!readOpen) return undefined;
        readOpen = false;
        closeChildEnd();
        if (socket === undefined) return readEnd;
        const kept = dupCloexec(readEnd);
        socket.destroy();
        return kept;
      },
      watch: (onReady) => {
        if (!readOpen || socket !== undefined) return;
        socket = new net.Socket({ fd: readEnd, readable: true, writable: false });
        socket.on('data', (chunk: Buffer) => {
          if (!readOpen || !chunk.includes(0x0a)) return;
          close();
          onReady();
        });
        socket.on('end', close);
        socket.on('error', close);
      },
    };
  }

  lockService(dir: string): ServiceLock | undefined {
    const fd = this.#fd;
    const lockPath = path.join(dir, 'supervise', 'service-lock');
    const lockFd = fd.open(lockPath, O_WRONLY | O_CREAT, 0o644);
    let locked: boolean;
    try {
      locked = fd.tryLock(lockFd, lockPath);
    } catch (err) {
      fd.close(lockFd);
      throw err;
    }
    if (!locked) {
      fd.close(lockFd);
      return undefined;
    }
    let open = true;
    return {
      fd: lockFd,
      close: () => {
        if (open) fd.close(lockFd);
        open = false;
      },
    };
  }

  notify(dir: string, events: string, owed: OwedEvents): void {
    const eventDir = path.join(dir, 'event');
    notifyFifodir(eventDir, events, owed, this.#fd);
    // Some listeners missed it for lack of fds: once more, in the spare's slot.
    if (!owed.empty && this.#reserve?.held === true) this.#reserve.spend(() => notifyFifodir(eventDir, '', owed, this.#fd));
  }
}

/** Runs one set-up step; its failure becomes a SupervisorSetupError naming the action. */
function step(what: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    throw new SupervisorSetupError(`unable to ${what}: ${strerror(err)}`, false, errorCode(err));
  }
}

/** `supervise/` as a directory (mode 0700), following a `supervise` symlink to a target yet to be made. */
function makeSuperviseDir(dir: string, superviseDir: string): void {
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
        fs.mkdirSync(path.resolve(dir, fs.readlinkSync(superviseDir)), { mode: 0o700, recursive: true });
      }
    }
    if (!fs.statSync(superviseDir).isDirectory()) throw new Error('exists and is not a directory');
  }
}
