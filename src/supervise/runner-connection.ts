/**
 * One client connection of the oneshot runner (runner.ts has the protocol): it cuts what
 * the client sends into request lines, hands each to the runner, writes the replies, and
 * keeps everything it holds for the client bounded, whatever the client does.
 *
 * - Replies the client does not read stop the reading of its requests: past
 *   OUTPUT_HIGH_WATER bytes of replies waiting, the socket is paused (the client's own
 *   writes then block in the kernel) and read again on 'drain'. A client that leaves its
 *   replies unread for BLOCKED_MS, or lets more than MAX_PENDING_OUTPUT bytes pile up (the
 *   late answers of requests already under way), is dropped, with a warning that says why.
 * - A session has at most MAX_OPEN_PER_CLIENT requests under way; reading waits below it.
 * - A request waiting for a oneshot slot (runner.ts) stops the reading too: a connection
 *   holds at most one request that has not started.
 * - Input held is one request line (MAX_REQUEST) and what one read brought: reading is
 *   paused whenever a complete line waits.
 * - A connection with nothing under way that sends nothing for IDLE_MS is closed, so that
 *   idle clients cannot keep the runner's connection slots (runner.ts: MAX_CLIENTS).
 */
import type net from 'node:net';
import { MAX_REQUEST, requestId } from './runner-protocol.ts';

/** Reply bytes waiting for a client past which its requests are not read: it must read before it asks more. */
export const OUTPUT_HIGH_WATER = 64 * 1024;
/**
 * Reply bytes waiting for a client past which it is dropped. Only late answers of requests
 * already under way can pass the high-water mark; t6-rc reads as they come and holds far less.
 */
export const MAX_PENDING_OUTPUT = 1024 * 1024;
/**
 * How long a client may leave its replies unread, its requests unread in turn, before it is
 * dropped: the kernel's socket buffer (~200 KB) holds thousands of t6-rc's replies, so a
 * client that fills it and then the high-water mark, and reads nothing for this long, is stuck.
 */
export const BLOCKED_MS = 5_000;
/** Requests of one session under way at once: t6-rc sends every ready transition together, a thousand for a thousand-service change. */
export const MAX_OPEN_PER_CLIENT = 1024;
/** A connection with nothing under way that sends nothing for this long is closed (s6-sudod gives its client 30 s too). */
export const IDLE_MS = 30_000;

/** The bounds of one connection (tests make them small; runner.ts has the whole runner's). */
export interface ConnectionLimits {
  outputHighWater: number;
  maxPendingOutput: number;
  blockedMs: number;
  maxOpenPerClient: number;
  idleMs: number;
}

/** The bounds above. */
export const CONNECTION_LIMITS: ConnectionLimits = {
  outputHighWater: OUTPUT_HIGH_WATER,
  maxPendingOutput: MAX_PENDING_OUTPUT,
  blockedMs: BLOCKED_MS,
  maxOpenPerClient: MAX_OPEN_PER_CLIENT,
  idleMs: IDLE_MS,
};

/** What the runner gets with each request line. */
export interface RequestContext {
  /** Cancel functions of the waits under way for this connection (called when it goes). */
  readonly cancels: Set<() => void>;
  /** Answers the request; `last`: its final answer (an error is one). */
  reply(obj: object, last: boolean): void;
  /** The request must wait (a oneshot slot): nothing more is read until the function returned is called. */
  hold(): () => void;
}

/** What a connection needs from the runner. */
export interface ConnectionHost {
  /** Serves one request line. */
  handle(line: string, ctx: RequestContext): void;
  report(level: 'info' | 'warning' | 'error', message: string): void;
  /** The connection is closed: its slot is free. */
  closed(): void;
}

/** One client of the runner. */
export class RunnerConnection {
  readonly #sock: net.Socket;
  readonly #host: ConnectionHost;
  readonly #limits: ConnectionLimits;
  readonly #cancels = new Set<() => void>();
  #buf = '';
  // 'first' until a line arrives; then 'single' (one request, the connection ends with its
  // answer) or 'session' (the first request had an id).
  #mode: 'first' | 'single' | 'session' = 'first';
  #gone = false;
  #clientDone = false;
  /** Requests not yet answered for good. */
  #open = 0;
  /** Requests waiting for a oneshot slot (at most one: reading stops with it). */
  #held = 0;
  #paused = false;
  #pumping = false;
  #corked = false;
  #blockedTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(sock: net.Socket, host: ConnectionHost, limits: ConnectionLimits = CONNECTION_LIMITS) {
    this.#sock = sock;
    this.#host = host;
    this.#limits = limits;
    sock.setEncoding('utf8');
    sock.on('error', () => { this.#gone = true; });
    sock.on('close', () => this.#closed());
    sock.on('data', (chunk: string) => this.#onData(chunk));
    sock.on('end', () => this.#onEnd());
    sock.on('drain', () => {
      clearTimeout(this.#blockedTimer);
      this.#blockedTimer = undefined;
      this.#pump();
    });
    this.#updateIdle();
  }

  #onData(chunk: string): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    // One request per connection: what follows it is read (to see the client's end) and dropped.
    if (this.#mode !== 'single') this.#buf += chunk;
    this.#pump();
    this.#updateIdle();
  }

  #onEnd(): void {
    this.#clientDone = true;
    if (this.#mode === 'first') this.#stop(this.#buf === '' ? 'empty request' : 'incomplete request (no newline)');
    else if (this.#mode === 'session' && this.#open === 0) this.#sock.end();
  }

  /** Takes the complete lines held while nothing says wait; pauses the socket when something does. */
  #pump(): void {
    if (this.#pumping) return; // a reply made while a line is taken: the loop below goes on
    this.#pumping = true;
    try {
      for (;;) {
        if (this.#gone) return;
        if (this.#mode === 'single') { this.#flow(true); return; }
        if (this.#held > 0 || this.#open >= this.#limits.maxOpenPerClient) { this.#flow(false); return; }
        if (this.#sock.writableLength >= this.#limits.outputHighWater) {
          this.#flow(false);
          const { blockedMs } = this.#limits;
          this.#blockedTimer ??= setTimeout(() => this.#drop(`its replies went unread for ${blockedMs / 1000} seconds`), blockedMs);
          return;
        }
        const nl = this.#buf.indexOf('\n');
        if (nl < 0 ? this.#buf.length > MAX_REQUEST : nl > MAX_REQUEST) { this.#stop(`request longer than ${MAX_REQUEST} bytes`); return; }
        if (nl < 0) { this.#flow(true); return; }
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        this.#take(line);
      }
    } finally {
      this.#pumping = false;
    }
  }

  /** One request line: the first decides between one request and a session. */
  #take(line: string): void {
    const id = requestId(line);
    if (this.#mode === 'first' && id === undefined) {
      this.#mode = 'single';
      this.#buf = '';
      this.#open++;
      this.#host.handle(line, this.#context((obj, last) => {
        this.#write(obj);
        if (!last) return;
        this.#open--;
        this.#sock.end();
        this.#updateIdle();
      }));
      return;
    }
    if (id === undefined) { this.#stop('every request of a session needs an id'); return; }
    this.#mode = 'session';
    this.#open++;
    this.#host.handle(line, this.#context((obj, last) => {
      this.#write({ id, ...obj });
      if (!last) return;
      this.#open--;
      if (this.#clientDone && this.#open === 0) this.#sock.end();
      else this.#pump();
      this.#updateIdle();
    }));
  }

  #context(reply: (obj: object, last: boolean) => void): RequestContext {
    let answered = false;
    return {
      cancels: this.#cancels,
      reply: (obj, last) => {
        if (answered) return;
        if (last) answered = true;
        reply(obj, last);
      },
      hold: () => {
        this.#held++;
        let released = false;
        return () => {
          if (released) return;
          released = true;
          this.#held--;
          this.#pump();
        };
      },
    };
  }

  #write(obj: object): void {
    const sock = this.#sock;
    if (this.#gone || sock.destroyed || sock.writableEnded) return;
    // Answers made in one go (a reap that ends many children) leave in one write.
    if (!this.#corked) {
      this.#corked = true;
      sock.cork();
      process.nextTick(() => { this.#corked = false; sock.uncork(); });
    }
    sock.write(`${JSON.stringify(obj)}\n`);
    const { maxPendingOutput } = this.#limits;
    if (sock.writableLength > maxPendingOutput) this.#drop(`more than ${maxPendingOutput} bytes of its replies went unread`);
  }

  /** A bad request: its error, and the connection ends once what is under way is answered. */
  #stop(why: string): void {
    this.#write({ error: why, reason: 'bad-request' });
    this.#mode = 'single';
    this.#buf = '';
    this.#sock.end();
    this.#flow(true);
  }

  /** Drops the client (what it started goes on, its waits are cancelled on close). */
  #drop(why: string): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#host.report('warning', `oneshot runner: dropped a client: ${why}`);
    this.#sock.destroy();
  }

  #flow(on: boolean): void {
    if (on === !this.#paused) return;
    this.#paused = !on;
    if (on) this.#sock.resume();
    else this.#sock.pause();
  }

  /** The idle timer runs while nothing is under way, from the client's last byte. */
  #updateIdle(): void {
    if (this.#gone || this.#open > 0 || this.#held > 0) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
      return;
    }
    const { idleMs } = this.#limits;
    this.#idleTimer ??= setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#open > 0 || this.#held > 0) return;
      const seconds = idleMs / 1000;
      this.#drop(this.#sock.writableEnded ? `it kept its connection open ${seconds} seconds after its answer` : `it sent nothing for ${seconds} seconds`);
    }, idleMs);
  }

  #closed(): void {
    this.#gone = true;
    clearTimeout(this.#blockedTimer);
    clearTimeout(this.#idleTimer);
    this.#blockedTimer = undefined;
    this.#idleTimer = undefined;
    // A client gone: stop waiting on its behalf (what it asked for is done, and oneshots run on).
    for (const cancel of this.#cancels) cancel();
    this.#cancels.clear();
    this.#host.closed();
  }
}
