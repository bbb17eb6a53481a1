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

const O_RDONLY = 0;
const O_PATH = 0o10000000;
const AT_EMPTY_PATH = 0x1000;
const EIO = 5;

/** The new owner and the mode for an entry, chosen from its lstat. */
export interface EntryAttrs {
  uid: number;
  gid: number;
  /** The permission bits for this entry (ignored for a symbolic link: a link has none of its own). */
  mode(st: fs.Stats): number;
}

/** The positive errno of a Node fs error (libuv's are negative), EIO when it has none. */
function errnoOf(err: unknown): number {
  const n = (err as NodeJS.ErrnoException).errno;
  return n === undefined ? EIO : Math.abs(n);
}

/** Whether two stats are of the same file. */
export function sameFile(a: fs.Stats, b: fs.Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * chmod of what the O_PATH fd `fd` holds: through /proc/self/fd/N, which reaches that very
 * object (the kernel has no fchmod for O_PATH fds before fchmodat2). Without /proc, a regular
 * file or a directory is opened again without following links, checked to be the same
 * file, and fchmod'ed; anything else then fails.
 */
function chmodHeld(fd: number, st: fs.Stats, dirfd: number, name: string, mode: number, shown: string): void {
  try {
    fs.chmodSync(`/proc/self/fd/${fd}`, mode);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !(st.isFile() || st.isDirectory())) throw new SysError('chmod', errnoOf(err), shown);
  }
  const again = openAt(dirfd, name, O_RDONLY);
  try {
    if (!sameFile(fs.fstatSync(again), st)) throw new Error(`${shown} was replaced while being changed`);
    fs.fchmodSync(again, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === undefined) throw err;
    throw new SysError('chmod', errnoOf(err), shown);
  } finally {
    c.close(again);
  }
}

/**
 * Sets the owner (as lchown) and the mode of `name` in the directory `dirfd`, never following
 * a link; a link is given the owner only. Returns the entry's lstat from before the change.
 * Throws SysError (ENOENT…), or an Error when the entry was replaced meanwhile.
 */
export function setAttrsAt(dirfd: number, name: string, attrs: EntryAttrs, dirPath?: string): fs.Stats {
  const shown = dirPath === undefined ? name : `${dirPath}/${name}`;
  const fd = openAt(dirfd, name, O_PATH, 0, dirPath);
  try {
    const st = fs.fstatSync(fd);
    if (c.fchownat(fd, '', attrs.uid, attrs.gid, AT_EMPTY_PATH) !== 0) throw new SysError('chown', errno(), shown);
    if (!st.isSymbolicLink()) chmodHeld(fd, st, dirfd, name, attrs.mode(st), shown);
    return st;
  } finally {
    c.close(fd);
  }
}
