/**
 * s6-linux-init-shutdownd inside pid 1 (linux-init.md §4): it listens on the shutdown FIFO
 * for s6's 17-byte requests (and `c` to cancel), keeps one pending shutdown with its
 * deadline, and when the deadline comes runs `rc.shutdown`, waits for it, then hands over
 * to stage 4 (unless the action was `S`: only rc.shutdown). Signals to pid 1 and the
 * shutdown clients end up in the same `request`.
 *
 * s6 ends its daemon on a malformed request; pid 1 cannot, so bad bytes are reported and
 * skipped, and a request split across writes is simply waited for.
 */
import net from 'node:net';
import { errorCode, strerror } from '../sys/errors.ts';
import { O_NONBLOCK, O_RDWR, mkfifo, open } from '../sys/fd.ts';
import { describeWaitStatus } from '../sys/wait.ts';
import { DEFAULT_GRACE_MS, ShutdownRequestDecoder, effectiveGraceMs, type ShutdownAction } from '../s6/initctl.ts';

const ACTION_NAMES: Record<ShutdownAction, string> = { S: 'rc.shutdown', h: 'halt', p: 'poweroff', r: 'reboot' };

/**
 * Bad bytes reported one by one per read of the shutdown FIFO; the rest of that read's are
 * counted in one more line, so that garbage written to the FIFO cannot flood the log. (The
 * decoder itself holds at most one incomplete 17-byte request.)
 */
const BAD_BYTES_REPORTED = 3;

/** What the shutdown engine needs from pid 1. */
export interface ShutdownHost {
  /** Runs rc.shutdown as a child of pid 1; resolves with its wait status (undefined: could not run). */
  runRcShutdown(): Promise<number | undefined>;
  /** Stage 4: everything after rc.shutdown for a halt, poweroff or reboot. */
  finale(action: Exclude<ShutdownAction, 'S'>, graceMs: number): void;
  report(level: 'info' | 'warning' | 'error', message: string): void;
}

/** The shutdown engine of pid 1. */
export class Shutdownd {
  #host: ShutdownHost;
  #graceMs: number;
  #action: ShutdownAction = 'S';
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #final = false;
  #fifo: net.Socket | undefined;
  #decoder = new ShutdownRequestDecoder();

  constructor(host: ShutdownHost, graceMs = DEFAULT_GRACE_MS) {
    this.#host = host;
    this.#graceMs = graceMs;
  }

  /** Whether a shutdown waits for its time (scheduled with a delay). */
  get scheduled(): boolean {
    return this.#timer !== undefined;
  }

  /** Whether stage 3 or 4 is under way (no more requests are taken). */
  get inProgress(): boolean {
    return this.#running || this.#final;
  }

  /**
   * Listens on `fifoPath` (created 0600 if missing). Read-write, so that the FIFO never
   * reports EOF and a client's non-blocking open always finds a reader. Throws if the FIFO
   * cannot be had (the caller reports it: shutdown then works through signals only).
   */
  listen(fifoPath: string): void {
    try {
      mkfifo(fifoPath, 0o600);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
    }
    const fd = open(fifoPath, O_RDWR | O_NONBLOCK);
    const sock = new net.Socket({ fd, readable: true, writable: false });
    sock.on('data', (chunk: Buffer) => {
      let bad = 0;
      for (const item of this.#decoder.push(chunk)) {
        if (item.kind === 'cancel') this.cancel();
        else if (item.kind === 'shutdown') this.request(item.action, item.delayMs, item.graceMs);
        else if (++bad <= BAD_BYTES_REPORTED) this.#host.report('warning', `${fifoPath}: ${item.message}`);
      }
      if (bad > BAD_BYTES_REPORTED) this.#host.report('warning', `${fifoPath}: ${bad - BAD_BYTES_REPORTED} more unknown bytes skipped`);
    });
    sock.on('error', (err) => this.#host.report('error', `${fifoPath}: ${strerror(err)}`));
    this.#fifo = sock;
  }

  /** Stops listening on the FIFO (the FIFO stays); a pending shutdown stays pending. */
  close(): void {
    this.#fifo?.destroy();
    this.#fifo = undefined;
  }

  /** A shutdown request: `action` in `delayMs`; a grace of 0 keeps the current one. */
  request(action: ShutdownAction, delayMs: number, graceMs = 0): void {
    if (this.#final) return;
    this.#graceMs = effectiveGraceMs(graceMs, this.#graceMs);
    this.#action = action;
    if (this.#running) return; // rc.shutdown is running: the action is taken when it ends
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (delayMs >= 1000) this.#host.report('info', `${ACTION_NAMES[action]} scheduled in ${Math.round(delayMs / 1000)} seconds`);
    // setTimeout's limit is 2^31-1 ms (24.8 days): longer delays are re-armed.
    const step = Math.min(Math.max(delayMs, 0), 2 ** 31 - 1);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (delayMs > step) this.request(this.#action, delayMs - step);
      else void this.#fire();
    }, step);
  }

  /** Cancels a pending shutdown (`c`); one already under way goes on. */
  cancel(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#host.report('info', 'the scheduled shutdown is cancelled');
    }
    this.#timer = undefined;
    if (!this.#running) this.#action = 'S';
  }

  async #fire(): Promise<void> {
    this.#running = true;
    let wstat: number | undefined;
    try {
      wstat = await this.#host.runRcShutdown();
    } catch (err) {
      this.#host.report('warning', `rc.shutdown: ${strerror(err)}`);
    }
    if (wstat !== undefined && wstat !== 0) this.#host.report('warning', `rc.shutdown ${describeWaitStatus(wstat)}`);
    this.#running = false;
    const action = this.#action;
    if (action === 'S') return;
    this.#final = true;
    this.#fifo?.destroy();
    this.#host.finale(action, this.#graceMs);
  }
}
