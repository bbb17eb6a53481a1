/**
 * Where boot analysis keeps its records: LIVE/timings/ (LIVE is in /run: gone at the next
 * boot, as the records should be). `boot.json` is pid 1's boot change; `change-N.json` are
 * the later changes, numbered from 1 in this live directory, the last KEEP_CHANGES kept.
 * Each file is written beside its name and renamed over it, so a reader sees a whole
 * record or the one before. Changes of one live directory never run at once (LIVE/lock),
 * so numbering from the directory's listing is safe.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TIMINGS_VERSION, type TimingRecord } from './timings.ts';
import { errorCode, strerror } from '../sys/errors.ts';

/** The records' directory in a live directory. */
export const TIMINGS_DIR = 'timings';
/** How many later changes are kept (the boot's record is kept besides). */
export const KEEP_CHANGES = 16;

const CHANGE_FILE = /^change-(\d+)\.json$/;
const BOOT_FILE = 'boot.json';

/** A record that cannot be found or read. */
export class TimingsError extends Error {
  override name = 'TimingsError';
}

/** Which record: the boot's, change number N, or the last one made. */
export type RecordChoice = 'boot' | 'last' | number;

/** One stored record, by name. */
export interface StoredRecord {
  kind: 'boot' | 'change';
  seq: number;
  file: string;
}

/** The records of LIVE, oldest first (the boot's first). */
export function listRecords(live: string): StoredRecord[] {
  const dir = path.join(live, TIMINGS_DIR);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return [];
    throw new TimingsError(`unable to read ${dir}: ${strerror(err)}`);
  }
  const changes = names.flatMap((n) => {
    const m = CHANGE_FILE.exec(n);
    return m === null ? [] : [{ kind: 'change' as const, seq: Number(m[1]), file: path.join(dir, n) }];
  }).sort((a, b) => a.seq - b.seq);
  return [...(names.includes(BOOT_FILE) ? [{ kind: 'boot' as const, seq: 0, file: path.join(dir, BOOT_FILE) }] : []), ...changes];
}

/**
 * Writes the record `make(seq)` builds (the boot's as boot.json, a change's as the next
 * number) and drops the changes beyond the last KEEP_CHANGES. Returns the file. Throws.
 */
export function saveRecord(live: string, kind: 'boot' | 'change', make: (seq: number) => TimingRecord): string {
  const dir = path.join(live, TIMINGS_DIR);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const changes = listRecords(live).filter((r) => r.kind === 'change');
  const seq = kind === 'boot' ? 0 : (changes.at(-1)?.seq ?? 0) + 1;
  const file = path.join(dir, kind === 'boot' ? BOOT_FILE : `change-${seq}.json`);
  const tmp = `${file}.new`;
  fs.writeFileSync(tmp, `${JSON.stringify(make(seq))}\n`, { mode: 0o644 });
  fs.renameSync(tmp, file);
  if (kind === 'change') {
    for (const old of changes.slice(0, Math.max(0, changes.length + 1 - KEEP_CHANGES))) fs.rmSync(old.file, { force: true });
  }
  return file;
}

/** Reads one record. Throws TimingsError when there is none or it is not a record of this version. */
export function loadRecord(live: string, choice: RecordChoice): TimingRecord {
  const all = listRecords(live);
  const found = choice === 'last' ? all.at(-1)
    : choice === 'boot' ? all.find((r) => r.kind === 'boot')
      : all.find((r) => r.kind === 'change' && r.seq === choice);
  if (found === undefined) {
    const what = choice === 'last' ? 'no record' : choice === 'boot' ? 'no record of the boot' : `no record of change ${choice}`;
    const have = all.map((r) => (r.kind === 'boot' ? 'boot' : String(r.seq))).join(', ');
    throw new TimingsError(`${what} in ${path.join(live, TIMINGS_DIR)}${have === '' ? '' : ` (there are: ${have})`}`);
  }
  let record: TimingRecord;
  try {
    record = JSON.parse(fs.readFileSync(found.file, 'utf8')) as TimingRecord;
  } catch (err) {
    throw new TimingsError(`unable to read ${found.file}: ${strerror(err)}`);
  }
  if (record.version !== TIMINGS_VERSION || !Array.isArray(record.services)) throw new TimingsError(`${found.file}: not a timing record of version ${TIMINGS_VERSION}`);
  return record;
}

/**
 * Moves the records from one real live directory to the next (t6-rc-update, once LIVE
 * points at the new one), so the boot's record outlives a database update. Throws, but
 * not for a directory that has none.
 */
export function carryRecords(fromReal: string, toReal: string): void {
  try {
    fs.renameSync(path.join(fromReal, TIMINGS_DIR), path.join(toReal, TIMINGS_DIR));
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err;
  }
}
