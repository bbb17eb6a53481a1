/**
 * A logdir's archives (s6-spec/tools.md §8.3, §8.4): a finished file becomes
 * `@<tai64n>.s` (processed or plainly rotated) or `@<tai64n>.u` (found unfinished at
 * start-up), a hard link named after the time of archiving; then the oldest archives are
 * removed while there are more than `n` of them, or (with `S`) while they hold more than
 * `S` bytes. TAI64N names sort in time order, so the oldest come first by name.
 *
 * Synchronous, like every other step of a rotation. A failure to archive throws (the
 * rotation retries the step); a failure to remove an old archive is only reported. Every
 * name is used through the logdir's held directory (logdir-files.ts): only a regular file
 * is archived, and a link put in a file's place is removed, never followed.
 */
import type fs from 'node:fs';
import { tainFormat, type Tain } from '../s6/tai.ts';

/** The 27-character name of an archive: `@`, 24 hex digits of TAI64N, `.s` or `.u`. */
const ARCHIVE = /^@[0-9a-fA-F]{24}\.[su]$/;

/** How many archives are kept (a LogdirSpec is one). */
export interface ArchiveRules {
  /** n: archives kept. */
  readonly maxFiles: number;
  /** S: total archive bytes (0 = no cap). */
  readonly maxTotal: number;
}

/** The logdir's files, by name (a LogdirFiles is one). */
export interface ArchiveDir {
  /** The path of a name, for messages. */
  path(name: string): string;
  /** lstat; undefined if absent. */
  stat(name: string): fs.Stats | undefined;
  link(from: string, to: string): void;
  unlink(name: string): void;
  list(): string[];
}

/** Called when an old archive cannot be removed; trimming goes on. */
export type UnlinkFailed = (file: string, err: unknown) => void;

/**
 * s6-log's finish(): archives `name` as @now.suffix (if it has one link and data),
 * unlinks it, trims. Nothing happens if `name` does not exist.
 */
export function archiveFile(dir: ArchiveDir, rules: ArchiveRules, name: string, suffix: 's' | 'u', now: () => Tain, unlinkFailed: UnlinkFailed): void {
  const st = dir.stat(name);
  if (st === undefined) return;
  if (st.isFile() && st.nlink === 1 && st.size > 0) dir.link(name, `${tainFormat(now())}.${suffix}`);
  dir.unlink(name);
  trimArchives(dir, rules, unlinkFailed);
}

/** Removes the oldest archives while there are more than maxFiles, or they hold more than maxTotal bytes. */
export function trimArchives(dir: ArchiveDir, rules: ArchiveRules, unlinkFailed: UnlinkFailed): void {
  const archives: { name: string; size: number }[] = [];
  let total = 0;
  for (const name of dir.list()) {
    if (!ARCHIVE.test(name)) continue;
    const st = dir.stat(name);
    if (st === undefined) continue;
    archives.push({ name, size: st.size });
    total += st.size;
  }
  const { maxFiles, maxTotal } = rules;
  if (archives.length <= maxFiles && (maxTotal === 0 || total <= maxTotal)) return;
  archives.sort((a, b) => (a.name.slice(1, 26).toLowerCase() < b.name.slice(1, 26).toLowerCase() ? -1 : 1));
  // Bounded by the list: an archive that cannot be removed still counts in `total`.
  for (let i = 0, left = archives.length; i < archives.length && (left > maxFiles || (maxTotal !== 0 && total > maxTotal)); i++, left--) {
    const a = archives[i]!;
    try {
      dir.unlink(a.name);
      total -= a.size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') total -= a.size;
      unlinkFailed(dir.path(a.name), err);
    }
  }
}
