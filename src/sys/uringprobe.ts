/**
 * Probe connections over io_uring (sys/uring.ts): the same interface and callbacks as
 * sys/tcpprobe.ts's TcpProbes, at a fraction of the system calls. 1,000 probes a second
 * through epoll cost pid 1 some 10 % of a core, mostly one system call per step of each
 * connection; here a connection is one chain of SQEs in a ring, and the whole process
 * enters the kernel a few times per tick.
 *
 * Each connection owns one slot of a ring's sparse fixed-file table and one receive region
 * (sys/uringlane.ts). open() writes the chain SOCKET (direct, into the slot) → [setsockopt
 * TCP_QUICKACK 0, so the request carries the handshake's last ACK] → CONNECT → SEND (the
 * request) → RECV (into the region), linked so that a failure ends the chain and
 * is told once, by the step that failed (the later ones end ECANCELED and are dropped).
 * Without a request the chain ends at CONNECT, whose completion is onConnected. close()
 * writes ASYNC_CANCEL (by the slot: whatever is in flight ends) hard-linked to CLOSE of the
 * slot, a normal close (FIN). The slot is taken again only after that CLOSE completed, and
 * user_data carries slot, step and the connection's generation: a late completion of an old
 * chain is never delivered to a new connection.
 *
 * Batching: open() and close() only write SQEs; one io_uring_enter per turn of the event
 * loop (setImmediate) submits them, and takes what completed meanwhile. Ordinary
 * connections live in the tick lane (DEFER_TASKRUN: completions are made only when this
 * thread enters the ring, so no wake per response): while any of its slots is busy it is
 * reaped at least every reapMs (50 ms), by the turn that submits new chains or else by a
 * timer (GETEVENTS, then what came is dispatched); none busy, no timer. An
 * answer so waits up to two ticks (the connect completes as deferred work: the request goes
 * out on the next tick, its answer is taken on the one after; followUpMs makes it one). An
 * `urgent` connection (a readiness probe) lives in the urgent lane, a second ring made on
 * first use whose completions wake the loop at once (see sys/uringlane.ts for why not an
 * eventfd on the first ring).
 */
import { watchReadable, type FdWatch } from './libc.ts';
import { SysError, errnoCode, toError } from './errors.ts';
import {
  OP_ASYNC_CANCEL, OP_CLOSE, OP_CONNECT, OP_RECV, OP_SEND, OP_SOCKET, OP_URING_CMD, SQE_CQE_SKIP_SUCCESS, SQE_FIXED_FILE,
  SQE_IO_HARDLINK, SQE_IO_LINK,
} from './uring.ts';
import { Lane, nativeAddress } from './uringlane.ts';
export { probeTransport, uringSocketCommands, uringUnavailable } from './uringavail.ts';
import { SOCKET_URING_OP_SETSOCKOPT, TCP_QUICKACK_OPTION, uringSocketCommands, uringUnavailable } from './uringavail.ts';
import { READ_BYTES, type TcpAddress, type TcpProbeClient, type TcpProbeConnection, type TcpProbesOptions } from './tcpprobe.ts';

const SOCK_STREAM = 1;
/**
 * RECV: wait for data before the first attempt. The answer is never there yet when the RECV
 * is issued (it follows the SEND in the same chain), so the attempt would only fail; in two
 * runs of bench/probes-unit.mjs (t6 mode) the Prober's system time was 462-463 ms against
 * 495-603 ms without.
 */
const RECVSEND_POLL_FIRST = 1;
const MSG_WAITALL = 0x100;
const MSG_NOSIGNAL = 0x4000;
const CANCEL_ALL = 1 << 0;
const CANCEL_FD = 1 << 1;
const CANCEL_FD_FIXED = 1 << 3;
const [EINTR, EAGAIN, EBUSY, EPIPE] = [4, 11, 16, 32];

// The step of a chain, in user_data's low word above the slot (bits 24-31); the high word is the generation.
const STEP_SOCKET = 0;
const STEP_CONNECT = 1;
const STEP_SEND = 2;
const STEP_RECV = 3;
const STEP_SETSOCKOPT = 4;
const STEP_CLOSE = 5;
const STEP_CANCEL = 6;
const SLOT_MASK = 0xffffff;
const STEP_SYSCALL = ['socket', 'connect', 'write', 'read', 'setsockopt'];

/** TCP_QUICKACK's value for a probe that sends a request: 0, as a native int the kernel reads. */
const QUICKACK_OFF = Buffer.alloc(4);

/** io_uring_enter calls per reap, at most. */
const MAX_ROUNDS = 256;

/** How a UringProbes is set up: TcpProbes's options, and the ring's own. */
export interface UringProbesOptions extends TcpProbesOptions {
  /** How often completions are taken while connections are open, in ms (default 50). */
  reapMs?: number;
  /**
   * The tick lane is entered again this long after new chains were submitted, so their
   * requests go out at once and answers come within one tick instead of two; default 0
   * (never): measured here it cost some 0.3-0.6 % of a core more at 1,000 probes a second.
   */
  followUpMs?: number;
  /** Connections open at once, at most (default 4096, and never over RLIMIT_NOFILE); open() throws EMFILE past it. */
  maxConnections?: number;
}

/** One connection's state. */
class Connection implements TcpProbeConnection {
  open = true;
  /** A step of its chain (or a later RECV) is in the kernel: close() must cancel it. */
  inFlight = true;
  readonly owner: UringProbes;
  readonly lane: Lane<Connection>;
  readonly slot: number;
  readonly generation: number;
  /** Kept until the connection is dropped (or the next request): the kernel reads the request and the address from their memory. */
  request: Buffer | undefined;
  /** A request went out on it after the first (keep-alive): a failed SEND leaves the RECV armed. */
  reused = false;
  readonly address: TcpAddress;
  readonly client: TcpProbeClient;

  constructor(owner: UringProbes, lane: Lane<Connection>, slot: number, generation: number, request: Buffer | undefined, address: TcpAddress, client: TcpProbeClient) {
    this.owner = owner;
    this.lane = lane;
    this.slot = slot;
    this.generation = generation;
    this.request = request;
    this.address = address;
    this.client = client;
  }

  close(): void {
    this.owner.release(this);
  }

  send(request: Buffer): void {
    this.owner.resend(this, request);
  }
}

/** A set of probe connections in two io_uring lanes (see the file's header); TcpProbes's interface. */
export class UringProbes {
  #tick: Lane<Connection> | undefined;
  #urgent: Lane<Connection> | undefined;
  /** The urgent ring's fd, watched while it has busy slots. */
  #watch: FdWatch | undefined;
  #open = 0;
  #generation = 0;
  #immediate: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #followUp: NodeJS.Timeout | undefined;
  /** open() wrote a chain into the tick lane since the last turn. */
  #freshChains = false;
  #reaping = false;
  /** The lane whose CQEs are being dispatched (#complete is one function for both). */
  #lane: Lane<Connection> | undefined;
  readonly #reapMs: number;
  readonly #followUpMs: number;
  readonly #maxConnections: number;
  readonly #mergeHandshakeAck: boolean;
  readonly #onError: (err: Error) => void;

  /** Throws if `reset` is asked: closing with SO_LINGER 0 is not offered over io_uring (probes close with a FIN). */
  constructor(opts: UringProbesOptions = {}) {
    if (opts.reset === true) throw new Error('UringProbes: the reset option is not supported');
    this.#reapMs = opts.reapMs ?? 50;
    this.#followUpMs = opts.followUpMs ?? 0;
    this.#maxConnections = opts.maxConnections ?? 4096;
    this.#mergeHandshakeAck = opts.mergeHandshakeAck !== false && uringSocketCommands();
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

  /** Slots taken now in both lanes: open connections and closed ones whose CLOSE has not completed (for tests). */
  get busySlots(): number {
    return (this.#tick?.busy ?? 0) + (this.#urgent?.busy ?? 0);
  }

  /**
   * Connects to `address` and, once up, sends `request` (if any) and reads the answer until
   * the owner closes or the peer does; every outcome, a refused connection too, comes
   * through `client` on a later turn. `urgent`: told as soon as the kernel has it, not on
   * the next tick. Throws SysError `socket` EMFILE when maxConnections are open in that
   * lane, or the ring's setup error.
   */
  open(address: TcpAddress, request: Buffer | undefined, client: TcpProbeClient, urgent = false): TcpProbeConnection {
    const lane = this.#laneFor(urgent);
    lane.room(5);
    const slot = lane.takeSlot();
    this.#generation = (this.#generation + 1) >>> 0;
    const conn = new Connection(this, lane, slot, this.#generation, request, address, client);
    lane.slots[slot] = conn;
    lane.busy++;
    this.#open++;
    const ring = lane.ring;
    const last = request === undefined;
    lane.fill(OP_SOCKET, SQE_IO_LINK | SQE_CQE_SKIP_SUCCESS, address.family, SOCK_STREAM, 0, 0, 0, user(conn, STEP_SOCKET), conn.generation).fileIndex = slot + 1;
    ring.push(lane.sqe);
    if (!last && this.#mergeHandshakeAck) {
      const sqe = lane.fill(OP_URING_CMD, SQE_FIXED_FILE | SQE_IO_LINK | SQE_CQE_SKIP_SUCCESS, slot, SOCKET_URING_OP_SETSOCKOPT, TCP_QUICKACK_OPTION, 0, 0, user(conn, STEP_SETSOCKOPT), conn.generation);
      sqe.fileIndex = QUICKACK_OFF.length; // optlen
      sqe.addr3 = nativeAddress(QUICKACK_OFF);
      ring.push(sqe);
    }
    const connectFlags = SQE_FIXED_FILE | (last ? 0 : SQE_IO_LINK | SQE_CQE_SKIP_SUCCESS);
    ring.push(lane.fill(OP_CONNECT, connectFlags, slot, address.sockaddr.length, nativeAddress(address.sockaddr), 0, 0, user(conn, STEP_CONNECT), conn.generation));
    if (!last) {
      const flags = SQE_FIXED_FILE | SQE_IO_LINK | SQE_CQE_SKIP_SUCCESS;
      ring.push(lane.fill(OP_SEND, flags, slot, 0, nativeAddress(request), request.length, MSG_WAITALL | MSG_NOSIGNAL, user(conn, STEP_SEND), conn.generation));
      this.#pushRecv(conn);
    }
    if (lane.busy === 1 && lane.urgent) this.#watch?.setRef(true);
    if (!lane.urgent) this.#freshChains = true;
    this.#schedule(lane);
    return conn;
  }

  /**
   * A further request on an open connection: one SEND (its RECV is armed since the last
   * answer, and also tells when the server closes the idle connection). Called through the
   * connection's send().
   */
  resend(conn: Connection, request: Buffer): void {
    if (!conn.open) throw new SysError('write', EPIPE);
    const lane = conn.lane;
    lane.room(1);
    conn.request = request;
    conn.reused = true;
    const flags = SQE_FIXED_FILE | SQE_CQE_SKIP_SUCCESS;
    lane.ring.push(lane.fill(OP_SEND, flags, conn.slot, 0, nativeAddress(request), request.length, MSG_WAITALL | MSG_NOSIGNAL, user(conn, STEP_SEND), conn.generation));
    if (!lane.urgent) this.#freshChains = true;
    this.#schedule(lane);
  }

  /** Closes a connection: cancel what it has in flight, close its slot; idempotent. Called through the connection's close(). */
  release(conn: Connection): void {
    if (!conn.open) return;
    conn.open = false;
    this.#open--;
    const lane = conn.lane;
    if (lane !== this.#tick && lane !== this.#urgent) return; // shut down since
    try {
      lane.room(2);
      if (conn.inFlight) {
        const flags = SQE_IO_HARDLINK | SQE_CQE_SKIP_SUCCESS;
        lane.ring.push(lane.fill(OP_ASYNC_CANCEL, flags, conn.slot, 0, 0, 0, CANCEL_ALL | CANCEL_FD | CANCEL_FD_FIXED, user(conn, STEP_CANCEL), conn.generation));
      }
      lane.fill(OP_CLOSE, 0, 0, 0, 0, 0, 0, user(conn, STEP_CLOSE), conn.generation).fileIndex = conn.slot + 1;
      lane.ring.push(lane.sqe);
      this.#schedule(lane);
    } catch (err) {
      // The ring takes no more SQEs: the slot stays taken (one slot lost, never one reused too early).
      this.#onError(toError(err));
    }
  }

  /** Closes every connection (their clients are not told) and both rings; a later open() makes new ones. */
  shutdown(): void {
    // The watch first: the urgent ring's fd leaves libuv's epoll set before it is closed.
    this.#watch?.close();
    this.#watch = undefined;
    for (const lane of [this.#tick, this.#urgent]) {
      if (lane === undefined) continue;
      for (const conn of lane.slots) if (conn?.open === true) { conn.open = false; this.#open--; }
      lane.close();
    }
    this.#tick = this.#urgent = undefined;
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#followUp !== undefined) clearTimeout(this.#followUp);
    this.#immediate = this.#timer = this.#followUp = undefined;
  }

  /** The lane for a connection, set up on first use (the urgent one with its watch). */
  #laneFor(urgent: boolean): Lane<Connection> {
    if (!urgent) return (this.#tick ??= new Lane<Connection>(false, this.#maxConnections, READ_BYTES));
    if (this.#urgent !== undefined) return this.#urgent;
    const lane = new Lane<Connection>(true, this.#maxConnections, READ_BYTES);
    try {
      this.#watch = watchReadable(lane.ring.fd, this.#onUrgent);
    } catch (err) {
      lane.close();
      throw err;
    }
    this.#watch.setRef(false);
    return (this.#urgent = lane);
  }

  /** A RECV into the connection's region. */
  #pushRecv(conn: Connection): void {
    const lane = conn.lane;
    const sqe = lane.fill(OP_RECV, SQE_FIXED_FILE, conn.slot, 0, lane.regionAddress(conn.slot), READ_BYTES, 0, user(conn, STEP_RECV), conn.generation);
    sqe.ioprio = RECVSEND_POLL_FIRST;
    lane.ring.push(sqe);
    conn.inFlight = true;
  }

  /** The next check phase submits what was written (one io_uring_enter per lane per turn); the tick lane's timer runs while it has busy slots. */
  #schedule(lane: Lane<Connection>): void {
    this.#immediate ??= setImmediate(this.#onTurn);
    if (!lane.urgent) this.#timer ??= setTimeout(this.#onTick, this.#reapMs);
  }

  readonly #onTurn = (): void => {
    this.#immediate = undefined;
    // Nothing left to submit: a reap inside this turn took it already; the tick takes the rest.
    for (const lane of [this.#tick, this.#urgent]) if (lane !== undefined && lane.ring.pending > 0) this.#guarded(lane);
    // A connect completes a moment after its submission, as deferred work: entered once more
    // shortly after, the request goes out then and its answer is taken by the next tick,
    // rather than the request waiting a tick and the answer another.
    // Only after new chains: closes need no follow-up (and would chain one after another).
    if (this.#freshChains && this.#followUpMs > 0) this.#followUp ??= setTimeout(this.#onFollowUp, this.#followUpMs);
    this.#freshChains = false;
  };

  readonly #onFollowUp = (): void => {
    this.#followUp = undefined;
    if (this.#tick !== undefined) this.#guarded(this.#tick);
  };

  readonly #onTick = (): void => {
    if (this.#tick !== undefined) this.#guarded(this.#tick);
  };

  /** The urgent ring has completions (or failed to be watched). */
  readonly #onUrgent = (status: number): void => {
    const lane = this.#urgent;
    if (lane === undefined) return;
    if (status < 0) return this.#broken(lane, 'uv_poll', -status);
    this.#guarded(lane);
  };

  /** Enters and reaps a lane from the event loop: nothing thrown may reach the loop (this is pid 1). */
  #guarded(lane: Lane<Connection>): void {
    try {
      this.#enterAndReap(lane);
    } catch (err) {
      this.#onError(toError(err));
    }
    if (lane.urgent) {
      if (lane.busy === 0) this.#watch?.setRef(false);
    } else if (lane.busy > 0) {
      // The next reap comes reapMs after this one, whoever made this one: when probes start
      // on every tick of their clock, their own turn reaps, and this timer never wakes the
      // process on its own (one wake per tick, not two).
      if (this.#timer === undefined) this.#timer = setTimeout(this.#onTick, this.#reapMs);
      else this.#timer.refresh();
    } else if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  /**
   * Submits what is written and takes every completion: one io_uring_enter with GETEVENTS
   * (on the tick lane it also runs the deferred task work), then the CQ walked; again while
   * task work is left, the callbacks wrote more, or completions wait in the overflow list.
   */
  #enterAndReap(lane: Lane<Connection>): void {
    if (this.#reaping) return;
    this.#reaping = true;
    try {
      // One enter runs at most some 20 deferred task-work items (the kernel's batch with
      // min_complete 0), so it is entered again while the ring says work is left (bounded:
      // the rest waits for the next tick).
      for (let round = 0; round < MAX_ROUNDS; round++) {
        if (lane !== this.#tick && lane !== this.#urgent) return; // a callback shut the probes down
        const r = lane.ring.enter(true);
        if (r < 0 && r !== -EINTR && r !== -EAGAIN && r !== -EBUSY) return this.#broken(lane, 'io_uring_enter', -r);
        this.#lane = lane;
        const reaped = lane.ring.reap(this.#complete);
        const more = lane.ring.tellsTaskWork ? lane.ring.taskWorkPending : reaped > 0;
        if (!more && !lane.ring.cqOverflow && lane.ring.pending === 0) break;
      }
    } finally {
      this.#reaping = false;
      this.#lane = undefined;
    }
  }

  /** One completion: dropped unless it is the current connection's of that slot. */
  readonly #complete = (lo: number, hi: number, res: number): void => {
    const lane = this.#lane!;
    const slot = lo & SLOT_MASK;
    const step = lo >>> 24;
    const conn = lane.slots[slot];
    if (conn === undefined || conn.generation !== hi) return;
    if (step === STEP_CLOSE) return lane.freeSlot(slot);
    if (!conn.open || step === STEP_CANCEL) return;
    if (step === STEP_RECV) return this.#received(conn, res);
    // A chain's failure ends the rest of it; a lone SEND on a kept connection leaves its RECV armed.
    if (!(step === STEP_SEND && conn.reused)) conn.inFlight = false;
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
    try { // not through #call: this runs for every answer, and a closure per call is garbage
      conn.client.onData(conn.lane.received(conn.slot, res));
    } catch (err) {
      this.release(conn);
      this.#onError(toError(err));
    }
    if (!conn.open) return;
    try {
      conn.lane.room(1);
      this.#pushRecv(conn);
      this.#schedule(conn.lane);
    } catch (err) {
      this.#fail(conn, 'read', err instanceof SysError ? err.errno : EBUSY);
    }
  }

  /** A lane cannot be entered or watched: each of its connections fails with that error (its owner learns it), then onError hears it once. */
  #broken(lane: Lane<Connection>, syscall: string, e: number): void {
    for (const conn of lane.slots) if (conn?.open === true) this.#fail(conn, syscall, e);
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

/** user_data's low word: the slot, and the step above it (bits 24-31). */
function user(conn: Connection, step: number): number {
  return (conn.slot | (step << 24)) >>> 0;
}
