/**
 * sd_notify messages, as services send them to NOTIFY_SOCKET (sys/notifysocket.ts
 * receives them): what a datagram says, and whether its sender belongs to a service.
 *
 * A message is newline-separated `KEY=VALUE` assignments. Only the keys t6 acts on are
 * decoded; any other key is listed (a caller counts them) and otherwise ignored, as
 * systemd ignores keys it does not know. A value t6 cannot use (a pid of 0, a number that
 * is not one) becomes a problem named in the result, and the rest of the message still
 * counts: one bad line must not hide READY=1. A payload with a NUL byte or invalid UTF-8
 * is refused whole: that is not a client speaking the protocol.
 *
 * Bounds: the payload is at most 4 KiB (the socket refuses more), STATUS text is cut to
 * 256 bytes on a character boundary, numbers have at most 19 digits.
 */
import { procLineage, type ProcLineage } from '../sys/proc.ts';

/** The most STATUS bytes kept: a line in t6-svstat, not a log. */
export const MAX_STATUS_BYTES = 256;
/** How far up the parent chain a sender is followed to its service's run process. */
export const MAX_PARENT_STEPS = 32;
/** Digits in a number: 19 keeps it below 2^63 before any conversion. */
const MAX_DIGITS = 19;
/** The largest pid Linux can give (PID_MAX_LIMIT). */
const MAX_PID = 4_194_304;

/** What one message asks for; absent fields were not in the message. */
export interface NotifyMessage {
  ready: boolean;
  stopping: boolean;
  reloading: boolean;
  /** STATUS=, at most MAX_STATUS_BYTES of it. */
  status?: string;
  /** MONOTONIC_USEC= (sent with RELOADING=1): when the reload began, CLOCK_MONOTONIC µs. */
  monotonicUsec?: number;
  mainPid?: number;
  /** WATCHDOG=1 is a keep-alive; WATCHDOG=trigger asks to be treated as a watchdog failure. */
  watchdog?: 'ping' | 'trigger';
  watchdogUsec?: number;
  extendTimeoutUsec?: number;
  errno?: number;
  /** Keys t6 does not decode, in the order they came (repeats included). */
  unknown: string[];
  /** Lines that could not be used, each named (`MAINPID=0: not a pid`). */
  problems: string[];
}

/** A message, or why the payload is no message at all. */
export type ParsedNotify = { ok: true; message: NotifyMessage } | { ok: false; reason: string };

/** Decodes one value into the message; a string return is the problem with it. */
type Assign = (m: NotifyMessage, value: string) => string | undefined;

const flag = (set: (m: NotifyMessage) => void): Assign => (m, value) => {
  if (value !== '1') return 'only 1 is meant';
  set(m);
  return undefined;
};

/** A number field: decimal digits only, from `min` to `max`. */
const count = (min: number, set: (m: NotifyMessage, n: number) => void, max = Number.MAX_SAFE_INTEGER): Assign => (m, value) => {
  const n = decimal(value);
  if (n === undefined) return 'not a number';
  if (n < min || n > max) return `out of range (${min} to ${max})`;
  set(m, n);
  return undefined;
};

/** Every key decoded, with how. The one list: the type of a key comes from it. */
const ASSIGNMENTS = {
  READY: flag((m) => { m.ready = true; }),
  STOPPING: flag((m) => { m.stopping = true; }),
  RELOADING: flag((m) => { m.reloading = true; }),
  STATUS: (m, value) => { m.status = cutUtf8(value, MAX_STATUS_BYTES); return undefined; },
  MONOTONIC_USEC: count(0, (m, n) => { m.monotonicUsec = n; }),
  MAINPID: count(1, (m, n) => { m.mainPid = n; }, MAX_PID),
  WATCHDOG: (m, value) => {
    if (value === '1') m.watchdog = 'ping';
    else if (value === 'trigger') m.watchdog = 'trigger';
    else return 'only 1 or trigger is meant';
    return undefined;
  },
  WATCHDOG_USEC: count(1, (m, n) => { m.watchdogUsec = n; }),
  EXTEND_TIMEOUT_USEC: count(0, (m, n) => { m.extendTimeoutUsec = n; }),
  ERRNO: count(0, (m, n) => { m.errno = n; }, 2 ** 31 - 1),
} satisfies Record<string, Assign>;

/** A key that t6 decodes. */
export type NotifyKey = keyof typeof ASSIGNMENTS;

/** The keys t6 decodes, in one list. */
export const NOTIFY_KEYS = Object.keys(ASSIGNMENTS) as NotifyKey[];

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads one sd_notify payload (see the file's header). Never throws. */
export function parseNotifyMessage(payload: Buffer): ParsedNotify {
  if (payload.includes(0)) return { ok: false, reason: 'a NUL byte in the message' };
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return { ok: false, reason: 'the message is not UTF-8' };
  }
  const message: NotifyMessage = { ready: false, stopping: false, reloading: false, unknown: [], problems: [] };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) {
      message.problems.push(`${show(line)}: not KEY=VALUE`);
      continue;
    }
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    const assign: Assign | undefined = Object.hasOwn(ASSIGNMENTS, key) ? ASSIGNMENTS[key as NotifyKey] : undefined;
    if (assign === undefined) {
      message.unknown.push(key);
      continue;
    }
    const problem = assign(message, value);
    if (problem !== undefined) message.problems.push(`${show(line)}: ${problem}`);
  }
  return { ok: true, message };
}

/** A line as a problem names it: cut, so a problem stays short. */
function show(line: string): string {
  return line.length > 64 ? `${cutUtf8(line, 64)}…` : line;
}

/** Decimal digits (no sign, no space) as a number; undefined otherwise. */
function decimal(value: string): number | undefined {
  if (value.length === 0 || value.length > MAX_DIGITS || !/^[0-9]+$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** At most `max` bytes of `text` in UTF-8, never cutting a character in two. */
export function cutUtf8(text: string, max: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= max) return text;
  let end = max;
  // Back off the continuation bytes (10xxxxxx) of a character the cut would split.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.toString('utf8', 0, end);
}

/**
 * Whether a message from `senderPid` comes from the service whose `run` process is
 * `runPid`: the sender is run itself, or in run's session (services start in a session of
 * their own, so its id is run's pid), or run is among its first MAX_PARENT_STEPS
 * ancestors (a process that left the session). A sender that is gone cannot be placed:
 * false. `lineage` reads a process's place in the tree (/proc; a test passes its own).
 *
 * Call it from the message callback itself, in the same turn of the event loop: the sender
 * is then still there in the common cases. Debian's systemd-notify waits for its
 * BARRIER=1, whose fd the socket closes only after this message was handled; as root it
 * even sends in the name of its parent (the run script). A sender that sends and exits at
 * once (with no barrier) may be gone and reaped by then: refused, as it cannot be placed.
 */
export function senderInServiceTree(senderPid: number, runPid: number, lineage: (pid: number) => ProcLineage | undefined = procLineage): boolean {
  if (!(runPid > 1)) return false;
  return serviceOfSender(senderPid, (pid) => (pid === runPid ? true : undefined), lineage) === true;
}

/**
 * The service a message from `senderPid` comes from, among those `serviceOf` knows by a
 * pid (its run's, or an accepted MAINPID=): the sender's own, its session leader's, or
 * its nearest ancestor's within MAX_PARENT_STEPS (the walk of senderInServiceTree, for
 * many services at once). undefined when none, or when the sender cannot be read.
 */
export function serviceOfSender<T>(senderPid: number, serviceOf: (pid: number) => T | undefined, lineage: (pid: number) => ProcLineage | undefined = procLineage): T | undefined {
  if (!(senderPid > 0)) return undefined;
  const own = serviceOf(senderPid);
  if (own !== undefined) return own;
  let pid = senderPid;
  for (let step = 0; step < MAX_PARENT_STEPS; step++) {
    const l = safeLineage(lineage, pid);
    if (l === undefined) return undefined;
    const found = (l.session > 1 ? serviceOf(l.session) : undefined) ?? (l.ppid > 1 ? serviceOf(l.ppid) : undefined);
    if (found !== undefined) return found;
    if (l.ppid <= 1) return undefined;
    pid = l.ppid;
  }
  return undefined;
}

/** lineage, with a failure to read (EACCES under hidepid…) taken as "cannot be placed". */
function safeLineage(lineage: (pid: number) => ProcLineage | undefined, pid: number): ProcLineage | undefined {
  try {
    return lineage(pid);
  } catch {
    // A process we may not read is not one we can vouch for: the message is refused.
    return undefined;
  }
}
