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
 * runner gives); `setenv` (optional, a t6 addition) is laid over the base environment —
 * t6-rc sends `env:null, setenv:["RC_NAME=name"]`. The scanner spawns argv[0] (searched in
 * PATH when it has no slash) as its own child, in a new session, stdin /dev/null, stdout
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
 *   {"scanned":true,"supervised":["name"…]}
 *
 * One reply instead of one event FIFO per new service to learn that its supervisor runs.
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
 * `spawn-failed`; the text is for people.
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
 */
import fs from 'node:fs';
import net from 'node:net';
import { errorCode, strerror, bugText } from '../sys/errors.ts';
import { currentEnv, type SpawnOptions } from '../sys/spawn.ts';
import { SIGNALS } from '../sys/signals.ts';
import {
  MAX_REQUEST, isScanRequest, parseControlRequest, parseRequest, requestId,
  type ControlOutcome, type ControlRequest, type Refusal, type RefusalReason, type RunRequest,
} from './runner-protocol.ts';

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
}

/** `base` with `over` laid on top (same names replaced). */
function mergeEnv(base: readonly string[], over: readonly string[]): string[] {
  if (over.length === 0) return [...base];
  const names = new Set(over.map((e) => e.slice(0, e.indexOf('='))));
  return [...base.filter((e) => !names.has(e.slice(0, e.indexOf('=')))), ...over];
}

/** The runner's socket server. */
export class OneshotRunner {
  readonly path: string;
  #server: net.Server;
  #host: RunnerHost;

  private constructor(socketPath: string, host: RunnerHost) {
    this.path = socketPath;
    this.#host = host;
    this.#server = net.createServer({ allowHalfOpen: true }, (sock) => {
      try {
        this.#serve(sock);
      } catch (err) {
        host.report('error', `internal error in the oneshot runner: ${bugText(err)}`);
        sock.destroy();
      }
    });
    this.#server.on('error', (err) => host.report('error', `${socketPath}: ${strerror(err)}`));
  }

  /** Listens on `socketPath` (a stale socket there is removed first). Throws if it cannot. */
  /** stdin /dev/null; stdout and stderr the host's output if it has one. */
  #fds(): Map<number, 'null' | number> {
    const out = this.#host.output?.();
    return out === undefined ? new Map([[0, 'null']]) : new Map<number, 'null' | number>([[0, 'null'], [1, out], [2, out]]);
  }

  static listen(socketPath: string, host: RunnerHost): OneshotRunner {
    try {
      if (fs.lstatSync(socketPath).isSocket()) fs.unlinkSync(socketPath);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
    }
    const runner = new OneshotRunner(socketPath, host);
    // The directory is 0700; the socket is made 0600 too, so it stays root-only even if
    // someone loosens the directory.
    const mask = process.umask(0o177);
    try {
      runner.#server.listen(socketPath);
    } finally {
      process.umask(mask);
    }
    return runner;
  }

  /** Stops listening and removes the socket; running processes go on and are still reaped. */
  close(): void {
    this.#server.close();
    try { fs.unlinkSync(this.path); } catch { /* gone already */ }
  }

  #serve(sock: net.Socket): void {
    let buf = '';
    // 'first' until a line arrives; then 'single' (one request, the connection ends with
    // its answer) or 'session' (the first request had an id).
    let mode: 'first' | 'single' | 'session' = 'first';
    let gone = false;
    let clientDone = false;
    let open = 0; // session requests not yet answered for good
    const cancels = new Set<() => void>();
    let corked = false;
    const write = (obj: object): void => {
      if (gone || sock.destroyed) return;
      // Answers made in one go (a reap that ends many children) leave in one write.
      if (!corked) {
        corked = true;
        sock.cork();
        process.nextTick(() => { corked = false; sock.uncork(); });
      }
      sock.write(`${JSON.stringify(obj)}\n`);
    };
    const stop = (why: string): void => {
      write({ error: why, reason: 'bad-request' });
      mode = 'single';
      sock.end();
    };
    sock.setEncoding('utf8');
    sock.on('error', () => { gone = true; });
    sock.on('close', () => {
      gone = true;
      // A client gone: stop waiting on its behalf (what it asked for is done, and oneshots run on).
      for (const cancel of cancels) cancel();
      cancels.clear();
    });
    sock.on('data', (chunk: string) => {
      if (mode === 'single') return; // one request per connection: the rest is dropped
      buf += chunk;
      for (;;) {
        const nl = buf.indexOf('\n');
        if (nl < 0 ? buf.length > MAX_REQUEST : nl > MAX_REQUEST) { stop(`request longer than ${MAX_REQUEST} bytes`); return; }
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const id = requestId(line);
        if (mode === 'first' && id === undefined) {
          mode = 'single';
          this.#handle(line, cancels, (obj, last) => {
            write(obj);
            if (last) sock.end();
          });
          return;
        }
        if (id === undefined) { stop('every request of a session needs an id'); return; }
        mode = 'session';
        open++;
        this.#handle(line, cancels, (obj, last) => {
          write({ id, ...obj });
          if (!last) return;
          open--;
          if (clientDone && open === 0) sock.end();
        });
      }
    });
    sock.on('end', () => {
      clientDone = true;
      if (mode === 'first') stop(buf === '' ? 'empty request' : 'incomplete request (no newline)');
      else if (mode === 'session' && open === 0) sock.end();
    });
  }

  /** One request line; `reply(obj, last)`: `last` is its final answer (an error is one). */
  #handle(line: string, cancels: Set<() => void>, reply: (obj: object, last: boolean) => void): void {
    const refuse = (why: string, reason: RefusalReason = 'bad-request'): void => reply({ error: why, reason }, true);
    if (/^\s*\{\s*"id"\s*:\s*\d+\s*\}\s*$/.test(line)) { reply({ session: true }, true); return; }
    if (isScanRequest(line)) {
      if (this.#host.scan === undefined) { refuse('scan requests are not served here', 'not-served'); return; }
      reply({ scanned: true, supervised: this.#host.scan() }, true);
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
    this.#run(req, reply);
  }

  #run(req: RunRequest, reply: (obj: object, end: boolean) => void): void {
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
      reply(timedOut ? { wstat, timedOut } : { wstat }, true);
    };
    const started = (p: number): void => {
      pid = p;
      announced = true;
      reply({ pid }, false);
      if (early !== undefined) { exited(early); return; }
      if (req.timeoutMs > 0) {
        // The oneshot leads a new session, so its process group is -pid: whatever it
        // started goes too. The timers end when the oneshot is reaped, while its pid still
        // names its group.
        term = setTimeout(() => {
          timedOut = true;
          this.#host.kill(-pid, SIGNALS.TERM);
          kill = setTimeout(() => this.#host.kill(-pid, SIGNALS.KILL), KILL_GRACE_MS);
        }, req.timeoutMs);
      }
    };
    const failed = (err: unknown): void => reply({ error: `unable to spawn ${req.argv[0]}: ${strerror(err)}`, reason: 'spawn-failed' }, true);
    const opts: SpawnOptions = {
      path: req.argv[0]!,
      argv: req.argv,
      cwd: req.cwd,
      env: mergeEnv(req.env ?? currentEnv(), req.setenv),
      fds: this.#fds(),
      newSession: true,
      searchPath: true,
    };
    if (this.#host.spawnAsync !== undefined) {
      this.#host.spawnAsync(opts, exited).then(started, failed);
      return;
    }
    try {
      started(this.#host.spawn(opts, exited));
    } catch (err) {
      failed(err);
    }
  }

}
