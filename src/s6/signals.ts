/** Linux signal names and numbers, spelled as skalibs spells them (for status, finish, svc -s). */

import { SIGNALS } from '../sys/signals.ts';

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
