/** Linux signal names and numbers, spelled as skalibs spells them (for status, finish, svc -s). */

/** Signal numbers by name (x86_64 Linux), without the SIG prefix, named as skalibs names them (29 is POLL). */
export const SIGNALS = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10,
  SEGV: 11, USR2: 12, PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19,
  TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28,
  POLL: 29, PWR: 30, SYS: 31,
} as const satisfies Record<string, number>;

/** A signal name without prefix. */
export type SignalName = keyof typeof SIGNALS;

const byNumber = new Map<number, string>(Object.entries(SIGNALS).map(([n, v]) => [v, n]));

/** `SIGTERM` for 15; `SIG???` for a number with no name (as s6-svstat prints). */
export function signalName(num: number): string {
  const name = byNumber.get(num);
  return name === undefined ? 'SIG???' : `SIG${name}`;
}

/**
 * Parses a signal as skalibs' sig0_scan does: a number, or a name with or without `SIG`,
 * case-insensitive. Returns undefined when it is neither.
 */
export function parseSignal(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    return n >= 0 && n < 65 ? n : undefined;
  }
  const upper = t.toUpperCase();
  const bare = upper.startsWith('SIG') ? upper.slice(3) : upper;
  if (bare === 'IO') return SIGNALS.POLL; // the same signal on Linux; skalibs prints POLL
  return (SIGNALS as Record<string, number>)[bare];
}
