/**
 * `shutdown`'s time argument and its warning text (linux-init.md §3.2).
 *
 * Times: `now`; `+M` or `M` = in M minutes; `hh:mm` = the next time the local clock shows
 * hh:mm (today, or tomorrow if that minute has passed). The warning broadcast to logged-in
 * users is a blank line, `*** WARNING ***`, then `The system is going down NOW!` or
 * `… going down in 1 days 2 hours 3 minutes 4 seconds!` (zero parts left out). s6 writes
 * the parts without `in` and leaves a space before `!` when the seconds are zero; t6 words it
 * as a sentence, since it is text for people, not a format.
 */

/** A time argument that does not parse. */
export class ShutdownTimeError extends Error {
  override name = 'ShutdownTimeError';
  /** The argument as given. */
  readonly text: string;
  constructor(text: string) {
    super('invalid time format');
    this.text = text;
  }
}

/** The most minutes `+M` accepts (about 1,900 years): keeps the delay an exact number. */
const MAX_MINUTES = 999_999_999;

/**
 * Milliseconds from `now` until the time `text` names (0 for `now`). Throws
 * ShutdownTimeError ("invalid time format") for anything else.
 */
export function parseShutdownTime(text: string, now: Date): number {
  if (text === 'now') return 0;
  const minutes = /^\+?(\d+)$/.exec(text);
  if (minutes !== null) {
    const m = Number(minutes[1]);
    if (m > MAX_MINUTES) throw new ShutdownTimeError(text);
    return m * 60_000;
  }
  const hm = /^(\d{1,2}):(\d{2})$/.exec(text);
  if (hm === null) throw new ShutdownTimeError(text);
  const hour = Number(hm[1]);
  const minute = Number(hm[2]);
  if (hour > 23 || minute > 59) throw new ShutdownTimeError(text);
  const then = new Date(now.getTime());
  then.setHours(hour, minute, 0, 0);
  // Past means before the current second, as s6 compares whole seconds: 10:30 at 10:30:00.4
  // is now, not tomorrow.
  if (then.getTime() < Math.floor(now.getTime() / 1000) * 1000) {
    then.setDate(then.getDate() + 1);
    then.setHours(hour, minute, 0, 0); // again: a DST change may have moved the wall clock
  }
  return Math.max(0, then.getTime() - now.getTime());
}

/** The first two lines of every warning. */
const WALL_HEAD = '\n\n*** WARNING ***\nThe system is going down ';

/** `NOW`, or `in 1 days 2 hours 3 minutes 4 seconds` for a delay (whole seconds count). */
export function describeDelay(delayMs: number): string {
  let t = Math.floor(delayMs / 1000);
  if (t <= 0) return 'NOW';
  const seconds = t % 60; t = Math.floor(t / 60);
  const minutes = t % 60; t = Math.floor(t / 60);
  const hours = t % 24;
  const days = Math.floor(t / 24);
  const parts: string[] = [];
  if (days > 0) parts.push(`${days} days`);
  if (hours > 0) parts.push(`${hours} hours`);
  if (minutes > 0) parts.push(`${minutes} minutes`);
  if (seconds > 0) parts.push(`${seconds} seconds`);
  return `in ${parts.join(' ')}`;
}

/** The warning for a shutdown `delayMs` away, ending in `!\n`. */
export function shutdownWarning(delayMs: number): string {
  return `${WALL_HEAD}${describeDelay(delayMs)}!\n`;
}

/** What is broadcast: the user's message plus a newline, else the standard warning. */
export function wallMessage(delayMs: number, message?: string): string {
  return message === undefined ? shutdownWarning(delayMs) : `${message}\n`;
}

/** The warning halt/poweroff/reboot broadcast: going down NOW. */
export const WALL_NOW = shutdownWarning(0);
