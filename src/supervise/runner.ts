/**
 * The oneshot runner: s6-rc's `s6rc-oneshot-runner` service (an s6-ipcserver + s6-sudod
 * per connection) built into t6-svscan, as DESIGN decision 1 wants — no helper process.
 *
 * t6-svscan listens on the Unix stream socket `SCANDIR/.s6-svscan/run` (mode 0600 inside
 * the 0700 `.s6-svscan/`, so only root — the scanner's owner — can connect). One request
 * per connection (or many: see sessions below), one JSON line:
 *
 *   {"argv":["prog","arg"…],"cwd":"/abs","env":["K=V"…]|null,"setenv":["K=V"…],"timeoutMs":N}
 *
 * `env: null` means t6-svscan's own environment (the clean boot environment, as s6-rc's
 * runner gives), with execline's directory in PATH as Debian's runner has it (oneshot-env.ts);
 * `setenv` (optional, a t6 addition) is laid over the base environment —
 * t6-rc sends `env:null, setenv:["RC_NAME=name"]`. The scanner spawns argv[0] (searched in
 * the oneshot's PATH when it has no slash) as its own child, in a new session, stdin /dev/null, stdout
 * and stderr the catch-all log if there is one, else its own fds 1 and 2, reaped by its Reaper. Replies, one JSON line each:
 *
 *   {"pid":N}          once it runs
 *   {"wstat":N}        when it exits (raw wait status; "timedOut":true if it was killed for
 *                      running past timeoutMs: SIGTERM, then SIGKILL 1 s later, to its
 *                      process group — it leads its own session, so what it started
 *                      dies with it)
 *   {"error":"…"}      bad request or spawn failure; the connection is then closed
 *
 * One more request, for t6-rc-init and t6-rc-update: `{"scan":true}` makes t6-svscan scan
 * its directory at once (what `s6-svscanctl -a` asks) and answer when that scan is over,
 * every new supervisor set up, with the entries that have a supervisor (loggers as
 * `name/log`):
 *
 *   {"scanned":true,"supervised":["name"…],"follows":true}
 *
 * One reply instead of one event FIFO per new service to learn that its supervisor runs.
 * `follows`: that scan moved every supervisor whose directory was renamed to where it is
 * now (follow.ts); t6-rc-update may then remove what it left where they were. A t6-svscan
 * older than that does not say it.
 *
 * And one for t6-rc's longrun transitions (waiter.ts): `s6-svc -uwU DIR` inside t6-svscan.
 *
 *   {"svc":"u","dir":"/abs/servicedir","wait":"U","timeoutMs":N}
 *
 * sends the control bytes `svc` to the supervisor of `dir` and, with `wait` (u, U, d or
 * D), answers once that state is reached, or failed, or timeoutMs (0: none) passed:
 *
 *   {"reached":true,"failures":0,"timedOut":false}
 *   {"error":"…","reason":"not-supervised"}      or a bad request
 *
 * Every error reply carries a `reason` (RefusalReason) for programs: `bad-request`,
 * `not-served` (this runner does not serve that kind of request), `not-supervised`,
 * `spawn-failed`, `too-many-clients`; the text is for people.
 *
 * Sessions: a connection whose first request carries an integer `"id"` stays open for
 * more requests (every one with an id, any of the kinds above), served as they come; every
 * reply carries its request's id; a request that is only an id is answered
 * `{"id":N,"session":true}`. t6-rc opens with that one — a runner without sessions answers
 * it alone, without an id, and drops the rest, so nothing runs twice when t6-rc then falls
 * back — and sends all its transitions on the one session instead of a connection each. t6-svscan ends the session once the client has ended its side and
 * every request is answered.
 *
 * A client that disconnects does not stop the process: it runs to completion and is reaped
 * (a oneshot survives its caller's Ctrl-C, as under s6-rc). Bad input — garbage, a line
 * over 64 KiB, a half line at EOF — gets an error reply and a closed connection; nothing
 * a client sends can throw out of here.
 *
 * Bounds (pid 1 must not grow with what a client does): at most MAX_CLIENTS connections —
 * one more gets `{"error":"the oneshot runner has too many clients…",
 * "reason":"too-many-clients"}` and is closed;
 * at most MAX_RUNNING_ONESHOTS oneshots running and MAX_SPAWNING being spawned — a request
 * past them waits its turn (it is queued, not refused), and its connection is not read
 * meanwhile; and per connection (runner-connection.ts) a client that does not read its
 * replies is not read either, then dropped.
 */
import fs from 'node:fs';
import net from 'node:net';
import { strerror, bugText } from '../sys/errors.ts';
import { currentEnv, type SpawnOptions } from '../sys/spawn.ts';
import { SIGNALS } from '../sys/signals.ts';
import {
  isMetricsRequest, isScanRequest, parseControlRequest, parsePublishRequest, parseRequest, type RcEventFields,
  type ControlOutcome, type ControlRequest, type Refusal, type RefusalReason, type RunRequest,
} from './runner-protocol.ts';
import { withExeclinePath } from './oneshot-env.ts';
import { listenPrivate } from './private-socket.ts';
import { CONNECTION_LIMITS, RunnerConnection, type ConnectionLimits, type RequestContext } from './runner-connection.ts';

/** Grace between SIGTERM and SIGKILL for a oneshot past its timeout. */
export const KILL_GRACE_MS = 1000;

/** What the runner needs from the scanner. */
export interface RunnerHost {
  /** Spawns and watches the child; throws on failure. */
  spawn(opts: SpawnOptions, onExit: (wstat: number) => void): number;
  /** The same off the event loop (see spawnAsync), when the host has it. */
  spawnAsync?(opts: SpawnOptions, onExit: (wstat: number) => void): Promise<number>;
  /** kill(2): a negative pid names a process group. */
  kill(pid: number, signal: number): void;
  report(level: 'info' | 'warning' | 'error', message: string): void;
  /** Where a oneshot's stdout and stderr go (the catch-all log); undefined: the runner's own fds 1 and 2. */
  output?(): number | undefined;
  /** Scans the scan directory now; returns the entries that have a supervisor. Absent: scan requests are refused. */
  scan?(): string[];
  /**
   * Sends the request's control bytes and calls `done` when its wait ends (at once without
   * one); returns a cancel function, or why it cannot (not supervised). Absent: control
   * requests are refused.
   */
  control?(req: ControlRequest, done: (o: ControlOutcome) => void): (() => void) | Refusal;
  /** Puts a client's record (a t6-rc transition) into the event stream. Absent: event requests are refused. */
  publish?(event: RcEventFields): void;
  /** t6-svscan's own figures (scanner-metrics.ts). Absent: metrics requests are refused. */
  metrics?(): object;
}

/** `base` with `over` laid on top (same names replaced). */
function mergeEnv(base: readonly string[], over: readonly string[]): string[] {
  if (over.length === 0) return [...base];
  const names = new Set(over.map((e) => e.slice(0, e.indexOf('='))));
  return [...base.filter((e) => !names.has(e.slice(0, e.indexOf('=')))), ...over];
}

/**
 * Connections served at once; one more is told `too-many-clients` and closed. t6-rc holds
 * one per change (its lock runs changes one at a time), telinit one: 32 leaves room for
 * scripts, and keeps what every client may hold (runner-connection.ts) small all together.
 * (s6-ipcserverd serves 40 by default.)
 */
export const MAX_CLIENTS = 32;
/**
 * Oneshots running at once, every client together; more wait in turn, first come first
 * started. A change of a thousand services still runs all at once.
 */
export const MAX_RUNNING_ONESHOTS = 1024;
/**
 * Oneshot spawns under way at once (each holds its argv and environment until its child
 * has exec'd): the thread pool runs a few at a time anyway (sys/spawn.ts: 8).
 */
export const MAX_SPAWNING = 16;
/**
 * How long a refused connection stays open after its refusal line, read and dropped, for its
 * client to read why: a client that writes its request meanwhile would otherwise get EPIPE
 * and never see the line. A second is plenty for a client that reads at once.
 */
export const REFUSED_LINGER_MS = 1000;
/** Refused connections left open at once (for REFUSED_LINGER_MS); past them, one is closed as soon as its line is out. */
export const MAX_REFUSED_LINGERING = 32;

/** The bounds of a runner (tests make them small). */
export interface RunnerLimits extends ConnectionLimits {
  maxClients: number;
  maxRunningOneshots: number;
  maxSpawning: number;
}

/** The bounds above. */
export const RUNNER_LIMITS: RunnerLimits = {
  ...CONNECTION_LIMITS, maxClients: MAX_CLIENTS, maxRunningOneshots: MAX_RUNNING_ONESHOTS, maxSpawning: MAX_SPAWNING,
};

/** The runner's socket server. */
export class OneshotRunner {
  readonly path: string;
  #server: net.Server;
  #host: RunnerHost;
  #limits: RunnerLimits;
  #clients = 0;
  /** Connections refused since the runner was last below MAX_CLIENTS (reported once, then counted). */
  #refused = 0;
  /** Refused connections still open, for their client to read the refusal. */
  #lingering = 0;
  #running = 0;
  #spawning = 0;
  /** Requests waiting for a oneshot slot; at most one per connection (it reads nothing more meanwhile): ≤ MAX_CLIENTS. */
  #waiting: (() => void)[] = [];

  private constructor(socketPath: string, host: RunnerHost, limits: RunnerLimits) {
    this.path = socketPath;
    this.#host = host;
    this.#limits = limits;
    this.#server = net.createServer({ allowHalfOpen: true }, (sock) => {
      try {
        this.#accept(sock);
      } catch (err) {
        host.report('error', `internal error in the oneshot runner: ${bugText(err)}`);
        sock.destroy();
      }
    });
    this.#server.on('error', (err) => host.report('error', `${socketPath}: ${strerror(err)}`));
  }

  /** stdin /dev/null; stdout and stderr the host's output if it has one. */
  #fds(): Map<number, 'null' | number> {
    const out = this.#host.output?.();
    return out === undefined ? new Map([[0, 'null']]) : new Map<number, 'null' | number>([[0, 'null'], [1, out], [2, out]]);
  }

  /** Listens on `socketPath` (a stale socket there is removed first). Throws if it cannot. */
  static listen(socketPath: string, host: RunnerHost, limits: RunnerLimits = RUNNER_LIMITS): OneshotRunner {
    const runner = new OneshotRunner(socketPath, host, limits);
    listenPrivate(runner.#server, socketPath);
    return runner;
  }

  /** Resolves once the socket accepts connections; rejects if it cannot listen. */
  listening(): Promise<void> {
    if (this.#server.listening) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#server.once('listening', resolve);
      this.#server.once('error', reject);
    });
  }

  /**
   * A request from inside this process (pid 1's own t6-rc at boot and at shutdown): served
   * as a session's request is, with no socket between the two. Its replies come through
   * `reply`, the last with `last` set. It cannot be cancelled: its caller lives as long as
   * the runner.
   */
  request(line: string, reply: (obj: object, last: boolean) => void): void {
    let answered = false;
    const once = (obj: object, last: boolean): void => {
      if (answered) return;
      if (last) answered = true;
      reply(obj, last);
    };
    // A request that waits for a oneshot slot is queued by #handle; nothing to stop reading.
    this.#handle(line, { cancels: new Set(), reply: once, hold: () => () => {} });
  }

  /** Stops listening and removes the socket; running processes go on and are still reaped. */
  close(): void {
    this.#server.close();
    try { fs.unlinkSync(this.path); } catch { /* gone already */ }
  }

  #accept(sock: net.Socket): void {
    if (this.#clients >= this.#limits.maxClients) { this.#refuse(sock); return; }
    this.#clients++;
    new RunnerConnection(sock, {
      handle: (line, ctx) => this.#handle(line, ctx),
      report: (level, message) => this.#host.report(level, message),
      closed: () => {
        this.#clients--;
        if (this.#refused === 0) return;
        this.#host.report('info', `oneshot runner: ${this.#refused} connections were refused while ${this.#limits.maxClients} clients were connected`);
        this.#refused = 0;
      },
    }, this.#limits);
  }

  /** One connection too many: the reason, in one line, and the connection closed. */
  #refuse(sock: net.Socket): void {
    const { maxClients } = this.#limits;
    if (this.#refused++ === 0) this.#host.report('warning', `oneshot runner: ${maxClients} clients connected; refusing more until one leaves`);
    sock.on('error', () => {});
    const refusal = { error: `the oneshot runner has too many clients (${maxClients} connected); try again later`, reason: 'too-many-clients' };
    const line = `${JSON.stringify(refusal)}\n`;
    if (this.#lingering >= MAX_REFUSED_LINGERING) { sock.end(line, () => sock.destroy()); return; }
    // Open until the client closes (it has read the line) or for REFUSED_LINGER_MS; what it sends is dropped.
    this.#lingering++;
    const timer = setTimeout(() => sock.destroy(), REFUSED_LINGER_MS);
    sock.on('close', () => { clearTimeout(timer); this.#lingering--; });
    sock.on('data', () => {});
    sock.end(line);
  }

  /** One request line, answered through `ctx.reply(obj, last)`: `last` is its final answer (an error is one). */
  #handle(line: string, ctx: RequestContext): void {
    const { cancels, reply } = ctx;
    const refuse = (why: string, reason: RefusalReason = 'bad-request'): void => reply({ error: why, reason }, true);
    if (/^\s*\{\s*"id"\s*:\s*\d+\s*\}\s*$/.test(line)) { reply({ session: true }, true); return; }
    if (isScanRequest(line)) {
      if (this.#host.scan === undefined) { refuse('scan requests are not served here', 'not-served'); return; }
      reply({ scanned: true, supervised: this.#host.scan(), follows: true }, true);
      return;
    }
    if (isMetricsRequest(line)) {
      const metrics = this.#host.metrics;
      if (metrics === undefined) { refuse('metrics requests are not served here', 'not-served'); return; }
      // The event loop's delay now: how long a callback queued at once waits for its turn.
      const asked = performance.now();
      // Taken before metrics() runs (it reads /proc/self/fd: a millisecond with thousands of fds), which is not the loop's delay.
      setImmediate(() => { const eventLoopDelayMs = performance.now() - asked; reply({ metrics: { ...metrics(), eventLoopDelayMs } }, true); });
      return;
    }
    const published = parsePublishRequest(line);
    if (typeof published === 'string') { refuse(published); return; }
    if (published !== undefined) {
      if (this.#host.publish === undefined) { refuse('event requests are not served here', 'not-served'); return; }
      this.#host.publish(published);
      reply({ published: true }, true);
      return;
    }
    const control = parseControlRequest(line);
    if (typeof control === 'string') { refuse(control); return; }
    if (control !== undefined) {
      if (this.#host.control === undefined) { refuse('control requests are not served here', 'not-served'); return; }
      let cancel: (() => void) | Refusal | undefined;
      cancel = this.#host.control(control, (o) => {
        if (typeof cancel === 'function') cancels.delete(cancel);
        reply(o, true);
      });
      if (typeof cancel === 'function') cancels.add(cancel);
      else refuse(cancel.message, cancel.reason);
      return;
    }
    const req = parseRequest(line);
    if (typeof req === 'string') { refuse(req); return; }
    if (this.#canStart()) { this.#start(req, reply); return; }
    // No slot: the request waits its turn, and its connection reads nothing more meanwhile.
    // It runs even if its client has gone by then, as one already running would.
    const release = ctx.hold();
    this.#waiting.push(() => { this.#start(req, reply); release(); });
  }

  #canStart(): boolean {
    return this.#running < this.#limits.maxRunningOneshots && this.#spawning < this.#limits.maxSpawning;
  }

  /** A slot was freed: the requests waiting start, in turn, while there is room. */
  #next(): void {
    while (this.#waiting.length > 0 && this.#canStart()) this.#waiting.shift()!();
  }

  #start(req: RunRequest, reply: (obj: object, last: boolean) => void): void {
    this.#running++;
    this.#spawning++;
    const child = this.#child(req.timeoutMs, reply);
    const prog = req.argv[0]!;
    const spawned = (): void => { this.#spawning--; this.#next(); };
    const failed = (err: unknown): void => {
      this.#spawning--;
      this.#running--;
      this.#next();
      reply({ error: `unable to spawn ${prog}: ${strerror(err)}`, reason: 'spawn-failed' }, true);
    };
    const opts: SpawnOptions = {
      path: prog,
      argv: req.argv,
      cwd: req.cwd,
      env: mergeEnv(req.env ?? withExeclinePath(currentEnv()), req.setenv),
      fds: this.#fds(),
      newSession: true,
      searchPath: true,
    };
    if (this.#host.spawnAsync !== undefined) {
      this.#host.spawnAsync(opts, child.exited).then((pid) => { spawned(); child.started(pid); }, failed);
      return;
    }
    let pid: number;
    try {
      pid = this.#host.spawn(opts, child.exited);
    } catch (err) {
      failed(err);
      return;
    }
    spawned();
    child.started(pid);
  }

  /**
   * What follows one oneshot once spawned: its pid, its timeout, its wait status. Made
   * apart from #start so that a running oneshot holds none of its request's strings.
   */
  #child(timeoutMs: number, reply: (obj: object, last: boolean) => void): { started(pid: number): void; exited(wstat: number): void } {
    let pid = 0;
    let term: NodeJS.Timeout | undefined;
    let kill: NodeJS.Timeout | undefined;
    let timedOut = false;
    // The pid is announced before the wait status, even for a child that died before its
    // pid came back from a spawn off the event loop.
    let announced = false;
    let early: number | undefined;
    const exited = (wstat: number): void => {
      if (!announced) { early = wstat; return; }
      clearTimeout(term);
      clearTimeout(kill);
      this.#running--;
      this.#next();
      reply(timedOut ? { wstat, timedOut } : { wstat }, true);
    };
    const started = (p: number): void => {
      pid = p;
      announced = true;
      reply({ pid }, false);
      if (early !== undefined) { exited(early); return; }
      if (timeoutMs > 0) {
        // The oneshot leads a new session, so its process group is -pid: whatever it
        // started goes too. The timers end when the oneshot is reaped, while its pid still
        // names its group.
        term = setTimeout(() => {
          timedOut = true;
          this.#host.kill(-pid, SIGNALS.TERM);
          kill = setTimeout(() => this.#host.kill(-pid, SIGNALS.KILL), KILL_GRACE_MS);
        }, timeoutMs);
      }
    };
    return { started, exited };
  }
}
