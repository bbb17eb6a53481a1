/**
 * The oneshot runner: s6-rc's `s6rc-oneshot-runner` service (an s6-ipcserver + s6-sudod
 * per connection) built into t6-svscan, as DESIGN decision 1 wants — no helper process.
 *
 * t6-svscan listens on the Unix stream socket `SCANDIR/.s6-svscan/run` (mode 0600 inside
 * the 0700 `.s6-svscan/`, so only root — the scanner's owner — can connect). One request
 * per connection, one JSON line:
 *
 *   {"argv":["prog","arg"…],"cwd":"/abs","env":["K=V"…]|null,"setenv":["K=V"…],"timeoutMs":N}
 *
 * `env: null` means t6-svscan's own environment (the clean boot environment, as s6-rc's
 * runner gives); `setenv` (optional, a t6 addition) is laid over the base environment —
 * t6-rc sends `env:null, setenv:["RC_NAME=name"]`. The scanner spawns argv[0] (searched in
 * PATH when it has no slash) as its own child, in a new session, stdin /dev/null, stdout
 * and stderr its own fds 1 and 2, reaped by its Reaper. Replies, one JSON line each:
 *
 *   {"pid":N}          once it runs
 *   {"wstat":N}        when it exits (raw wait status; "timedOut":true if it was killed for
 *                      running past timeoutMs: SIGTERM, then SIGKILL 1 s later)
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
 * A client that disconnects does not stop the process: it runs to completion and is reaped
 * (a oneshot survives its caller's Ctrl-C, as under s6-rc). Bad input — garbage, a line
 * over 64 KiB, a half line at EOF — gets an error reply and a closed connection; nothing
 * a client sends can throw out of here.
 */
import fs from 'node:fs';
import net from 'node:net';
import { describeError, errorCode } from '../sys/errors.ts';
import { currentEnv, type SpawnOptions } from '../sys/spawn.ts';

/** The longest request line accepted. */
export const MAX_REQUEST = 64 * 1024;
/** Grace between SIGTERM and SIGKILL for a oneshot past its timeout. */
export const KILL_GRACE_MS = 1000;

/** A validated request. */
export interface RunRequest {
  argv: string[];
  cwd: string;
  env: string[] | null;
  setenv: string[];
  timeoutMs: number;
}

/** What the runner needs from the scanner. */
export interface RunnerHost {
  /** Spawns and watches the child; throws on failure. */
  spawn(opts: SpawnOptions, onExit: (wstat: number) => void): number;
  kill(pid: number, signal: number): void;
  report(level: 'info' | 'warning' | 'error', message: string): void;
  /** Scans the scan directory now; returns the entries that have a supervisor. Absent: scan requests are refused. */
  scan?(): string[];
}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string' && !s.includes('\0'));

/** Parses and checks one request line; returns the request or the reason it is refused. */
export function parseRequest(line: string): RunRequest | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'request is not valid JSON';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'request is not a JSON object';
  const r = v as Record<string, unknown>;
  if (!isStringList(r.argv) || r.argv.length === 0 || r.argv[0] === '') return 'argv must be a non-empty list of strings';
  if (typeof r.cwd !== 'string' || !r.cwd.startsWith('/') || r.cwd.includes('\0')) return 'cwd must be an absolute path';
  if (r.env !== null && !(isStringList(r.env) && r.env.every((e) => e.includes('=')))) return 'env must be null or a list of K=V strings';
  const setenv = r.setenv ?? [];
  if (!(isStringList(setenv) && setenv.every((e) => e.indexOf('=') > 0))) return 'setenv must be a list of K=V strings';
  const t = r.timeoutMs ?? 0;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 2 ** 31 - 1) return 'timeoutMs must be an integer between 0 and 2^31-1';
  return { argv: r.argv, cwd: r.cwd, env: r.env as string[] | null, setenv, timeoutMs: t };
}

/** Is this request line `{"scan":true}` (and nothing else)? */
export function isScanRequest(line: string): boolean {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return false;
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (v as Record<string, unknown>).scan === true && Object.keys(v).length === 1;
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
  /** Processes still running (their timers die with them). */
  #running = new Set<number>();

  private constructor(socketPath: string, host: RunnerHost) {
    this.path = socketPath;
    this.#host = host;
    this.#server = net.createServer({ allowHalfOpen: true }, (sock) => {
      try {
        this.#serve(sock);
      } catch (err) {
        host.report('error', `internal error in the oneshot runner: ${describeError(err)}`);
        sock.destroy();
      }
    });
    this.#server.on('error', (err) => host.report('error', `${socketPath}: ${describeError(err)}`));
  }

  /** Listens on `socketPath` (a stale socket there is removed first). Throws if it cannot. */
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

  /** How many oneshots are running. */
  get running(): number {
    return this.#running.size;
  }

  /** Stops listening and removes the socket; running processes go on and are still reaped. */
  close(): void {
    this.#server.close();
    try { fs.unlinkSync(this.path); } catch { /* gone already */ }
  }

  #serve(sock: net.Socket): void {
    let buf = '';
    let handled = false;
    let gone = false;
    const reply = (obj: object, end: boolean): void => {
      if (gone || sock.destroyed) return;
      sock.write(`${JSON.stringify(obj)}\n`);
      if (end) sock.end();
    };
    const refuse = (why: string): void => {
      handled = true;
      reply({ error: why }, true);
      sock.removeAllListeners('data');
      sock.resume(); // drain and drop anything else
    };
    sock.setEncoding('utf8');
    sock.on('error', () => { gone = true; });
    sock.on('close', () => { gone = true; });
    sock.on('data', (chunk: string) => {
      if (handled) return;
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > MAX_REQUEST) refuse(`request longer than ${MAX_REQUEST} bytes`);
        return;
      }
      if (nl > MAX_REQUEST) { refuse(`request longer than ${MAX_REQUEST} bytes`); return; }
      handled = true;
      const line = buf.slice(0, nl);
      buf = '';
      if (isScanRequest(line)) {
        if (this.#host.scan === undefined) { refuse('scan requests are not served here'); return; }
        reply({ scanned: true, supervised: this.#host.scan() }, true);
        return;
      }
      const req = parseRequest(line);
      if (typeof req === 'string') { refuse(req); return; }
      this.#run(req, reply);
    });
    sock.on('end', () => {
      if (!handled) refuse(buf === '' ? 'empty request' : 'incomplete request (no newline)');
    });
  }

  #run(req: RunRequest, reply: (obj: object, end: boolean) => void): void {
    let pid: number;
    let term: NodeJS.Timeout | undefined;
    let kill: NodeJS.Timeout | undefined;
    let timedOut = false;
    try {
      pid = this.#host.spawn({
        path: req.argv[0]!,
        argv: req.argv,
        cwd: req.cwd,
        env: mergeEnv(req.env ?? currentEnv(), req.setenv),
        fds: new Map([[0, 'null']]),
        newSession: true,
        searchPath: true,
      }, (wstat) => {
        clearTimeout(term);
        clearTimeout(kill);
        this.#running.delete(pid);
        reply(timedOut ? { wstat, timedOut } : { wstat }, true);
      });
    } catch (err) {
      reply({ error: `unable to spawn ${req.argv[0]}: ${describeError(err)}` }, true);
      return;
    }
    this.#running.add(pid);
    if (req.timeoutMs > 0) {
      term = setTimeout(() => {
        timedOut = true;
        this.#host.kill(pid, 15);
        kill = setTimeout(() => this.#host.kill(pid, 9), KILL_GRACE_MS);
      }, req.timeoutMs);
    }
    reply({ pid }, false);
  }
}
