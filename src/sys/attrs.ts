/**
 * Changing the owner and mode of a directory's entries as root without ever going through a
 * symbolic link (fix-attrs.d): the entry is opened once with O_PATH | O_NOFOLLOW, and both
 * changes act on that fd. A link put in the entry's place between a look and a change cannot
 * redirect root's chown to another file: the fd is the object that was looked at.
 */
import fs from 'node:fs';
import { c, errno } from './libc.ts';
import { SysError } from './errors.ts';
import { openAt } from './dirfd.ts';

const O_PATH = 0o10000000;
const AT_EMPTY_PATH = 0x1000;

/** The new owner and the mode for an entry, chosen from its lstat. */
export interface EntryAttrs {
  uid: number;
  gid: number;
  /** The permission bits for this entry (ignored for a symbolic link: a link has none of its own). */
  mode(st: fs.Stats): number;
}

/**
 * Sets the owner (as lchown) and the mode of `name` in the directory `dirfd`, never following
 * a link; a link is given the owner only. Returns the entry's lstat from before the change.
 * Throws SysError (ENOENT…).
 */
export function setAttrsAt(dirfd: number, name: string, attrs: EntryAttrs, dirPath?: string): fs.Stats {
  const shown = dirPath === undefined ? name : `${dirPath}/${name}`;
  const fd = openAt(dirfd, name, O_PATH, 0, dirPath);
  try {
    const st = fs.fstatSync(fd);
    if (c.fchownat(fd, '', attrs.uid, attrs.gid, AT_EMPTY_PATH) !== 0) throw new SysError('chown', errno(), shown);
    // chmod(2) on /proc/self/fd/N reaches the very object the O_PATH fd holds (the kernel
    // has no fchmod for O_PATH fds before fchmodat2); never done on a link.
    if (!st.isSymbolicLink()) {
      try {
        fs.chmodSync(`/proc/self/fd/${fd}`, attrs.mode(st));
      } catch (err) {
        throw new SysError('chmod', (err as NodeJS.ErrnoException).errno === undefined ? 5 : -(err as NodeJS.ErrnoException).errno!, shown);
      }
    }
    return st;
  } finally {
    c.close(fd);
  }
}
