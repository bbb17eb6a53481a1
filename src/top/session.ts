/**
 * A running `t6 top`: the model fed from the tree. Once at start, every service's facts
 * as `t6-svstat --json -a` reads them; then only what the event stream names: a service
 * an event is about has its facts read again (its status file is written before its
 * event is sent, so the read sees the change). No status file is polled. Once a second,
 * and only while this runs, the sampler reads /proc for the services that are up and the
 * last log lines are looked at (a file read again only when it changed).
 *
 * Work is serial: events mark services to read again, and one drain at a time reads them,
 * so a burst of events costs one read per service and the view changes once per burst.
 */
import path from 'node:path';
import { ClientError, type ScanEntry, probeService, scanServices, svcSend } from '../s6/client.ts';
import { describeServicedir } from '../s6/servicefacts.ts';
import { tainFromUnixMs } from '../s6/tai.ts';
import { isDirectory } from '../sys/stat.ts';
import { type EventReader, eventSocket, readEvents } from '../supervise/event-client.ts';
import { TopModel } from './model.ts';
import { LogTails, logdirOf } from './logtail.ts';
import { ProcSampler, type ProcSource, type SampleTarget } from './sampler.ts';

const fs = process.getBuiltinModule('node:fs');

/** What a session needs from its caller. */
export interface SessionOptions {
  source: ProcSource;
  /** Monotonic ms (performance.now), for the sampler's bound. */
  nowMs(): number;
  /** Real time, ms (Date.now), for the status stamps. */
  wallMs(): number;
  /** The view changed (an event was taken in): draw it. */
  onChange(): void;
  /** Something failed that is not the tree's doing (a bug): end. */
  onError(err: unknown): void;
  /** The services whose last log line is wanted (those on the screen); default: all. */
  logRows?(): Iterable<string>;
}

/** Where a service's files are. */
interface Place {
  dir: string;
  /** The directory resolved, as run's cwd shows it. */
  real: string;
  logdir: string | undefined;
}

/** The model of one scan directory, kept up to date. */
export class TopSession {
  readonly model = new TopModel();
  readonly sampler: ProcSampler;
  readonly #scandir: string;
  readonly #opts: SessionOptions;
  readonly #tails = new LogTails();
  readonly #places = new Map<string, Place>();
  readonly #pending = new Set<string>();
  #rescan = false;
  #draining: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reader: EventReader | undefined;
  #loaded!: () => void;
  /** Settles once every service has been read (after the stream's first connection). */
  readonly loaded = new Promise<void>((resolve) => { this.#loaded = resolve; });

  constructor(scandir: string, opts: SessionOptions) {
    this.#scandir = scandir;
    this.#opts = opts;
    this.sampler = new ProcSampler(opts.source, opts.nowMs);
  }

  /** Reads every service once. Throws ClientError when the scan directory cannot be read. */
  async load(): Promise<void> {
    const entries = await scanServices(this.#scandir);
    const names = new Set(entries.map((e) => e.name));
    for (const row of this.model.rows) if (!names.has(row.name)) this.#forget(row.name);
    for (const e of entries) this.#describe(e);
  }

  /**
   * Follows the event stream (reading every service again each time it is (re)connected:
   * what happened while it was not is then known); `done` rejects as readEvents' does.
   */
  follow(): EventReader {
    this.#reader = readEvents(eventSocket(this.#scandir), {
      since: null, follow: true,
      onConnect: () => { this.#rescan = true; this.#drain(); },
    }, (e) => {
      const effect = this.model.applyEvent(e);
      if (effect.rescan) this.#rescan = true;
      for (const name of effect.refresh) this.#pending.add(name);
      this.#drain();
    });
    return this.#reader;
  }

  /**
   * Samples /proc and the log lines now, then each time the sampler allows it (once a
   * second) until stop(), calling `onTick` after each sample.
   */
  startTicks(onTick: () => void): void {
    const loop = (): void => {
      if (this.sampler.due()) {
        this.tick();
        onTick();
      }
      // A timer that fires a little early finds the sampler not due and waits the rest.
      this.#timer = setTimeout(loop, Math.max(1, this.sampler.msUntilDue()));
    };
    loop();
  }

  /** One sample of /proc (unless one was taken less than a second ago) and of the wanted log lines. */
  tick(): void {
    if (this.sampler.due()) {
      const targets: SampleTarget[] = [];
      for (const row of this.model.rows) {
        const place = this.#places.get(row.name);
        if (row.facts.pid !== null && place !== undefined) targets.push({ name: row.name, pid: row.facts.pid, dir: place.real });
      }
      const usage = this.sampler.sample(targets);
      if (usage !== undefined) this.model.setUsage(usage);
    }
    const wanted = new Set<string>();
    for (const name of this.#opts.logRows?.() ?? this.model.rows.map((r) => r.name)) {
      const row = this.model.row(name);
      const logdir = this.#places.get(name)?.logdir;
      if (row === undefined) continue;
      row.logLine = logdir === undefined ? undefined : this.#tails.read(logdir);
      if (logdir !== undefined) wanted.add(logdir);
    }
    this.#tails.prune(wanted);
  }

  /** Sends control bytes to a service's supervisor as t6-svc does; returns what to tell the user. */
  async control(service: string, letter: 'u' | 'd' | 't'): Promise<string> {
    const row = this.model.row(service);
    if (row?.facts.insideScanner === 'logger') return `${service} is logged inside t6-svscan: it has no supervisor to command`;
    try {
      await svcSend(path.join(this.#scandir, service), letter);
      return `${service}: sent t6-svc -${letter}`;
    } catch (err) {
      if (err instanceof ClientError) return err.message;
      throw err;
    }
  }

  /** Ends the ticks and the stream. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#reader?.stop();
  }

  #drain(): void {
    if (this.#draining !== undefined) return;
    this.#draining = (async () => {
      while (this.#rescan || this.#pending.size > 0) {
        if (this.#rescan) {
          this.#rescan = false;
          this.#pending.clear();
          try { await this.load(); } catch (err) { if (!(err instanceof ClientError)) throw err; }
          continue;
        }
        const names = [...this.#pending];
        this.#pending.clear();
        for (const name of names) await this.#refresh(name);
      }
    })().then(() => {
      this.#draining = undefined;
      this.#loaded();
      this.#opts.onChange();
    }, (err: unknown) => this.#opts.onError(err));
  }

  /** Reads one service's facts again; forgets it when its directory is gone. */
  async #refresh(name: string): Promise<void> {
    const dir = path.join(this.#scandir, name);
    if (name.includes('..') || !isDirectory(dir)) { this.#forget(name); return; }
    let entry: ScanEntry;
    try {
      entry = { name, dir, ...await probeService(dir) };
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      entry = { name, dir, supervised: 'error', error: err };
    }
    this.#describe(entry);
    const log = `${name}/log`;
    if (!name.endsWith('/log') && this.model.row(log) === undefined && isDirectory(path.join(dir, 'log'))) await this.#refresh(log);
  }

  #describe(entry: ScanEntry): void {
    this.model.setFacts(describeServicedir(entry, tainFromUnixMs(this.#opts.wallMs())));
    let real = entry.dir;
    try { real = fs.realpathSync(entry.dir); } catch { /* gone meanwhile: the next event says so */ }
    this.#places.set(entry.name, { dir: entry.dir, real, logdir: entry.name.endsWith('/log') ? undefined : logdirOf(entry.dir) });
  }

  #forget(name: string): void {
    this.model.remove(name);
    this.#places.delete(name);
    if (!name.endsWith('/log')) this.#forget(`${name}/log`);
  }
}
