/**
 * Supervisors follow their directory when it is renamed.
 *
 * The scanner knows a service directory by its device and inode (slots.ts), so a directory
 * renamed while supervised — by hand inside the scan dir, or moved into a new live
 * directory by t6-rc-update while its scan dir link, through the LIVE symlink, now leads
 * there — is the same service and keeps its supervisor. s6-supervise lives in its
 * directory (it is its cwd) and follows a rename without knowing. A t6 Supervisor reaches
 * its files by path; so at each scan, the path of every running supervisor is checked
 * (one lstat), and a supervisor whose directory is no longer there is told where it now is.
 * The fds it holds in the directory (lock, control FIFO) and `run`'s cwd need nothing.
 */
import path from 'node:path';
import { strerror } from '../sys/errors.ts';
import type { EntryStat, ScannerFiles } from './scanner-host.ts';
import { slotPath, slots, type ServiceEntry, type Slot } from './slots.ts';

/** What following needs from the scanner. */
export interface FollowContext {
  scandir: string;
  files: ScannerFiles;
  report(level: 'warning', message: string): void;
}

/**
 * Moves the supervisors of `entries` whose directory now lives elsewhere; `realParents` is
 * the scan's cache for realServicedir. A supervisor that cannot be followed stays where it
 * is (reported); returns false then, for a scan retry.
 */
export function followMoves(ctx: FollowContext, entries: readonly ServiceEntry[], realParents: Map<string, string>): boolean {
  let ok = true;
  for (const entry of entries) {
    for (const slot of slots(entry)) {
      const sup = slot.sup;
      if (sup === undefined || sup.state === 'gone' || !moved(ctx.files, entry, slot, sup.dir)) continue;
      const name = slotPath(entry, slot);
      try {
        const dir = ctx.files.realServicedir(ctx.scandir, name, realParents);
        const want = slot === entry.main ? entry.key : identity(ctx.files.statIfExists(path.join(ctx.scandir, name)));
        if (identity(ctx.files.statIfExists(dir)) !== want) throw new Error(`${dir} is not the directory ${path.join(ctx.scandir, name)} leads to (it changed meanwhile)`);
        sup.moveTo(dir);
      } catch (err) {
        ctx.report('warning', `unable to follow ${sup.dir} to ${path.join(ctx.scandir, name)}: ${strerror(err)} - supervising it where it was; retrying at the next scan`);
        ok = false;
      }
    }
  }
  return ok;
}

/**
 * Whether the directory of a slot's supervisor is no longer at `dir`, the real path it was
 * found at. lstat, not stat: where the directory was, a link to where it went may be left
 * (t6-rc-update leaves one until this scan), so that nothing is missed meanwhile.
 */
function moved(files: ScannerFiles, entry: ServiceEntry, slot: Slot, dir: string): boolean {
  try {
    // The service's directory is known by its identity.
    if (slot === entry.main) return identity(files.lstatIfExists(dir)) !== entry.key;
    // A logger's is not: it moved when its parent is no longer a directory there (the
    // service's directory moved, `log/` with it) or its path leads nowhere. A `log` link
    // pointed elsewhere leaves it on its own directory, as s6-supervise stays in its cwd.
    return files.lstatIfExists(path.dirname(dir))?.isDirectory !== true || files.statIfExists(dir) === undefined;
  } catch {
    return true; // cannot be told: try to follow it, which says why not
  }
}

/** `dev:ino` of a directory, if there is one. */
function identity(st: EntryStat | undefined): string | undefined {
  return st?.isDirectory === true ? `${st.dev}:${st.ino}` : undefined;
}
