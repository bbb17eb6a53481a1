/**
 * Where a scan dir entry really lives: realpath(3) of SCANDIR/NAME, as s6-supervise
 * chdir()s into it, with the directories above the target resolved once per scan instead
 * of once per service. realpath(3) reads every path component as a possible link (about
 * ten system calls per service under /run/…); a scan dir of a thousand symbolic links into
 * one directory (t6-rc's live servicedirs) shares one parent, so two or three calls each
 * do. Any doubt falls back to realpath(3) itself.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Resolves SCANDIR/NAME; `parents` caches real paths of link-target parents for one scan. */
export function realServicedir(scandir: string, name: string, parents: Map<string, string>): string {
  const entry = path.join(scandir, name);
  const st = fs.lstatSync(entry, { throwIfNoEntry: false });
  let candidate: string | undefined;
  if (st?.isDirectory()) {
    // NAME may be `svc/log`: its parent is resolved, not just the scan dir.
    candidate = path.join(realParent(path.dirname(entry), parents), path.basename(entry));
  } else if (st?.isSymbolicLink()) {
    const link = fs.readlinkSync(entry);
    // `..` after a link means something else to the kernel than to path.resolve: realpath(3).
    if (!link.split('/').some((c) => c === '.' || c === '..')) {
      // A relative target is relative to where the link really is.
      const target = path.resolve(realParent(path.dirname(entry), parents), link);
      candidate = path.join(realParent(path.dirname(target), parents), path.basename(target));
    }
  }
  if (candidate === entry) return entry; // a directory in a scan dir with no link above it
  // The last component must itself be a real directory; a link to a link, or anything
  // unusual, is left to realpath(3).
  if (candidate !== undefined && fs.lstatSync(candidate, { throwIfNoEntry: false })?.isDirectory()) return candidate;
  return fs.realpathSync.native(entry);
}

function realParent(dir: string, parents: Map<string, string>): string {
  let real = parents.get(dir);
  if (real === undefined) {
    real = fs.realpathSync.native(dir);
    parents.set(dir, real);
  }
  return real;
}
