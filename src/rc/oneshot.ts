/**
 * The client of t6-svscan's built-in oneshot runner (src/supervise/runner.ts): one
 * connection per oneshot on `SCANDIR/.s6-svscan/run`, one JSON request line, then the
 * `{"pid"}` and `{"wstat"}` replies. Never throws: every outcome is a RunOutcome.
 */

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
      if (!started) finish({ kind: 'error', message: `unable to reach the oneshot runner at ${socketPath}: ${err.code ?? err.message} (is t6-svscan running?)` });
      else finish({ kind: 'lost', message: `lost the oneshot runner: ${err.message}` });
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
