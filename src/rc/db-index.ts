/**
 * The reader index of a compiled database (compiled format 3: db.json as in 2, plus this
 * file): what `t6-rc list`, `listall` and `diff` need and nothing else, so that a reader
 * neither reads nor decodes db.json (99 KB at 1,000 services; issue 12). t6-rc-compile
 * writes it beside db.json, in the same all-or-nothing directory; t6-rc-update switches to
 * another compiled directory whole, so a live database's index always came with its db.json.
 *
 * `compiled/index`, text, one item a line (a name holds no newline: source.ts):
 *
 *   t6-rc-index 1 LONGRUNS ONESHOTS SERVICES DBBYTES
 *   NAME                     × SERVICES, in index order
 *   RECORD                   × SERVICES: a type letter (l, o, b) and, comma-separated,
 *                            the direct dependencies (atomics) or the contents (bundles)
 *   .
 *
 * DBBYTES is db.json's size: an index whose db.json was replaced by another is not used.
 * db.json stays the truth. A reader checks the header, the line count, the end mark and
 * every record it decodes (records are decoded when asked for: `list` decodes none); an
 * index that fails a check is IndexDamagedError, and t6-rc reads db.json instead (saying
 * so). A database without the file (older t6-rc-compile, a test's writeDb) reads db.json.
 */
import fs from 'node:fs';
import type { CompiledDb } from './db.ts';

/** The index's file name in a compiled directory. */
export const INDEX_FILE = 'index';

const MAGIC = 't6-rc-index 1';
/** A record: a type letter, then decimal indexes separated by commas. */
const RECORD = /^[lob](?:\d{1,9}(?:,\d{1,9})*)?$/;

/** Thrown when an index exists but fails a check; the message names the file. */
export class IndexDamagedError extends Error {
  override name = 'IndexDamagedError';
}

/** The text of the index of `db`, whose db.json is `dbJsonBytes` bytes long. */
export function encodeIndex(db: CompiledDb, dbJsonBytes: number): string {
  const names = db.services.map((s) => `${s.name}\n`).join('');
  const records = db.services.map((s) => `${s.type[0]}${(s.type === 'bundle' ? s.contents : s.deps).join(',')}\n`).join('');
  return `${MAGIC} ${db.longruns} ${db.oneshots} ${db.services.length} ${dbJsonBytes}\n${names}${records}.\n`;
}

/** An index as read: names at once, records decoded (and checked) on demand. */
export class DbIndex {
  /** Number of longruns (indexes 0 to longruns-1), then oneshots, then bundles. */
  readonly longruns: number;
  /** Number of atomic services (= size of the live state). */
  readonly atomics: number;
  /** Every service's name, in index order. */
  readonly names: readonly string[];
  /** Where it was read from (for messages). */
  readonly file: string;
  private readonly lines: string[];
  private byName: Map<string, number> | undefined;
  private lookups = 0;
  private deps: number[][] | undefined;

  /** Checks the structure of `text` (the index read from `file`); throws IndexDamagedError. */
  constructor(file: string, text: string, dbJsonBytes: number) {
    this.file = file;
    const lines = text.split('\n');
    const head = lines[0]!.split(' ');
    const [longruns, oneshots, services, bytes] = head.slice(2).map(Number) as [number, number, number, number];
    if (head.length !== 6 || `${head[0]} ${head[1]}` !== MAGIC || ![longruns, oneshots, services, bytes].every((n) => Number.isSafeInteger(n) && n >= 0)) {
      throw new IndexDamagedError(`${file}: not a t6-rc index (bad first line)`);
    }
    if (longruns + oneshots > services || lines.length !== 2 * services + 3 || lines[2 * services + 1] !== '.' || lines[2 * services + 2] !== '') {
      throw new IndexDamagedError(`${file}: truncated or damaged (${lines.length} lines for ${services} services)`);
    }
    if (bytes !== dbJsonBytes) throw new IndexDamagedError(`${file}: written for a db.json of ${bytes} bytes, this one has ${dbJsonBytes}`);
    this.longruns = longruns;
    this.atomics = longruns + oneshots;
    this.lines = lines;
    this.names = lines.slice(1, services + 1);
  }

  /** The index of the service called `name`, or undefined. */
  indexOf(name: string): number | undefined {
    // A few names (the usual command line) are found by the array's own search; a Map of
    // every name costs more than a few such searches at 1,000 services.
    if (this.byName === undefined && this.lookups++ < 8) {
      const i = this.names.indexOf(name);
      return i < 0 ? undefined : i;
    }
    if (this.byName === undefined) {
      this.byName = new Map();
      for (let i = 0; i < this.names.length; i++) this.byName.set(this.names[i]!, i);
    }
    return this.byName.get(name);
  }

  /** The atomic services service `i` stands for: itself, or a bundle's contents. */
  atomicsOf(i: number): number[] {
    return i < this.atomics ? [i] : this.record(i);
  }

  /** deps[i]: the atomic services atomic i depends on directly (every record decoded). */
  dependencies(): readonly (readonly number[])[] {
    if (this.deps === undefined) {
      this.deps = [];
      for (let i = 0; i < this.atomics; i++) this.deps.push(this.record(i));
    }
    return this.deps;
  }

  /** Service i's record: dependencies (atomics) or contents (bundles), each checked. */
  private record(i: number): number[] {
    const line = this.lines[this.names.length + 1 + i]!;
    const type = i < this.longruns ? 'l' : i < this.atomics ? 'o' : 'b';
    if (line[0] !== type || !RECORD.test(line)) throw new IndexDamagedError(`${this.file}: record ${i} is not a ${type} record`);
    if (line.length === 1) return [];
    // Built-ins only (split, map, Math.max): a bundle's 1,000 members decode in compiled
    // code, where a loop of our own would run in the interpreter, cold.
    const out = line.slice(1).split(',').map(Number);
    // (apply takes tens of thousands of arguments, not millions: a larger bundle loops.)
    const max = out.length <= 30_000 ? Math.max.apply(null, out) : out.reduce((a, b) => Math.max(a, b), 0);
    if (max >= this.atomics) throw new IndexDamagedError(`${this.file}: record ${i} names a service that is not atomic`);
    return out;
  }
}

/**
 * Reads the index of the compiled directory `dir` (one read, a stat of db.json). undefined
 * when it has none; IndexDamagedError when it has one that fails its checks.
 */
export function readIndex(dir: string): DbIndex | undefined {
  const file = `${dir}/${INDEX_FILE}`;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new IndexDamagedError(`${file}: unreadable (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const dbJson = fs.statSync(`${dir}/db.json`, { throwIfNoEntry: false });
  if (dbJson === undefined) return undefined; // no database: the reader of db.json says what is wrong
  return new DbIndex(file, text, dbJson.size);
}
