/**
 * What the service object (servicejson.ts) needs from a service directory beyond its
 * status record: the death tally, where the service's output goes, and whether t6-svscan
 * serves the directory itself; `describeServicedir` puts them together with a probe.
 *
 * Only node:fs, no koffi: t6-svstat starts without the system layer. Nothing here throws
 * for a directory it cannot read: the object says so in its `error` field.
 */
import { readHealth } from './healthfile.ts';
import type { Tain } from './tai.ts';
import { ClientError, type ScanEntry, hasDownFile } from './client.ts';
import { type DeathRecord, decodeDeathTally } from './deathtally.ts';
import { SHUTDOWND_FIFO, SHUTDOWND_SERVICE } from './initctl.ts';
import {
  type InsideScanner, type LoggerJson, type ServiceJson, supervisedService, unknownService,
} from './servicejson.ts';
import { isDirectory } from '../sys/stat.ts';
import { strerror } from '../sys/errors.ts';

// Through getBuiltinModule, as client.ts does: an ESM import of node:fs costs start-up time.
const fs = process.getBuiltinModule('node:fs');
const path = process.getBuiltinModule('node:path');

/** The file in a `log/` directory (or the catch-all's) that asks t6-svscan for an in-process logger. */
export const LOGGER_SCRIPT_FILE = 't6-log';
/** The servicedir file naming the consumer that t6-svscan pipes a producer's output into. */
export const PRODUCER_FOR_FILE = 'producer-for';

/** What a service's `log/` asks t6-svscan for. */
export type LogDirKind = 'none' | 'external' | 'inproc';

const exists = (file: string): boolean => fs.existsSync(file);

/**
 * What `DIR/log` asks for: nothing (no `log/`), an in-process logger (`log/t6-log` and no
 * `log/run`), else a supervised `log/run`, as s6-svscan would have it.
 */
export function logDirKind(serviceDir: string): LogDirKind {
  const logDir = path.join(serviceDir, 'log');
  if (!isDirectory(logDir)) return 'none';
  if (!exists(path.join(logDir, 'run')) && exists(path.join(logDir, LOGGER_SCRIPT_FILE))) return 'inproc';
  return 'external';
}

/** Where DIR's output goes, in the JSON's words: its `log/`, else a pipeline's consumer, else no logger of its own. */
export function loggerOf(serviceDir: string): LoggerJson {
  const kind = logDirKind(serviceDir);
  if (kind === 'inproc') return 'in-process';
  if (kind === 'external' || exists(path.join(serviceDir, PRODUCER_FOR_FILE))) return 'external';
  return 'none';
}

/**
 * What t6-svscan does itself in DIR, a directory with no `run`: an in-process logger (a
 * `t6-log` file: the catch-all, or a service's `log/`), or the shutdown daemon (its FIFO).
 * Such a directory has no supervisor, and that is no failure.
 */
export function insideScanner(dir: string): InsideScanner | undefined {
  if (exists(path.join(dir, 'run'))) return undefined;
  if (exists(path.join(dir, LOGGER_SCRIPT_FILE))) return 'logger';
  if (path.basename(dir) !== SHUTDOWND_SERVICE) return undefined;
  try {
    return fs.statSync(path.join(dir, SHUTDOWND_FIFO), { throwIfNoEntry: false })?.isFIFO() === true ? 'shutdownd' : undefined;
  } catch {
    return undefined; // cannot look: not known to be the daemon's
  }
}

/** The records of `DIR/supervise/death_tally`, oldest first; none when there is no such file. */
export function readDeathTally(dir: string): DeathRecord[] {
  const file = path.join(dir, 'supervise', 'death_tally');
  try {
    return decodeDeathTally(fs.readFileSync(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ClientError('system', dir, `unable to read ${file}: ${strerror(err)}`);
  }
}

/** A service's name as s6 gives it: the directory's base name, `NAME/log` for a logger. */
export function serviceNameOf(dir: string): string {
  const abs = path.resolve(dir);
  const base = path.basename(abs);
  return base === 'log' ? `${path.basename(path.dirname(abs))}/log` : base;
}

/**
 * The service object of servicedir `entry.dir`, named `entry.name`, from what its probe
 * found: with a supervisor, its status record, `down` file and death tally read at `now`;
 * without one, what its files say. A file that cannot be read leaves its facts null and
 * says why in `error`.
 */
export function describeServicedir(entry: ScanEntry, now: Tain): ServiceJson {
  const { name, dir } = entry;
  const logger = loggerOf(dir);
  if (entry.supervised === 'error') return { ...unknownService(name, 'longrun', logger), error: entry.error.message };
  try {
    if (entry.supervised) return { ...supervisedService(name, logger, { status: entry.status, normallyUp: entry.normallyUp, now }, readDeathTally(dir)), health: readHealth(dir) };
    const inside = insideScanner(dir);
    if (inside !== undefined) return { ...unknownService(name, 'inside-scanner', logger), insideScanner: inside };
    return { ...unknownService(name, 'longrun', logger), normallyUp: !hasDownFile(dir) };
  } catch (err) {
    if (!(err instanceof ClientError)) throw err;
    return { ...unknownService(name, 'longrun', logger), error: err.message };
  }
}
