/**
 * Command bytes: `supervise/control` (s6-supervise) and `.s6-svscan/control` (s6-svscan),
 * and the event bytes of `event/`. Each list is the single source its types derive from.
 */

/**
 * Control bytes s6-supervise accepts: s6 2.11.3.2's `abqhkti12pcyroduDUxOQ`, plus `PCK`
 * (process-group signals, s6 ≥ 2.13) and `l` (reload signal, s6 ≥ 2.15).
 */
export const SUPERVISE_COMMANDS = 'abqhkti12pcyrlPCKoduDUxOQ';
/** One supervise control byte. */
export type SuperviseCommand = 'a' | 'b' | 'q' | 'h' | 'k' | 't' | 'i' | '1' | '2' | 'p' | 'c' | 'y' | 'r' | 'l' | 'P' | 'C' | 'K' | 'o' | 'd' | 'u' | 'D' | 'U' | 'x' | 'O' | 'Q';

/** Signal-forwarding bytes and the signal each sends to the service's pid. */
export const SIGNAL_COMMANDS = {
  a: 14, b: 6, q: 3, h: 1, k: 9, t: 15, i: 2, '1': 10, '2': 12, y: 28,
} as const satisfies Partial<Record<SuperviseCommand, number>>;

/** Is this byte a supervise command? */
export function isSuperviseCommand(ch: string): ch is SuperviseCommand {
  return ch.length === 1 && SUPERVISE_COMMANDS.includes(ch);
}

/** Control bytes s6-svscan accepts. */
export const SVSCAN_COMMANDS = 'zabhitqnN';
/** One scanner control byte. */
export type SvscanCommand = 'z' | 'a' | 'b' | 'h' | 'i' | 't' | 'q' | 'n' | 'N';

/** Is this byte a scanner command? */
export function isSvscanCommand(ch: string): ch is SvscanCommand {
  return ch.length === 1 && SVSCAN_COMMANDS.includes(ch);
}

/** Event bytes written to `event/` listeners. */
export const EVENTS = {
  start: 's', up: 'u', ready: 'U', down: 'd', finished: 'D', permanentFailure: 'O', exit: 'x',
} as const;
/** One event byte. */
export type EventByte = (typeof EVENTS)[keyof typeof EVENTS];
