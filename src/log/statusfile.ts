/**
 * A status file (`=file`): the last selected line, replaced atomically — written to
 * `file.new`, then renamed over `file`.
 *
 * The file's directory may be someone else's, like a logdir (logdir-files.ts says why that
 * matters for pid 1), so it is treated the same way: the directory is opened on the first
 * write (a link on the way followed only inside root's own directories) and held until the
 * logger ends; `file.new` is opened through it without following a link and must be a
 * regular file (with one link, for a root writer in root's directory); both names are used
 * with the rights of the directory's owner when that is not root and we are.
 */
import fs from 'node:fs';
import path from 'node:path';
import { openDirectory, openFileAt, renameAt } from '../sys/dirfd.ts';
import { withFileRights } from '../sys/identity.ts';
import { close as sysClose, O_WRONLY, O_CREAT, O_TRUNC } from '../sys/fd.ts';
import { directoryRights, type DirectoryRights } from './logdir-files.ts';

export class StatusFile {
  readonly file: string;
  #dirfd = -1;
  #rights: DirectoryRights = { owner: undefined, singleLink: false };

  constructor(file: string) {
    this.file = file;
  }

  /** Replaces the file's content with `data` (new files get `mode`). Throws SysError or UnsafeFileError. */
  write(data: Buffer, mode: number): void {
    if (this.#dirfd < 0) this.#openDir();
    const base = path.basename(this.file);
    const dir = path.dirname(this.file);
    withFileRights(this.#rights.owner, () => {
      const fd = openFileAt(this.#dirfd, `${base}.new`, O_WRONLY | O_CREAT | O_TRUNC, mode, { singleLink: this.#rights.singleLink, dirPath: dir });
      try {
        for (let off = 0; off < data.length;) off += fs.writeSync(fd, data, off, data.length - off);
      } finally {
        sysClose(fd);
      }
      renameAt(this.#dirfd, `${base}.new`, base, dir);
    });
  }

  /** Lets go of the directory. */
  close(): void {
    if (this.#dirfd >= 0) sysClose(this.#dirfd);
    this.#dirfd = -1;
  }

  #openDir(): void {
    const fd = openDirectory(path.dirname(this.file));
    try {
      this.#rights = directoryRights(fd);
    } catch (err) {
      sysClose(fd);
      throw err;
    }
    this.#dirfd = fd;
  }
}
