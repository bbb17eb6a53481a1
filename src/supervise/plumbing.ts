/**
 * The pipes t6-svscan holds between services (s6-svscan's logger pipes, and s6-rc's
 * pipelines without an fd holder):
 *
 * - **Logger pipes.** A service with a `log/` (or, with the console sink, any service)
 *   gets one pipe for its entry's life: the service writes, its logger reads — a `log/run`
 *   supervised as s6 does, or a reader inside t6-svscan (logging.ts, console-sink.ts). The scanner holds
 *   both ends, so either side restarts without losing a byte; the write end is closed
 *   only once the service is gone for good, so the logger can reach EOF.
 * - **Pipelines.** A servicedir whose `producer-for` names another scan dir entry feeds it
 *   through one pipe per consumer (several producers may share it: a funnel), held as
 *   long as a producer or the consumer is known.
 *
 * `stdioFor` says which fds a slot's `run` gets: its pipes, else the catch-all log.
 */
import path from 'node:path';
import { CATCHALL_SERVICE } from '../s6/initctl.ts';
import type { Logging } from './logging.ts';
import type { ScannerFiles } from './scanner-host.ts';
import type { SupervisorStdio } from './supervisor.ts';
import { newSlot, type ServiceEntry, type ServiceTable, type Slot } from './slots.ts';
import { strerror } from '../sys/errors.ts';

/** A pipeline pipe, held by the scanner and keyed by the consumer's scan dir name. */
interface Pipeline {
  read: number;
  /** undefined once every producer is gone for good (so the consumer can reach EOF). */
  write: number | undefined;
}

/** What the plumbing works with. */
export interface PlumbingContext {
  scandir: string;
  table: ServiceTable;
  files: ScannerFiles;
  logging: Logging;
  /** -X: the catch-all logger's stderr (its alerts), when given. */
  consoleFd: number | undefined;
  report(level: 'warning', message: string): void;
}

/** The scanner's pipes. */
export class Plumbing {
  readonly #ctx: PlumbingContext;
  readonly #pipelines = new Map<string, Pipeline>();

  constructor(ctx: PlumbingContext) {
    this.#ctx = ctx;
  }

  /**
   * A scan saw `entry` (directory `dir`): the first time, settle its kind of logger and make
   * its pipe (as s6's log/ supervisor, the kind never changes after); later, let an
   * in-process logger reload its script. false: the pipe could not be made (reported; the
   * entry waits for the next scan, with nothing left open).
   */
  attachLogger(entry: ServiceEntry, dir: string): boolean {
    const { logging, files } = this.#ctx;
    if (entry.log !== undefined || entry.reader !== undefined || entry.name === CATCHALL_SERVICE) {
      entry.reader?.rescan();
      return true;
    }
    const kind = logging.loggerKind(dir);
    if (kind === 'none' && !logging.consoleSink) return true;
    let fds: [number, number] | undefined;
    try {
      // A logger left running by a killed predecessor still reads its pipe: keep that one.
      fds = (kind === 'external' ? files.adoptPipe(path.join(dir, 'log')) : undefined) ?? files.pipe();
      if (kind === 'inproc') entry.reader = logging.logger(entry.name, dir, fds[0]);
      else if (kind === 'none') entry.reader = logging.sink(entry.name, fds[0]);
    } catch (err) {
      // Nothing may stay open: the next scan makes a new pipe.
      if (fds !== undefined) for (const fd of fds) files.close(fd);
      this.#ctx.report('warning', `unable to create the logger pipe for ${dir}: ${strerror(err)}`);
      return false;
    }
    entry.pipe = fds;
    entry.writeClosed = false;
    if (kind === 'external') entry.log = newSlot(`${entry.name}/log`);
    return true;
  }

  /** Where a slot's run gets stdin/stdout/stderr: its logger pipe, its pipeline pipes, the catch-all. */
  stdioFor(entry: ServiceEntry, slot: Slot): SupervisorStdio {
    const stdio: SupervisorStdio = {};
    const catchAll = this.#ctx.logging.catchAllFd;
    if (catchAll !== undefined) stdio.stderr = catchAll;
    if (slot !== entry.main) {
      if (entry.pipe !== undefined) stdio.stdin = entry.pipe[0];
      return stdio;
    }
    if (entry.pipe === undefined && catchAll !== undefined) stdio.stdout = catchAll;
    if (entry.pipe !== undefined && !entry.writeClosed) {
      stdio.stdout = entry.pipe[1];
      if (entry.reader?.takesStderr === true) stdio.stderr = entry.pipe[1];
    }
    const out = entry.producerFor === undefined ? undefined : this.#pipelines.get(entry.producerFor);
    if (out?.write !== undefined) stdio.stdout = out.write;
    const input = this.#pipelines.get(entry.name);
    if (input !== undefined) stdio.stdin = input.read;
    if (entry.name === CATCHALL_SERVICE && this.#ctx.consoleFd !== undefined) stdio.stderr = this.#ctx.consoleFd;
    return stdio;
  }

  /**
   * Makes the pipeline pipes match the table: one per consumer named in some entry's
   * `producer-for`; a pipe whose consumer and producers are all unknown is closed.
   */
  updatePipelines(): void {
    const wanted = new Set<string>();
    const known = new Set<string>();
    for (const entry of this.#ctx.table.entries()) {
      known.add(entry.name);
      if (entry.producerFor !== undefined) wanted.add(entry.producerFor);
    }
    for (const name of wanted) {
      if (this.#pipelines.has(name)) continue;
      try {
        const [read, write] = this.#ctx.files.pipe();
        this.#pipelines.set(name, { read, write });
      } catch (err) {
        this.#ctx.report('warning', `unable to create the pipeline pipe to ${path.join(this.#ctx.scandir, name)}: ${strerror(err)}`);
      }
    }
    for (const [name, p] of this.#pipelines) {
      if (wanted.has(name) || known.has(name)) continue;
      this.#closePipeline(p);
      this.#pipelines.delete(name);
    }
  }

  /**
   * The service of `entry` is gone for good: close our write end of its logger pipe (its
   * logger reaches EOF), and of its pipeline once no producer of it is left.
   */
  producerGone(entry: ServiceEntry): void {
    this.closeWriteEnd(entry);
    const name = entry.producerFor;
    const p = name === undefined ? undefined : this.#pipelines.get(name);
    if (p?.write === undefined) return;
    for (const other of this.#ctx.table.entries()) {
      if (other.producerFor === name && other.main.sup !== undefined) return;
    }
    this.#ctx.files.close(p.write);
    p.write = undefined;
  }

  /** Closes our copy of the logger pipe's write end; the logger's later spawns get the read end only. */
  closeWriteEnd(entry: ServiceEntry): void {
    if (entry.pipe === undefined || entry.writeClosed) return;
    this.#ctx.files.close(entry.pipe[1]);
    entry.writeClosed = true;
    entry.log?.sup?.setStdio({ stdin: entry.pipe[0] });
  }

  /** An entry is forgotten: its reader writes what is left (in the background), its pipe closes. */
  release(entry: ServiceEntry): void {
    if (entry.reader !== undefined) {
      // Drains the pipe now (synchronously), writes the rest in the background.
      void entry.reader.close();
      entry.reader = undefined;
    }
    if (entry.pipe !== undefined) {
      this.#ctx.files.close(entry.pipe[0]);
      this.closeWriteEnd(entry);
      entry.pipe = undefined;
    }
  }

  /** Re-exec: the pipeline pipes as they are (they stay open for the next image). */
  pipelineSnapshot(): { name: string; read: number; write?: number }[] {
    return [...this.#pipelines].map(([name, p]) => ({ name, read: p.read, ...(p.write === undefined ? {} : { write: p.write }) }));
  }

  /** The next image: the pipeline pipes handed over. */
  restorePipelines(list: readonly { name: string; read: number; write?: number }[]): void {
    for (const p of list) this.#pipelines.set(p.name, { read: p.read, write: p.write });
  }

  /** The scanner ends: every entry's pipe and every pipeline closes. */
  releaseAll(): void {
    for (const entry of this.#ctx.table.entries()) this.release(entry);
    for (const p of this.#pipelines.values()) this.#closePipeline(p);
    this.#pipelines.clear();
  }

  #closePipeline(p: Pipeline): void {
    this.#ctx.files.close(p.read);
    if (p.write !== undefined) this.#ctx.files.close(p.write);
  }
}
