/**
 * Supervisors follow their directory when it is renamed.
 *
 * The scanner knows a service directory by its device and inode (slots.ts), so a directory
 * renamed while supervised — by hand inside the scan dir, or moved into a new live
 * directory by t6-rc-update while its scan dir link, through the LIVE symlink, now leads
 * there — is the same service and keeps its supervisor. s6-supervise lives in its
 * directory (it is its cwd) and follows a rename without knowing. A t6 Supervisor reaches
 * its files by path; so at each scan, the path of every running supervisor is checked
 * (one stat), and a supervisor whose directory is no longer there is told where it now is.
 * The fds it holds in the directory (lock, control FIFO) and `run`'s cwd need nothing.
 */
import path from 'node:path';
import { strerror } from '../sys/errors.ts';
import type { ScannerFiles } from './scanner-host.ts';
import { slotPath, slots, type ServiceEntry } from './slots.ts';

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
      if (sup === undefined || sup.state === 'gone') continue;
      // The service's directory is known by identity. A logger's is not: it moved when its
      // path leads nowhere now (a `log/` subdirectory, moved along); a `log` link pointed
      // somewhere else leaves it on its own directory, as s6-supervise stays in its cwd.
      const here = identity(ctx.files, sup.dir);
      if (slot === entry.main ? here === entry.key : here !== undefined) continue;
      const name = slotPath(entry, slot);
      try {
        const dir = ctx.files.realServicedir(ctx.scandir, name, realParents);
        const want = slot === entry.main ? entry.key : identity(ctx.files, path.join(ctx.scandir, name));
        if (identity(ctx.files, dir) !== want) throw new Error(`${dir} is not the directory ${path.join(ctx.scandir, name)} leads to (it changed meanwhile)`);
        if (dir !== sup.dir) sup.moveTo(dir);
      } catch (err) {
        ctx.report('warning', `unable to follow ${sup.dir} to ${path.join(ctx.scandir, name)}: ${strerror(err)} - supervising it where it was; retrying at the next scan`);
        ok = false;
      }
    }
  }
  return ok;
}

/** `dev:ino` of what `p` leads to, or undefined when nothing does (or it cannot be told). */
function identity(files: ScannerFiles, p: string): string | undefined {
  try {
    const st = files.statIfExists(p);
    return st === undefined ? undefined : `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}
