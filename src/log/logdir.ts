/**
 * One s6-log logdir: `lock` (fcntl lock held while we log), `current` (appended to; u+x
 * once finalised), rotated archives `@<tai64n>.s` (and `.u` for files found unfinished at
 * start-up), `state`/`newstate`/`previous`/`processed` for the processor.
 *
 * Lines are staged in memory (staged.ts), written once per input chunk. No file holds more
 * than `s` bytes, whatever the chunking: a write stops at the line end that makes the file
 * due (`size + l >= s`) or before a line that would not fit (rotated first); a line longer
 * than `s` is cut as `-l` cuts (s6-log 2.11 writes it whole). Rotation is s6-log's state
 * machine (s6-log.c rotator()): each step that fails is retried after `r`. One difference, for throughput on disks: s6-log fsyncs `current` before renaming
 * it; t6 renames it to `previous`, opens the new `current` and goes on writing while the
 * old file is fsynced in the background, and only then marks `previous` u+x and archives
 * (or processes) it. An `@….s` archive is therefore still always complete and synced; a
 * crash before the fsync ends leaves `previous`, which start-up recovery archives as `.u`
 * (unfinished), as s6-log does with any `previous` it finds.
 *
 * The logdir is busy — input should wait — while a write fails (ENOSPC, EIO…: the staged
 * bytes are kept and retried every `r` ms) or while a rotation (or its processor) is still
 * under way when the next one is already due. Nothing is dropped; memory stays bounded by
 * what the caller fed before it saw the logdir busy.
 *
 * Writes, renames and links are synchronous (each is short, and a logger must not reorder
 * its own writes); only the fsync of a rotated file runs in the thread pool. No
 * process-global state: everything the logdir needs from outside (clock, timers, processor
 * wait, warnings) comes through LogdirHost. Archiving and trimming are in archives.ts, the
 * processor's spawn in processor.ts.
 *
 * Files are reached through the logdir's fd held from `open` to `close`, never through a
 * link, with its owner's rights (logdir-files.ts); modes change through fds (fchmod) only.
 */
import fs from 'node:fs';
import type { Tain } from '../s6/tai.ts';
import { close as sysClose, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND } from '../sys/fd.ts';
import { archiveFile } from './archives.ts';
import { LogdirError, LogdirFiles, LogdirStepError } from './logdir-files.ts';
import { ProcessorRun } from './processor.ts';
import { StagedLines } from './staged.ts';
import type { LogdirSpec } from './script.ts';
import { strerror } from '../sys/errors.ts';

export { LogdirError };

/** What a logdir needs from its host. */
export interface LogdirHost {
  /** The real-time clock as TAI64N, read at each call (stamps, archive names); timers are relative. */
  now(): Tain;
  /** Runs fn after ms; returns a canceller. */
  setTimer(ms: number, fn: () => void): () => void;
  /** Resolves with the raw wait status of a child the host reaps (processors). */
  waitPid(pid: number): Promise<number>;
  /** A warning for people (`unable to …`). */
  warn(message: string): void;
  /** File creation mode: 0666 & ~umask. */
  readonly mask: number;
}

/** Where a rotation is (s6-log's ROTSTATE_*, with the fsync of the old current moved after the rename). */
type RotState =
  | 'idle' | 'rename' | 'newcurrent' | 'syncprevious' | 'syncingprevious' | 'chmodprevious' | 'finishprevious'
  | 'runprocessor' | 'waitprocessor' | 'syncprocessed' | 'unlinkprevious'
  | 'renamestate' | 'finishprocessed';

export class Logdir {
  readonly spec: LogdirSpec;
  readonly dir: string;
  /** Called when the logdir becomes writable again with nothing left staged. */
  onReady: () => void = () => {};
  readonly #host: LogdirHost;
  readonly #files: LogdirFiles;
  readonly #lockFd: number;
  #fd = -1;
  /** Bytes in `current` (written). */
  #size = 0;
  readonly #staged = new StagedLines();
  /** A write failed: staged bytes wait for the retry. */
  #flushing = false;
  #rot: RotState = 'idle';
  /** The old current's fd (read-write), open until the rotation ends: its mode and the processor's input come from it. */
  #prevFd = -1;
  #cancelRetry: (() => void) | undefined;
  #failed = false;
  #closed = false;
  /** The processor running, or done and not yet synced. */
  #processor: ProcessorRun | undefined;
  #readyWaiters: (() => void)[] = [];

  private constructor(spec: LogdirSpec, host: LogdirHost, files: LogdirFiles, lockFd: number) {
    this.spec = spec;
    this.dir = spec.dir;
    this.#host = host;
    this.#files = files;
    this.#lockFd = lockFd;
  }

  /**
   * Creates (0700) and locks the logdir, recovers what an earlier logger left (tools.md
   * §8.5), opens `current`. Throws LogdirError.
   */
  static open(spec: LogdirSpec, host: LogdirHost): Logdir {
    const dir = spec.dir;
    const fail = (what: string, err: unknown): never => { throw new LogdirError(dir, `unable to ${what}: ${strerror(err)}`); };
    const { files, lockFd } = LogdirFiles.openLocked(dir, host.mask);
    const ld = new Logdir(spec, host, files, lockFd);
    try { ld.#recover(); } catch (err) { ld.#release(); fail(`initialise logdir ${dir}`, err); }
    try {
      ld.#fd = files.open('current', O_RDWR | O_APPEND | O_CREAT, host.mask);
      fs.fchmodSync(ld.#fd, host.mask);
      ld.#size = fs.fstatSync(ld.#fd).size;
    } catch (err) { ld.#release(); fail(`open ${files.path('current')}`, err); }
    return ld;
  }

  /** Closes every fd (a failed open, or the end). */
  #release(): void {
    if (this.#fd >= 0) fs.closeSync(this.#fd);
    this.#fd = -1;
    if (this.#prevFd >= 0) fs.closeSync(this.#prevFd);
    this.#prevFd = -1;
    this.#endProcessor();
    sysClose(this.#lockFd);
    this.#files.close();
  }

  /** Start-up recovery: an unfinished current (not u+x) and what a rotation left are archived. */
  #recover(): void {
    const files = this.#files;
    const st = files.stat('current');
    if (st !== undefined && st.isFile() && (st.mode & 0o100) !== 0) return;
    this.#unlinkQuiet('state');
    this.#unlinkQuiet('newstate');
    const processed = files.stat('processed');
    if (processed !== undefined && processed.isFile() && (processed.mode & 0o100) !== 0) {
      this.#unlinkQuiet('previous');
      this.#finish('processed', 's');
    } else {
      this.#unlinkQuiet('processed');
      this.#finish('previous', 'u');
    }
    this.#finish('current', 'u');
    sysClose(files.open('state', O_WRONLY | O_CREAT | O_TRUNC, this.#host.mask));
  }

  /** True while input should wait: a write failed, or a rotation is due before the last one ended. */
  get busy(): boolean { return this.#flushing || (this.#rot !== 'idle' && this.#due()); }

  /** Bytes staged but not yet written. */
  get staged(): number { return this.#staged.length; }

  /** Rotations started since the logdir was opened (metrics). */
  rotations = 0;

  #due(): boolean { return this.#size + this.staged + this.spec.tolerance >= this.spec.maxSize; }
  /** `current` must be rotated before anything more goes in. */
  #full(): boolean { return this.#size + this.spec.tolerance >= this.spec.maxSize; }

  /** Stages one output line: header, line bytes, newline. Rotates when due. */
  stage(header: Buffer, src: Buffer, start: number, end: number): void {
    this.#staged.add(header, src, start, end, this.spec.maxSize);
    if (this.#rot === 'idle' && !this.#flushing && this.#due()) this.#pump();
  }

  /** Writes what is staged (end of an input chunk), as far as the files' bound allows now. */
  flush(): void {
    if (!this.#flushing && this.staged > 0) this.#pump();
  }

  /** Forced rotation (SIGALRM): only if current is not empty, as s6-log 2.11. */
  rotateNow(): void {
    if (this.#rot !== 'idle' || this.#flushing) return;
    this.#pump();
    if (this.#rot !== 'idle' || this.#flushing || this.staged > 0) return;
    if (this.#size > 0) {
      this.#startRotation();
      this.#pump();
    }
  }

  /**
   * Resolves true once nothing is staged and no rotation is under way, or false after
   * `timeoutMs` (a full disk). Nothing changes for the logdir either way.
   */
  whenIdle(timeoutMs: number): Promise<boolean> {
    const idle = (): boolean => this.#rot === 'idle' && !this.#flushing && this.staged === 0;
    if (idle()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const cancel = this.#host.setTimer(timeoutMs, () => { if (!settled) { settled = true; resolve(false); } });
      const waiter = (): void => {
        if (settled) return;
        this.#pump();
        if (!idle()) { this.#readyWaiters.push(waiter); return; } // more to write, or another rotation
        settled = true;
        cancel();
        resolve(true);
      };
      this.#readyWaiters.push(waiter);
    });
  }

  /** fsync(2) of `current` (before a reboot); false, with a warning, if it failed. */
  fsyncCurrent(): boolean {
    try {
      fs.fsyncSync(this.#fd);
      return true;
    } catch (err) {
      this.#host.warn(`unable to fsync ${this.dir}/current: ${strerror(err)}`);
      return false;
    }
  }

  /** Waits until every write and rotation is done, then fsyncs current and marks it u+x; releases the lock. */
  async close(): Promise<void> {
    if (this.#closed) return;
    for (;;) {
      if (this.#rot === 'idle' && !this.#flushing) this.#pump();
      if (this.#rot === 'idle' && !this.#flushing && this.staged === 0) {
        try {
          fs.fsyncSync(this.#fd);
          fs.fchmodSync(this.#fd, this.#host.mask | 0o100);
          break;
        } catch (err) {
          this.#host.warn(`unable to finalise ${this.dir}/current: ${strerror(err)}`);
          await new Promise<void>((resolve) => { this.#host.setTimer(this.spec.retryMs, resolve); });
          continue;
        }
      }
      await new Promise<void>((resolve) => { this.#readyWaiters.push(resolve); });
    }
    this.#closed = true;
    this.#cancelRetry?.();
    this.#release();
  }

  /**
   * Writes what is staged as far as `current` may take it, and rotates each time it is full:
   * one input chunk may fill several files. Stops while a rotation that must end first is
   * under way (input then waits: `busy`), or after a failed write (retried after r ms).
   */
  #pump(): void {
    const { maxSize, tolerance } = this.spec;
    while (!this.#flushing) {
      const n = this.#full() ? 0 : this.#staged.take(maxSize - tolerance - this.#size, maxSize - this.#size, this.#size === 0);
      if (n > 0) {
        if (!this.#write(n)) return;
        continue;
      }
      // Full, or the next line does not fit in what is left: a rotation first.
      if ((this.staged === 0 && !this.#full()) || this.#rot !== 'idle') return;
      const size = this.#size;
      this.#startRotation(); // renames and opens the next current at once, unless a step fails
      if (this.#size === size) return;
    }
  }

  /** Writes `n` staged bytes; on failure keeps the rest and retries after r ms. True when all went. */
  #write(n: number): boolean {
    const before = this.#staged.length;
    try {
      this.#staged.writeTo(this.#fd, n);
    } catch (err) {
      this.#size += before - this.#staged.length;
      if (!this.#failed) this.#host.warn(`unable to write to ${this.dir}/current: ${strerror(err)}`);
      this.#failed = true;
      this.#flushing = true;
      this.#retryLater();
      return false;
    }
    this.#size += n;
    return true;
  }

  #retryLater(): void {
    this.#cancelRetry?.();
    this.#cancelRetry = this.#host.setTimer(this.spec.retryMs, () => {
      this.#cancelRetry = undefined;
      if (this.#flushing) {
        this.#flushing = false;
        this.#pump();
        if (this.#flushing) return;
      }
      if (this.#rot !== 'idle' && this.#rot !== 'waitprocessor' && this.#rot !== 'syncingprevious') this.#run();
      this.#settle();
    });
  }

  /** After progress: start a rotation that became due, tell waiters when input may resume. */
  #settle(): void {
    if (this.#flushing) return;
    if (this.#failed) { this.#failed = false; this.#host.warn(`writing to ${this.dir}/current again`); }
    this.#pump();
    if (this.#flushing || this.busy) return;
    if (this.#rot === 'idle') {
      const waiters = this.#readyWaiters;
      this.#readyWaiters = [];
      for (const w of waiters) w();
    }
    this.onReady();
  }

  #startRotation(): void {
    this.#rot = 'rename';
    this.rotations++;
    this.#run();
  }

  #unlinkQuiet(name: string): void { try { this.#files.unlink(name); } catch { /* absent: nothing to remove */ } }

  /** s6-log's finish(): archive `name` as @now.suffix (a regular file with one link and data), unlink it, trim; anything else there is reported and removed. */
  #finish(name: string, suffix: 's' | 'u'): void {
    const files = this.#files;
    // One switch of rights for the whole step (a trim looks at every archive).
    files.as(() => {
      const st = files.stat(name);
      if (st !== undefined && !st.isFile()) this.#host.warn(`${files.path(name)} is not a regular file: removing it, not archiving it`);
      archiveFile(files, this.spec, name, suffix, () => this.#host.now(), (file, err) => {
        this.#host.warn(`unable to unlink ${file}: ${strerror(err)}`);
      });
    });
  }

  /** Runs rotation steps from the current state until done, waiting, or failed (retry scheduled). */
  #run(): void {
    const mask = this.#host.mask;
    let step = '';
    try {
      for (;;) {
        switch (this.#rot) {
          case 'rename':
            // Gone (its owner removed it)? What was written is in our fd: go on.
            step = `rename ${this.dir}/current to ${this.dir}/previous`;
            if (!this.#files.renameIfExists('current', 'previous')) this.#host.warn(`unable to ${step}: No such file or directory - going on`);
            this.#rot = 'newcurrent';
            break;
          case 'newcurrent': {
            step = `open ${this.dir}/current`;
            const fd = this.#files.create('current', O_RDWR | O_APPEND, mask, () => this.#host.warn(`${this.dir}/current was made again by someone else during the rotation: removing it`));
            this.#prevFd = this.#fd;
            this.#fd = fd;
            this.#size = 0;
            this.#rot = 'syncprevious';
            break;
          }
          case 'syncprevious':
            this.#syncPrevious();
            return;
          case 'chmodprevious':
            // Through the old current's own fd: the name `previous` may be anything by now.
            step = `chmod ${this.dir}/previous`;
            fs.fchmodSync(this.#prevFd, mask | 0o100);
            this.#rot = this.spec.processor === undefined ? 'finishprevious' : 'runprocessor';
            break;
          case 'finishprevious':
            step = `finish previous .s to logdir ${this.dir}`;
            this.#finish('previous', 's');
            this.#closePrevious('idle');
            return;
          case 'runprocessor':
            step = `spawn processor for logdir ${this.dir}`;
            this.#startProcessor();
            return;
          case 'syncprocessed':
            step = `fsync ${this.dir}/processed and ${this.dir}/newstate`;
            this.#processor!.sync(mask | 0o100);
            this.#endProcessor();
            this.#rot = 'unlinkprevious';
            break;
          case 'unlinkprevious':
            step = `unlink ${this.dir}/previous`;
            this.#files.unlinkIfExists('previous');
            this.#closePrevious('renamestate');
            break;
          case 'renamestate':
            step = `rename ${this.dir}/newstate to ${this.dir}/state`;
            if (!this.#files.renameIfExists('newstate', 'state')) this.#host.warn(`unable to ${step}: No such file or directory - going on`);
            this.#rot = 'finishprocessed';
            break;
          case 'finishprocessed':
            step = `finish processed .s to logdir ${this.dir}`;
            this.#finish('processed', 's');
            this.#rot = 'idle';
            return;
          case 'syncingprevious': // the fsync of previous is under way
          case 'waitprocessor': // the processor is running
          case 'idle':
            return;
        }
      }
    } catch (err) {
      this.#host.warn(err instanceof LogdirStepError ? err.message : `unable to ${step}: ${strerror(err)}`);
      this.#retryLater();
    }
  }

  /** Lets go of the processor's files. */
  #endProcessor(): void {
    this.#processor?.close();
    this.#processor = undefined;
  }

  /** The rotated file is archived or processed: its fd goes, and the rotation moves on to `next`. */
  #closePrevious(next: RotState): void {
    fs.closeSync(this.#prevFd);
    this.#prevFd = -1;
    this.#rot = next;
  }

  /** Fsyncs the old current in the thread pool; the rotation goes on (or retries) when that ends. */
  #syncPrevious(): void {
    this.#rot = 'syncingprevious';
    fs.fsync(this.#prevFd, (err) => {
      if (err !== null) {
        this.#host.warn(`unable to fsync ${this.dir}/previous: ${strerror(err)}`);
        this.#rot = 'syncprevious';
        this.#retryLater();
        return;
      }
      this.#rot = 'chmodprevious';
      this.#run();
      this.#settle();
    });
  }

  /** Spawns the processor (throws if it cannot) and waits for it in the background. */
  #startProcessor(): void {
    this.#processor = ProcessorRun.start(this.#files, this.spec.processor!, this.#prevFd);
    this.#rot = 'waitprocessor';
    this.#host.waitPid(this.#processor.pid).then((wstat) => this.#processorDone(wstat), (err: unknown) => {
      this.#host.warn(`unable to wait for processor of ${this.dir}: ${strerror(err)}`);
      this.#endProcessor();
      this.#rot = 'runprocessor';
      this.#retryLater();
    });
  }

  #processorDone(wstat: number): void {
    if (this.#rot !== 'waitprocessor') return;
    if (wstat !== 0) {
      const how = (wstat & 0x7f) === 0 ? `exited ${(wstat >> 8) & 0xff}` : `crashed (signal ${wstat & 0x7f})`;
      this.#host.warn(`processor for ${this.dir} ${how}`);
      this.#endProcessor();
      this.#rot = 'runprocessor';
      this.#retryLater();
      return;
    }
    this.#rot = 'syncprocessed';
    this.#run();
    this.#settle();
  }
}
