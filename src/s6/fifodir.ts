/**
 * The `event/` fifodir: listeners place a FIFO named `ftrig1:@<tai64n>:<6 chars>` (39 bytes)
 * in it; the notifier writes each event to every such FIFO without blocking and removes the
 * ones nobody reads any more.
 */
import fs from 'node:fs';
import path from 'node:path';
import { O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_WRONLY, mkfifo, open, close } from '../sys/fd.ts';
import { tainFormat, tainNow } from './tai.ts';
import { errorCode } from '../sys/errors.ts';

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
 * Writes `event` to every listener in `dir`. Never blocks, never throws (a supervisor calls
 * it in the middle of its actions): a FIFO with no reader is removed; a full one just
 * misses this event (as in s6); an entry that cannot be opened, written or removed is
 * passed over. Returns how many listeners received it.
 */
export function notifyFifodir(dir: string, event: string): number {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0; // no event/ (yet), or unreadable: nobody can be listening
  }
  const bytes = Buffer.from(event, 'latin1');
  let delivered = 0;
  for (const name of names) {
    if (name.length !== LISTENER_NAME_LENGTH || !name.startsWith(LISTENER_PREFIX)) continue;
    if (sendTo(path.join(dir, name), bytes)) delivered++;
  }
  return delivered;
}

/**
 * Writes `bytes` to one listener FIFO, removing it if nobody reads it any more. Never throws.
 * Only a FIFO, never through a link: the members of event/'s group may put anything there,
 * and the notifier is root.
 */
function sendTo(fifo: string, bytes: Buffer): boolean {
  let fd: number;
  try {
    fd = open(fifo, O_WRONLY | O_NONBLOCK | O_NOFOLLOW);
  } catch (err) {
    if (errorCode(err) === 'ENXIO') removeStale(fifo);
    return false;
  }
  try {
    if (!fs.fstatSync(fd).isFIFO()) return false;
    fs.writeSync(fd, bytes);
    return true;
  } catch (err) {
    if (errorCode(err) === 'EPIPE') removeStale(fifo);
    return false;
  } finally {
    close(fd);
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
