/**
 * What /proc says about a process, pure Node (no libc, no koffi). A pid alone does not name
 * a process for long: once it is reaped, the kernel may give the number to another. A pid
 * together with its start time does, so whoever records a pid to find its process again
 * later (t6-svscan adopting the services of a predecessor that was killed) records both.
 * fs comes through getBuiltinModule, as in stat.ts: no ESM facade for a client to pay for.
 */
const fs = process.getBuiltinModule('node:fs');

/** The field of /proc/PID/stat that holds the start time (proc(5) counts from 1). */
const STARTTIME_FIELD = 22;
/** The first field after the command name, `state`: fields from here on are split by spaces. */
const FIRST_FIELD_AFTER_COMM = 3;
/**
 * Holds a whole /proc/PID/stat line: a 15-byte name in parentheses and 50 numbers of at
 * most 20 digits each come to about 1,100 bytes (field 22 lies in the first 500 anyway).
 */
const STAT_LINE_MAX = 4096;
const statBuffer = Buffer.allocUnsafe(STAT_LINE_MAX);

/**
 * When process `pid` started, in clock ticks since boot (field 22 of /proc/PID/stat), or
 * undefined when no such process exists. A zombie still has its start time. The command
 * name (field 2) is any 15 bytes a process chose, spaces and parentheses included, so the
 * fields are read after the last ')' on the line, which only the command name can precede.
 * Other failures to read (EACCES under a hidepid mount…) are thrown: "gone" must mean gone.
 */
export function procStartTime(pid: number): bigint | undefined {
  const stat = readStat(pid);
  return stat === undefined ? undefined : parseStartTime(stat);
}

/** A process's place in the process tree: its parent, its process group, its session. */
export interface ProcLineage {
  ppid: number;
  pgrp: number;
  session: number;
}

/**
 * The parent, process group and session of process `pid` (fields 4, 5 and 6 of
 * /proc/PID/stat), or undefined when no such process exists. Read after the last ')' as
 * procStartTime does; other failures to read are thrown, as there.
 */
export function procLineage(pid: number): ProcLineage | undefined {
  const stat = readStat(pid);
  return stat === undefined ? undefined : parseLineage(stat);
}

/** The text of /proc/PID/stat; undefined when there is no such process. */
function readStat(pid: number): string | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let fd: number;
  try {
    fd = fs.openSync(`/proc/${pid}/stat`, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    // One read into a buffer kept for it: half the cost of readFileSync (no fstat, no
    // growing), which counts when a scanner checks a thousand recorded pids at start.
    const length = fs.readSync(fd, statBuffer, 0, statBuffer.length, 0);
    return statBuffer.toString('latin1', 0, length);
  } catch (err) {
    // ESRCH: the process went away between the open and the read.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
    throw err;
  } finally {
    fs.closeSync(fd);
  }
}

/** The fields after the command name, from field 3 (`state`) on; undefined if the text is not a stat line. */
function fieldsAfterComm(stat: string): string[] | undefined {
  const commEnd = stat.lastIndexOf(')');
  if (commEnd < 0) return undefined;
  return stat.slice(commEnd + 1).trim().split(' ');
}

/** ppid, pgrp and session in the text of a /proc/PID/stat file; undefined if the text is not one. */
export function parseLineage(stat: string): ProcLineage | undefined {
  const fields = fieldsAfterComm(stat);
  if (fields === undefined) return undefined;
  const [ppid, pgrp, session] = [4, 5, 6].map((n) => fields[n - FIRST_FIELD_AFTER_COMM]);
  if (![ppid, pgrp, session].every((f) => f !== undefined && /^\d+$/.test(f))) return undefined;
  return { ppid: Number(ppid), pgrp: Number(pgrp), session: Number(session) };
}

/** The start time in the text of a /proc/PID/stat file; undefined if the text is not one. */
export function parseStartTime(stat: string): bigint | undefined {
  const field = fieldsAfterComm(stat)?.[STARTTIME_FIELD - FIRST_FIELD_AFTER_COMM];
  if (field === undefined || !/^\d+$/.test(field)) return undefined;
  return BigInt(field);
}
