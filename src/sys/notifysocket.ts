/**
 * The socket that sd_notify clients write to (NOTIFY_SOCKET): an AF_UNIX datagram socket,
 * non-blocking and close-on-exec, with SO_PASSCRED on so that the kernel attaches the
 * sender's pid, uid and gid to every datagram (SCM_CREDENTIALS) — the only way to tell
 * which service a message comes from.
 *
 * Why a libuv poll handle: Node cannot watch a unix datagram socket (libuv's guess_handle
 * calls it UNKNOWN, so net.Socket({fd}) refuses it), but libuv itself can watch any fd
 * with a uv_poll_t, which koffi exposes (sys/libc.ts watchReadable). The event loop's own
 * epoll then tells when the socket is readable, and the callback drains it with recvmsg
 * (MSG_DONTWAIT). No thread waits: a wait on a libuv worker thread (as sys/pidwatch.ts
 * does) would hold one of the four threads that fs and koffi's asynchronous calls
 * (posix_spawn) share, for as long as pid 1 runs.
 *
 * Bounds: at most 64 datagrams per wake, then back to the event loop (the watch is
 * level-triggered: what is left is seen on the next turn; nothing is lost, other events get
 * their turn). A datagram over 4096 bytes is refused unread (systemd's own bound on a
 * notification), so is one without credentials; both are counted. Every fd a sender passes
 * (SCM_RIGHTS) is closed as it arrives: pid 1 must not collect them. Closing them in order
 * also answers systemd-notify's BARRIER=1 (it waits for its fd to be closed) after every
 * earlier message was delivered.
 *
 * close() stops the watch first (the fd leaves libuv's epoll set at once), then closes the
 * socket: synchronous, with nothing left in flight.
 */
import fs from 'node:fs';
import { c, errno, watchReadable, type FdWatch } from './libc.ts';
import { SysError, toError } from './errors.ts';
import { dupCloexec, setCloexec, setNonblocking } from './fd.ts';
import { DatagramReader, checkLayoutKnown, sockaddrUn, type Credentials } from './unixdgram.ts';

/** Who sent a datagram (SCM_CREDENTIALS), for callers that import this file only. */
export type { Credentials } from './unixdgram.ts';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_PASSCRED = 16;
const ENOTSOCK = 88;
/** The largest notification taken (systemd's NOTIFY_BUFFER_MAX is the same 4 KiB). */
export const MAX_NOTIFY_BYTES = 4096;
/** Datagrams taken per wake before the event loop's next turn (see the file's header). */
export const MAX_DATAGRAMS_PER_WAKE = 64;

/** Why a datagram was not delivered. */
export type NotifyRefusal =
  | { reason: 'oversized'; bytes: number; sender: Credentials | undefined }
  | { reason: 'no-credentials'; bytes: number };

/** How a NotifySocket is set up. */
export interface NotifySocketOptions {
  /**
   * Datagrams taken per wake (default MAX_DATAGRAMS_PER_WAKE). Tests lower it: the kernel
   * queues only a few datagrams per socket (net.unix.max_dgram_qlen, 10 by default), so
   * only a small bound shows what happens to the datagrams left over.
   */
  datagramsPerWake?: number;
}

/** What a NotifySocket has received and refused since it was made. */
export interface NotifyCounters {
  delivered: number;
  oversized: number;
  noCredentials: number;
  /** fds that senders passed and that were closed on arrival. */
  fdsClosed: number;
}

/** A bound sd_notify socket (see the file's header). */
export class NotifySocket {
  /** As NOTIFY_SOCKET spells it: `@name` (abstract) or an absolute path. */
  readonly address: string;
  /** The socket's fd; owned by this object (closed by close() and handOver()). */
  readonly fd: number;
  #reader = new DatagramReader(MAX_NOTIFY_BYTES);
  #watch: FdWatch | undefined;
  #closed = false;
  #onMessage: ((sender: Credentials, payload: Buffer) => void) | undefined;
  #onError: (err: Error) => void = () => {};
  #onRefused: (refusal: NotifyRefusal) => void = () => {};
  #counters: NotifyCounters = { delivered: 0, oversized: 0, noCredentials: 0, fdsClosed: 0 };

  readonly #perWake: number;

  private constructor(fd: number, address: string, opts: NotifySocketOptions) {
    this.fd = fd;
    this.address = address;
    this.#perWake = Math.max(1, opts.datagramsPerWake ?? MAX_DATAGRAMS_PER_WAKE);
  }

  /**
   * A new socket bound to `address` (`@name` or an absolute path; a path is never removed
   * first: a stale file is EADDRINUSE, for the caller to judge). Throws SysError naming the
   * address (EADDRINUSE, EACCES, ENAMETOOLONG…).
   */
  static bind(address: string, opts: NotifySocketOptions = {}): NotifySocket {
    checkLayoutKnown();
    const addr = sockaddrUn(address);
    const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new SysError('socket', errno(), address);
    try {
      passCredentials(fd, address);
      if (c.bind(fd, addr, addr.length) !== 0) throw new SysError('bind', errno(), address);
    } catch (err) {
      c.close(fd);
      throw err;
    }
    return new NotifySocket(fd, address, opts);
  }

  /**
   * Takes over a socket that was bound before (an fd inherited across a re-exec, from
   * handOver()): made close-on-exec and non-blocking again, SO_PASSCRED set again. Throws
   * SysError if `fd` is not a socket.
   */
  static fromFd(fd: number, address: string, opts: NotifySocketOptions = {}): NotifySocket {
    checkLayoutKnown();
    if (!fs.fstatSync(fd).isSocket()) throw new SysError('fromFd', ENOTSOCK, address, `fd ${fd} is not a socket`);
    setCloexec(fd, true);
    setNonblocking(fd, true);
    passCredentials(fd, address);
    return new NotifySocket(fd, address, opts);
  }

  /** What was delivered and refused so far (a copy). */
  get counters(): Readonly<NotifyCounters> {
    return { ...this.#counters };
  }

  /**
   * Delivers every datagram, on the event loop, to `onMessage` with the sender's
   * credentials and a copy of the payload. Refused datagrams go to `onRefused`. What a
   * callback throws goes to `onError`, and the others are still called; a failed watch or
   * receive goes to `onError` too, after which the socket is closed. `onError` must not
   * throw. Throws if listening already, if closed, or if the watch cannot start.
   */
  listen(onMessage: (sender: Credentials, payload: Buffer) => void, onError: (err: Error) => void, onRefused?: (refusal: NotifyRefusal) => void): void {
    if (this.#closed) throw new Error(`NotifySocket ${this.address}: listen after close`);
    if (this.#watch !== undefined) throw new Error(`NotifySocket ${this.address}: listening already`);
    this.#onMessage = onMessage;
    this.#onError = onError;
    if (onRefused !== undefined) this.#onRefused = onRefused;
    this.#watch = watchReadable(this.fd, (status) => this.#readable(status));
  }

  /**
   * Stops listening and returns a close-on-exec duplicate of the socket, for the next
   * image (the hand-over clears close-on-exec on it, as on every fd it names); datagrams
   * not yet read wait in the socket for that image. This object is closed afterwards.
   */
  handOver(): number {
    if (this.#closed) throw new Error(`NotifySocket ${this.address}: hand-over after close`);
    const kept = dupCloexec(this.fd);
    this.close();
    return kept;
  }

  /** Stops listening and closes the socket; idempotent, and safe from a callback. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Out of libuv's epoll set first: an fd closed while watched would leave libuv a stale entry.
    this.#watch?.close();
    this.#watch = undefined;
    c.close(this.fd);
  }

  /** The socket is readable (or the watch failed: a negative libuv code), on the event loop. */
  #readable(status: number): void {
    if (this.#closed) return;
    if (status < 0) return this.#fail(new SysError('uv_poll', -status, this.address));
    try {
      this.#drain();
    } catch (failure) {
      this.#fail(toError(failure));
    }
  }

  /** Up to #perWake datagrams, each delivered or refused; stops if a callback closed us. */
  #drain(): void {
    for (let i = 0; i < this.#perWake && !this.#closed; i++) {
      const d = this.#reader.receive(this.fd);
      if (d === undefined) return;
      this.#counters.fdsClosed += d.fdsClosed;
      // pid 0: a sender outside our pid namespace, which no service of ours can be.
      if (d.credentials === undefined || d.credentials.pid <= 0) {
        this.#counters.noCredentials++;
        this.#call(() => this.#onRefused({ reason: 'no-credentials', bytes: d.bytes }));
      } else if (d.payload === undefined) {
        this.#counters.oversized++;
        this.#call(() => this.#onRefused({ reason: 'oversized', bytes: d.bytes, sender: d.credentials }));
      } else {
        this.#counters.delivered++;
        const { credentials, payload } = d;
        this.#call(() => this.#onMessage?.(credentials, payload));
      }
    }
  }

  /** Runs a caller's callback; what it throws goes to onError, never into the event loop. */
  #call(callback: () => void): void {
    try {
      callback();
    } catch (err) {
      this.#report(toError(err));
    }
  }

  #report(err: Error): void {
    try {
      this.#onError(err);
    } catch {
      // onError is the last place an error can be told; one it throws has nowhere to go.
    }
  }

  #fail(err: Error): void {
    this.close();
    this.#report(err);
  }
}

/** SO_PASSCRED on: the kernel then attaches every sender's credentials. */
function passCredentials(fd: number, address: string): void {
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  if (c.setsockopt(fd, SOL_SOCKET, SO_PASSCRED, one, 4) !== 0) throw new SysError('setsockopt', errno(), `${address} SO_PASSCRED`);
}
