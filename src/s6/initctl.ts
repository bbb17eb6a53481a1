/**
 * s6-linux-init's fixed names and the shutdown daemon's wire format (linux-init.md §0, §3.1).
 *
 * Clients (`shutdown`, `halt`, `poweroff`, `reboot`) write to the FIFO
 * `SCANDIR/s6-linux-init-shutdownd/fifo`, opened O_WRONLY|O_NONBLOCK, in one write:
 *
 *   shutdown  1 command byte (S h p r) + 12-byte relative delay as a packed TAIN
 *             (8-byte BE seconds, 4-byte BE nanoseconds) + 4-byte BE grace time in ms
 *             = 17 bytes
 *   cancel    the single byte `c`
 *   probe     nothing: an open and a close, to check that someone reads and that we may write
 *
 * The server side reads with ShutdownRequestDecoder. Unlike s6's shutdownd, for which a short
 * read is fatal, the decoder waits for the rest of a request split across reads: in t6 the
 * reader is pid 1, and nothing a client writes may end it.
 */
import { tainPack, tainUnpack } from './tai.ts';

/** Where the tmpfs holding the live run-image is mounted. */
export const TMPFS_DIR = '/run';
/** The scan directory t6-linux-init gives t6-svscan. */
export const DEFAULT_SCANDIR = '/run/service';
/** The base directory the maker's output is copied to (s6: /etc/s6-linux-init/current). */
export const DEFAULT_BASEDIR = '/etc/t6-linux-init/current';

/** The shutdown daemon's service name (its FIFO is served by t6-svscan itself). */
export const SHUTDOWND_SERVICE = 's6-linux-init-shutdownd';
/** The FIFO inside the shutdown daemon's service directory. */
export const SHUTDOWND_FIFO = 'fifo';
/** The runlevel changer's service name (in t6, runlevels go through t6-svscan's oneshot runner). */
export const RUNLEVELD_SERVICE = 's6-linux-init-runleveld';
/** The catch-all logger's service name. */
export const CATCHALL_SERVICE = 's6-svscan-log';
/** The early getty's service name. */
export const EARLY_GETTY_SERVICE = 's6-linux-init-early-getty';
/** Where a container's exit code and halt code are left for the finish script. */
export const CONTAINER_RESULTS = '/run/s6-linux-init-container-results';

/** The catch-all logger's directory (in the run-image, so on the tmpfs). */
export const CATCHALL_LOGDIR = '/run/uncaught-logs';

/** In the base directory: init, halt, poweroff, reboot, shutdown, telinit. */
export const BIN_DIR = 'bin';
/** In the base directory: the tree copied onto the tmpfs at boot. */
export const RUN_IMAGE = 'run-image';
/** In the base directory: the envdir applied to the boot environment. */
export const ENV_DIR = 'env';
/** In the base directory: where the stage scripts live. */
export const SCRIPTS_DIR = 'scripts';
/** scripts/: stage 2, run once the catch-all logger is up (args: runlevel, kernel words). */
export const STAGE2 = 'rc.init';
/** scripts/: stage 3, run by the shutdown daemon at the deadline. */
export const STAGE3 = 'rc.shutdown';
/** scripts/: the stage-4 hook, run after unmounting (optional). */
export const STAGE4 = 'rc.shutdown.final';
/** scripts/: the runlevel changer (`runlevel RL`), run by telinit and rc.init. */
export const RUNLEVEL_SCRIPT = 'runlevel';

/** Grace between SIGTERM and SIGKILL when nobody asked for another. */
export const DEFAULT_GRACE_MS = 3000;
/** The longest grace a request may set; larger values are ignored. */
export const MAX_GRACE_MS = 300_000;

/** The shutdown FIFO of a scan directory. */
export function shutdowndFifo(scandir: string = DEFAULT_SCANDIR): string {
  return `${scandir}/${SHUTDOWND_SERVICE}/${SHUTDOWND_FIFO}`;
}
/** The default shutdown FIFO: /run/service/s6-linux-init-shutdownd/fifo. */
export const DEFAULT_SHUTDOWND_FIFO = shutdowndFifo();

/** The command bytes of a shutdown request: S = rc.shutdown only, h halt, p poweroff, r reboot. */
export const SHUTDOWN_ACTIONS = ['S', 'h', 'p', 'r'] as const;
/** What a shutdown request asks for. */
export type ShutdownAction = typeof SHUTDOWN_ACTIONS[number];
/** The cancel byte. */
export const CANCEL_BYTE = 'c';
/** Length of a shutdown request. */
export const SHUTDOWN_REQUEST_SIZE = 17;

const ACTION_CODES = new Set<number>(SHUTDOWN_ACTIONS.map((a) => a.charCodeAt(0)));
const CANCEL_CODE = CANCEL_BYTE.charCodeAt(0);
const MAX_U32 = 0xffff_ffff;

/**
 * The 17-byte request: `action`, to happen `delayMs` from now (≥ 0, sub-millisecond allowed),
 * with `graceMs` between SIGTERM and SIGKILL (0 = the daemon's default). Throws RangeError
 * on a negative or non-finite delay or a grace outside 0…2^32-1 (a caller's bug).
 */
export function encodeShutdownRequest(action: ShutdownAction, delayMs: number, graceMs: number): Buffer {
  if (!SHUTDOWN_ACTIONS.includes(action)) throw new RangeError(`invalid shutdown action ${JSON.stringify(action)}`);
  if (!Number.isFinite(delayMs) || delayMs < 0) throw new RangeError(`invalid shutdown delay ${delayMs}`);
  if (!Number.isInteger(graceMs) || graceMs < 0 || graceMs > MAX_U32) throw new RangeError(`invalid grace time ${graceMs}`);
  const buf = Buffer.alloc(SHUTDOWN_REQUEST_SIZE);
  buf[0] = action.charCodeAt(0);
  const sec = Math.floor(delayMs / 1000);
  let nano = Math.round((delayMs - sec * 1000) * 1e6);
  let whole = BigInt(sec);
  if (nano >= 1e9) { whole += 1n; nano -= 1e9; } // rounding may carry into the seconds
  tainPack({ sec: whole, nano }, buf, 1);
  buf.writeUInt32BE(graceMs, 13);
  return buf;
}

/** The 1-byte cancel request. */
export function encodeCancel(): Buffer {
  return Buffer.from(CANCEL_BYTE, 'latin1');
}

/** One thing the decoder found in the byte stream. */
export type ShutdownItem =
  /** delayMs may be very large (up to 2^64 s); graceMs is raw: see effectiveGraceMs. */
  | { kind: 'shutdown'; action: ShutdownAction; delayMs: number; graceMs: number }
  | { kind: 'cancel' }
  | { kind: 'error'; message: string };

/** The grace a request leaves in force: its own if 0 < g ≤ MAX_GRACE_MS, else `current`. */
export function effectiveGraceMs(requested: number, current: number): number {
  return requested > 0 && requested <= MAX_GRACE_MS ? requested : current;
}

/** Names a byte for a message: 0x41 ('A'). */
function describeByte(b: number): string {
  const hex = `0x${b.toString(16).padStart(2, '0')}`;
  return b >= 0x20 && b < 0x7f ? `${hex} ('${String.fromCharCode(b)}')` : hex;
}

/**
 * Turns the bytes read from the shutdown FIFO into requests. Requests may be split across
 * reads or several may come in one read; a partial request is kept (at most 16 bytes) until
 * the rest arrives. An unknown byte becomes an error item and decoding carries on with the
 * next byte. Never throws.
 */
export class ShutdownRequestDecoder {
  #partial: Buffer = Buffer.alloc(0);

  /** Bytes of an incomplete request held back, waiting for the rest. */
  get pending(): number {
    return this.#partial.length;
  }

  /** Drops a held-back partial request (e.g. when the FIFO is reopened). */
  reset(): void {
    this.#partial = Buffer.alloc(0);
  }

  /** Decodes `chunk` (appended to what was held back) into items, in stream order. */
  push(chunk: Buffer): ShutdownItem[] {
    const items: ShutdownItem[] = [];
    const buf = this.#partial.length === 0 ? chunk : Buffer.concat([this.#partial, chunk]);
    let i = 0;
    while (i < buf.length) {
      const b = buf[i]!;
      if (b === CANCEL_CODE) {
        items.push({ kind: 'cancel' });
        i++;
      } else if (ACTION_CODES.has(b)) {
        if (buf.length - i < SHUTDOWN_REQUEST_SIZE) break;
        items.push(decodeRequest(buf, i));
        i += SHUTDOWN_REQUEST_SIZE;
      } else {
        items.push({ kind: 'error', message: `unknown command byte ${describeByte(b)} on the shutdown FIFO` });
        i++;
      }
    }
    // Copy: the caller's chunk may be reused; only an incomplete request (< 17 bytes) is kept.
    this.#partial = Buffer.from(buf.subarray(i));
    return items;
  }
}

/** A whole 17-byte request at `offset`. */
function decodeRequest(buf: Buffer, offset: number): ShutdownItem {
  const action = String.fromCharCode(buf[offset]!) as ShutdownAction;
  const delay = tainUnpack(buf, offset + 1);
  if (delay.nano >= 1e9) {
    return { kind: 'error', message: `shutdown request '${action}' with an invalid delay (nanoseconds field ${delay.nano} ≥ 10^9): ignored` };
  }
  const graceMs = buf.readUInt32BE(offset + 13);
  return { kind: 'shutdown', action, delayMs: Number(delay.sec) * 1000 + delay.nano / 1e6, graceMs };
}
