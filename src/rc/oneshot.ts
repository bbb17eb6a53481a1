/**
 * The client of t6-svscan's built-in oneshot runner (src/supervise/runner.ts): one
 * connection per oneshot on `SCANDIR/.s6-svscan/run`, one JSON request line, then the
 * `{"pid"}` and `{"wstat"}` replies. Never throws: every outcome is a RunOutcome.
 */
import { REFUSAL_REASONS, type ControlRequest, type RcEventFields, type RefusalReason } from '../supervise/runner-protocol.ts';
import { strerror } from '../sys/errors.ts';
import type { LocalRunner } from '../supervise/scanner-host.ts';

export type { ControlRequest } from '../supervise/runner-protocol.ts';

/** What to run. */
export interface OneshotRequest {
  argv: string[];
  cwd: string;
  /** null: t6-svscan's own environment. */
  env: string[] | null;
  /** Laid over the base environment (t6-rc: RC_NAME=name). */
  setenv?: string[];
  /** 0 = no limit. */
  timeoutMs: number;
}

/** How a oneshot ended. */
export type RunOutcome =
  | { kind: 'exited'; wstat: number; timedOut: boolean }
  /** Refused, could not spawn, or no runner listening. */
  | { kind: 'error'; message: string }
  /** The connection broke before the wait status came (the process may still run). */
  | { kind: 'lost'; message: string };

/** The runner socket of a scan directory. */
export function runnerSocket(scandir: string): string {
  return `${scandir}/.s6-svscan/run`;
}

/** Runs one oneshot through the runner and waits for its wait status. */
export function runOneshot(socketPath: string, req: OneshotRequest, onPid?: (pid: number) => void): Promise<RunOutcome> {
  return new Promise((resolve) => {
    let done = false;
    let buf = '';
    let started = false;
    const finish = (o: RunOutcome): void => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve(o);
    };
    const sock = process.getBuiltinModule('node:net').connect(socketPath);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (!started) finish({ kind: 'error', message: `unable to reach the oneshot runner at ${socketPath}: ${strerror(err)} (is t6-svscan running?)` });
      else finish({ kind: 'lost', message: `lost the oneshot runner: ${strerror(err)}` });
    });
    sock.on('close', () => finish({ kind: 'lost', message: 'the oneshot runner closed the connection early' }));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let msg: { pid?: number; wstat?: number; timedOut?: boolean; error?: string };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          finish({ kind: 'lost', message: 'garbled reply from the oneshot runner' });
          return;
        }
        if (typeof msg.error === 'string') finish({ kind: 'error', message: msg.error });
        else if (typeof msg.pid === 'number') { started = true; onPid?.(msg.pid); }
        else if (typeof msg.wstat === 'number') finish({ kind: 'exited', wstat: msg.wstat, timedOut: msg.timedOut === true });
      }
    });
  });
}

/** How a control request ended. */
export type ControlResult =
  | { kind: 'done'; reached: boolean; failures: number; timedOut: boolean }
  /** Refused: not supervised or too many clients (`reason` says so), or a bad request. */
  | { kind: 'error'; message: string; reason: RefusalReason | undefined }
  /** This t6-svscan does not serve sessions or control requests (or no runner listens): use the event FIFOs. */
  | { kind: 'unsupported'; message: string }
  | { kind: 'lost'; message: string };

type Reply = { id?: unknown; pid?: unknown; wstat?: unknown; timedOut?: unknown; error?: unknown; reason?: unknown; reached?: unknown; failures?: unknown };

const reasonOf = (r: Reply): RefusalReason | undefined => (REFUSAL_REASONS as readonly unknown[]).includes(r.reason) ? r.reason as RefusalReason : undefined;

/**
 * One connection to the runner for all of a change's transitions (runner.ts sessions):
 * requests carry ids, replies come back as they are ready. Connected on first use. When
 * the runner does not speak sessions (an older t6-svscan answers the first request alone,
 * without an id) or cannot be reached, every request resolves as `unsupported`, and the
 * caller goes back to one connection per oneshot and to the event FIFOs.
 */
export class RunnerSession {
  readonly socketPath: string;
  /** The runner of this very process (pid 1's t6-rc): requests go to it with no socket. */
  readonly #local: LocalRunner['request'];
  #sock: import('node:net').Socket | undefined;
  #nextId = 1; // 0 is the opening `{"id":0}`
  #waiting = new Map<number, (msg: Reply | undefined, why: string) => void>();
  #buf = '';
  #dead: string | undefined;
  /** The runner refused the connection (too many clients): `#dead` says so. */
  #refused = false;
  #unsupported = false;
  #corked = false;

  constructor(socketPath: string, local?: LocalRunner['request']) {
    this.socketPath = socketPath;
    this.#local = local;
  }

  /** Did the runner turn sessions down? */
  get unsupported(): boolean {
    return this.#unsupported;
  }

  /** Runs a oneshot through the session; `onPid` hears the runner's `{"pid"}` reply. */
  async run(req: OneshotRequest, onPid?: (pid: number) => void): Promise<RunOutcome | 'unsupported'> {
    let started = false;
    const r = await this.#request(req, (msg) => {
      if (typeof msg.pid === 'number' && msg.wstat === undefined && msg.error === undefined) { started = true; onPid?.(msg.pid); return false; }
      return true;
    });
    if (r === 'unsupported') return r;
    if (typeof r === 'string') return started ? { kind: 'lost', message: r } : { kind: 'error', message: r };
    if (typeof r.error === 'string') return { kind: 'error', message: r.error };
    if (typeof r.wstat === 'number') return { kind: 'exited', wstat: r.wstat, timedOut: r.timedOut === true };
    return { kind: 'lost', message: 'garbled reply from the oneshot runner' };
  }

  /** A longrun transition through the session. */
  async control(req: ControlRequest): Promise<ControlResult> {
    const r = await this.#request(req, () => true);
    if (r === 'unsupported') return { kind: 'unsupported', message: 'no session with the runner' };
    if (typeof r === 'string') return this.#refused ? { kind: 'error', message: r, reason: 'too-many-clients' } : { kind: 'lost', message: r };
    if (typeof r.error === 'string') {
      const reason = reasonOf(r);
      return reason === 'not-served' ? { kind: 'unsupported', message: r.error } : { kind: 'error', message: r.error, reason };
    }
    return { kind: 'done', reached: r.reached === true, failures: typeof r.failures === 'number' ? r.failures : 0, timedOut: r.timedOut === true };
  }

  /**
   * A record for t6-svscan's event stream (a transition), sent on the session and not
   * waited for; nothing is sent to a runner without sessions, nor once the session broke.
   */
  publish(event: RcEventFields): void {
    if (this.#unsupported || this.#dead !== undefined) return;
    void this.#request({ event }, () => true);
  }

  /** Ends the session (t6-svscan closes it once every request is answered). */
  close(): void {
    this.#sock?.end();
  }

  /**
   * Sends one request; resolves with its final reply (`final` says which replies are),
   * with a string when the connection broke, or 'unsupported'.
   */
  #request(body: object, final: (msg: Reply) => boolean): Promise<Reply | string | 'unsupported'> {
    if (this.#local !== undefined) return this.#requestHere(this.#local, body, final);
    if (this.#unsupported) return Promise.resolve('unsupported');
    if (this.#dead !== undefined) return Promise.resolve(this.#dead);
    const sock = this.#connect();
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#waiting.set(id, (msg, why) => {
        if (msg === undefined) { this.#waiting.delete(id); resolve(this.#unsupported ? 'unsupported' : why); return; }
        if (!final(msg)) return;
        this.#waiting.delete(id);
        resolve(msg);
      });
      // Requests made in one go (t6-rc starts every service whose dependencies are met at
      // once) leave in one write.
      if (!this.#corked) {
        this.#corked = true;
        sock.cork();
        process.nextTick(() => { this.#corked = false; sock.uncork(); });
      }
      sock.write(`${JSON.stringify({ id, ...body })}\n`);
    });
  }

  /** The same request, served by the runner in this process: its replies as a session's, without the id. */
  #requestHere(local: NonNullable<LocalRunner['request']>, body: object, final: (msg: Reply) => boolean): Promise<Reply> {
    return new Promise((resolve) => {
      local(JSON.stringify(body), (obj, last) => {
        const msg = obj as Reply;
        // The runner's last answer ends the request whatever it says (run() reads it).
        if (final(msg) || last) resolve(msg);
      });
    });
  }

  #connect(): import('node:net').Socket {
    if (this.#sock !== undefined) return this.#sock;
    const sock = process.getBuiltinModule('node:net').connect(this.socketPath);
    this.#sock = sock;
    let connected = false;
    sock.on('connect', () => { connected = true; });
    sock.setEncoding('utf8');
    // First the bare id: a runner without sessions answers only that (without an id) and
    // drops what follows, so no request of ours can have run when we fall back.
    sock.write('{"id":0}\n');
    const fail = (why: string, unsupported: boolean): void => {
      if (this.#dead !== undefined) return;
      this.#dead = why;
      if (unsupported) this.#unsupported = true;
      for (const cb of [...this.#waiting.values()]) cb(undefined, why);
      this.#waiting.clear();
    };
    sock.on('error', (err: NodeJS.ErrnoException) => {
      // Never connected: nobody serves sessions here. Broken later: requests are lost.
      fail(`the runner connection broke: ${strerror(err)}`, !connected);
    });
    sock.on('close', () => fail('the runner closed the connection early', false));
    sock.on('data', (chunk: string) => {
      this.#buf += chunk;
      for (let nl = this.#buf.indexOf('\n'); nl >= 0; nl = this.#buf.indexOf('\n')) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        let msg: Reply;
        try {
          msg = JSON.parse(line) as Reply;
        } catch {
          fail('garbled reply from the runner', false);
          sock.destroy();
          return;
        }
        if (typeof msg.id !== 'number') {
          // Refused before it read anything (too many clients): every request fails with that.
          if (reasonOf(msg) === 'too-many-clients') {
            this.#refused = true;
            fail(String(msg.error), false);
            sock.destroy();
            return;
          }
          // An older runner: it took the first request alone and answers without an id.
          fail('the runner does not serve sessions', true);
          sock.destroy();
          return;
        }
        if (msg.id !== 0) this.#waiting.get(msg.id)?.(msg, '');
      }
    });
    return sock;
  }
}
