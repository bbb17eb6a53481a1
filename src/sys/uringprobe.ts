/**
 * Probe connections over io_uring (sys/uring.ts): the same interface and callbacks as
 * sys/tcpprobe.ts's TcpProbes, at a fraction of the system calls. 1,000 probes a second
 * through epoll cost pid 1 some 10 % of a core, mostly one system call per step of each
 * connection; here a connection is one chain of SQEs in a ring, and the whole process
 * enters the kernel a few times per tick.
 *
 * Each connection owns one slot of a sparse fixed-file table and one region of the receive
 * buffers. open() writes the chain SOCKET (direct, into the slot) → CONNECT → SEND (the
 * request) → RECV (into the region), linked so a failure ends the chain and is told once,
 * by the step that failed (the others end ECANCELED and are dropped). Without a request the
 * chain ends at CONNECT, whose completion is onConnected. close() writes ASYNC_CANCEL (by
 * the slot: whatever is in flight ends) hard-linked to CLOSE of the slot, a normal close
 * (FIN). The slot and its region are taken again only after that CLOSE completed; user_data
 * carries slot, step and the connection's generation, so a late completion of an old chain
 * is never delivered to a new connection.
 *
 * Batching: open() and close() only write SQEs; one io_uring_enter per turn of the event
 * loop (setImmediate) submits them all. The ring is set up with DEFER_TASKRUN: completions
 * are made only when this thread enters the ring, so no interrupt or wake per response. While
 * any slot is busy a timer (reapMs, 50 ms) enters with GETEVENTS and dispatches what came;
 * no slot busy, no timer. An `urgent` connection (a readiness probe) is told at once: while
 * one is open, a registered eventfd is enabled and watched by a libuv poll handle. With
 * DEFER_TASKRUN the kernel signals that eventfd when deferred work is first queued
 * (io_req_local_work_add, 6.1 on: checked by the urgent test), and never while the CQ ring
 * says IORING_CQ_EVENTFD_DISABLED, which is how the eventfd is switched on and off.
 */
import { addressOf, c, errno, watchReadable, type FdWatch } from './libc.ts';
import { SysError, errnoCode, toError } from './errors.ts';
import {
  OP_ASYNC_CANCEL, OP_CLOSE, OP_CONNECT, OP_RECV, OP_SEND, OP_SOCKET, Ring, SQE_CQE_SKIP_SUCCESS, SQE_FIXED_FILE,
  SQE_IO_HARDLINK, SQE_IO_LINK, type Sqe,
} from './uring.ts';
import { READ_BYTES, type TcpAddress, type TcpProbeClient, type TcpProbeConnection, type TcpProbesOptions } from './tcpprobe.ts';

const SOCK_STREAM = 1;
const MSG_WAITALL = 0x100;
const MSG_NOSIGNAL = 0x4000;
const CANCEL_ALL = 1 << 0;
const CANCEL_FD = 1 << 1;
const CANCEL_ANY = 1 << 2;
const CANCEL_FD_FIXED = 1 << 3;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const EMFILE = 24;
const EPIPE = 32;
const EINTR = 4;
const EAGAIN = 11;
const EBUSY = 16;
const SQ_ENTRIES = 1024;
const CQ_ENTRIES = 8192;
/** Receive regions are allocated this many slots at a time (never moved: the kernel writes into them). */
const CHUNK_SLOTS = 64;

// The step of a chain, in user_data's low word above the slot (bits 24-31); the high word is the generation.
const STEP_SOCKET = 0;
const STEP_CONNECT = 1;
const STEP_SEND = 2;
const STEP_RECV = 3;
const STEP_CLOSE = 4;
const STEP_CANCEL = 5;
const SLOT_MASK = 0xffffff;
const STEP_SYSCALL = ['socket', 'connect', 'write', 'read'];

/** How a UringProbes is set up: TcpProbes's options, and the ring's own. */
export interface UringProbesOptions extends TcpProbesOptions {
  /** How often completions are taken while connections are open, in ms (default 50). */
  reapMs?: number;
  /** Connections open at once, at most (default 4096, and never over RLIMIT_NOFILE); open() throws EMFILE past it. */
  maxConnections?: number;
}

/** One connection's state. */
class Connection implements TcpProbeConnection {
  open = true;
  /** A step of its chain (or a later RECV) is in the kernel: close() must cancel it. */
  inFlight = true;
  readonly owner: UringProbes;
  readonly slot: number;
  readonly generation: number;
  /** Kept until the slot is free: the kernel reads the request and the address from their memory. */
  readonly request: Buffer | undefined;
  readonly address: TcpAddress;
  readonly client: TcpProbeClient;
  readonly urgent: boolean;

  constructor(owner: UringProbes, slot: number, generation: number, request: Buffer | undefined, address: TcpAddress, client: TcpProbeClient, urgent: boolean) {
    this.owner = owner;
    this.slot = slot;
    this.generation = generation;
    this.request = request;
    this.address = address;
    this.client = client;
    this.urgent = urgent;
  }

  close(): void {
    this.owner.release(this);
  }
}

/** A set of probe connections in one io_uring (see the file's header); TcpProbes's interface. */
export class UringProbes {
  #ring: Ring | undefined;
  /** The connection holding each busy slot, until its CLOSE completed. */
  #slots: (Connection | undefined)[] = [];
  #free: number[] = [];
  #maxSlots = 0;
  #busy = 0;
  #open = 0;
  #urgent = 0;
  #generation = 0;
  #chunks: Buffer[] = [];
  #chunkAddresses: number[] = [];
  #immediate: NodeJS.Immediate | undefined;
  #tick: NodeJS.Timeout | undefined;
  #reaping = false;
  #eventfd = -1;
  #watch: FdWatch | undefined;
  readonly #eventBuffer = Buffer.alloc(8);
  /** One SQE's fields, refilled for each push (no object per SQE). */
  readonly #sqe: Sqe = { op: 0, flags: 0, fd: 0, off: 0, addr: 0, len: 0, opFlags: 0, userLo: 0, userHi: 0, fileIndex: 0 };
  readonly #readBytes = READ_BYTES;
  readonly #reapMs: number;
  readonly #maxConnections: number;
  readonly #onError: (err: Error) => void;

  /** Throws if `reset` is asked: closing with SO_LINGER 0 is not offered over io_uring (probes close with a FIN). */
  constructor(opts: UringProbesOptions = {}) {
    if (opts.reset === true) throw new Error('UringProbes: the reset option is not supported');
    this.#reapMs = opts.reapMs ?? 50;
    this.#maxConnections = opts.maxConnections ?? 4096;
    this.#onError = opts.onError ?? ((err) => queueMicrotask(() => { throw err; }));
  }

  /** A UringProbes, or undefined when io_uring cannot serve probes here (uringUnavailable() says why). */
  static tryCreate(opts: UringProbesOptions = {}): UringProbes | undefined {
    return uringUnavailable() === undefined && opts.reset !== true ? new UringProbes(opts) : undefined;
  }

  /** Connections open now. */
  get size(): number {
    return this.#open;
  }

  /** Slots taken now: open connections and closed ones whose CLOSE has not completed (for tests). */
  get busySlots(): number {
    return this.#busy;
  }

  /**
   * Connects to `address` and, once up, sends `request` (if any) and reads the answer until
   * the owner closes or the peer does; every outcome, a refused connection too, comes
   * through `client` on a later turn. `urgent`: told as soon as the kernel has it, not on
   * the next tick. Throws SysError `socket` EMFILE when maxConnections are open, or the
   * ring's setup error.
   */
  open(address: TcpAddress, request: Buffer | undefined, client: TcpProbeClient, urgent = false): TcpProbeConnection {
    const ring = this.#ensureRing();
    this.#room(ring, 4);
    const slot = this.#takeSlot();
    this.#generation = (this.#generation + 1) >>> 0;
    const conn = new Connection(this, slot, this.#generation, request, address, client, urgent);
    this.#slots[slot] = conn;
    this.#busy++;
    this.#open++;
    const last = request === undefined;
    this.#push(OP_SOCKET, SQE_IO_LINK | SQE_CQE_SKIP_SUCCESS, address.family, SOCK_STREAM, 0, 0, 0, conn, STEP_SOCKET);
    this.#sqe.fileIndex = slot + 1;
    ring.push(this.#sqe);
    const connectFlags = SQE_FIXED_FILE | (last ? 0 : SQE_IO_LINK | SQE_CQE_SKIP_SUCCESS);
    this.#push(OP_CONNECT, connectFlags, slot, address.sockaddr.length, Number(addressOf(address.sockaddr)), 0, 0, conn, STEP_CONNECT);
    ring.push(this.#sqe);
    if (!last) {
      const flags = SQE_FIXED_FILE | SQE_IO_LINK | SQE_CQE_SKIP_SUCCESS;
      this.#push(OP_SEND, flags, slot, 0, Number(addressOf(request)), request.length, MSG_WAITALL | MSG_NOSIGNAL, conn, STEP_SEND);
      ring.push(this.#sqe);
      this.#pushRecv(ring, conn);
    }
    if (urgent && ++this.#urgent === 1) {
      // Without the eventfd the tick still tells it, later: the connection stands.
      try { this.#urgentOn(); } catch (err) { this.#onError(toError(err)); }
    }
    this.#schedule();
    return conn;
  }

  /** Closes a connection: cancel what it has in flight, close its slot; idempotent. Called through the connection's close(). */
  release(conn: Connection): void {
    if (!conn.open) return;
    conn.open = false;
    this.#open--;
    if (conn.urgent && --this.#urgent === 0) this.#urgentOff();
    const ring = this.#ring;
    if (ring === undefined) return;
    try {
      this.#room(ring, 2);
      if (conn.inFlight) {
        this.#push(OP_ASYNC_CANCEL, SQE_IO_HARDLINK | SQE_CQE_SKIP_SUCCESS, conn.slot, 0, 0, 0, CANCEL_ALL | CANCEL_FD | CANCEL_FD_FIXED, conn, STEP_CANCEL);
        ring.push(this.#sqe);
      }
      this.#push(OP_CLOSE, 0, 0, 0, 0, 0, 0, conn, STEP_CLOSE);
      this.#sqe.fileIndex = conn.slot + 1;
      ring.push(this.#sqe);
      this.#schedule();
    } catch (err) {
      // The ring takes no more SQEs: the slot stays taken (a leak of one slot, never a reuse too early).
      this.#onError(toError(err));
    }
  }

  /** Closes every connection (their clients are not told) and the ring; a later open() makes a new one. */
  shutdown(): void {
    for (const conn of this.#slots) if (conn?.open === true) { conn.open = false; this.#open--; }
    this.#urgent = 0;
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    if (this.#tick !== undefined) clearInterval(this.#tick);
    this.#immediate = this.#tick = undefined;
    this.#watch?.close();
    this.#watch = undefined;
    if (this.#eventfd >= 0) c.close(this.#eventfd);
    this.#eventfd = -1;
    const ring = this.#ring;
    this.#ring = undefined;
    if (ring !== undefined) {
      // Everything in flight is cancelled here, in this thread, before the receive buffers
      // can be collected (closing the ring fd alone cancels later, from a kernel worker).
      try {
        this.#room(ring, 1);
        this.#push(OP_ASYNC_CANCEL, 0, 0, 0, 0, 0, CANCEL_ALL | CANCEL_ANY, undefined, STEP_CANCEL);
        ring.push(this.#sqe);
        ring.enter(true);
      } catch { /* closing the ring cancels what is left */ }
      ring.close();
    }
    this.#slots = [];
    this.#free = [];
    this.#busy = 0;
    this.#maxSlots = 0;
    this.#chunks = [];
    this.#chunkAddresses = [];
  }

  /** The ring, set up on first use: its fixed-file table as large as maxConnections and RLIMIT_NOFILE allow. */
  #ensureRing(): Ring {
    if (this.#ring !== undefined) return this.#ring;
    const ring = new Ring(SQ_ENTRIES, CQ_ENTRIES);
    let n = this.#maxConnections;
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
    this.#maxSlots = n;
    this.#ring = ring;
    return ring;
  }

  /** A free slot (its receive region made if new), or SysError socket EMFILE. */
  #takeSlot(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    const slot = this.#slots.length;
    if (slot >= this.#maxSlots) throw new SysError('socket', EMFILE, undefined, `${this.#maxSlots} probe connections open`);
    if (slot % CHUNK_SLOTS === 0) {
      const chunk = Buffer.allocUnsafeSlow(CHUNK_SLOTS * this.#readBytes);
      this.#chunks.push(chunk);
      this.#chunkAddresses.push(Number(addressOf(chunk)));
    }
    this.#slots.push(undefined);
    return slot;
  }

  /** Room for `n` SQEs: what is written is submitted now if the SQ is too full (the chains stay whole). */
  #room(ring: Ring, n: number): void {
    if (ring.sqSpace >= n) return;
    for (let i = 0; i < 3 && ring.sqSpace < n; i++) {
      const r = ring.enter(i > 0);
      if (r < 0 && r !== -EINTR && r !== -EAGAIN && r !== -EBUSY) throw new SysError('io_uring_enter', -r);
    }
    if (ring.sqSpace < n) throw new SysError('io_uring_enter', EBUSY, undefined, 'submission queue full');
  }

  /** Fills the shared SQE record (fileIndex 0: the caller sets it for SOCKET and CLOSE). */
  #push(op: number, flags: number, fd: number, off: number, addr: number, len: number, opFlags: number, conn: Connection | undefined, step: number): void {
    const s = this.#sqe;
    s.op = op;
    s.flags = flags;
    s.fd = fd;
    s.off = off;
    s.addr = addr;
    s.len = len;
    s.opFlags = opFlags;
    s.userLo = ((conn?.slot ?? SLOT_MASK) | (step << 24)) >>> 0;
    s.userHi = conn?.generation ?? 0;
    s.fileIndex = 0;
  }

  /** A RECV into the connection's region. */
  #pushRecv(ring: Ring, conn: Connection): void {
    const region = this.#chunkAddresses[Math.floor(conn.slot / CHUNK_SLOTS)]! + (conn.slot % CHUNK_SLOTS) * this.#readBytes;
    this.#push(OP_RECV, SQE_FIXED_FILE, conn.slot, 0, region, this.#readBytes, 0, conn, STEP_RECV);
    ring.push(this.#sqe);
    conn.inFlight = true;
  }

  /** The next check phase submits what was written (one io_uring_enter per turn); a tick runs while slots are busy. */
  #schedule(): void {
    this.#immediate ??= setImmediate(this.#onTurn);
    this.#tick ??= setInterval(this.#onTick, this.#reapMs);
  }

  readonly #onTurn = (): void => {
    this.#immediate = undefined;
    // Nothing left to submit: a reap inside this turn took it already; the tick takes the rest.
    if (this.#ring !== undefined && this.#ring.pending > 0) this.#guarded(() => this.#enterAndReap());
  };

  readonly #onTick = (): void => {
    this.#guarded(() => this.#enterAndReap());
  };

  /** The eventfd is readable (urgent mode): clear it, take what came. */
  readonly #onEventfd = (status: number): void => {
    this.#guarded(() => {
      if (status < 0) throw new SysError('uv_poll', -status, undefined, 'io_uring eventfd');
      if (this.#eventfd >= 0) c.read(this.#eventfd, this.#eventBuffer, 8);
      this.#enterAndReap();
    });
  };

  /** Runs ring work from the event loop: nothing it throws may reach the loop (this is pid 1). */
  #guarded(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#onError(toError(err));
    }
    if (this.#busy === 0 && this.#tick !== undefined) {
      clearInterval(this.#tick);
      this.#tick = undefined;
    }
  }

  /**
   * Submits what is written and takes every completion: one io_uring_enter with GETEVENTS
   * (it also runs the deferred task work), then the CQ walked; again while completions wait
   * in the overflow list. In urgent mode the eventfd is off meanwhile (our own completions
   * would signal it) and, if work was queued in that window, taken before returning.
   */
  #enterAndReap(): void {
    const ring = this.#ring;
    if (ring === undefined || this.#reaping) return;
    this.#reaping = true;
    try {
      const urgent = this.#urgent > 0;
      for (let round = 0; round < 8; round++) {
        if (urgent) ring.setEventfdEnabled(false);
        const r = ring.enter(true);
        if (urgent) ring.setEventfdEnabled(true);
        if (r < 0 && r !== -EINTR && r !== -EAGAIN && r !== -EBUSY) return this.#broken('io_uring_enter', -r);
        ring.reap(this.#complete);
        if (!ring.cqOverflow && ring.pending === 0 && !(urgent && ring.taskWorkPending)) break;
      }
    } finally {
      this.#reaping = false;
    }
  }

  /** One completion: dropped unless it is the current connection's of that slot. */
  readonly #complete = (lo: number, hi: number, res: number): void => {
    const slot = lo & SLOT_MASK;
    const step = lo >>> 24;
    const conn = this.#slots[slot];
    if (conn === undefined || conn.generation !== hi) return;
    if (step === STEP_CLOSE) {
      this.#slots[slot] = undefined;
      this.#free.push(slot);
      this.#busy--;
      return;
    }
    if (!conn.open || step === STEP_CANCEL) return;
    if (step === STEP_RECV) return this.#received(conn, res);
    conn.inFlight = false;
    // A SEND completion is posted only on failure: a short send (res ≥ 0) means the peer went away.
    if (res < 0 || step === STEP_SEND) return this.#fail(conn, STEP_SYSCALL[step]!, res < 0 ? -res : EPIPE);
    if (step === STEP_CONNECT) this.#call(conn, () => conn.client.onConnected());
  };

  /** A RECV ended: data (another RECV follows if the owner keeps the connection), the end, or a failure. */
  #received(conn: Connection, res: number): void {
    conn.inFlight = false;
    if (res < 0) return this.#fail(conn, 'read', -res);
    if (res === 0) {
      this.release(conn);
      return this.#call(conn, () => conn.client.onEnd(), true);
    }
    const chunk = this.#chunks[Math.floor(conn.slot / CHUNK_SLOTS)]!;
    const at = (conn.slot % CHUNK_SLOTS) * this.#readBytes;
    this.#call(conn, () => conn.client.onData(chunk.subarray(at, at + res)));
    if (conn.open && this.#ring !== undefined) {
      this.#room(this.#ring, 1);
      this.#pushRecv(this.#ring, conn);
      this.#schedule();
    }
  }

  /** The eventfd, registered once and enabled while urgent connections are open. */
  #urgentOn(): void {
    const ring = this.#ring!;
    if (this.#eventfd < 0) {
      const fd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (fd < 0) throw new SysError('eventfd', errno());
      try {
        ring.registerEventfd(fd);
        this.#watch = watchReadable(fd, this.#onEventfd);
      } catch (err) {
        c.close(fd);
        throw err;
      }
      this.#eventfd = fd;
    }
    ring.setEventfdEnabled(true);
    this.#watch!.setRef(true);
  }

  #urgentOff(): void {
    this.#ring?.setEventfdEnabled(false);
    this.#watch?.setRef(false);
  }

  /** The ring cannot be entered: every connection fails with that error (its owner learns it), then onError hears it once. */
  #broken(syscall: string, e: number): void {
    for (const conn of this.#slots) if (conn?.open === true) this.#fail(conn, syscall, e);
    this.#onError(new SysError(syscall, e, 'io_uring probes'));
  }

  #fail(conn: Connection, syscall: string, e: number): void {
    this.release(conn);
    this.#call(conn, () => conn.client.onFailed(syscall, errnoCode(e)), true);
  }

  /** A client callback; what it throws closes its connection and goes to onError, never into the event loop. */
  #call(conn: Connection, fn: () => void, closed = false): void {
    if (!closed && !conn.open) return;
    try {
      fn();
    } catch (err) {
      this.release(conn);
      this.#onError(toError(err));
    }
  }
}

let unavailable: string | null | undefined;

/**
 * Why io_uring cannot carry probes here (ENOSYS, EPERM from seccomp or the io_uring_disabled
 * sysctl, a kernel without SOCKET or fixed files…), or undefined when it can. Tried once.
 */
export function uringUnavailable(): string | undefined {
  if (unavailable === undefined) {
    unavailable = null;
    let ring: Ring | undefined;
    try {
      ring = new Ring(8, 16);
      const missing = ring.missingOps([OP_SOCKET, OP_CONNECT, OP_SEND, OP_RECV, OP_CLOSE, OP_ASYNC_CANCEL]);
      if (missing.length > 0) unavailable = `io_uring lacks opcodes ${missing.join(', ')}`;
      else ring.registerSparseFiles(1);
    } catch (err) {
      unavailable = toError(err).message;
    } finally {
      ring?.close();
    }
  }
  return unavailable ?? undefined;
}

/** The probe transport to use: `epoll` (TcpProbes) when T6_PROBE_TRANSPORT=epoll or io_uring is unavailable, else `uring`. */
export function probeTransport(env: NodeJS.ProcessEnv = process.env): 'epoll' | 'uring' {
  if (env.T6_PROBE_TRANSPORT === 'epoll') return 'epoll';
  return uringUnavailable() === undefined ? 'uring' : 'epoll';
}
