/**
 * What t6-rc's readers (list, listall, diff) compute, over a `ReadView` of the live state:
 * either a whole loaded database (engine.ts viewOfLive) or the database's reader index
 * (db-index.ts, `openIndexed`), so that a `t6-rc list` loads neither db.json nor the
 * writer's code (issue 12). This module imports no more than it needs for that: the
 * t6-rc command's first bundle is built from it (scripts/build.mjs).
 */
import fs from 'node:fs';
import { type DbIndex, readIndex } from './db-index.ts';
import { closure } from './plan.ts';
import { readWantUp } from '../s6/status-want.ts';

/** Unknown service name (exit 3). */
export class UnknownServiceError extends Error {
  override name = 'UnknownServiceError';
}

/** The live state as the readers see it. */
export interface ReadView {
  /** LIVE as given. */
  dir: string;
  /** Number of longruns (indexes 0 to longruns-1). */
  longruns: number;
  /** Number of atomic services. */
  atomics: number;
  /** Whether atomic i is up in the live state. */
  up(i: number): boolean;
  indexOf(name: string): number | undefined;
  nameOf(i: number): string;
  /** The names of `indexes`, in their order. */
  namesOf(indexes: readonly number[]): string[];
  /** Itself, or a bundle's contents. */
  atomicsOf(i: number): readonly number[];
  /** deps[i]: the direct dependencies of atomic i. */
  dependencies(): readonly (readonly number[])[];
}

/** The atomic services that `names` stand for, plus (with `addUp`) every service that is up. */
export function selectIn(view: ReadView, names: readonly string[], addUp: boolean): Set<number> {
  let out: Set<number> | undefined;
  for (const name of names) {
    const i = view.indexOf(name);
    if (i === undefined) throw new UnknownServiceError(`${name} is not a recognized identifier in ${view.dir}/compiled`);
    // The first name's atomics through Set's own constructor (a whole bundle at once).
    if (out === undefined) out = new Set(view.atomicsOf(i));
    else for (const a of view.atomicsOf(i)) out.add(a);
  }
  out ??= new Set<number>();
  if (addUp) for (let i = 0; i < view.atomics; i++) if (view.up(i)) out.add(i);
  return out;
}

/** `list`: the selection (inverted with -d), in index order. */
export function listIn(view: ReadView, selection: Set<number>, up: boolean): number[] {
  // The selection holds atomics only: in index order, it is itself sorted (a typed array's
  // sort is numeric and native).
  if (up) return Array.from(Int32Array.from(selection).sort());
  const out: number[] = [];
  for (let i = 0; i < view.atomics; i++) if (!selection.has(i)) out.push(i);
  return out;
}

/** `listall`: the selection closed over dependencies (up) or reverse dependencies (down). */
export function listAllIn(view: ReadView, selection: Set<number>, up: boolean): number[] {
  // closure reads only `atomics` and `deps` of a Graph.
  return [...closure({ atomics: view.atomics, deps: view.dependencies(), essential: [] }, selection, up)].sort((a, b) => a - b);
}

/** One longrun whose supervisor disagrees with t6-rc. */
export interface DiffEntry {
  name: string;
  /** The longrun's index in the database (and the live state). */
  index: number;
  /** t6-rc's bit. */
  rcUp: boolean;
  /** The supervisor's want-up flag (undefined: status unreadable). */
  supervisorUp: boolean | undefined;
}

/** `diff`: longruns where the supervisor's want-up differs from t6-rc's state. */
export function diffIn(view: ReadView): DiffEntry[] {
  const out: DiffEntry[] = [];
  for (let i = 0; i < view.longruns; i++) {
    const name = view.nameOf(i);
    // LIVE/servicedirs/NAME, through the LIVE link as it is linked into the scandir (live.ts liveServicedir).
    const supervisorUp = readWantUp(`${view.dir}/servicedirs/${name}`);
    const rcUp = view.up(i);
    if (supervisorUp !== rcUp) out.push({ name, index: i, rcUp, supervisorUp });
  }
  return out;
}

/** names[i] for each i of `indexes`: one plain loop, no call per name. */
export function namesAt(names: readonly string[], indexes: readonly number[]): string[] {
  const out = new Array<string>(indexes.length);
  for (let k = 0; k < indexes.length; k++) out[k] = names[indexes[k]!]!;
  return out;
}

/** Whether a writer holds (or held, and died holding) LIVE/lock: its mark is in the file (live.ts lockLive). */
export function liveWriterMarked(live: string): boolean {
  return fs.statSync(`${live}/lock`).size > 0;
}

/**
 * Runs `read` (a read of LIVE) with no writer at work: undefined, without running it or
 * dropping what it read, when a writer's mark is in LIVE/lock, a file it checks is missing,
 * or `state` (replaced whole on every write) or `compiled` (switched by t6-rc-update) moved
 * meanwhile. What it keeps is the state a locked reader would have seen at that instant
 * (rc/run.ts openForReading says why no lock is needed). Errors of `read` propagate.
 */
export function readWithoutWriter<T>(live: string, read: () => T): T | undefined {
  // The inode and change time as Numbers: a bigint stat costs a cold start about 0.3 ms
  // more, and an inode past 2^53 that rounds to its predecessor's would also need the same
  // ctime (a rename sets it) to be taken for it.
  const version = (): string => {
    const st = fs.statSync(`${live}/state`);
    return `${st.ino} ${st.ctimeMs} ${fs.readlinkSync(`${live}/compiled`)}`;
  };
  let before: string;
  try {
    if (liveWriterMarked(live)) return undefined;
    before = version();
  } catch {
    return undefined; // a missing file: the locked path says what is wrong
  }
  const got = read();
  try {
    return version() === before ? got : undefined;
  } catch {
    return undefined;
  }
}

/** A ReadView over a database's reader index and LIVE/state. */
class IndexedView implements ReadView {
  readonly longruns: number;
  readonly atomics: number;
  readonly dir: string;
  private readonly index: DbIndex;
  private readonly state: Buffer;

  constructor(dir: string, index: DbIndex, state: Buffer) {
    this.dir = dir;
    this.index = index;
    this.state = state;
    this.longruns = index.longruns;
    this.atomics = index.atomics;
  }

  up(i: number): boolean { return (this.state[i]! & 1) === 1; }
  indexOf(name: string): number | undefined { return this.index.indexOf(name); }
  nameOf(i: number): string { return this.index.names[i]!; }
  namesOf(indexes: readonly number[]): string[] { return namesAt(this.index.names, indexes); }
  atomicsOf(i: number): readonly number[] { return this.index.atomicsOf(i); }
  dependencies(): readonly (readonly number[])[] { return this.index.dependencies(); }
}

/**
 * LIVE read through its database's index, with no writer at work (readWithoutWriter).
 * undefined when that cannot be done (no index, a writer's mark, a missing file, a state
 * file of the wrong size): the caller reads LIVE the usual way, which also reports what is
 * wrong. Throws IndexDamagedError (db-index.ts) for an index that fails its checks.
 */
export function openIndexed(live: string): ReadView | undefined {
  return readWithoutWriter(live, () => {
    const index = readIndex(`${live}/compiled`);
    if (index === undefined) return undefined;
    let state: Buffer;
    try {
      state = fs.readFileSync(`${live}/state`);
    } catch {
      return undefined;
    }
    return state.length === index.atomics ? new IndexedView(live, index, state) : undefined;
  });
}
