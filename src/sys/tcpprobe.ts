/**
 * Short TCP client connections for probes (issue 14), on raw system calls: a probe opens a
 * connection, maybe sends one small request, reads the first bytes of the answer, and
 * closes. 1,000 services probed each second must cost pid 1 under 5 % of a core, and
 * node:net's machinery per connection (a handle, two streams, destroy) costs more than the
 * kernel's own work; this file does only the system calls.
 *
 * How: every connection is a non-blocking, close-on-exec socket in one epoll set of ours,
 * and that set's fd is watched by one libuv poll handle (sys/libc.ts watchReadable): the
 * event loop's own epoll tells when any of them is ready, no thread waits, and no handle is
 * made per connection. A wake takes up to MAX_EVENTS_PER_WAKE events, one recv each into
 * one shared buffer; what is left is seen on the next turn of the loop (both sets are
 * level-triggered, nothing is lost).
 *
 * A request is sent as soon as connect() returns: on loopback the handshake is over by then,
 * and the send saves the wait for writability. If the socket is still connecting (EAGAIN),
 * the connection waits for writable, checks SO_ERROR, then sends. Until the connection is
 * known to be up, any error is a `connect` error (a refused loopback connection fails the
 * first send with ECONNREFUSED, inside open()).
 *
 * Each connection leaves the epoll set before its fd is closed (a close alone would not
 * remove it while a spawn in the thread pool, between its clone and exec, holds a copy of
 * the fd), and the epoll data carries
 * the fd and a generation: an event for a closed connection whose fd number was taken again
 * is never delivered to the new one. There are no timers here: the caller's deadline closes
 * the connection. The poll handle keeps the event loop alive only while a connection is open.
 */
import { c, errno, watchReadable, type FdWatch } from './libc.ts';
import { SysError, errnoCode, toError } from './errors.ts';

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const SO_LINGER = 13;
const IPPROTO_TCP = 6;
const TCP_QUICKACK = 12;
/** TCP_QUICKACK's value for a probe that sends a request (a native int). */
const QUICKACK_OFF = Buffer.alloc(4);
const MSG_DONTWAIT = 0x40;
/** No SIGPIPE for a send to a closed peer (Node ignores it, but a child's spawn resets it: never rely on that). */
const MSG_NOSIGNAL = 0x4000;
const EPOLL_CLOEXEC = 0o2000000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;
const EPOLLIN = 0x1;
const EPOLLOUT = 0x4;
const EINTR = 4;
const EAGAIN = 11;
const EBADF = 9;
const EBUSY = 16;
const EINPROGRESS = 115;
const EALREADY = 114;
const EISCONN = 106;
/** struct epoll_event: packed on x86_64 (u32 events @0, u64 data @4); naturally aligned elsewhere. */
const EVENT_SIZE = process.arch === 'x64' ? 12 : 16;
const DATA_OFFSET = process.arch === 'x64' ? 4 : 8;
/** Events taken per wake: bounds the buffer and the time spent before other events get their turn. */
export const MAX_EVENTS_PER_WAKE = 256;
/** The shared receive buffer: a probe judges the first bytes of an answer. */
export const READ_BYTES = 16 * 1024;

/** An IP address and port as the kernel takes it (a sockaddr_in or sockaddr_in6). */
export interface TcpAddress {
  readonly family: typeof AF_INET | typeof AF_INET6;
  readonly sockaddr: Buffer;
}

/**
 * `host` (an IPv4 or IPv6 address, not a name) and `port` as a sockaddr; undefined if
 * `host` is not an address literal (a name: the caller resolves it).
 */
export function tcpAddress(host: string, port: number): TcpAddress | undefined {
  const v6 = host.includes(':');
  const sockaddr = Buffer.alloc(v6 ? 28 : 16);
  // sockaddr_in: family u16 @0, port (network order) @2, address @4; sockaddr_in6: address @8.
  if (c.inet_pton(v6 ? AF_INET6 : AF_INET, host, sockaddr.subarray(v6 ? 8 : 4)) !== 1) return undefined;
  sockaddr.writeUInt16LE(v6 ? AF_INET6 : AF_INET, 0);
  sockaddr.writeUInt16BE(port, 2);
  return { family: v6 ? AF_INET6 : AF_INET, sockaddr };
}

/** What a connection tells its owner; each is called at most once except onData, and none after close(). */
export interface TcpProbeClient {
  /** A connection opened without a request is up (with a request, the answer is what tells). */
  onConnected(): void;
  /** Bytes received: a view of a shared buffer, valid only during the call (copy what you keep). */
  onData(bytes: Buffer): void;
  /** The peer closed its side; the connection is closed already. */
  onEnd(): void;
  /** The connection failed (`connect`, `write` or `read`, and the errno name); it is closed already. */
  onFailed(syscall: string, code: string): void;
}

/** One open connection; close() it when done (idempotent, safe inside its callbacks). */
export interface TcpProbeConnection {
  close(): void;
  /**
   * Another request on this connection, once the last answer is in (HTTP keep-alive): its
   * answer comes through the same client. Throws SysError if the connection is closed, or
   * the request cannot be written at once.
   */
  send(request: Buffer): void;
}

/** How a TcpProbes is set up. */
export interface TcpProbesOptions {
  /** Close with SO_LINGER 0 (a reset, no FIN exchange, no TIME_WAIT); default false. */
  reset?: boolean;
  /**
   * A connection that sends a request acknowledges the server's SYN-ACK with that request
   * rather than with an ACK of its own (TCP_QUICKACK 0 before connect): two segments of ten
   * fewer per HTTP attempt, for the server too. Default true (over io_uring: where the kernel
   * sets socket options there, 6.7 on); false never does.
   */
  mergeHandshakeAck?: boolean;
  /** Called with what a client's callback threw (its connection is closed); default: rethrown in a microtask. */
  onError?: (err: Error) => void;
}

type Phase = 'connecting' | 'reading' | 'quiet' | 'closed';

/** One connection's state. */
class Connection implements TcpProbeConnection {
  phase: Phase = 'connecting';
  /** Bytes of the request sent so far. */
  sent = 0;
  readonly owner: TcpProbes;
  readonly fd: number;
  /** Written into the epoll data beside the fd: tells this connection's events from a later one's on the same fd number. */
  readonly generation: number;
  request: Buffer | undefined;
  readonly client: TcpProbeClient;

  constructor(owner: TcpProbes, fd: number, generation: number, request: Buffer | undefined, client: TcpProbeClient) {
    this.owner = owner;
    this.fd = fd;
    this.generation = generation;
    this.request = request;
    this.client = client;
  }

  close(): void {
    this.owner.release(this);
  }

  send(request: Buffer): void {
    this.owner.resend(this, request);
  }
}

/** A set of probe connections sharing one epoll set and one receive buffer (see the file's header). */
export class TcpProbes {
  #epfd = -1;
  #watch: FdWatch | undefined;
  /** Open connections by fd. */
  readonly #byFd = new Map<number, Connection>();
  #generation = 0;
  readonly #events = Buffer.alloc(EVENT_SIZE * MAX_EVENTS_PER_WAKE);
  /** One epoll_event, written for each epoll_ctl. */
  readonly #event = Buffer.alloc(EVENT_SIZE);
  readonly #buffer = Buffer.allocUnsafe(READ_BYTES);
  readonly #int = Buffer.alloc(4);
  readonly #intLength = Buffer.alloc(4);
  readonly #linger: Buffer | undefined;
  readonly #mergeHandshakeAck: boolean;
  readonly #onError: (err: Error) => void;

  constructor(opts: TcpProbesOptions = {}) {
    // struct linger: l_onoff int, l_linger int; on with 0 s.
    this.#linger = opts.reset === true ? Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]) : undefined;
    this.#mergeHandshakeAck = opts.mergeHandshakeAck !== false;
    this.#onError = opts.onError ?? ((err) => queueMicrotask(() => { throw err; }));
  }

  /** Connections open now. */
  get size(): number {
    return this.#byFd.size;
  }

  /**
   * Connects to `address` and, once up, sends `request` (if any) and reads the answer until
   * the owner closes or the peer does. Throws SysError (the fd closed first) if it fails at
   * once: `socket` (EMFILE…) or `connect` (ECONNREFUSED on loopback, ENETUNREACH…).
   */
  open(address: TcpAddress, request: Buffer | undefined, client: TcpProbeClient): TcpProbeConnection {
    this.#ensureSet();
    const fd = c.socket(address.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new SysError('socket', errno());
    this.#generation = (this.#generation + 1) >>> 0;
    const conn = new Connection(this, fd, this.#generation, request, client);
    let failure: SysError | undefined;
    try {
      failure = this.#start(conn, address);
    } catch (err) {
      failure = err instanceof SysError ? err : new SysError('connect', 0, undefined, toError(err).message);
    }
    if (failure !== undefined) {
      if (this.#byFd.get(fd) === conn) this.release(conn);
      else c.close(fd);
      throw failure;
    }
    return conn;
  }

  /** connect(), the optimistic send, and the connection into the set; a failure at once is returned. */
  #start(conn: Connection, address: TcpAddress): SysError | undefined {
    const { fd } = conn;
    if (this.#linger !== undefined && c.setsockopt(fd, SOL_SOCKET, SO_LINGER, this.#linger, 8) !== 0) return new SysError('setsockopt', errno());
    if (this.#mergeHandshakeAck && conn.request !== undefined && c.setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, QUICKACK_OFF, 4) !== 0) return new SysError('setsockopt', errno());
    if (c.connect(fd, address.sockaddr, address.sockaddr.length) !== 0) {
      const e = errno();
      if (e !== EINPROGRESS && e !== EINTR) return new SysError('connect', e);
    }
    let events = EPOLLOUT;
    if (conn.request !== undefined) {
      const sent = this.#send(conn);
      if (sent < 0) return new SysError('connect', -sent);
      if (sent > 0) events = EPOLLIN;
    } else {
      // A second connect() says where the first is: 0 or EISCONN up, EALREADY still going.
      const again = c.connect(fd, address.sockaddr, address.sockaddr.length) === 0 ? EISCONN : errno();
      if (again === EISCONN) events = 0;
      else if (again !== EALREADY && again !== EINPROGRESS) return new SysError('connect', again);
    }
    this.#byFd.set(fd, conn);
    if (this.#byFd.size === 1) this.#watch!.setRef(true);
    if (events === 0) {
      // Up already: told on the next microtask (never inside open()), unless closed by then.
      conn.phase = 'quiet';
      queueMicrotask(() => { if (conn.phase === 'quiet') this.#call(conn, () => conn.client.onConnected()); });
      return undefined;
    }
    if (events === EPOLLIN) conn.phase = 'reading';
    if (!this.#ctl(EPOLL_CTL_ADD, conn, events)) return new SysError('epoll_ctl', errno());
    return undefined;
  }

  /**
   * Sends what is left of the request: 1 when all of it is sent, 0 if the socket cannot
   * take it yet (connecting, or full), -errno on failure.
   */
  #send(conn: Connection): number {
    const request = conn.request!;
    while (conn.sent < request.length) {
      const n = c.send(conn.fd, conn.sent === 0 ? request : request.subarray(conn.sent), request.length - conn.sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        return e === EAGAIN ? 0 : -e;
      }
      conn.sent += n;
    }
    return 1;
  }

  /** A further request on an open connection (its socket stays in the set, readable). Called through the connection's send(). */
  resend(conn: Connection, request: Buffer): void {
    if (conn.phase !== 'reading') throw new SysError('write', conn.phase === 'closed' ? EBADF : EBUSY);
    conn.request = request;
    conn.sent = 0;
    const sent = this.#send(conn);
    if (sent < 0) throw new SysError('write', -sent);
    // The socket buffer is full (hardly, for one small request): the rest goes once it is writable.
    if (sent === 0) {
      conn.phase = 'connecting';
      if (!this.#ctl(EPOLL_CTL_MOD, conn, EPOLLOUT)) throw new SysError('epoll_ctl', errno());
    }
  }

  /** Closes a connection (out of the set first); idempotent. Called through the connection's close(). */
  release(conn: Connection): void {
    if (conn.phase === 'closed') return;
    const registered = conn.phase !== 'quiet';
    conn.phase = 'closed';
    if (this.#byFd.get(conn.fd) !== conn) return; // never entered: open() closes its fd itself
    this.#byFd.delete(conn.fd);
    if (registered) this.#ctl(EPOLL_CTL_DEL, conn, 0);
    c.close(conn.fd);
    if (this.#byFd.size === 0) this.#watch?.setRef(false);
  }

  /** Closes every connection and the epoll set (their clients are not told). */
  shutdown(): void {
    for (const conn of [...this.#byFd.values()]) this.release(conn);
    this.#watch?.close();
    this.#watch = undefined;
    if (this.#epfd >= 0) c.close(this.#epfd);
    this.#epfd = -1;
  }

  /** The epoll set and its watch, made on the first open(). */
  #ensureSet(): void {
    if (this.#epfd >= 0) return;
    const epfd = c.epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) throw new SysError('epoll_create1', errno());
    try {
      this.#watch = watchReadable(epfd, this.#onReady);
    } catch (err) {
      c.close(epfd);
      throw err;
    }
    this.#watch.setRef(false);
    this.#epfd = epfd;
  }

  #ctl(op: number, conn: Connection, events: number): boolean {
    const ev = this.#event;
    ev.writeUInt32LE(events, 0);
    ev.writeUInt32LE(conn.fd, DATA_OFFSET);
    ev.writeUInt32LE(conn.generation, DATA_OFFSET + 4);
    return c.epoll_ctl(this.#epfd, op, conn.fd, ev) === 0;
  }

  /** The epoll set is readable: some connections are ready. */
  readonly #onReady = (status: number): void => {
    if (this.#epfd < 0) return;
    if (status < 0) return this.#broken('uv_poll', -status);
    const n = c.epoll_wait(this.#epfd, this.#events, MAX_EVENTS_PER_WAKE, 0);
    if (n < 0) {
      const e = errno();
      if (e !== EINTR) this.#broken('epoll_wait', e);
      return;
    }
    const events = this.#events;
    for (let i = 0; i < n; i++) {
      const at = i * EVENT_SIZE;
      const conn = this.#byFd.get(events.readUInt32LE(at + DATA_OFFSET));
      // Closed by an earlier event of this wake, or an fd number taken again since.
      if (conn === undefined || conn.generation !== events.readUInt32LE(at + DATA_OFFSET + 4)) continue;
      if (conn.phase === 'connecting') this.#writable(conn);
      else if (conn.phase === 'reading') this.#readable(conn);
    }
  };

  /** Connecting and now writable: up (SO_ERROR 0) or failed; the rest of the request goes. */
  #writable(conn: Connection): void {
    this.#intLength.writeUInt32LE(4);
    if (c.getsockopt(conn.fd, SOL_SOCKET, SO_ERROR, this.#int, this.#intLength) !== 0) return this.#fail(conn, 'connect', errno());
    const err = this.#int.readInt32LE(0);
    if (err !== 0) return this.#fail(conn, 'connect', err);
    if (conn.request === undefined) {
      this.#ctl(EPOLL_CTL_DEL, conn, 0);
      conn.phase = 'quiet';
      return this.#call(conn, () => conn.client.onConnected());
    }
    const sent = this.#send(conn);
    if (sent < 0) return this.#fail(conn, 'write', -sent);
    if (sent === 0) return; // the socket buffer is full: writable again later
    conn.phase = 'reading';
    if (!this.#ctl(EPOLL_CTL_MOD, conn, EPOLLIN)) this.#fail(conn, 'epoll_ctl', errno());
  }

  /** Readable: one recv into the shared buffer (more on the next wake while it stays readable). */
  #readable(conn: Connection): void {
    const n = c.recv(conn.fd, this.#buffer, READ_BYTES, MSG_DONTWAIT);
    if (n > 0) return this.#call(conn, () => conn.client.onData(this.#buffer.subarray(0, n)));
    if (n === 0) {
      this.release(conn);
      return this.#call(conn, () => conn.client.onEnd(), true);
    }
    const e = errno();
    if (e !== EAGAIN && e !== EINTR) this.#fail(conn, 'read', e);
  }

  /**
   * The set cannot be watched or read: no connection would ever be told anything, so each
   * fails now with that error (its owner learns it), then onError hears it once.
   */
  #broken(syscall: string, e: number): void {
    for (const conn of [...this.#byFd.values()]) this.#fail(conn, syscall, e);
    this.#onError(new SysError(syscall, e, 'tcp probes'));
  }

  #fail(conn: Connection, syscall: string, e: number): void {
    this.release(conn);
    this.#call(conn, () => conn.client.onFailed(syscall, errnoCode(e)), true);
  }

  /** A client callback; what it throws closes its connection and goes to onError, never into the event loop. */
  #call(conn: Connection, fn: () => void, closed = false): void {
    if (!closed && conn.phase === 'closed') return;
    try {
      fn();
    } catch (err) {
      this.release(conn);
      this.#onError(toError(err));
    }
  }
}
