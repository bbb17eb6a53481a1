/**
 * t6's restart policy, beyond s6's one rule (restart after a second unless `run` had been
 * up for one): exponential backoff and a give-up state. Opt-in, one value per file:
 *
 *   backoff-initial  ms: the first delay after a death (its presence turns backoff on)
 *   backoff-factor   each death in a row multiplies the delay by this (decimal, default 2)
 *   backoff-max      ms: the delay's cap (default 60000)
 *   backoff-settle   ms: a run that stayed up this long ends the streak (default 10000)
 *   give-up-deaths   N: this many deaths within give-up-window, and the service is given up
 *   give-up-window   ms (default 60000)
 *
 * Without these files the RestartPolicy says nothing and s6's rule applies unchanged.
 * Given up is s6's permanent failure (finish exiting 125): down and wanted down, an `O`
 * event; `t6-svc -u` starts the service again and clears the streak.
 *
 * The RestartPolicy also keeps s6's own rule's clock (`nextstart`: a second after `run`
 * was ready), so the one place that says when a service restarts is here.
 *
 * Pure: the Supervisor gives it the settings reader and the monotonic clock's readings.
 */
import type { ServiceSettings } from './settings.ts';

const DEFAULT_FACTOR = 2;
const DEFAULT_MAX_MS = 60_000;
const DEFAULT_SETTLE_MS = 10_000;
const DEFAULT_WINDOW_MS = 60_000;
/** Deaths remembered for the give-up window: a bound whatever give-up-deaths says. */
const MAX_REMEMBERED_DEATHS = 1024;

/** What a death leads to: a restart after `delayMs`, a give-up, or s6's rule (undefined). */
export type RestartDecision = { delayMs: number } | { giveUp: string } | undefined;

/** s6's rule: a restart waits until a second after `run` was ready (or started, if never ready). */
const S6_RESTART_MS = 1000;

/** A policy's state that a re-exec carries over (times as ms before the snapshot). */
export interface RestartPolicySnapshot {
  /** s6's nextstart, in so many ms (negative: past); absent: none. */
  nextStartInMs?: number;
  streak: number;
  deathsAgoMs: number[];
  givenUp: string | null;
}

/** One service's restart policy and the deaths it has counted. */
export class RestartPolicy {
  readonly #settings: ServiceSettings;
  /** Deaths in a row, each after a run shorter than the settle time. */
  #streak = 0;
  /** Monotonic times of the deaths since the last settled run (for the give-up window). */
  #deaths: number[] = [];
  #givenUp: string | undefined;
  /** Monotonic time before which a restart must not happen (s6's nextstart); 0 = none. */
  #nextStart = 0;
  /** Monotonic time `run` last started. */
  #upAt = 0;
  /** What the last death decided, until the restart is scheduled. */
  #decision: RestartDecision;

  constructor(settings: ServiceSettings) {
    this.#settings = settings;
  }

  /** Why the service was given up, while it is. */
  get givenUp(): string | undefined { return this.#givenUp; }

  /** Deaths in the current streak. */
  get streak(): number { return this.#streak; }

  /** `run` started at `nowMs`. */
  started(nowMs: number): void {
    this.#nextStart = 0;
    this.#upAt = nowMs;
  }

  /** `run` said it is ready at `nowMs`: s6's rule restarts it at once if it dies a second later. */
  ready(nowMs: number): void {
    this.#nextStart = nowMs + S6_RESTART_MS;
  }

  /**
   * `run` died at `nowMs`: decides (the decision waits for `schedule`), and says whether s6's
   * rule allows the restart at once, before finish or any bookkeeping.
   */
  runDied(nowMs: number): { atOnce: boolean } {
    this.#decision = this.died(nowMs, nowMs - this.#upAt);
    return { atOnce: this.#decision === undefined && this.#nextStart > 0 && this.#nextStart <= nowMs };
  }

  /** The restart after the last death: in so many ms, or given up. */
  schedule(nowMs: number): { delayMs: number } | { giveUp: string } {
    const decision = this.#decision;
    this.#decision = undefined;
    if (decision !== undefined) return decision;
    return { delayMs: Math.max(0, (this.#nextStart > 0 ? this.#nextStart : nowMs + S6_RESTART_MS) - nowMs) };
  }

  /** Does this service have a policy beyond s6's (read fresh, as s6 reads its files)? */
  active(): boolean {
    return this.#settings.has('backoff-initial') || this.#settings.has('give-up-deaths');
  }

  /** `run` died at `nowMs` after living `livedMs`: what to do next. */
  died(nowMs: number, livedMs: number): RestartDecision {
    if (!this.active()) return undefined;
    const settle = this.#settings.uint('backoff-settle', DEFAULT_SETTLE_MS);
    if (livedMs >= settle) {
      this.#streak = 0;
      this.#deaths = [];
    }
    this.#deaths.push(nowMs);
    if (this.#deaths.length > MAX_REMEMBERED_DEATHS) this.#deaths.shift();
    const limit = this.#settings.uint('give-up-deaths', 0);
    if (limit > 0) {
      const windowMs = this.#settings.uint('give-up-window', DEFAULT_WINDOW_MS);
      const recent = this.#deaths.filter((t) => nowMs - t <= windowMs).length;
      if (recent >= limit) {
        this.#givenUp = `${recent} deaths within ${windowMs} ms (give-up-deaths ${limit})`;
        return { giveUp: this.#givenUp };
      }
    }
    const streak = this.#streak++;
    if (!this.#settings.has('backoff-initial')) return undefined;
    const initial = this.#settings.uint('backoff-initial', 1000);
    const factor = Math.max(1, this.#settings.decimal('backoff-factor', DEFAULT_FACTOR));
    const max = this.#settings.uint('backoff-max', DEFAULT_MAX_MS);
    return { delayMs: Math.round(Math.min(max, initial * factor ** streak)) };
  }

  /** The service was asked up (`t6-svc -u`): a given-up service starts again with a fresh count. */
  clear(): void {
    if (this.#givenUp === undefined) return;
    this.#givenUp = undefined;
    this.#streak = 0;
    this.#deaths = [];
  }

  /** The state, for a re-exec. */
  snapshot(nowMs: number): RestartPolicySnapshot {
    return {
      ...(this.#nextStart > 0 ? { nextStartInMs: this.#nextStart - nowMs } : {}),
      streak: this.#streak, deathsAgoMs: this.#deaths.map((t) => nowMs - t), givenUp: this.#givenUp ?? null,
    };
  }

  /** Carries on from a snapshot taken `elapsedMs` before `nowMs`. */
  restore(snap: RestartPolicySnapshot, nowMs: number, elapsedMs: number): void {
    // A past nextstart stays a past one (> 0, <= now): the one-second rule is already met.
    if (snap.nextStartInMs !== undefined) this.#nextStart = Math.max(Number.MIN_VALUE, nowMs + snap.nextStartInMs - elapsedMs);
    this.#upAt = nowMs;
    this.#streak = snap.streak;
    this.#deaths = snap.deathsAgoMs.slice(-MAX_REMEMBERED_DEATHS).map((ago) => nowMs - elapsedMs - ago);
    this.#givenUp = snap.givenUp ?? undefined;
  }
}
