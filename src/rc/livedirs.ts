/**
 * The live directories of one LIVE over its updates (s6-spec/s6-rc.md §8, step 5): each
 * t6-rc-update builds a new one next to LIVE, moves the servicedirs of carried-over
 * services into it, switches LIVE, and leaves no other live directory behind.
 *
 * A carried-over servicedir is *renamed*, not copied: the same directory, so the same
 * supervisor (scanners know a servicedir by device and inode), the same fds held in it and
 * the same process, whose cwd it is. s6-supervise lives in its directory and never notices;
 * t6-svscan's supervisors follow the rename at the next scan (supervise/follow.ts), which
 * t6-rc-update asks for right after the switch.
 *
 * Until then, a link where each one was leads to where it is now: t6-svscan's supervisor,
 * if it must restart the service or write its status meanwhile, finds it all the same.
 *
 * (A t6-svscan image older than this does not follow; the links then stay until one does:
 * after its re-exec, the next update removes them.)
 *
 * What is left of an old live directory goes as soon as nothing uses it: everything but
 * servicedirs at once, each servicedir once no supervisor runs on it any more (the
 * services an update removed are stopped, and their supervisors end, first). A servicedir
 * whose supervisor is still ending keeps its live directory — reduced to `servicedirs/`,
 * without `compiled` — until a later update finds it unused. Older t6 versions left such
 * reduced directories too (with links between them); they are cleaned up the same way.
 */
import fs from 'node:fs';
import path from 'node:path';
import { svOk } from '../s6/client.ts';
import { strerror } from '../sys/errors.ts';

/** One servicedir to move into the new live directory. */
export interface Move {
  from: string;
  to: string;
}

/**
 * The point of no return of an update: every carried-over servicedir renamed into `real`
 * (a link left where it was), then LIVE switched to it (a new symlink renamed over it). On
 * failure every rename done is undone, LIVE is untouched, and a SwitchError thrown; if a
 * servicedir could not be moved back (its `stuck`), `real` holds it and must not be removed.
 */
export function moveAndSwitch(live: string, real: string, moves: readonly Move[]): void {
  const done: Move[] = [];
  const tmpLink = `${live}:t6-rc-update:link`;
  try {
    for (const m of moves) {
      fs.renameSync(m.from, m.to);
      done.push(m);
      // Where it was, a link to where it is, until the old live dir goes: a supervisor that
      // reaches its directory by path (t6-svscan's, until its next scan) finds it meanwhile.
      fs.symlinkSync(m.to, m.from);
    }
    remove(tmpLink);
    fs.symlinkSync(path.basename(real), tmpLink);
    fs.renameSync(tmpLink, live);
  } catch (err) {
    remove(tmpLink);
    const stuck: string[] = [];
    for (const m of done.reverse()) {
      try {
        if (fs.lstatSync(m.from, { throwIfNoEntry: false })?.isSymbolicLink() === true) fs.unlinkSync(m.from);
        fs.renameSync(m.to, m.from);
      } catch (e) {
        stuck.push(`${m.to} (${strerror(e)})`);
      }
    }
    throw new SwitchError(err, stuck);
  }
}

/** The switch failed; `stuck` lists the servicedirs that could not be moved back. */
export class SwitchError extends Error {
  override name = 'SwitchError';
  readonly stuck: readonly string[];
  constructor(cause: unknown, stuck: readonly string[]) {
    super(stuck.length === 0 ? strerror(cause) : `${strerror(cause)}; and unable to move back ${stuck.join(', ')}`);
    this.stuck = stuck;
  }
}

/**
 * Replaces the scan dir link `at` with one to `target`, atomically (a link next to it,
 * dot-named so that no scanner takes it for a service, renamed over it): the scanner never
 * sees the service missing. Nothing is done when the link is right already.
 */
export function replaceLink(target: string, at: string): void {
  try {
    if (fs.readlinkSync(at) === target) return;
  } catch { /* absent, or not a link: replaced below */ }
  const tmp = path.join(path.dirname(at), `.${path.basename(at)}:t6-rc-update`);
  remove(tmp);
  fs.symlinkSync(target, tmp);
  fs.renameSync(tmp, at);
}

/**
 * Removes what is left of LIVE's old live directories: `replaced` (the one LIVE pointed to
 * before this update) and every other `LIVE:t6-rc-init:*` or `LIVE:t6-rc-update:*` directory
 * that is no longer a whole live directory (it holds `servicedirs/` but no `compiled`: one
 * being built has `compiled` first). `current` is never touched. Servicedirs a supervisor
 * still runs on stay, and so does their live directory; so do the links left where moved
 * servicedirs were, unless `followed` (the scanner's supervisors no longer use them).
 * Returns what could not be removed, as messages; never throws.
 */
export async function removeOldLiveDirs(live: string, current: string, replaced: string, followed: boolean): Promise<string[]> {
  const problems: string[] = [];
  const parent = path.dirname(live);
  const prefixes = [`${path.basename(live)}:t6-rc-init:`, `${path.basename(live)}:t6-rc-update:`];
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch (err) {
    return [`unable to read ${parent}: ${strerror(err)}`];
  }
  for (const name of names) {
    const dir = path.join(parent, name);
    if (dir === current || !prefixes.some((p) => name.startsWith(p))) continue;
    try {
      if (fs.lstatSync(dir).isDirectory() && (dir === replaced || isLeftOver(dir))) await removeLiveDir(dir, followed);
    } catch (err) {
      problems.push(`unable to remove ${dir}: ${strerror(err)}`);
    }
  }
  return problems;
}

function isLeftOver(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'servicedirs')) && fs.lstatSync(path.join(dir, 'compiled'), { throwIfNoEntry: false }) === undefined;
}

/** Everything in `dir` but the servicedirs still supervised (and, unless `followed`, links); `dir` itself once empty. */
async function removeLiveDir(dir: string, followed: boolean): Promise<void> {
  for (const entry of fs.readdirSync(dir)) {
    if (entry !== 'servicedirs') remove(path.join(dir, entry));
  }
  const servicedirs = path.join(dir, 'servicedirs');
  let kept = 0;
  for (const name of readdirIfExists(servicedirs)) {
    const sd = path.join(servicedirs, name);
    const st = fs.lstatSync(sd);
    if (st.isSymbolicLink() ? !followed : st.isDirectory() && await supervised(sd)) kept++;
    else remove(sd);
  }
  if (kept > 0) return;
  remove(servicedirs);
  fs.rmdirSync(dir);
}

/** Removes a file, a link (not what it points to, and even when that is gone) or a whole directory. */
function remove(p: string): void {
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  if (st === undefined) return;
  // fs.rmSync takes a dangling link for something already gone and leaves it.
  if (st.isDirectory()) fs.rmSync(p, { recursive: true, force: true });
  else fs.unlinkSync(p);
}

/** Whether a supervisor still holds `sd`'s lock; when that cannot be told, as if it did. */
async function supervised(sd: string): Promise<boolean> {
  try {
    return await svOk(sd);
  } catch {
    return true;
  }
}

function readdirIfExists(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
