/**
 * CPU and memory of each service's process tree, from /proc, at most once a second.
 *
 * A service's tree is its `run` process (the pid of its status file) and every descendant
 * still attached to it (a daemon that double-forks away is no longer counted, as in
 * htop's tree). CPU% is the CPU time the tree used since the previous sample over the time
 * between them (100% = one CPU); a process not seen before counts what it used since it
 * started, or since the previous sample if it is older. The first sample therefore shows
 * each process's average over its life, as ps(1) does, and `t6 top --once` needs no wait.
 *
 * Pids in status files are in t6-svscan's pid namespace. Read from another namespace they
 * name other processes, so the numbers are shown only once one of them is known to be the
 * service's: a `run` works in its service directory (s6 starts it there), so a pid whose
 * cwd is that directory proves the namespaces agree; until one does, usage is unknown.
 */
import {
  CLOCK_TICKS_PER_SECOND, type ProcStat, pageSizeBytes, procChildren, procCwd, readProcStat, uptimeSeconds,
} from '../sys/procstat.ts';

/** The least time between two samples: /proc is read at most this often. */
export const SAMPLE_INTERVAL_MS = 1000;
/** A service tree is not followed past this many processes (a fork bomb costs one sample, not the screen). */
const MAX_TREE = 4096;

/** What the sampler reads: /proc, or a fake in tests. */
export interface ProcSource {
  stat(pid: number): ProcStat | undefined;
  children(pid: number): number[];
  cwd(pid: number): string | undefined;
  /** Seconds since boot, the clock of start times. */
  uptime(): number | undefined;
  /** Bytes per page of rss. */
  readonly pageSize: number;
}

/** The real /proc. */
export function systemProcSource(): ProcSource {
  return { stat: readProcStat, children: procChildren, cwd: procCwd, uptime: uptimeSeconds, pageSize: pageSizeBytes() };
}

/** A service whose tree to sample. */
export interface SampleTarget {
  name: string;
  /** `run`'s pid, from the status file. */
  pid: number;
  /** The service directory, resolved (what `run`'s cwd is). */
  dir: string;
}

/** One service tree's usage. */
export interface TreeUsage {
  /** Percent of one CPU since the previous sample. */
  cpuPercent: number;
  rssBytes: number;
  processes: number;
}

/** Samples service trees; `sample` refuses to read /proc sooner than SAMPLE_INTERVAL_MS after the last time. */
export class ProcSampler {
  readonly #source: ProcSource;
  readonly #nowMs: () => number;
  #lastAt: number | undefined;
  /** Uptime (s) at the previous sample. */
  #lastUptime: number | undefined;
  /** CPU ticks of each process at the previous sample, by `pid:start`. */
  #ticks = new Map<string, number>();
  #samples = 0;
  #verified: boolean | undefined;

  /** `nowMs`: a monotonic clock in ms (performance.now), for the rate limit. */
  constructor(source: ProcSource, nowMs: () => number) {
    this.#source = source;
    this.#nowMs = nowMs;
  }

  /** How many times /proc was read. */
  get samples(): number { return this.#samples; }

  /**
   * true: some `run` was found working in its own service directory, so the pids are this
   * namespace's; false: processes were found under those pids, none of them a service's;
   * undefined: nothing to tell yet (no sample, or no process found).
   */
  get pidsVerified(): boolean | undefined { return this.#verified; }

  /** Whether a sample may be taken now. */
  due(): boolean {
    return this.msUntilDue() === 0;
  }

  /** How long until a sample may be taken (0: now). */
  msUntilDue(): number {
    return this.#lastAt === undefined ? 0 : Math.max(0, SAMPLE_INTERVAL_MS - (this.#nowMs() - this.#lastAt));
  }

  /**
   * Reads /proc for `targets` and returns each one's usage (a service whose pid is gone, or
   * not yet known to be its own, is left out); undefined, reading nothing, when the last
   * sample was less than SAMPLE_INTERVAL_MS ago.
   */
  sample(targets: readonly SampleTarget[]): Map<string, TreeUsage> | undefined {
    if (!this.due()) return undefined;
    this.#lastAt = this.#nowMs();
    this.#samples++;
    const uptime = this.#source.uptime();
    const since = this.#lastUptime;
    this.#lastUptime = uptime;
    const interval = uptime !== undefined && since !== undefined ? uptime - since : undefined;
    const ticks = new Map<string, number>();
    const out = new Map<string, TreeUsage>();
    for (const t of targets) {
      const tree = this.#tree(t.pid);
      if (tree.length === 0) continue;
      if (this.#verified !== true) this.#verified = this.#source.cwd(t.pid) === t.dir;
      let cpuPercent = 0;
      let rssPages = 0;
      for (const p of tree) {
        const key = `${p.pid}:${p.startTicks}`;
        ticks.set(key, p.cpuTicks);
        rssPages += p.rssPages;
        const age = uptime === undefined ? undefined : uptime - p.startTicks / CLOCK_TICKS_PER_SECOND;
        const window = interval ?? age;
        if (window === undefined || window <= 0) continue;
        const before = this.#ticks.get(key);
        // New to us: what it used in the window, at its average rate over its life.
        const used = before !== undefined ? Math.max(0, p.cpuTicks - before)
          : age !== undefined && age > 0 ? p.cpuTicks * Math.min(1, window / age) : 0;
        cpuPercent += (used / CLOCK_TICKS_PER_SECOND / window) * 100;
      }
      out.set(t.name, { cpuPercent, rssBytes: rssPages * this.#source.pageSize, processes: tree.length });
    }
    this.#ticks = ticks;
    if (this.#verified !== true) out.clear();
    return out;
  }

  /** `pid` and its descendants that exist now (none when `pid` is gone). */
  #tree(pid: number): ProcStat[] {
    const out: ProcStat[] = [];
    const queue = [pid];
    const seen = new Set<number>();
    while (queue.length > 0 && out.length < MAX_TREE) {
      const p = queue.shift()!;
      if (seen.has(p)) continue;
      seen.add(p);
      const st = this.#source.stat(p);
      if (st === undefined) continue;
      out.push(st);
      queue.push(...this.#source.children(p));
    }
    return out;
  }
}
