/**
 * The event stream's socket: `SCANDIR/.s6-svscan/events`, a Unix stream socket (0600 in
 * the 0700 `.s6-svscan/`: root only, as the control FIFOs). A subscriber connects and
 * sends one line:
 *
 *   {"since":N,"follow":true}     records numbered N and later still in the ring, then live ones
 *   {"since":null,"follow":true}  live records only
 *   {"since":0,"follow":false}    the whole ring, then the connection ends
 *
 * and gets a first line `{"stream":"t6-events","nextSeq":N,"oldestSeq":M}` (the numbers
 * now: a follower that lost the stream knows where to ask again from), then one JSON
 * record per line (events.ts). When `since` is older than the ring, a `lost` record
 * (reason "ring") says how many are gone.
 *
 * pid 1 never waits for a subscriber and never holds much for one: what the socket does not
 * take at once waits in a backlog of at most MAX_BACKLOG records; a subscriber that lets
 * it fill up gets a `lost` record (reason "slow": how many it missed from there; the ring
 * may still hold them, for a new subscription), its connection is ended,
 * and destroyed DROP_LINGER_MS later if it still has not read. At most MAX_SUBSCRIBERS at once.
 * A subscriber that sends nothing useful within REQUEST_TIMEOUT_MS, or more than
 * MAX_REQUEST bytes, gets an error line and is closed. Nothing a client sends can throw.
 */
import fs from 'node:fs';
import net from 'node:net';
import { strerror, bugText } from '../sys/errors.ts';
import type { EventLog, T6Event } from './events.ts';
import { parseJsonObject } from './runner-protocol.ts';
import { listenPrivate } from './private-socket.ts';

/** Subscribers at once. */
export const MAX_SUBSCRIBERS = 32;
/** Records waiting for one slow subscriber (twice the ring: a full replay fits). */
export const MAX_BACKLOG = 2048;
/** Bytes the socket may hold unsent before records wait in the backlog. */
export const HIGH_WATER = 64 * 1024;
/** How long a refused connection's error line waits for its client. */
export const LINGER_MS = 5_000;
/** How long a dropped subscriber's last lines (the lost record the last) wait for it to read them; its slot is taken meanwhile. */
export const DROP_LINGER_MS = 30_000;
/** The request line's size and deadline. */
export const MAX_REQUEST = 1024;
export const REQUEST_TIMEOUT_MS = 10_000;

/** The bounds (tests make them small). */
export interface EventServerLimits {
  maxSubscribers: number;
  maxBacklog: number;
  highWater: number;
  lingerMs: number;
  dropLingerMs: number;
  requestTimeoutMs: number;
}

/** The defaults above. */
export const EVENT_SERVER_LIMITS: EventServerLimits = {
  maxSubscribers: MAX_SUBSCRIBERS, maxBacklog: MAX_BACKLOG, highWater: HIGH_WATER, lingerMs: LINGER_MS, dropLingerMs: DROP_LINGER_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS,
};

/** A subscriber's request, checked. */
export interface SubscribeRequest {
  since: number | null;
  follow: boolean;
}

/** Parses a request line; returns it or what is wrong with it. */
export function parseSubscribe(line: string): SubscribeRequest | string {
  const r = parseJsonObject(line);
  if (typeof r === 'string') return r;
  const since = r.since ?? null;
  if (since !== null && !(typeof since === 'number' && Number.isSafeInteger(since) && since >= 0)) return 'since must be null or a non-negative integer';
  const follow = r.follow ?? true;
  if (typeof follow !== 'boolean') return 'follow must be true or false';
  return { since, follow };
}

/** How the server reports a problem. */
export type EventServerReport = (level: 'warning' | 'error', message: string) => void;

/** The event stream's server. */
export class EventServer {
  readonly path: string;
  readonly #server: net.Server;
  readonly #log: EventLog;
  readonly #limits: EventServerLimits;
  readonly #report: EventServerReport;
  #subscribers = 0;

  private constructor(socketPath: string, log: EventLog, report: EventServerReport, limits: EventServerLimits) {
    this.path = socketPath;
    this.#log = log;
    this.#limits = limits;
    this.#report = report;
    // Half-open allowed: a subscriber may end its side after its request and still read.
    this.#server = net.createServer({ allowHalfOpen: true }, (sock) => {
      try {
        this.#accept(sock);
      } catch (err) {
        report('error', `internal error in the event stream: ${bugText(err)}`);
        sock.destroy();
      }
    });
    this.#server.on('error', (err) => report('error', `${socketPath}: ${strerror(err)}`));
  }

  /** Listens on `socketPath` (a stale socket there is removed first), mode 0600. Throws if it cannot. */
  static listen(socketPath: string, log: EventLog, report: EventServerReport, limits = EVENT_SERVER_LIMITS): EventServer {
    const server = new EventServer(socketPath, log, report, limits);
    listenPrivate(server.#server, socketPath);
    return server;
  }

  /** Subscribers connected now. */
  get subscribers(): number { return this.#subscribers; }

  /** Stops listening and removes the socket; subscribers are disconnected. */
  close(): void {
    this.#server.close();
    try { fs.unlinkSync(this.path); } catch { /* gone already */ }
  }

  #accept(sock: net.Socket): void {
    sock.on('error', () => sock.destroy());
    if (this.#subscribers >= this.#limits.maxSubscribers) {
      sock.end(`${JSON.stringify({ error: `the event stream has too many subscribers (${this.#limits.maxSubscribers})` })}\n`);
      setTimeout(() => sock.destroy(), this.#limits.lingerMs).unref();
      return;
    }
    this.#subscribers++;
    sock.once('close', () => { this.#subscribers--; });
    let buf = '';
    const timer = setTimeout(() => refuse('no request'), this.#limits.requestTimeoutMs);
    const refuse = (message: string): void => {
      clearTimeout(timer);
      sock.removeAllListeners('data');
      sock.end(`${JSON.stringify({ error: message })}\n`);
      setTimeout(() => sock.destroy(), this.#limits.lingerMs).unref();
    };
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > MAX_REQUEST) refuse(`request longer than ${MAX_REQUEST} bytes`);
        return;
      }
      clearTimeout(timer);
      sock.removeAllListeners('data');
      sock.pause();
      const req = parseSubscribe(buf.slice(0, nl));
      if (typeof req === 'string') { refuse(req); return; }
      try {
        new Subscription(sock, this.#log, req, this.#limits);
      } catch (err) {
        // This runs on a socket event, outside #accept's guard: a bug here must not reach pid 1.
        this.#report('error', `internal error in the event stream: ${bugText(err)}`);
        sock.destroy();
      }
    });
    sock.on('end', () => { if (buf.indexOf('\n') < 0) refuse('no request'); });
  }
}

/**
 * One subscriber's feed: replay, then live records, with a bounded backlog. Records wait in
 * a queue and leave in one write per turn of the event loop (a change of a thousand
 * services publishes thousands in a few turns: one system call per record and subscriber
 * was most of what a subscriber cost pid 1), and only while the socket holds less than
 * `highWater` unsent; past `maxBacklog` waiting, the subscriber is dropped.
 */
class Subscription {
  readonly #sock: net.Socket;
  readonly #limits: EventServerLimits;
  readonly #queue: string[] = [];
  /** seq of the first record in the queue (for the lost record). */
  #queueFrom = 0;
  #flushing: NodeJS.Immediate | undefined;
  #unsubscribe: (() => void) | undefined;
  #follow: boolean;
  #ended = false;

  constructor(sock: net.Socket, log: EventLog, req: SubscribeRequest, limits: EventServerLimits) {
    this.#sock = sock;
    this.#limits = limits;
    this.#follow = req.follow;
    sock.on('drain', () => this.#flush());
    sock.on('close', () => this.#stop());
    // Data a subscriber sends after its request is not read: nothing to grow.
    this.#writeLine({ stream: 't6-events', nextSeq: log.nextSeq, oldestSeq: log.oldestSeq });
    if (req.since !== null) {
      const oldest = log.oldestSeq;
      // 0 asks for whatever is kept; a number asks for that record on, which may be gone.
      if (req.since > 0 && req.since < oldest) this.#writeLine(lostRecord(req.since, oldest - req.since, 'ring'));
      for (const e of log.since(req.since)) this.#send(e, `${JSON.stringify(e)}\n`);
    }
    if (req.follow) this.#unsubscribe = log.subscribe((e, line) => this.#send(e, line));
    this.#schedule();
  }

  #send(e: T6Event, line: string): void {
    if (this.#ended) return;
    if (this.#queue.length === 0) this.#queueFrom = e.seq;
    this.#queue.push(line);
    if (this.#queue.length > this.#limits.maxBacklog) { this.#drop(); return; }
    this.#schedule();
  }

  #schedule(): void {
    this.#flushing ??= setImmediate(() => { this.#flushing = undefined; this.#flush(); });
  }

  /** Hands the socket as many waiting lines as fit under highWater, in one write; ends a replay once all are out. */
  #flush(): void {
    if (this.#ended) return;
    const queue = this.#queue;
    const room = this.#limits.highWater - this.#sock.writableLength;
    if (queue.length > 0 && room > 0) {
      let n = 0;
      for (let bytes = 0; n < queue.length && (n === 0 || bytes + queue[n]!.length <= room); n++) bytes += queue[n]!.length;
      this.#sock.write(n === queue.length ? queue.join('') : queue.slice(0, n).join(''));
      queue.splice(0, n);
      this.#queueFrom += n;
    }
    // What is left goes on 'drain', which comes only after a write the socket could not take
    // at once. When the kernel took it all (nothing unsent), no 'drain' will come: next turn.
    if (queue.length > 0 && this.#sock.writableLength < this.#limits.highWater) this.#schedule();
    // A replay without follow ends once everything is out.
    if (queue.length === 0 && !this.#follow) this.#end();
  }

  /** Too slow: what waits is given up, the subscriber told how much, and the connection ended. */
  #drop(): void {
    const lost = this.#queue.length;
    this.#queue.length = 0;
    this.#writeLine(lostRecord(this.#queueFrom, lost, 'slow'));
    this.#end();
    const timer = setTimeout(() => this.#sock.destroy(), this.#limits.dropLingerMs);
    timer.unref();
    this.#sock.once('close', () => clearTimeout(timer));
  }

  #writeLine(obj: object): void { this.#sock.write(`${JSON.stringify(obj)}\n`); }

  #end(): void {
    this.#ended = true;
    clearImmediate(this.#flushing);
    this.#flushing = undefined;
    this.#stop();
    this.#sock.end();
  }

  #stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}

/** The record telling a subscriber that `lost` records from `seq` on did not reach it: gone from the ring, or not sent (too slow). */
function lostRecord(seq: number, lost: number, reason: 'ring' | 'slow'): Pick<T6Event, 'seq' | 'time' | 'kind' | 'lost' | 'reason'> {
  return { seq, time: new Date().toISOString(), kind: 'lost', lost, reason };
}
