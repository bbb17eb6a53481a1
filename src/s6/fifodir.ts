/**
 * The `event/` fifodir: listeners place a FIFO named `ftrig1:@<tai64n>:<6 chars>` (39 bytes)
 * in it; the notifier writes each event to every such FIFO without blocking and removes the
 * ones nobody reads any more.
 *
 * Running out of fds (EMFILE, ENFILE) does not lose events when the caller keeps an
 * OwedEvents: what could not be sent is kept there, per listener, and sent first, in order,
 * by the next call (a retry with no new event, or the next event). s6 drops them instead.
 */
import fs from 'node:fs';
import path from 'node:path';
import { O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_WRONLY, mkfifo, open, close } from '../sys/fd.ts';
import { tainFormat, tainNow } from './tai.ts';
import { errorCode } from '../sys/errors.ts';
import { isFdShortage } from '../sys/fdreserve.ts';

const LISTENER_PREFIX = 'ftrig1:@';
const LISTENER_NAME_LENGTH = 39;

/** Our effective gid: asked once (a system call each time), as t6 never changes it. */
let egid: number | undefined;

/** Creates `dir` as a fifodir (mode 03730, group = our egid) if it does not exist. */
export function makeFifodir(dir: string): void {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && fs.statSync(dir).isDirectory()) return;
    throw err;
  }
  egid ??= process.getegid?.() ?? 0;
  fs.chownSync(dir, -1, egid);
  fs.chmodSync(dir, 0o3730);
}

/**
 * Bound of the event bytes owed to one listener while fds are short: PIPE_BUF, the most a
 * FIFO takes in one atomic write. Past it the oldest go (a waiter wants the latest state).
 */
const OWED_MAX = 4096;

/** Events owed to listeners for lack of fds, oldest first; kept by the notifier's caller. */
export class OwedEvents {
  /** Owed to every listener present at the next call: the directory could not be listed. */
  toAll = '';
  /** Owed to one listener, by FIFO name (only names still in the directory are kept). */
  readonly byListener = new Map<string, string>();
  /** The failure that made the latest debt (EMFILE or ENFILE), for messages. */
  lastError: unknown;

  /** Nothing owed. */
  get empty(): boolean {
    return this.toAll === '' && this.byListener.size === 0;
  }
}

/** The fd calls of the notifier (sys/fd.ts's; tests replace them to play a full fd table). */
export interface NotifyCalls {
  open: typeof open;
  close: typeof close;
}

const SYSTEM_NOTIFY_CALLS: NotifyCalls = { open, close };

const lastBytes = (bytes: string): string => (bytes.length > OWED_MAX ? bytes.slice(-OWED_MAX) : bytes);

/**
 * Writes `event` to every listener in `dir`. Never blocks, never throws (a supervisor calls
 * it in the middle of its actions): a FIFO with no reader is removed; a full one just
 * misses this event (as in s6); an entry that cannot be opened, written or removed is
 * passed over. With `owed`, what it holds for a listener goes first, and what fails for
 * lack of fds is kept there for the next call (`event` may be '' to retry only that).
 * Returns how many listeners received their bytes.
 */
export function notifyFifodir(dir: string, event: string, owed?: OwedEvents, calls: NotifyCalls = SYSTEM_NOTIFY_CALLS): number {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    // No event/ (yet), or unreadable: nobody can be listening. Out of fds: whoever listens
    // gets it at the next call.
    if (owed !== undefined && isFdShortage(err)) {
      owed.toAll = lastBytes(owed.toAll + event);
      owed.lastError = err;
    }
    return 0;
  }
  const toAll = owed?.toAll ?? '';
  if (owed !== undefined) owed.toAll = '';
  const present = new Set<string>();
  let delivered = 0;
  for (const name of names) {
    if (name.length !== LISTENER_NAME_LENGTH || !name.startsWith(LISTENER_PREFIX)) continue;
    present.add(name);
    const bytes = (owed?.byListener.get(name) ?? '') + toAll + event;
    if (bytes === '') continue;
    const sent = sendTo(path.join(dir, name), Buffer.from(bytes, 'latin1'), calls);
    if (sent === 'sent') delivered++;
    if (owed === undefined) continue;
    if (sent === 'sent' || sent === 'missed') owed.byListener.delete(name); // missed: full or gone, as s6 misses it
    else {
      owed.byListener.set(name, lastBytes(bytes));
      owed.lastError = sent.error;
    }
  }
  if (owed !== undefined) for (const name of owed.byListener.keys()) if (!present.has(name)) owed.byListener.delete(name);
  return delivered;
}

/**
 * Writes `bytes` to one listener FIFO, removing it if nobody reads it any more; says why not
 * for lack of fds. Never throws. Only a FIFO, never through a link: the members of event/'s
 * group may put anything there, and the notifier is root.
 */
function sendTo(fifo: string, bytes: Buffer, calls: NotifyCalls): 'sent' | 'missed' | { error: unknown } {
  let fd: number;
  try {
    fd = calls.open(fifo, O_WRONLY | O_NONBLOCK | O_NOFOLLOW);
  } catch (err) {
    if (errorCode(err) === 'ENXIO') removeStale(fifo);
    return isFdShortage(err) ? { error: err } : 'missed';
  }
  try {
    if (!fs.fstatSync(fd).isFIFO()) return 'missed';
    fs.writeSync(fd, bytes);
    return 'sent';
  } catch (err) {
    if (errorCode(err) === 'EPIPE') removeStale(fifo);
    return 'missed';
  } finally {
    calls.close(fd);
  }
}

/** Removes a listener FIFO nobody reads; where it cannot be (a read-only event/), the next event tries again. */
function removeStale(fifo: string): void {
  try {
    fs.rmSync(fifo, { force: true });
  } catch {
    // Left in place: it costs one failed open per event until it can go.
  }
}

/** A subscription to a fifodir: events arrive through `onEvent`, `close()` removes the FIFO. */
export interface FifodirListener {
  readonly fifoPath: string;
  close(): void;
}

/**
 * Subscribes to `dir` the way s6-ftrigrd does: make `.ftrig1:@…:XXXXXX`, open its read end
 * non-blocking and a write end (so it never reports EOF), then rename it into place.
 * Events are delivered byte by byte, in order.
 */
export function listenFifodir(dir: string, onEvent: (byte: string) => void): FifodirListener {
  makeFifodir(dir);
  const stamp = tainFormat(tainNow());
  let name = '';
  let tmp = '';
  for (let attempt = 0; ; attempt++) {
    // Loaded here, not at the top: node:crypto and node:net cost ~5 ms of every client's start.
    const suffix = process.getBuiltinModule('node:crypto').randomBytes(6).toString('base64').replace(/[+/=]/g, 'x').slice(0, 6);
    name = `ftrig1:${stamp}:${suffix}`;
    tmp = path.join(dir, `.${name}`);
    try {
      mkfifo(tmp, 0o600);
      if (!fs.lstatSync(tmp).isFIFO()) throw new Error('not a fifo');
      break;
    } catch (err) {
      if (attempt > 10) throw err;
    }
  }
  const readFd = open(tmp, O_RDONLY | O_NONBLOCK);
  const keepFd = open(tmp, O_WRONLY | O_NONBLOCK);
  const fifoPath = path.join(dir, name);
  fs.renameSync(tmp, fifoPath);
  const socket = new (process.getBuiltinModule('node:net').Socket)({ fd: readFd, readable: true, writable: false });
  socket.on('data', (chunk: Buffer) => {
    for (const byte of chunk.toString('latin1')) onEvent(byte);
  });
  socket.on('error', () => { /* the FIFO went away; close() cleans up */ });
  let closed = false;
  return {
    fifoPath,
    close() {
      if (closed) return;
      closed = true;
      socket.destroy();
      close(keepFd);
      fs.rmSync(fifoPath, { force: true });
    },
  };
}
