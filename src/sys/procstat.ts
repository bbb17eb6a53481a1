/**
 * The /proc files a process monitor reads (t6 top), pure Node like proc.ts: a process's
 * CPU time, start time and resident size (/proc/PID/stat), its children
 * (/proc/PID/task/TID/children, over every thread: a child is listed under the thread
 * that made it), its working directory, and the time since boot (/proc/uptime). Nothing here
 * throws for a process that went away meanwhile: it is simply not there.
 */
const fs = process.getBuiltinModule('node:fs');

/**
 * Clock ticks per second in /proc/PID/stat: USER_HZ, fixed at 100 in the kernel's ABI on
 * every architecture Node runs on (sysconf(_SC_CLK_TCK) would need libc for a constant).
 */
export const CLOCK_TICKS_PER_SECOND = 100;

/** What /proc/PID/stat says about one process. */
export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  /** Start time, in clock ticks since boot: with the pid, it names the process. */
  startTicks: number;
  /** Resident set size, in pages. */
  rssPages: number;
}

/** Fields of /proc/PID/stat (proc(5) numbers them from 1; split after the command name, field 3 is index 0). */
const FIELD = { ppid: 4, utime: 14, stime: 15, starttime: 22, rss: 24 } as const;
const AFTER_COMM = 3;

/** Parses the text of a /proc/PID/stat file; undefined if it is not one. */
export function parseProcStat(pid: number, text: string): ProcStat | undefined {
  // The command name may hold spaces and parentheses: the fields start after the last ')'.
  const end = text.lastIndexOf(')');
  if (end < 0) return undefined;
  const f = text.slice(end + 2).split(' ');
  const num = (field: number): number => Number(f[field - AFTER_COMM]);
  const stat = {
    pid, ppid: num(FIELD.ppid), cpuTicks: num(FIELD.utime) + num(FIELD.stime),
    startTicks: num(FIELD.starttime), rssPages: num(FIELD.rss),
  };
  return Object.values(stat).every(Number.isFinite) ? stat : undefined;
}

const readText = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch {
    return undefined; // gone (ENOENT, ESRCH), or not ours to read: not there
  }
};

/** /proc/PID/stat, or undefined when the process is gone. */
export function readProcStat(pid: number): ProcStat | undefined {
  const text = readText(`/proc/${pid}/stat`);
  return text === undefined ? undefined : parseProcStat(pid, text);
}

/** The children of `pid`, over all its threads (needs CONFIG_PROC_CHILDREN, as every distribution kernel has). */
export function procChildren(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const tid of tasks) {
    const text = readText(`/proc/${pid}/task/${tid}/children`)?.trim();
    if (text !== undefined && text !== '') for (const c of text.split(' ')) out.push(Number(c));
  }
  return out;
}

/** Where process `pid` works (its cwd), or undefined when it is gone or hidden. */
export function procCwd(pid: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

/**
 * Seconds since boot (/proc/uptime, in hundredths): the clock that start times count on, so
 * a process's age is this minus its start, with no real-time clock step in between.
 */
export function uptimeSeconds(): number | undefined {
  const m = /^(\d+\.\d+) /.exec(readText('/proc/uptime') ?? '');
  return m === null ? undefined : Number(m[1]);
}

/**
 * The page size that /proc's rss counts in, without libc: this process's resident size in
 * bytes (process.memoryUsage.rss) over the same in pages, rounded to the nearest of the
 * page sizes Linux uses (4, 16 or 64 KiB); 4 KiB if /proc cannot say.
 */
export function pageSizeBytes(): number {
  const pages = readProcStat(process.pid)?.rssPages ?? 0;
  const bytes = process.memoryUsage.rss();
  if (pages <= 0) return 4096;
  const ratio = bytes / pages;
  return [4096, 16384, 65536].reduce((best, size) => (Math.abs(Math.log2(size / ratio)) < Math.abs(Math.log2(best / ratio)) ? size : best));
}
