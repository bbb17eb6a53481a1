/**
 * Command bytes: `supervise/control` (s6-supervise) and `.s6-svscan/control` (s6-svscan),
 * and the event bytes of `event/`. Each list is the single source its types derive from.
 */

import { SIGNALS } from '../sys/signals.ts';

/** The characters of a string literal type, as a union: the list stays the one source. */
type CharOf<S extends string> = S extends `${infer C}${infer Rest}` ? C | CharOf<Rest> : never;

/**
 * Control bytes s6-supervise accepts: s6 2.11.3.2's `abqhkti12pcyroduDUxOQ`, plus `PCK`
 * (process-group signals, s6 ≥ 2.13) and `l` (reload signal, s6 ≥ 2.15).
 */
export const SUPERVISE_COMMANDS = 'abqhkti12pcyrlPCKoduDUxOQ';
/** One supervise control byte. */
export type SuperviseCommand = CharOf<typeof SUPERVISE_COMMANDS>;

/** Signal-forwarding bytes and the signal each sends to the service's pid. */
export const SIGNAL_COMMANDS = {
  a: SIGNALS.ALRM, b: SIGNALS.ABRT, q: SIGNALS.QUIT, h: SIGNALS.HUP, k: SIGNALS.KILL,
  t: SIGNALS.TERM, i: SIGNALS.INT, '1': SIGNALS.USR1, '2': SIGNALS.USR2, y: SIGNALS.WINCH,
} as const satisfies Partial<Record<SuperviseCommand, number>>;

/** Is this byte a supervise command? */
export function isSuperviseCommand(ch: string): ch is SuperviseCommand {
  return ch.length === 1 && SUPERVISE_COMMANDS.includes(ch);
}

/** Control bytes s6-svscan accepts. */
export const SVSCAN_COMMANDS = 'zabhitqnN';
/** One scanner control byte. */
export type SvscanCommand = CharOf<typeof SVSCAN_COMMANDS>;

/** Is this byte a scanner command? */
export function isSvscanCommand(ch: string): ch is SvscanCommand {
  return ch.length === 1 && SVSCAN_COMMANDS.includes(ch);
}
