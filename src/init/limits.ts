/**
 * Two start-up steps of s6-linux-init that its maker asks for on the init command line:
 *
 * - `-R list`: hard resource limits for pid 1 and so for everything it starts, as the
 *   maker's `s6-softlimit -H` wrapper sets them. The list is s6-softlimit's letters, each
 *   with a number or `=` (the current hard limit), separated by commas, semicolons or
 *   spaces: a (address space), c (core), d (data), f (file size), l (locked memory),
 *   m (all memory: a, d, l and s), o (open files), p (processes), r (resident set),
 *   s (stack), t (CPU seconds).
 * - `-W fd`: wait until the container manager writes a byte to fd or closes it (Docker's
 *   synchronisation, s6-overlay's S6_WAIT_FOR_CLOSING_FD); a closed fd is no wait.
 */
import { RLIMIT, getrlimit, setrlimit } from '../sys/system.ts';
import { readBlocking, close as closeFd } from '../sys/fd.ts';
import { errorCode, strerror } from '../sys/errors.ts';

const RLIMIT_RSS = 5;

/** Which limits each letter sets. */
const LETTERS: Record<string, readonly number[]> = {
  a: [RLIMIT.AS], c: [RLIMIT.CORE], d: [RLIMIT.DATA], f: [RLIMIT.FSIZE], l: [RLIMIT.MEMLOCK],
  m: [RLIMIT.AS, RLIMIT.DATA, RLIMIT.MEMLOCK, RLIMIT.STACK], o: [RLIMIT.NOFILE], p: [RLIMIT.NPROC],
  r: [RLIMIT_RSS], s: [RLIMIT.STACK], t: [RLIMIT.CPU],
};

/** One limit of a -R list: its letter and its value (`=`: the hard limit as it is). */
export interface HardLimit {
  letter: string;
  value: bigint | '=';
}

/** Parses a -R list; throws an Error naming the bad item. */
export function parseHardLimits(list: string): HardLimit[] {
  const out: HardLimit[] = [];
  for (const item of list.split(/[,;\s]+/)) {
    if (item === '') continue;
    const m = /^([a-z])(=|\d{1,20})$/.exec(item);
    if (m === null || LETTERS[m[1]!] === undefined) throw new Error(`invalid resource limit ${JSON.stringify(item)}: a letter of acdflmoprst, then a number or =`);
    out.push({ letter: m[1]!, value: m[2] === '=' ? '=' : BigInt(m[2]!) });
  }
  if (out.length === 0) throw new Error('empty resource limit list');
  return out;
}

/** The canonical text of a list (for the init command line). */
export function formatHardLimits(limits: readonly HardLimit[]): string {
  return limits.map((l) => `${l.letter}${l.value === '=' ? '=' : l.value.toString()}`).join(',');
}

/** Sets each limit, soft and hard; returns one message per limit that could not be set (pid 1 goes on). */
export function applyHardLimits(limits: readonly HardLimit[]): string[] {
  const failed: string[] = [];
  for (const { letter, value } of limits) {
    for (const resource of LETTERS[letter]!) {
      try {
        const v = value === '=' ? getrlimit(resource).hard : value;
        setrlimit(resource, v, v);
      } catch (err) {
        failed.push(`unable to set resource limit ${letter}${value === '=' ? '=' : value.toString()}: ${strerror(err)}`);
      }
    }
  }
  return failed;
}

/** -W: blocks until a byte arrives on fd or its last writer closes it, then closes it. A message if reading failed otherwise. */
export function waitForClosingFd(fd: number): string | undefined {
  try {
    readBlocking(fd, 1);
  } catch (err) {
    if (errorCode(err) === 'EBADF') return undefined; // nothing to wait for
    return `unable to read the synchronisation fd ${fd}: ${strerror(err)}`;
  } finally {
    try { closeFd(fd); } catch { /* already closed */ }
  }
  return undefined;
}
