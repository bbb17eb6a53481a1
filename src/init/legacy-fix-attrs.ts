/**
 * fix-attrs.d (s6-overlay's deprecated first oneshot): each file's lines
 *
 *   path recurse account fmode dmode
 *
 * give the owner and modes of the paths a glob names, directories getting dmode and the rest
 * fmode, with `recurse` = `true` descending into directories. Blank lines and lines whose
 * first word is exactly `#` are skipped. Unlike s6-overlay's helper, the recursion visits
 * each entry of a directory on its own (the helper hands the whole listing over as one
 * name, so it fails on any directory of two entries or more), and nothing is followed
 * through a symbolic link: a link gets the owner only, and is never descended into.
 */
import path from 'node:path';
import fs from 'node:fs';
import { type LegacyContext, listEntries, say, stage2Policy } from './legacy-common.ts';
import { type AccountDb, readAccountDb, resolveAccount } from './legacy-accounts.ts';
import { byteOrder, expandGlob } from './legacy-glob.ts';
import { sameFile, setAttrsAt, type EntryAttrs } from '../sys/attrs.ts';
import { listAt, openAt, openDirectory } from '../sys/dirfd.ts';
import { O_DIRECTORY, O_RDONLY, close } from '../sys/fd.ts';
import { SysError, strerror } from '../sys/errors.ts';

const STEP = 'fix-attrs';

/** One parsed line. */
export interface FixAttrsLine {
  pattern: string;
  recurse: boolean;
  account: string;
  fmode: number;
  dmode: number;
}

/** A line's meaning: nothing (blank, comment), its fields, or what is wrong with it. */
export function parseFixAttrsLine(line: string): FixAttrsLine | { error: string } | undefined {
  const words = line.split(/[ \t\r]+/).filter((w) => w !== '');
  if (words.length === 0 || words[0] === '#') return undefined;
  if (words.length !== 5) return { error: `${words.length} field${words.length === 1 ? '' : 's'} where 5 are wanted (path recurse account fmode dmode)` };
  const [pattern, recurse, account, fmode, dmode] = words as [string, string, string, string, string];
  for (const [name, m] of [['fmode', fmode], ['dmode', dmode]] as const) {
    if (!/^[0-7]{1,4}$/.test(m)) return { error: `${name} ${JSON.stringify(m)} is not an octal mode` };
  }
  return { pattern, recurse: recurse === 'true', account, fmode: parseInt(fmode, 8), dmode: parseInt(dmode, 8) };
}

/** An error in words: the call and the path for a system call's failure. */
function describe(err: unknown): string {
  if (err instanceof SysError) return `unable to ${err.syscall}${err.path === undefined ? '' : ` ${err.path}`}: ${strerror(err)}`;
  return strerror(err);
}

/**
 * Applies `attrs` to `name` in `dirfd` (whose path is `dirPath`, '' for the root), then
 * (recursing) to each entry below it, dot-entries only when `hidden`. Each failure goes to
 * `fail` and the others go on.
 */
function applyEntry(dirfd: number, name: string, dirPath: string, attrs: EntryAttrs, walk: { recurse: boolean; hidden: boolean }, fail: (err: unknown) => void): void {
  let st: fs.Stats;
  try {
    st = setAttrsAt(dirfd, name, attrs, dirPath);
  } catch (err) {
    fail(err);
    return;
  }
  if (!walk.recurse || !st.isDirectory()) return;
  const shown = name === '.' ? dirPath || '/' : `${dirPath}/${name}`;
  let sub: number;
  let names: string[];
  try {
    sub = openAt(dirfd, name, O_RDONLY | O_DIRECTORY, 0, dirPath);
  } catch (err) {
    fail(err);
    return;
  }
  try {
    // Another directory renamed into its place since: not descended into.
    if (!sameFile(fs.fstatSync(sub), st)) throw new Error(`${shown} was replaced while being changed`);
    names = listAt(sub, shown).sort(byteOrder);
    for (const n of names) if (walk.hidden || !n.startsWith('.')) applyEntry(sub, n, shown, attrs, walk, fail);
  } catch (err) {
    fail(err);
  } finally {
    close(sub);
  }
}

/** Applies one parsed line to every path its glob names; returns the errors in words. */
function applyLine(spec: FixAttrsLine, ids: { uid: number; gid: number }, hidden: boolean): string[] {
  const errors: string[] = [];
  const attrs: EntryAttrs = { ...ids, mode: (st) => (st.isDirectory() ? spec.dmode : spec.fmode) };
  for (const p of expandGlob(spec.pattern)) {
    // A relative path is taken from / (where s6-overlay's oneshots run; inferred).
    const abs = path.resolve('/', p);
    let dirfd: number;
    try {
      // The parent is reached following links only where root alone could have put them.
      dirfd = openDirectory(path.dirname(abs));
    } catch (err) {
      errors.push(describe(err));
      continue;
    }
    try {
      // The root directory is '' in messages, so that its entries read /name.
      const parent = path.dirname(abs) === '/' ? '' : path.dirname(abs);
      applyEntry(dirfd, path.basename(abs) || '.', parent, attrs, { recurse: spec.recurse, hidden }, (err) => errors.push(describe(err)));
    } finally {
      close(dirfd);
    }
  }
  return errors;
}

/** Applies one fix-attrs.d file; returns how many of its lines failed. */
function applyFile(ctx: LegacyContext, file: string, accounts: () => AccountDb): number {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    say(ctx, 'error', STEP, `unable to read ${file}: ${strerror(err)}`);
    return 1;
  }
  let failures = 0;
  text.split('\n').forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    const spec = parseFixAttrsLine(line);
    if (spec === undefined) return;
    if ('error' in spec) {
      failures++;
      say(ctx, 'error', STEP, `${where}: ${spec.error}`);
      return;
    }
    const ids = resolveAccount(spec.account, accounts());
    const errors = 'error' in ids ? [ids.error] : applyLine(spec, ids, ctx.settings.fixAttrsHidden);
    for (const e of errors) say(ctx, 'error', STEP, `${where}: ${e}`);
    if (errors.length > 0) failures++;
  });
  return failures;
}

/** The `fix-attrs` oneshot: every file of `<legacy>/fix-attrs.d` in order; the stage-2 policy decides the exit code. */
export async function fixAttrs(ctx: LegacyContext): Promise<number> {
  const dir = path.join(ctx.dirs.legacy, 'fix-attrs.d');
  const { names: files, unreadable } = listEntries(ctx, STEP, dir);
  let db: AccountDb | undefined;
  const accounts = (): AccountDb => {
    if (db !== undefined) return db;
    try {
      db = readAccountDb(ctx.dirs.passwd, ctx.dirs.group);
    } catch (err) {
      // Said once; names then resolve to nothing, and only numbers (or fallbacks) work.
      say(ctx, 'error', STEP, `unable to read ${ctx.dirs.passwd} or ${ctx.dirs.group}: ${strerror(err)}`);
      db = { users: new Map(), groups: new Map(), memberOf: new Map() };
    }
    return db;
  };
  let failures = unreadable;
  for (const name of files) {
    say(ctx, 'info', STEP, `applying ${path.join(dir, name)}`);
    failures += applyFile(ctx, path.join(dir, name), accounts);
  }
  if (files.length > 0) say(ctx, 'warning', STEP, `${dir} is deprecated: set owners and modes in the image, or in a oneshot of /etc/s6-overlay/s6-rc.d`);
  return stage2Policy(ctx, STEP, failures);
}
