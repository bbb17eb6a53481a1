/**
 * A logger that stays blocked (a full disk, a slow script: its service's writes wait on
 * the pipe) is worth telling; one that pauses for a moment between two writes is not. The
 * alarm tells once the logger has been blocked for `afterMs`, and once more when it takes
 * input again, with how long it was blocked. No timer runs while the logger flows.
 */

/** What an alarm tells: blocked (after afterMs) or resumed, and for how long so far. */
export type BlockTell = (blocked: boolean, forMs: number) => void;

/** One logger's alarm. */
export class BlockAlarm {
  readonly #afterMs: number;
  readonly #monotonicMs: () => number;
  readonly #tell: BlockTell;
  /** When the current block began (monotonic ms); undefined while input flows. */
  #since: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #told = false;
  /** Time spent blocked in blocks that ended (ms). */
  #endedMs = 0;

  constructor(afterMs: number, monotonicMs: () => number, tell: BlockTell) {
    this.#afterMs = afterMs;
    this.#monotonicMs = monotonicMs;
    this.#tell = tell;
  }

  /** The logger stopped taking input. */
  blocked(): void {
    if (this.#since !== undefined) return;
    const since = this.#monotonicMs();
    this.#since = since;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#told = true;
      this.#tell(true, this.#monotonicMs() - since);
    }, this.#afterMs);
  }

  /** Time spent blocked so far, the block under way included (ms). */
  get blockedMs(): number {
    return this.#endedMs + (this.#since === undefined ? 0 : this.#monotonicMs() - this.#since);
  }

  /** True while the logger takes no input. */
  get isBlocked(): boolean { return this.#since !== undefined; }

  /** The logger takes input again. */
  resumed(): void {
    const since = this.#since;
    if (since === undefined) return;
    this.#endedMs += this.#monotonicMs() - since;
    this.close();
    if (this.#told) this.#tell(false, this.#monotonicMs() - since);
    this.#told = false;
  }

  /** The logger is gone: no more telling. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#since = undefined;
  }
}
