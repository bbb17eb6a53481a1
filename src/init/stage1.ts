/**
 * Stage 1's Linux set-up, step by step (linux-init.md §2): the tmpfs on /run, the copy of
 * the run-image into it, the env directory, the kernel environment dump, the runlevel
 * taken from the kernel command line. Each step is a function; t6-linux-init calls them
 * in s6-linux-init's order. Nothing here prints or exits: errors are thrown as Error
 * naming the path and the problem.
 */
import fs from 'node:fs';
import path from 'node:path';
import { errorCode, strerror } from '../sys/errors.ts';
import { mkfifo } from '../sys/fd.ts';
import { mount, umount, MS } from '../sys/system.ts';

/** How /run is prepared: a fresh tmpfs (default), remounted (-n), or left alone (-N). */
export type RunMode = 'mount' | 'remount' | 'keep';

/**
 * Whether something is mounted on `dir`: its device differs from its parent's (or it is
 * `/`). An initramfs that switches root hands over the /dev it mounted; stage 1's `-d`
 * then keeps that devtmpfs, which already holds the console and the disks, instead of
 * mounting a second one over it.
 */
export function isMountPoint(dir: string): boolean {
  const abs = path.resolve(dir);
  if (abs === '/') return true;
  return fs.statSync(abs).dev !== fs.statSync(path.dirname(abs)).dev;
}

/** Mounts a fresh tmpfs on `dir` (after unmounting what was there), or remounts it. */
export function prepareTmpfs(dir: string, mode: RunMode): void {
  if (mode === 'keep') return;
  const flags = MS.NODEV | MS.NOSUID;
  if (mode === 'remount') {
    mount('tmpfs', dir, 'tmpfs', flags | MS.REMOUNT, 'mode=0755');
    return;
  }
  try {
    umount(dir);
  } catch (err) {
    // EINVAL: nothing mounted there, the usual case on a fresh boot.
    if (errorCode(err) !== 'EINVAL' && errorCode(err) !== 'ENOENT') throw err;
  }
  mount('tmpfs', dir, 'tmpfs', flags, 'mode=0755');
}

/**
 * Copies a tree as s6's hiercopy does: directories, regular files, FIFOs and symbolic
 * links, with their modes and (as root) owners. Existing files in `to` are replaced.
 * pid 1 runs this at boot, where every system call is dear under emulation: an owner is
 * set only when the new node would not have it already, and a copied file already has its
 * mode (copyFileSync sets it), unless a chown just cleared its set-id bits.
 */
export function copyTree(from: string, to: string): void {
  const st = fs.lstatSync(from);
  const parent = fs.statSync(path.dirname(to));
  copyNode(from, to, st, createdIn(parent.mode, parent.gid));
}

/**
 * Who owns what is made in a directory: us, with the directory's group if it is
 * set-group-ID (then a directory made there is set-group-ID too). Undefined: not known (a
 * directory that was there already), so every node made there is given its owner.
 */
interface Creator {
  uid: number;
  gid: number;
  setgid: boolean;
}

function createdIn(dirMode: number, dirGid: number): Creator {
  const setgid = (dirMode & 0o2000) !== 0;
  return { uid: process.geteuid?.() ?? 0, gid: setgid ? dirGid : process.getegid?.() ?? 0, setgid };
}

function copyNode(from: string, to: string, st: fs.Stats, creator: Creator | undefined): void {
  const mode = st.mode & 0o7777;
  let modeSet = false;
  // A node that was there already keeps its owner: it gets the source's in any case.
  let existed = false;
  if (st.isDirectory()) {
    try {
      fs.mkdirSync(to, { mode: 0o700 });
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw new Error(`unable to create ${to}: ${strerror(err)}`);
      existed = true;
    }
    // Made now, it is set-group-ID only if its parent is (its mode comes after its contents).
    const inside = existed || creator === undefined ? undefined : createdIn(creator.setgid ? 0o2000 : 0, creator.gid);
    for (const name of fs.readdirSync(from)) {
      const src = path.join(from, name);
      copyNode(src, path.join(to, name), fs.lstatSync(src), inside);
    }
  } else if (st.isFile()) {
    // A new file, not the old one rewritten: it is ours, and has the source's mode.
    try {
      fs.copyFileSync(from, to, fs.constants.COPYFILE_EXCL);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
      fs.unlinkSync(to);
      fs.copyFileSync(from, to, fs.constants.COPYFILE_EXCL);
    }
    modeSet = true;
  } else if (st.isFIFO()) {
    unlinkIfThere(to);
    mkfifo(to, mode);
  } else if (st.isSymbolicLink()) {
    unlinkIfThere(to);
    fs.symlinkSync(fs.readlinkSync(from), to);
    return;
  } else {
    return; // sockets and devices have no place in a run-image
  }
  if (existed || creator === undefined || st.uid !== creator.uid || st.gid !== creator.gid) {
    try {
      fs.chownSync(to, st.uid, st.gid);
      modeSet = false; // a chown clears the set-user-ID and set-group-ID bits
    } catch (err) {
      if (errorCode(err) !== 'EPERM') throw new Error(`unable to chown ${to}: ${strerror(err)}`);
    }
  }
  if (!modeSet) fs.chmodSync(to, mode);
}

function unlinkIfThere(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err;
  }
}

/**
 * Reads an env directory the way s6-linux-init does: one file per variable, the whole
 * content minus one final newline is the value; an empty file means "unset". Returns the
 * changes to apply (undefined = unset). A missing directory means no changes.
 */
export function readEnvDir(dir: string): Map<string, string | undefined> {
  const changes = new Map<string, string | undefined>();
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return changes;
    throw new Error(`unable to read ${dir}: ${strerror(err)}`);
  }
  for (const name of names.sort()) {
    if (name.startsWith('.') || name.includes('=')) continue;
    const file = path.join(dir, name);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`unable to read ${file}: ${strerror(err)}`);
    }
    if (text.includes('\0')) throw new Error(`${file}: a variable cannot hold a NUL byte`);
    changes.set(name, text === '' ? undefined : text.endsWith('\n') ? text.slice(0, -1) : text);
  }
  return changes;
}

/** The environment for everything after stage 1: PATH, then the env dir's changes. */
export function buildEnvironment(initialPath: string, changes: ReadonlyMap<string, string | undefined>): Map<string, string> {
  const env = new Map<string, string>([['PATH', initialPath]]);
  for (const [name, value] of changes) {
    if (value === undefined) env.delete(name);
    else env.set(name, value);
  }
  return env;
}

/**
 * Dumps an environment into `dir`, one file per variable holding the value and a newline
 * (readable as an env dir). Built beside it, then renamed, so `dir` appears whole or not
 * at all; `dir` must not exist yet.
 */
export function dumpEnvironment(dir: string, env: Readonly<Record<string, string | undefined>>): void {
  const tmp = `${dir}:envdump:${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { mode: 0o700 });
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || name === '' || name.includes('/') || name.startsWith('.')) continue;
    fs.writeFileSync(path.join(tmp, name), `${value}\n`, { mode: 0o644 });
  }
  fs.renameSync(tmp, dir);
}

/** Runlevels the kernel command line may name (s6 also accepts 1). */
const RUNLEVELS = new Set(['default', '1', '2', '3', '4', '5']);

/** The runlevel for rc.init: the first kernel argument that names one, else the default. */
export function pickRunlevel(kernelArgs: readonly string[], fallback: string): string {
  return kernelArgs.find((a) => RUNLEVELS.has(a)) ?? fallback;
}
