/**
 * Built-in probes (issue 14): a Prober runs one service's `probe/` (probe-spec.ts) while
 * its `run` is up, and tells its owner three things: the service is ready (the first
 * successful attempt), readiness was given up (`attempts` failures first), or the ready
 * service is unhealthy (`liveness` consecutive failures). Each of the three ends the
 * Prober, except readiness with liveness set, after which the same probe goes on.
 *
 * Attempts never overlap. One starts `interval` ms after the previous one started, or as
 * soon as it is over if it took longer (the first liveness attempt alone has a random phase); a `check` process is over when it has been reaped,
 * not when it was killed. An attempt that outlasts `timeout` fails: its socket is destroyed,
 * its check process group SIGKILLed.
 *
 * Cost is what shapes the code: a supervisor probing 1,000 services over HTTP each second
 * must spend under 5 % of a core on it. So a probe to an IP address goes over raw system
 * calls, never a node:net handle per connection: io_uring where the kernel allows it
 * (sys/uringprobe.ts: one chain of linked operations per connection, submitted and reaped
 * a tick at a time, a few system calls per tick for all probes), else one epoll set for all
 * probes (sys/tcpprobe.ts). Liveness attempts and their deadlines run on one coarse clock
 * (probe-clock.ts); readiness attempts, and probes with a short timeout, use precise timers
 * and io_uring's urgent lane, so a service's start is not delayed by the grid. A liveness
 * attempt over HTTP reuses its connection (`http-reuse`, probe-spec.ts): a request instead
 * of a handshake and a teardown. A new connection closes with a FIN, not a reset: SO_LINGER
 * 0 saves kernel time, but a server whose sockets have no error handler (a bare node:net one)
 * dies of the ECONNRESET, and a probe must never harm what it probes. Only the status line
 * is parsed, and the body only when asked; the request bytes are made once per Prober, and
 * responses are read into a shared buffer (the judge copies what it keeps). A host name
 * still goes through node:net, which resolves it and tries each address.
 *
 * The Prober never throws out of a callback: a failed connect, spawn or kill is a failed
 * attempt. The owner's callbacks are called last, once the Prober's state is settled, so an
 * owner may call stop() from inside them; after stop() nothing fires.
 */
import net from 'node:net';
import path from 'node:path';
import type { SpawnOptions } from '../sys/spawn.ts';
import { tcpAddress, type TcpAddress, type TcpProbeClient, type TcpProbeConnection } from '../sys/tcpprobe.ts';
import { SIGNALS } from '../sys/signals.ts';
import { strerror } from '../sys/errors.ts';
import { signalName } from '../s6/signals.ts';
import { HttpResponseCheck } from './probe-http.ts';
import { DEFAULT_HTTP_REUSE, type ProbeSpec } from './probe-spec.ts';
import { connections } from './probe-connections.ts';

/** What a Prober needs from its host (the Supervisor's; tests give their own). */
export interface ProberDeps {
  /** Starts a process; `onExit` gets its raw wait status once it is reaped. Throws. */
  spawn(opts: SpawnOptions, onExit: (wstat: number) => void): number;
  /** Sends a signal (a negative pid: a process group); no error if it is gone. */
  kill(pid: number, signal: number): void;
  /** Calls `fn` once, `ms` from now, unless cancelled. */
  setTimer(ms: number, fn: () => void): { cancel(): void };
  /** Monotonic milliseconds. */
  monotonicMs(): number;
  /** A timer that may fire up to a tick late, shared by many probes (probe-clock.ts); liveness attempts and their deadlines use it. Default: setTimer. */
  coarseTimer?(ms: number, fn: () => void): { cancel(): void };
  /**
   * How tcp and http probes connect: 'raw' (default: an IP address over io_uring,
   * sys/uringprobe.ts, where the kernel allows it and T6_PROBE_TRANSPORT is not `epoll`,
   * else over epoll, sys/tcpprobe.ts; a name over node:net), or one of them always
   * ('uring' falls back to epoll where io_uring cannot be had).
   */
  transport?: 'raw' | 'uring' | 'epoll' | 'node:net';
}

/** What a Prober tells its owner; each reason is phrased for a person and names the probe and its last error. */
export interface ProberEvents {
  /** The first successful attempt. */
  onReady(): void;
  /** `attempts` attempts failed before any succeeded; the Prober has ended. */
  onGaveUp(reason: string): void;
  /** After readiness, `liveness` consecutive attempts failed; the Prober has ended. */
  onUnhealthy(reason: string): void;
}

/** Where a Prober is: waiting for readiness, watching liveness, or ended (stopped, ready without liveness, gave up, unhealthy). */
export type ProberPhase = 'readiness' | 'liveness' | 'ended';

/**
 * One read buffer shared by every probe socket of the process. Safe because Node hands it
 * to the read callback synchronously and the next read into it comes only after that
 * callback has returned; the response judge copies whatever it keeps. It saves a Buffer
 * per read per probe.
 */
const READ_BUFFER = Buffer.allocUnsafe(16 * 1024);

/** A liveness probe with a timeout this short goes in io_uring's urgent lane: the tick lane may take two 50 ms ticks to answer. */
const URGENT_BELOW_TIMEOUT_MS = 500;

/** Runs one service's probe; it starts when constructed (after `start-delay`) and runs until it ends or stop(). */
export class Prober {
  readonly #spec: ProbeSpec;
  readonly #deps: ProberDeps;
  readonly #events: ProberEvents;
  #phase: ProberPhase = 'readiness';
  /** Failures so far: all of them before readiness, consecutive ones after. */
  #failures = 0;
  #lastError = '';
  /** Attempts begun so far: each attempt's number, which callbacks of earlier ones compare and do nothing. */
  #begun = 0;
  /** The number of the attempt under way; 0: none. */
  #attempt = 0;
  #attemptStart = 0;
  #next: { cancel(): void } | undefined;
  #deadline: { cancel(): void } | undefined;
  #socket: net.Socket | undefined;
  /** The raw connection of the attempt under way (an IP address target). */
  #conn: TcpProbeConnection | undefined;
  /** Keep-alive: the connection kept from the last liveness attempt, for the next one. */
  #idle: TcpProbeConnection | undefined;
  /** Attempts made on the connection under way (or kept), this one included. */
  #uses = 0;
  /** The attempt under way sent its request on a kept connection, and nothing has come back yet. */
  #reusedSilent = false;
  /** The target as a socket address, when it is an IP address (and transport is raw). */
  readonly #address: TcpAddress | undefined;
  /** The check process of the attempt under way, until it is reaped. */
  #pid = 0;
  #timedOut = false;
  /** The request that closes its connection (`Connection: close`); undefined for a tcp probe. */
  readonly #request: Buffer | undefined;
  /** The request that keeps its connection, when liveness attempts may reuse one (`http-reuse` above 1, an IP address). */
  readonly #keepAliveRequest: Buffer | undefined;
  /** Liveness attempts one connection carries. */
  readonly #reuse: number;
  readonly #http: HttpResponseCheck | undefined;
  readonly #check: SpawnOptions | undefined;
  /** net.connect's options, made once (net.Socket copies them; none are changed). */
  readonly #connectOptions: net.NetConnectOpts | undefined;
  /** Bound once: a new closure per attempt is what this module avoids. */
  readonly #run = (): void => this.#begin();
  /** The deadline of the attempt under way (cancelled when it settles, so it is always that one's). */
  readonly #onDeadline = (): void => this.#expire(this.#attempt);

  /** `alreadyReady`: the service is ready (a re-exec's next image): liveness from the start, or nothing without it. */
  constructor(spec: ProbeSpec, serviceDir: string, deps: ProberDeps, events: ProberEvents, alreadyReady = false) {
    this.#spec = spec;
    if (alreadyReady) this.#phase = spec.liveness === undefined ? 'ended' : 'liveness';
    this.#deps = deps;
    this.#events = events;
    const target = spec.target;
    if (target.kind !== 'check') {
      if (deps.transport !== 'node:net') this.#address = tcpAddress(target.host, target.port);
      this.#connectOptions = { host: target.host, port: target.port };
      if (target.kind === 'http') this.#connectOptions.onread = { buffer: READ_BUFFER, callback: this.#onRead };
    }
    // Reuse only over the raw transports (a host name goes through node:net, one connection per attempt).
    this.#reuse = target.kind === 'http' && this.#address !== undefined ? spec.httpReuse ?? DEFAULT_HTTP_REUSE : 1;
    if (target.kind === 'http') {
      const head = `GET ${target.path} HTTP/1.1\r\nHost: ${target.hostHeader}\r\nUser-Agent: t6-probe\r\nAccept: */*\r\n`;
      this.#request = Buffer.from(`${head}Connection: close\r\n\r\n`, 'latin1');
      if (this.#reuse > 1) this.#keepAliveRequest = Buffer.from(`${head}\r\n`, 'latin1');
      this.#http = new HttpResponseCheck(spec.httpStatus, spec.httpBody);
    }
    if (target.kind === 'check') {
      const dir = path.resolve(serviceDir);
      // Relative to the new cwd, as s6 runs ./run: the script's $0 is then ./probe/check too.
      this.#check = { path: './probe/check', argv: ['./probe/check'], cwd: dir, fds: new Map([[0, 'null']]) };
    }
    if (this.#phase !== 'ended') this.#next = this.#timer(alreadyReady ? spec.intervalMs : spec.startDelayMs, this.#run);
  }

  /** Where the Prober is. */
  get phase(): ProberPhase {
    return this.#phase;
  }

  /** Failures counted so far: every one before readiness, the consecutive ones after. */
  get failures(): number {
    return this.#failures;
  }

  /** The last attempt's error, '' if none failed yet. */
  get lastError(): string {
    return this.#lastError;
  }

  /** Ends the Prober: timers cancelled, socket destroyed, a running check SIGKILLed (still reaped by the host). Idempotent. */
  stop(): void {
    this.#phase = 'ended';
    this.#attempt = 0;
    this.#cleanup();
    this.#next?.cancel();
    this.#next = undefined;
  }

  /** Starts one attempt. */
  #begin(): void {
    this.#next = undefined;
    if (this.#phase === 'ended') return;
    const n = ++this.#begun;
    this.#attempt = n;
    this.#attemptStart = this.#deps.monotonicMs();
    this.#timedOut = false;
    try {
      this.#deadline = this.#timer(this.#spec.timeoutMs, this.#onDeadline);
      if (this.#check !== undefined) this.#spawnCheck(n, this.#check);
      else this.#connect();
    } catch (err) {
      this.#settle(n, `${this.#spec.target.kind === 'check' ? 'unable to run it' : 'unable to connect'}: ${strerror(err)}`);
    }
  }

  #connect(): void {
    if (this.#address !== undefined) return this.#open(this.#address);
    const socket = net.connect(this.#connectOptions!);
    this.#socket = socket;
    this.#http?.reset(false); // node:net: one connection per attempt, with Connection: close
    socket.on('connect', this.#onConnect);
    socket.on('error', this.#onError);
    if (this.#http !== undefined) socket.on('end', this.#onEnd);
  }

  /** A raw connection (the kept one if any); a failure at once (a refused loopback connection) settles the attempt now. */
  #open(address: TcpAddress): void {
    const kept = this.#idle;
    this.#idle = undefined;
    this.#reusedSilent = false;
    if (kept !== undefined) {
      const request = this.#requestFor(this.#uses + 1);
      this.#http?.reset(request !== this.#request);
      try {
        kept.send(request!);
        this.#conn = kept;
        this.#uses++;
        this.#reusedSilent = true;
        return;
      } catch {
        kept.close(); // gone meanwhile: a new connection, as for the first attempt
      }
    }
    this.#uses = 1;
    // A readiness attempt's connection is not kept (it is on the urgent lane): it says so.
    const request = this.#phase === 'liveness' ? this.#requestFor(1) : this.#request;
    this.#http?.reset(request !== this.#request);
    try {
      const transport = this.#deps.transport === 'node:net' ? 'raw' : this.#deps.transport ?? 'raw';
      const urgent = this.#phase === 'readiness' || this.#spec.timeoutMs < URGENT_BELOW_TIMEOUT_MS;
      this.#conn = connections(transport).open(address, request, this.#client, urgent);
    } catch (err) {
      this.#settle(this.#attempt, errorText(err as Error));
    }
  }

  /**
   * The raw connection's handlers, one object per Prober. Only the attempt under way's
   * connection calls them: it is closed when its attempt settles, and a closed connection
   * tells nothing more.
   */
  readonly #client: TcpProbeClient = {
    onConnected: () => { if (this.#request === undefined) this.#settle(this.#attempt, true); },
    onData: (bytes) => {
      if (this.#dropIdle()) return;
      this.#reusedSilent = false;
      this.#judge(bytes);
    },
    onEnd: () => { if (!this.#dropIdle() && !this.#retried()) this.#settle(this.#attempt, this.#http!.end()); },
    onFailed: (syscall, code) => { if (!this.#dropIdle() && !this.#retried()) this.#settle(this.#attempt, `${syscall} ${code}`); },
  };

  /** The request for a connection's `uses`th attempt: the Nth of `http-reuse` closes it. */
  #requestFor(uses: number): Buffer | undefined {
    return this.#keepAliveRequest !== undefined && uses < this.#reuse ? this.#keepAliveRequest : this.#request;
  }

  /** The kept connection spoke between attempts (the server closed it, most likely): dropped; true if it was that. */
  #dropIdle(): boolean {
    if (this.#attempt !== 0 || this.#idle === undefined) return false;
    this.#closeIdle();
    return true;
  }

  /** Closes the kept connection, if any. */
  #closeIdle(): void { this.#idle?.close(); this.#idle = undefined; }

  /**
   * A kept connection ended or failed before any answer: the server closed it as the request
   * went (its keep-alive timeout), which says nothing of its health. The attempt goes on, on
   * a new connection, once; true if so.
   */
  #retried(): boolean {
    if (!this.#reusedSilent || this.#attempt === 0) return false;
    this.#reusedSilent = false;
    this.#conn?.close();
    this.#conn = undefined;
    this.#open(this.#address!);
    return true;
  }

  // The socket handlers, bound once per Prober. Only the socket of the attempt under way
  // can call them: a socket is destroyed when its attempt settles, and a destroyed socket
  // emits neither connect, error, end nor data.
  readonly #onConnect = (): void => {
    if (this.#request === undefined) this.#settle(this.#attempt, true);
    else this.#socket?.write(this.#request);
  };

  readonly #onError = (err: Error): void => this.#settle(this.#attempt, errorText(err));

  readonly #onEnd = (): void => this.#settle(this.#attempt, this.#http!.end());

  /** Response bytes, in the shared buffer: judged at once, kept only as copies. */
  readonly #onRead = (nread: number, buf: Uint8Array): boolean => {
    if (this.#socket === undefined) return false;
    this.#judge(Buffer.from(buf.buffer, buf.byteOffset, nread));
    return true;
  };

  /** Response bytes (a shared buffer's): judged at once. */
  #judge(bytes: Buffer): void {
    let verdict: true | string | undefined;
    try {
      verdict = this.#http!.feed(bytes);
    } catch (err) {
      verdict = `unreadable response: ${strerror(err)}`;
    }
    if (verdict !== undefined) this.#settle(this.#attempt, verdict);
  }

  #spawnCheck(n: number, opts: SpawnOptions): void {
    let pid = 0; // 0 while spawn runs: an exit reported before it returns still finds its attempt
    pid = this.#deps.spawn(opts, (wstat) => this.#exited(n, pid, wstat));
    // Zero would be a bug of the host; a pid below 1 must never reach kill (-0 is our own group).
    if (pid > 0 && n === this.#attempt && this.#phase !== 'ended') this.#pid = pid;
  }

  #exited(n: number, pid: number, wstat: number): void {
    if (pid === this.#pid) this.#pid = 0;
    if (n !== this.#attempt) return;
    if (this.#timedOut) this.#settle(n, `timed out after ${this.#spec.timeoutMs} ms`);
    else this.#settle(n, wstat === 0 ? true : waitText(wstat));
  }

  /** The attempt outlasted `timeout`: sockets fail now; a check fails once it is reaped (SIGKILLed first). */
  #expire(n: number): void {
    this.#deadline = undefined;
    if (n === 0 || n !== this.#attempt) return;
    if (this.#pid > 0) {
      this.#timedOut = true;
      this.#killCheck();
      return;
    }
    this.#settle(n, `timed out after ${this.#spec.timeoutMs} ms`);
  }

  /** SIGKILL to the check's process group (it is a session leader: its children go too). */
  #killCheck(): void {
    try {
      this.#deps.kill(-this.#pid, SIGNALS.KILL);
    } catch {
      // Only a bug or EPERM could land here; its exit is still awaited, and the deadline is gone, so no retry loop.
    }
  }

  /** Releases what the attempt holds, except a check process, which is killed and awaited. */
  #cleanup(): void {
    this.#deadline?.cancel();
    this.#deadline = undefined;
    if (this.#socket !== undefined) {
      this.#socket.destroy();
      this.#socket = undefined;
    }
    this.#conn?.close();
    this.#conn = undefined;
    if (this.#phase === 'ended') this.#closeIdle();
    if (this.#pid > 0 && this.#phase === 'ended') this.#killCheck();
  }

  /** The attempt's outcome: true for success, else the error in words. */
  #settle(n: number, outcome: true | string): void {
    if (n === 0 || n !== this.#attempt || this.#phase === 'ended') return;
    this.#attempt = 0;
    // Kept for the next liveness attempt when it succeeded and the server keeps it. After a
    // failure the next attempt opens a new connection: whether the server still accepts one
    // is part of what the next answer says.
    if (outcome === true && this.#phase === 'liveness' && this.#http?.reusable === true && this.#conn !== undefined) {
      this.#idle = this.#conn;
      this.#conn = undefined;
    }
    this.#cleanup();
    if (outcome === true) this.#succeeded();
    else this.#failed(outcome);
    if ((this.#phase as ProberPhase) === 'ended') this.#closeIdle(); // unhealthy: nothing more to ask
  }

  #succeeded(): void {
    this.#failures = 0;
    if (this.#phase === 'liveness') return this.#schedule();
    if (this.#spec.liveness === undefined) this.#phase = 'ended';
    else {
      this.#phase = 'liveness';
      // Services that start together (at boot) become ready together: without a random
      // phase their liveness attempts would all fall due in the same turn of the loop, every
      // interval, for as long as they run. The first one comes between half an interval and
      // one and a half (one interval on average); from there each is `interval` after the last.
      this.#schedule(this.#spec.intervalMs * (Math.random() - 0.5));
    }
    this.#events.onReady();
  }

  #failed(error: string): void {
    this.#failures++;
    this.#lastError = error;
    const s = this.#spec;
    if (this.#phase === 'readiness' && s.attempts > 0 && this.#failures >= s.attempts) {
      this.#phase = 'ended';
      this.#events.onGaveUp(`readiness probe ${s.target.name} failed ${plural(this.#failures, 'attempt')}: ${error}`);
    } else if (this.#phase === 'liveness' && this.#failures >= s.liveness!) {
      this.#phase = 'ended';
      this.#events.onUnhealthy(`liveness probe ${s.target.name} failed ${plural(this.#failures, 'time')}: ${error}`);
    } else {
      this.#schedule();
    }
  }

  /** The next attempt, `interval` (+ `shift`) after this one started (at once if that is past). */
  #schedule(shift = 0): void {
    const wait = this.#attemptStart + this.#spec.intervalMs + shift - this.#deps.monotonicMs();
    this.#next = this.#timer(wait > 0 ? wait : 0, this.#run);
  }

  /** Readiness waits on precise timers (a service's start is not delayed); liveness on the shared coarse clock, if the host has one. */
  #timer(ms: number, fn: () => void): { cancel(): void } {
    const deps = this.#deps;
    return this.#phase === 'liveness' && deps.coarseTimer !== undefined ? deps.coarseTimer(ms, fn) : deps.setTimer(ms, fn);
  }
}

/** A socket error as `connect ECONNREFUSED`, `getaddrinfo ENOTFOUND`, or its message. */
function errorText(err: Error): string {
  const { code, syscall } = err as NodeJS.ErrnoException;
  if (code !== undefined && syscall !== undefined) return `${syscall} ${code}`;
  return code ?? err.message;
}

/** A check's wait status in words: `exit 3`, `killed by SIGTERM`. */
function waitText(wstat: number): string {
  const sig = wstat & 0x7f;
  return sig === 0 ? `exit ${(wstat >> 8) & 0xff}` : `killed by ${signalName(sig)}`;
}

/** `1 attempt`, `3 attempts`. */
function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
