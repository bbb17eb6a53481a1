/**
 * The files of one logdir, reached only through its directory fd, and with its owner's
 * rights.
 *
 * s6 practice gives a logdir to a log user (`t6-linux-init-maker -u` gives it
 * /run/uncaught-logs), and runs `s6-setuidgid user s6-log …`: whatever that user puts in
 * the logdir, s6-log can do no more than the user could. t6 logs from inside pid 1, as
 * root, so it takes the same rights itself:
 *
 * - **A logdir not owned by root is written with its owner's rights**: every file
 *   operation on it (open, create, rename, link, unlink, list, stat) runs with the
 *   directory's uid and gid as filesystem ids and no supplementary groups
 *   (sys/identity.ts `withFileRights`, per thread, on the main thread where all of them
 *   run synchronously). Writes to an fd already open need no rights and are not wrapped.
 *   A processor (`?`) of such a logdir runs as that uid and gid too. The other choice —
 *   refusing such a logdir, with a message saying to chown it to root — was rejected: it
 *   breaks the layout s6 users have (and `-u`), and root-owned logdirs still need the
 *   care below.
 * - **Nothing is reached through a link**: the directory is opened once (a link on the
 *   way is followed only inside root's own directories, sys/dirfd.ts `openDirectory`) and
 *   held for the logger's life, so renaming it moves nothing; every file in it is opened
 *   relative to that fd with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) (or O_NOFOLLOW),
 *   non-blocking (a FIFO cannot hang pid 1), then checked with fstat: only a regular file
 *   is used. Modes change with fchmod on the open fd, never by name.
 * - **A root writer refuses a file with more than one link** (in a root-owned logdir that
 *   someone else may write in, a hard link could name any file).
 *
 * A refusal is an ordinary failure of the step (`unable to open X: Too many levels of
 * symbolic links`, `…: Not a regular file (a FIFO)`): the logdir reports it, keeps its
 * lines and retries, as it does on a full disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  openDirectory, openFileAt, statAt, unlinkAt, renameAt, linkAt, listAt,
} from '../sys/dirfd.ts';
import { withFileRights, type Identity } from '../sys/identity.ts';
import { close as sysClose, tryLock, O_WRONLY, O_CREAT, O_EXCL } from '../sys/fd.ts';
import { errorCode, strerror } from '../sys/errors.ts';

/** A logdir that cannot be opened at start-up (busy lock, unwritable directory, a link…). */
export class LogdirError extends Error {
  override name = 'LogdirError';
  readonly dir: string;
  constructor(dir: string, message: string) {
    super(message);
    this.dir = dir;
  }
}

/** A step of a rotation that failed on one file: `step` names it (`open DIR/state`), `cause` says why. */
export class LogdirStepError extends Error {
  override name = 'LogdirStepError';
  readonly step: string;
  override readonly cause: unknown;
  constructor(step: string, cause: unknown) {
    super(`unable to ${step}: ${strerror(cause)}`);
    this.step = step;
    this.cause = cause;
  }
}

/** The rights a held directory is used with (see the header). */
export interface DirectoryRights {
  /** The directory's owner and group when that is not root and we are; undefined: our own. */
  readonly owner: Identity | undefined;
  /** Root in root's directory: a file with more than one link is refused. */
  readonly singleLink: boolean;
}

/** The rights to use the directory `fd` with. */
export function directoryRights(fd: number): DirectoryRights {
  const st = fs.fstatSync(fd);
  const root = process.geteuid?.() === 0;
  const owner = root && st.uid !== 0 ? { uid: st.uid, gid: st.gid } : undefined;
  return { owner, singleLink: root && owner === undefined };
}

/** The held directory of a logdir and the rights its files are used with. */
export class LogdirFiles {
  readonly dir: string;
  /** The directory's fd, held until `close`. */
  readonly fd: number;
  /** Whose rights file operations take: the logdir's owner when it is not root and we are; undefined: our own. */
  readonly owner: Identity | undefined;
  /** Root writing in root's logdir: a file with several links is refused. */
  readonly #singleLink: boolean;
  #closed = false;

  private constructor(dir: string, fd: number, owner: Identity | undefined, singleLink: boolean) {
    this.dir = dir;
    this.fd = fd;
    this.owner = owner;
    this.#singleLink = singleLink;
  }

  /** Opens (making it 0700 if missing) and holds the logdir `dir`. Throws SysError. */
  static open(dir: string): LogdirFiles {
    const fd = openDirectory(dir, 0o700);
    try {
      const { owner, singleLink } = directoryRights(fd);
      return new LogdirFiles(dir, fd, owner, singleLink);
    } catch (err) {
      sysClose(fd);
      throw err;
    }
  }

  /**
   * Opens and holds the logdir `dir` (making it 0700 if missing), then opens and locks its
   * `lock`. Throws LogdirError, in s6's shape: `unable to lock DIR/lock: …`.
   */
  static openLocked(dir: string, mask: number): { files: LogdirFiles; lockFd: number } {
    const fail = (what: string, err: unknown): never => { throw new LogdirError(dir, `unable to ${what}: ${strerror(err)}`); };
    const call = (err: unknown): string | undefined => (err as { syscall?: string }).syscall;
    let files: LogdirFiles | undefined;
    try { files = LogdirFiles.open(dir); } catch (err) { fail(`${call(err) === 'mkdir' ? 'mkdir' : 'open'} ${dir}`, err); }
    const lock = files!.path('lock');
    let lockFd: number | undefined;
    try { lockFd = files!.lock(mask); } catch (err) { files!.close(); fail(`${call(err) === 'fcntl' ? 'lock' : 'open'} ${lock}`, err); }
    if (lockFd === undefined) { files!.close(); throw new LogdirError(dir, `unable to lock ${lock}: Device or resource busy`); }
    return { files: files!, lockFd: lockFd! };
  }

  /** The path of `name` (for messages). */
  path(name: string): string { return path.join(this.dir, name); }

  /** Runs `fn` with the rights file operations on this logdir take. */
  as<T>(fn: () => T): T { return withFileRights(this.owner, fn); }

  /** Opens a regular file of the logdir (see the header); `mode` for a file it creates. */
  open(name: string, flags: number, mode = 0): number {
    return this.as(() => openFileAt(this.fd, name, flags, mode, { singleLink: this.#singleLink, dirPath: this.dir }));
  }

  /**
   * Opens `lock` and takes its lock (an OFD lock, s6-log's); undefined if another logger
   * holds it. Throws SysError (`open`, or `fcntl` for the lock) or UnsafeFileError.
   */
  lock(mask: number): number | undefined {
    const fd = this.open('lock', O_WRONLY | O_CREAT, mask);
    let locked = false;
    try {
      locked = tryLock(fd, this.path('lock'));
    } finally {
      if (!locked) sysClose(fd);
    }
    return locked ? fd : undefined;
  }

  /**
   * Creates `name` afresh (O_CREAT | O_EXCL: nothing already there is opened, a link least
   * of all) and opens it with `flags`. Whatever is in the way was put there by someone else
   * (the caller had just renamed the file away): it is removed, after `removing` is told.
   */
  create(name: string, flags: number, mode: number, removing: () => void): number {
    try {
      return this.open(name, flags | O_CREAT | O_EXCL, mode);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
    }
    removing();
    this.unlink(name);
    return this.open(name, flags | O_CREAT | O_EXCL, mode);
  }

  /** What `name` is (a link described, not followed); undefined if absent. */
  stat(name: string): fs.Stats | undefined {
    return this.as(() => statAt(this.fd, name, this.dir));
  }

  unlink(name: string): void { this.as(() => unlinkAt(this.fd, name, this.dir)); }

  /** unlink, where a missing file is no failure; false if it was missing. */
  unlinkIfExists(name: string): boolean {
    try {
      this.unlink(name);
      return true;
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  rename(from: string, to: string): void { this.as(() => renameAt(this.fd, from, to, this.dir)); }

  /** rename, where a missing `from` is no failure; false if it was missing. */
  renameIfExists(from: string, to: string): boolean {
    try {
      this.rename(from, to);
      return true;
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  link(from: string, to: string): void { this.as(() => linkAt(this.fd, from, to, this.dir)); }

  /** The names in the logdir. */
  list(): string[] { return this.as(() => listAt(this.fd, this.dir)); }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    sysClose(this.fd);
  }
}
