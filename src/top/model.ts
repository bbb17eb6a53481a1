/**
 * What `t6 top` shows, as data: one row per service of the scan directory (its logger as
 * `name/log`), kept up to date from the event stream, then filtered, sorted and selected.
 *
 * A row's facts are the service object of `t6-svstat --json` (s6/servicejson.ts), read
 * once at start and again for a service each time an event names it; the event adds what
 * no file keeps (a restart being throttled, a logger that takes no input). CPU and memory
 * come from the sampler, the last log line from the logdir. Nothing here reads a file or
 * a clock: the session (session.ts) hands in facts and times.
 */
import type { ServiceJson } from '../s6/servicejson.ts';
import type { T6Event } from '../supervise/events.ts';
import type { TreeUsage } from './sampler.ts';

/** The orders `s` cycles through, in that order. */
export const SORT_KEYS = ['name', 'state', 'cpu', 'rss', 'restarts', 'uptime'] as const;
/** How rows are sorted. */
export type SortKey = (typeof SORT_KEYS)[number];

/**
 * What the STATE column says, in the order `state` sorts by: trouble first.
 * gave-up: finish exited 125; throttled: run died within a second and waits to restart;
 * starting: down, wanted up; stopping: up, wanted down; logger/blocked: an in-process
 * logger (blocked: it takes no input); unsupervised: no supervisor holds the directory.
 */
export const SHOWN_STATES = [
  'gave-up', 'error', 'throttled', 'blocked', 'starting', 'stopping', 'finishing', 'down', 'unsupervised', 'up', 'logger',
] as const;
/** A STATE column value. */
export type ShownState = (typeof SHOWN_STATES)[number];

/** What an event said that no file keeps. */
export type EventNote = 'throttled' | 'given-up' | 'blocked';

/** One service on the screen. */
export interface Row {
  readonly name: string;
  facts: ServiceJson;
  /** CPU and memory of its process tree; undefined while unknown. */
  usage: TreeUsage | undefined;
  note: EventNote | undefined;
  /** The last line of its logdir's `current`; undefined: no logdir. */
  logLine: string | undefined;
}

/** What an event asks of the session. */
export interface EventEffect {
  /** Services whose facts to read again. */
  refresh: string[];
  /** Records were missed, or t6-svscan started again: read every service again. */
  rescan: boolean;
}

/** The STATE column of a row. */
export function shownState(row: Row): ShownState {
  const f = row.facts;
  if (f.error !== null) return 'error';
  if (f.insideScanner === 'logger') return row.note === 'blocked' ? 'blocked' : 'logger';
  if (!f.supervised || f.state === null) return 'unsupervised';
  if (f.state === 'finishing') return 'finishing';
  if (f.state === 'up') return f.want === 'down' ? 'stopping' : 'up';
  if (f.want !== 'up') return 'down';
  if (row.note === 'given-up') return 'gave-up';
  return row.note === 'throttled' ? 'throttled' : 'starting';
}

/** How long the service has been up, in ms; undefined when it is not up. */
export function uptimeMs(row: Row, nowMs: number): number | undefined {
  if (row.facts.state !== 'up' || row.facts.since === null) return undefined;
  return Math.max(0, nowMs - Date.parse(row.facts.since));
}

/** Events that say something about the service they name. */
const SERVICE_KINDS = new Set<T6Event['kind']>([
  'supervised', 'up', 'ready', 'down', 'finish-started', 'finish-ended', 'restart-scheduled', 'throttled',
  'given-up', 'supervisor-exited', 'logger-blocked', 'logger-resumed',
]);

/** Ascending comparison; undefined (unknown) after every known value. */
function byValue(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined) return a === b ? 0 : a === undefined ? 1 : -1;
  return a - b;
}

/** The rows, their order, the filter and the selection. */
export class TopModel {
  readonly #rows = new Map<string, Row>();
  #sort: SortKey = 'name';
  #filter = '';
  #selected: string | undefined;

  /** The sort order. */
  get sort(): SortKey { return this.#sort; }
  /** The filter text ('' shows every row). */
  get filter(): string { return this.#filter; }
  /** Every row, in no particular order. */
  get rows(): Row[] { return [...this.#rows.values()]; }

  /** One row by name. */
  row(name: string): Row | undefined { return this.#rows.get(name); }

  /** Adds a service, or replaces its facts (its usage, note and log line are kept). */
  setFacts(facts: ServiceJson): void {
    const row = this.#rows.get(facts.name);
    if (row === undefined) this.#rows.set(facts.name, { name: facts.name, facts, usage: undefined, note: undefined, logLine: undefined });
    else {
      // Another process (or none) since the last sample: its numbers are not this one's.
      if (facts.pid !== row.facts.pid) row.usage = undefined;
      row.facts = facts;
    }
  }

  /** Forgets a service (its directory is gone). */
  remove(name: string): void { this.#rows.delete(name); }

  /** Keeps what `e` says that no file keeps; returns what to read again. */
  applyEvent(e: T6Event): EventEffect {
    if (e.kind === 'lost' || e.kind === 'scanner') return { refresh: [], rescan: true };
    const name = e.service;
    if (name === undefined) return { refresh: [], rescan: false };
    if (!SERVICE_KINDS.has(e.kind)) return { refresh: this.#rows.has(name) ? [name] : [], rescan: false };
    const row = this.#rows.get(name);
    if (row !== undefined) {
      if (e.kind === 'throttled') row.note = 'throttled';
      else if (e.kind === 'given-up') row.note = 'given-up';
      else if (e.kind === 'logger-blocked') row.note = 'blocked';
      else if (e.kind === 'up' || e.kind === 'logger-resumed' || e.kind === 'supervised') row.note = undefined;
    }
    return { refresh: [name], rescan: false };
  }

  /** Usage from a sample, for every row (a row left out has none). */
  setUsage(usage: ReadonlyMap<string, TreeUsage>): void {
    for (const row of this.#rows.values()) row.usage = usage.get(row.name);
  }

  /** Changes the order to the next of SORT_KEYS. */
  cycleSort(): void {
    this.#sort = SORT_KEYS[(SORT_KEYS.indexOf(this.#sort) + 1) % SORT_KEYS.length]!;
  }

  /** Shows only rows whose name or state contains `text` (any case). */
  setFilter(text: string): void { this.#filter = text; }

  /** The rows shown, in order. */
  visible(nowMs: number): Row[] {
    const needle = this.#filter.toLowerCase();
    const rows = [...this.#rows.values()].filter((r) => needle === '' || r.name.toLowerCase().includes(needle) || shownState(r).includes(needle));
    const cmp = this.#comparator(nowMs);
    return rows.sort((a, b) => cmp(a, b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  #comparator(nowMs: number): (a: Row, b: Row) => number {
    switch (this.#sort) {
      case 'name': return () => 0;
      case 'state': return (a, b) => SHOWN_STATES.indexOf(shownState(a)) - SHOWN_STATES.indexOf(shownState(b));
      // Biggest first; unknown last.
      case 'cpu': return (a, b) => byValue(neg(a.usage?.cpuPercent), neg(b.usage?.cpuPercent));
      case 'rss': return (a, b) => byValue(neg(a.usage?.rssBytes), neg(b.usage?.rssBytes));
      case 'restarts': return (a, b) => byValue(neg(a.facts.restarts ?? undefined), neg(b.facts.restarts ?? undefined));
      // Shortest first: what just (re)started comes to the top; what is not up, last.
      case 'uptime': return (a, b) => byValue(uptimeMs(a, nowMs), uptimeMs(b, nowMs));
    }
  }

  /** The selected row among `visible` (the first when the selected one is not shown). */
  selectedIndex(visible: readonly Row[]): number {
    const i = visible.findIndex((r) => r.name === this.#selected);
    return i < 0 ? 0 : i;
  }

  /** The selected row's name, if any row is shown. */
  selected(visible: readonly Row[]): string | undefined {
    return visible[this.selectedIndex(visible)]?.name;
  }

  /** Moves the selection by `delta` rows within `visible` (clamped to its ends). */
  move(visible: readonly Row[], delta: number): void {
    if (visible.length === 0) return;
    const i = Math.min(visible.length - 1, Math.max(0, this.selectedIndex(visible) + delta));
    this.#selected = visible[i]!.name;
  }

  /** Services by what the STATE column says: up, down (down, starting, gave-up, throttled), and the rest. */
  counts(): { total: number; up: number; down: number; other: number } {
    let up = 0;
    let down = 0;
    for (const row of this.#rows.values()) {
      const s = shownState(row);
      if (s === 'up') up++;
      else if (s === 'down' || s === 'starting' || s === 'gave-up' || s === 'throttled') down++;
    }
    return { total: this.#rows.size, up, down, other: this.#rows.size - up - down };
  }
}

const neg = (v: number | undefined): number | undefined => (v === undefined ? undefined : -v);
