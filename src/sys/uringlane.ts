/**
 * One ring of sys/uringprobe.ts with what its connections hold in it: a sparse table of
 * fixed-file slots (one per connection) and the receive regions (one per slot), in chunks
 * of native memory that never move (the kernel writes into them). A slot, its region and
 * its place in `slots` are taken again only after the slot's CLOSE completed.
 *
 * Two kinds: the tick lane (DEFER_TASKRUN: completions are made only when this thread
 * enters the ring, so no wake per response; reaped on a timer) and the urgent lane (no
 * deferred task work: a completion interrupts the thread at once and posts its CQE, and the
 * ring fd, watched by a libuv poll handle, turns readable). The urgent lane exists because,
 * measured on this kernel (6.18), the eventfd a DEFER_TASKRUN ring signals when deferred
 * work is queued was signalled 14-20 ms late for completions driven by arriving data (the
 * kernel's RCU-deferred signal path), against 0.8 ms (p50) for a watched non-deferred ring.
 */
import { addressOf } from './libc.ts';
import { SysError } from './errors.ts';
import { OP_ASYNC_CANCEL, Ring, SETUP_SINGLE_ISSUER, SETUP_SUBMIT_ALL, SETUP_TRIES, type Sqe } from './uring.ts';

const EMFILE = 24;
const EINTR = 4;
const EAGAIN = 11;
const EBUSY = 16;
const CANCEL_ALL = 1 << 0;
const CANCEL_ANY = 1 << 2;
const SQ_ENTRIES = 1024;
const CQ_ENTRIES = 8192;
/** Receive regions are allocated this many slots at a time. */
const CHUNK_SLOTS = 64;
/** The urgent lane's setup: no deferred task work (so completions come without entering), one issuer. */
const URGENT_TRIES: readonly number[] = [SETUP_SINGLE_ISSUER | SETUP_SUBMIT_ALL, 0];

// Native addresses of what the kernel reads (a Prober's sockaddr and request, reused by every
// attempt; a Buffer's memory never moves): a koffi call and a BigInt per attempt saved.
const addresses = new WeakMap<Buffer, number>();
/** The native address of `buf`'s bytes, looked up once per Buffer. */
export function nativeAddress(buf: Buffer): number {
  let at = addresses.get(buf);
  if (at === undefined) addresses.set(buf, at = Number(addressOf(buf)));
  return at;
}

/** A ring with its slots and receive regions (see the file's header); T is what holds a slot. */
export class Lane<T> {
  readonly ring: Ring;
  readonly urgent: boolean;
  /** What holds each slot, until the slot's CLOSE completed. */
  readonly slots: (T | undefined)[] = [];
  /** Slots taken now (held, or closing). */
  busy = 0;
  readonly #free: number[] = [];
  readonly #maxSlots: number;
  readonly #readBytes: number;
  readonly #chunks: Buffer[] = [];
  readonly #chunkAddresses: number[] = [];
  /** One SQE's fields, refilled for each push (no object per SQE). */
  readonly sqe: Sqe = { op: 0, flags: 0, ioprio: 0, fd: 0, off: 0, addr: 0, len: 0, opFlags: 0, userLo: 0, userHi: 0, fileIndex: 0, addr3: 0 };

  /** A new ring and its slot table, as large as `maxSlots` and RLIMIT_NOFILE allow; throws SysError. */
  constructor(urgent: boolean, maxSlots: number, readBytes: number) {
    this.urgent = urgent;
    this.#readBytes = readBytes;
    const ring = new Ring(urgent ? 256 : SQ_ENTRIES, urgent ? 1024 : CQ_ENTRIES, urgent ? URGENT_TRIES : SETUP_TRIES);
    let n = maxSlots;
    for (;;) {
      try {
        ring.registerSparseFiles(n);
        break;
      } catch (err) {
        // EMFILE: more slots than RLIMIT_NOFILE; a smaller table serves fewer at once.
        if (!(err instanceof SysError) || err.errno !== EMFILE || n <= 16) {
          ring.close();
          throw err;
        }
        n = Math.floor(n / 2);
      }
    }
    this.ring = ring;
    this.#maxSlots = n;
  }

  /** A free slot (its receive region made if new), or SysError socket EMFILE. */
  takeSlot(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    const slot = this.slots.length;
    if (slot >= this.#maxSlots) throw new SysError('socket', EMFILE, undefined, `${this.#maxSlots} probe connections open`);
    if (slot % CHUNK_SLOTS === 0) {
      const chunk = Buffer.allocUnsafeSlow(CHUNK_SLOTS * this.#readBytes);
      this.#chunks.push(chunk);
      this.#chunkAddresses.push(Number(addressOf(chunk)));
    }
    this.slots.push(undefined);
    return slot;
  }

  /** The slot's CLOSE completed: it may be taken again. */
  freeSlot(slot: number): void {
    this.slots[slot] = undefined;
    this.#free.push(slot);
    this.busy--;
  }

  /** The native address of the slot's receive region. */
  regionAddress(slot: number): number {
    return this.#chunkAddresses[Math.floor(slot / CHUNK_SLOTS)]! + (slot % CHUNK_SLOTS) * this.#readBytes;
  }

  /** The first `n` bytes received into the slot's region (a view: valid until the next RECV there). */
  received(slot: number, n: number): Buffer {
    const at = (slot % CHUNK_SLOTS) * this.#readBytes;
    return this.#chunks[Math.floor(slot / CHUNK_SLOTS)]!.subarray(at, at + n);
  }

  /** Fills the shared SQE record (fileIndex and addr3 0: the caller sets them for SOCKET, CLOSE and socket commands) and returns it. */
  fill(op: number, flags: number, fd: number, off: number, addr: number, len: number, opFlags: number, userLo: number, userHi: number): Sqe {
    const s = this.sqe;
    s.op = op;
    s.flags = flags;
    s.fd = fd;
    s.off = off;
    s.addr = addr;
    s.len = len;
    s.opFlags = opFlags;
    s.userLo = userLo;
    s.userHi = userHi;
    s.fileIndex = 0;
    s.addr3 = 0;
    s.ioprio = 0;
    return s;
  }

  /** Room for `n` SQEs: what is written is submitted now if the SQ is too full (a chain is never split). */
  room(n: number): void {
    const ring = this.ring;
    if (ring.sqSpace >= n) return;
    for (let i = 0; i < 3 && ring.sqSpace < n; i++) {
      const r = ring.enter(i > 0);
      if (r < 0 && r !== -EINTR && r !== -EAGAIN && r !== -EBUSY) throw new SysError('io_uring_enter', -r);
    }
    if (ring.sqSpace < n) throw new SysError('io_uring_enter', EBUSY, undefined, 'submission queue full');
  }

  /**
   * Cancels everything in flight here, in this thread, then closes the ring: the receive
   * regions may be collected after this (closing the ring fd alone cancels later, from a
   * kernel worker).
   */
  close(): void {
    try {
      this.room(1);
      this.ring.push(this.fill(OP_ASYNC_CANCEL, 0, 0, 0, 0, 0, CANCEL_ALL | CANCEL_ANY, 0xffffffff, 0));
      this.ring.enter(true);
    } catch { /* closing the ring cancels what is left */ }
    this.ring.close();
  }
}
