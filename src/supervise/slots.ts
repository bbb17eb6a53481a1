/**
 * What the scanner knows about its scan directory: one `ServiceEntry` per service directory
 * it has seen, keyed by the directory's identity (device and inode, as s6-svscan does, so a
 * renamed directory keeps its supervisor), each with one `Slot` for the service and one for
 * its `log/` supervisor when it has one. A slot holds at most one supervisor at a time.
 * The table is plain data: scanning, plumbing and the ending read and change it.
 */
import type { Supervisor, TimerHandle } from './supervisor.ts';
import type { PipeClient } from './logging.ts';

/** One supervisor place: the service itself, or its logger. */
export interface Slot {
  /** `foo` or `foo/log`. */
  readonly name: string;
  sup: Supervisor | undefined;
  /** Monotonic ms of the last supervisor start (restarts are at least 1 s apart); 0: never. */
  lastStart: number;
  /** The pending (re)start of this slot's supervisor. */
  restart: TimerHandle | undefined;
}

/** One service directory of the scan directory. */
export interface ServiceEntry {
  /** `dev:ino` of the directory. */
  readonly key: string;
  /** Its current name in the scan directory. */
  name: string;
  /** Seen by the last scan (an inactive entry is stopped on a prune). */
  active: boolean;
  readonly main: Slot;
  log: Slot | undefined;
  /** [read, write]: the producer→logger pipe, held by the scanner for the entry's life. */
  pipe: [number, number] | undefined;
  /** Who reads the pipe inside t6-svscan: an in-process logger (`log/t6-log`) or a console sink. */
  reader: PipeClient | undefined;
  /** The scanner has closed its copy of the pipe's write end (the producer is gone for good). */
  writeClosed: boolean;
  /** The scan dir entry this service's stdout feeds (its servicedir's `producer-for`), if any. */
  producerFor: string | undefined;
}

/** A supervisor's place in the table. */
export interface Owner {
  entry: ServiceEntry;
  slot: Slot;
}

/** A new, empty slot. */
export function newSlot(name: string): Slot {
  return { name, sup: undefined, lastStart: 0, restart: undefined };
}

/** The slots of an entry: the service's, then its logger's. */
export function slots(entry: ServiceEntry): Slot[] {
  return entry.log === undefined ? [entry.main] : [entry.main, entry.log];
}

/** Where a slot's directory is in the scan dir now: the entry's current name (it may have been renamed), `/log` for the logger. */
export function slotPath(entry: ServiceEntry, slot: Slot): string {
  return slot === entry.main ? entry.name : `${entry.name}/log`;
}

/** Cancels every pending (re)start of an entry's slots. */
export function cancelRestarts(entry: ServiceEntry): void {
  for (const slot of slots(entry)) {
    slot.restart?.cancel();
    slot.restart = undefined;
  }
}

/** The entries of a scan directory and the supervisors running for them. */
export class ServiceTable {
  readonly #byKey = new Map<string, ServiceEntry>();
  readonly #bySupervisor = new Map<Supervisor, Owner>();

  /** The entry of directory `key`, made (active, no logger yet) if it is new; `name` is its current name. */
  entry(key: string, name: string): ServiceEntry {
    let entry = this.#byKey.get(key);
    if (entry === undefined) {
      entry = { key, name, active: true, main: newSlot(name), log: undefined, pipe: undefined, reader: undefined, writeClosed: false, producerFor: undefined };
      this.#byKey.set(key, entry);
    }
    entry.name = name;
    entry.active = true;
    return entry;
  }

  /** The entry of directory `key`, if known. */
  get(key: string): ServiceEntry | undefined {
    return this.#byKey.get(key);
  }

  /** Every entry, in the order they were first seen. */
  entries(): IterableIterator<ServiceEntry> {
    return this.#byKey.values();
  }

  /** Forgets an entry (its supervisors must be gone). */
  delete(entry: ServiceEntry): void {
    this.#byKey.delete(entry.key);
  }

  /** Records that `sup` now runs in `slot` of `entry`. */
  attach(sup: Supervisor, entry: ServiceEntry, slot: Slot): void {
    slot.sup = sup;
    this.#bySupervisor.set(sup, { entry, slot });
  }

  /** Removes an ended supervisor; returns where it ran (undefined: not ours, or already removed). */
  detach(sup: Supervisor): Owner | undefined {
    const owner = this.#bySupervisor.get(sup);
    if (owner === undefined) return undefined;
    this.#bySupervisor.delete(sup);
    owner.slot.sup = undefined;
    return owner;
  }

  /** Where a supervisor runs. */
  owner(sup: Supervisor): Owner | undefined {
    return this.#bySupervisor.get(sup);
  }

  /** How many supervisors run. */
  get running(): number {
    return this.#bySupervisor.size;
  }

  /** Every running supervisor. */
  supervisors(): Supervisor[] {
    return [...this.#bySupervisor.keys()];
  }

  /** Names of the active entries that have a supervisor now (loggers as `name/log`). */
  supervisedNames(): string[] {
    const out: string[] = [];
    for (const { entry, slot } of this.#bySupervisor.values()) {
      if (entry.active) out.push(slot === entry.main ? entry.name : `${entry.name}/log`);
    }
    return out;
  }
}

/** The first few items of a list, and how many more. */
export function listSome(items: string[], max = 5): string {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}
