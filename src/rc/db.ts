/**
 * The compiled service database: what t6-rc-compile writes and every other t6-rc tool
 * reads, once, with one JSON.parse. Everything was validated at compile time; loading
 * checks only the format version and the shape.
 *
 * A compiled directory holds:
 *   db.json              CompiledDb, below, written compact (encodeDb: every field at its
 *                        default left out, each source directory named once)
 *   index                the readers' index (db-index.ts): names and dependencies only, for
 *                        t6-rc list/listall/diff; absent from databases of older compilers
 *   servicedirs/NAME/    one ready-to-run s6 service directory per longrun (run, finish,
 *                        notification-fd, timeout-kill, …, env/, data/, as in the source)
 *   lock                 empty; t6-rc takes it shared while it uses the database
 * It is written to a temporary sibling and renamed into place, so it appears whole or not at all.
 *
 * Indexes: longruns first, then oneshots, then bundles (as s6-rc numbers them); the live
 * `state` file has one byte per atomic service (longruns and oneshots) in index order.
 */
import fs from 'node:fs';
import path from 'node:path';
import { strerror } from '../sys/errors.ts';

/**
 * Version of the db.json format; bump on any incompatible change. 2 is 1 made compact: a
 * reader of 2 reads 1 too (a field present is taken as it is).
 */
export const DB_VERSION = 2;

/** Names reserved for the service manager's own services: s6-rc's two prefixes, no more. */
export const RESERVED_PREFIXES = ['s6rc-', 's6-rc-'] as const;

/** Fields every service has. */
interface ServiceBase {
  name: string;
  /** Position in `services` (and, for atomics, in the live state file). */
  index: number;
  /** The source directory it was compiled from (for messages). */
  source: string;
  /** flag-essential: `t6-rc -d` does not stop it; `-D` does. */
  essential: boolean;
}

/** A oneshot or a longrun. */
interface AtomicBase extends ServiceBase {
  /** Direct dependencies as atomic service indexes (bundles already expanded, sorted, unique). */
  deps: number[];
  /** Milliseconds; 0 = no limit. */
  timeoutUp: number;
  timeoutDown: number;
}

/** A oneshot: `up` and `down` were lexed like execlineb into argvs at compile time. */
export interface OneshotService extends AtomicBase {
  type: 'oneshot';
  /** argv of `up`; empty when the script is empty (success, nothing run). */
  up: string[];
  /** argv of `down`; empty when there is no `down` file (nothing to do). */
  down: string[];
}

/** A longrun: supervised by t6-svscan from `servicedirs/NAME`. */
export interface LongrunService extends AtomicBase {
  type: 'longrun';
  /** Whether the servicedir has notification-fd, flag-sd-notify or probe/ (up means ready, not just spawned). */
  readiness: boolean;
  /** Pipeline wiring: index of the consumer this one feeds (producer-for), if any. */
  producerFor: number | undefined;
  /** Indexes of the producers feeding this one (consumer-for). */
  consumerFor: number[];
  /** Name of the pipeline bundle this longrun heads, if `pipeline-name` was given. */
  pipelineName: string | undefined;
  /**
   * up-settle, ms: it counts as up only once it stayed up this long (or, with readiness, at
   * readiness), and dying before is a failure. undefined: the change's `--settle`, if any,
   * else s6-rc's rule (up at `u`, or `U` with readiness).
   */
  upSettle: number | undefined;
}

/** A bundle: a name for a set of atomic services. */
export interface BundleService extends ServiceBase {
  type: 'bundle';
  /** Atomic members as indexes (nested bundles expanded, sorted, unique). */
  contents: number[];
}

/** Any service of the database. */
export type Service = OneshotService | LongrunService | BundleService;

/** db.json, as loaded (every field present). */
export interface CompiledDb {
  version: typeof DB_VERSION;
  /** Number of longruns (they come first). */
  longruns: number;
  /** Number of oneshots (after the longruns). */
  oneshots: number;
  /** Every service, in index order. */
  services: Service[];
}

/** A loaded database with its lookups. */
export interface Db extends CompiledDb {
  /** Directory it was loaded from (absolute). */
  dir: string;
  byName: Map<string, Service>;
  /** Number of atomic services (= size of the live state). */
  atomics: number;
}

/** Thrown when a compiled directory is missing, unreadable or of another format. */
export class DbError extends Error {
  override name = 'DbError';
}

/** Loads a compiled database directory. */
export function loadDb(dir: string): Db {
  const abs = path.resolve(dir);
  const file = path.join(abs, 'db.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    // s6-rc-compile's output (s6-spec/s6-rc.md §3): `db`, `resolve.cdb`, `n`, servicedirs/.
    if (fs.existsSync(path.join(abs, 'resolve.cdb')) && fs.existsSync(path.join(abs, 'db'))) {
      throw new DbError(`${abs} was compiled by s6-rc-compile, whose format t6 does not read: compile the same source directories with t6-rc-compile (it reads s6-rc's source format) and use that`);
    }
    throw new DbError(`unable to read ${file}: ${strerror(err)}`);
  }
  const stored = parsed as StoredDb;
  if (typeof stored !== 'object' || stored === null || (stored.version !== 1 && stored.version !== DB_VERSION) || !Array.isArray(stored.services)) {
    throw new DbError(`${file} is not a t6 compiled database of version ${DB_VERSION}`);
  }
  const db = decodeDb(stored);
  const byName = new Map<string, Service>();
  for (const s of db.services) byName.set(s.name, s);
  return { ...db, dir: abs, byName, atomics: db.longruns + db.oneshots };
}

/** db.json as stored: a service's fields at their defaults may be absent, `source` may index `sources`. */
interface StoredDb {
  version: 1 | typeof DB_VERSION;
  longruns: number;
  oneshots: number;
  sources?: string[];
  services: (Partial<Omit<Service, 'source'>> & { name: string; type: Service['type']; source: string | number })[];
}

/** Defaults of the fields encodeDb leaves out, by service type. */
const DEFAULTS = {
  longrun: { essential: false, deps: [], timeoutUp: 0, timeoutDown: 0, readiness: false, consumerFor: [] },
  oneshot: { essential: false, deps: [], timeoutUp: 0, timeoutDown: 0, up: [], down: [] },
  bundle: { essential: false, contents: [] },
} as const;

/** db.json's text for `db`: compact (defaults left out, sources named once), one line. */
export function encodeDb(db: CompiledDb): string {
  const sources = [...new Set(db.services.map((s) => s.source))];
  const sourceIndex = new Map(sources.map((src, i) => [src, i]));
  const services = db.services.map((s) => {
    const out: Record<string, unknown> = {};
    const defaults: Record<string, unknown> = DEFAULTS[s.type];
    for (const [key, value] of Object.entries(s)) {
      if (key === 'index' || value === undefined) continue;
      const dflt = defaults[key];
      if (dflt !== undefined && (Array.isArray(value) ? (value as unknown[]).length === 0 : value === dflt)) continue;
      out[key] = key === 'source' ? sourceIndex.get(value as string) : value;
    }
    return out;
  });
  return `${JSON.stringify({ version: DB_VERSION, longruns: db.longruns, oneshots: db.oneshots, sources, services })}\n`;
}

/** The loaded form of a stored db.json (version 1 has every field; 2 leaves defaults out). */
function decodeDb(stored: StoredDb): CompiledDb {
  const sources = stored.sources ?? [];
  const list = stored.services;
  const services: Service[] = new Array<Service>(list.length);
  // A plain loop of full literals, one key order per type: this runs once per service
  // before anything is optimised (a spread or Object.entries per service costs ms at 1,000).
  for (let index = 0; index < list.length; index++) {
    const s = list[index] as StoredFields;
    const source = typeof s.source === 'number' ? sources[s.source] ?? '' : s.source;
    const essential = s.essential ?? false;
    if (s.type === 'bundle') {
      services[index] = { name: s.name, index, source, essential, type: 'bundle', contents: s.contents ?? [] };
    } else if (s.type === 'oneshot') {
      services[index] = {
        name: s.name, index, source, essential, deps: s.deps ?? [], timeoutUp: s.timeoutUp ?? 0, timeoutDown: s.timeoutDown ?? 0,
        type: 'oneshot', up: s.up ?? [], down: s.down ?? [],
      };
    } else {
      services[index] = {
        name: s.name, index, source, essential, deps: s.deps ?? [], timeoutUp: s.timeoutUp ?? 0, timeoutDown: s.timeoutDown ?? 0,
        type: 'longrun', readiness: s.readiness ?? false, producerFor: s.producerFor, consumerFor: s.consumerFor ?? [], pipelineName: s.pipelineName,
        upSettle: s.upSettle,
      };
    }
  }
  return { version: DB_VERSION, longruns: stored.longruns, oneshots: stored.oneshots, services };
}

/** Every field a stored service may have (which ones it has depends on its type). */
type StoredFields = Partial<Omit<OneshotService, 'type' | 'source'> & Omit<LongrunService, 'type' | 'source'> & Omit<BundleService, 'type' | 'source'>> & {
  name: string;
  type: Service['type'];
  source: string | number;
};

/** The atomic services a name stands for: itself, or a bundle's contents. */
export function atomicsOf(service: Service): number[] {
  return service.type === 'bundle' ? service.contents : [service.index];
}
