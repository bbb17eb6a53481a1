/**
 * Reading the files of one definition directory, each with the fewest system calls (a
 * compile reads thousands of small files, through one shared buffer): whole files, small
 * text files, unsigned decimal settings, lists of names (`NAME` or `NAME.d/`) and the
 * execline scripts of oneshots. A failure is reported through the caller's `problem`
 * callback (file name relative to the definition directory, message), never thrown.
 */
import fs from 'node:fs';
import { lexExecline } from '../s6/execline.ts';
import { strerror } from '../sys/errors.ts';

/** A service name read from a list (dependencies, contents, consumer-for…), with where it was read. */
export interface NameRef {
  name: string;
  /** The file (or `dependencies.d/NAME` entry) that names it. */
  file: string;
}

/** Where a reader reports a problem or a warning: the file (in the definition directory) and what is wrong. */
export type Report = (file: string, message: string) => void;

/** A file's bytes and permission bits, as read from the source. */
export interface FileData {
  data: Buffer;
  mode: number;
}

/** Non-blocking, so that a FIFO named like a definition file cannot hang the compile. */
const O_READ = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK;

/** One buffer for every read of a compile: files are read whole, then copied out. */
let readBuf = Buffer.allocUnsafe(64 * 1024);

/**
 * Reads a whole file with the fewest system calls (a compile reads thousands of small
 * files): open, read, close; plus fstat when the mode is wanted (run, finish). A directory
 * or special file is reported (EISDIR, EAGAIN on a FIFO opened non-blocking), and so is a
 * name readdir listed that cannot be opened (a dangling symbolic link). `mode` is 0644
 * unless asked for.
 */
export function readFile(dir: string, file: string, problem: Report, wantMode = false): FileData | undefined {
  const mode = readInto(dir, file, problem, wantMode);
  if (mode === undefined) return undefined;
  const data = Buffer.allocUnsafe(lastLen);
  readBuf.copy(data, 0, 0, lastLen);
  return { data, mode: wantMode ? mode : 0o644 };
}

/** How many bytes the last readInto put in readBuf. */
let lastLen = 0;

/**
 * Reads `file` into readBuf; returns the mode when `wantMode`, else the length (and sets
 * lastLen either way); undefined on failure (reported).
 */
function readInto(dir: string, file: string, problem: Report, wantMode: boolean): number | undefined {
  let fd: number;
  try {
    fd = fs.openSync(`${dir}/${file}`, O_READ);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problem(file, code === 'ENOENT' ? 'dangling symbolic link' : `unable to read: ${strerror(err)}`);
    return undefined;
  }
  try {
    let mode = 0;
    if (wantMode) {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) { problem(file, 'is not a regular file'); return undefined; }
      mode = st.mode & 0o7777;
    }
    let len = 0;
    for (;;) {
      if (len === readBuf.length) readBuf = Buffer.concat([readBuf, Buffer.allocUnsafe(readBuf.length)]);
      const want = readBuf.length - len;
      const n = fs.readSync(fd, readBuf, len, want, null);
      len += n;
      if (n < want) break; // a short read of a regular file is its end: skip the read that returns 0
    }
    lastLen = len;
    return wantMode ? mode : len;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problem(file, code === 'EISDIR' || code === 'EAGAIN' ? 'is not a regular file' : `unable to read: ${strerror(err)}`);
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a small text file, reporting a failure. */
export function readText(dir: string, file: string, problem: Report): string | undefined {
  const len = readInto(dir, file, problem, false);
  return len === undefined ? undefined : readBuf.toString('utf8', 0, len);
}

/**
 * An unsigned decimal file (timeouts, fds): trailing newlines allowed, nothing else.
 * undefined when absent or invalid (invalid is reported).
 */
export function readUint(dir: string, file: string, present: Set<string>, problem: Report, max: number): number | undefined {
  if (!present.has(file)) return undefined;
  const text = readText(dir, file, problem);
  return text === undefined ? undefined : uintOf(text, file, problem, max);
}

export function uintOf(text: string, file: string, problem: Report, max: number): number | undefined {
  const t = text.replace(/\n+$/, '');
  if (!/^\d+$/.test(t)) {
    problem(file, `${JSON.stringify(t.slice(0, 40))} is not an unsigned decimal number`);
    return undefined;
  }
  const v = Number(t);
  if (v > max) {
    problem(file, `${t} is too large (at most ${max})`);
    return undefined;
  }
  return v;
}

/**
 * A list of names: for dependencies and contents, `NAME.d/` (every entry not starting with `.`) if it exists, else the
 * file `NAME` (one name per line; leading spaces and tabs skipped; empty lines and lines
 * starting with `#` ignored). Duplicates are dropped with a warning. undefined when neither exists.
 */
export function readList(dir: string, file: string, present: Set<string>, problem: Report, warn: Report): NameRef[] | undefined {
  const out: NameRef[] = [];
  const seen = new Set<string>();
  const add = (name: string, where: string, shown: string): void => {
    if (seen.has(name)) { warn(shown, `${JSON.stringify(name)} is listed twice`); return; }
    seen.add(name);
    out.push({ name, file: where });
  };
  const dotD = `${file}.d`;
  if ((file === 'dependencies' || file === 'contents') && present.has(dotD)) {
    let entries: string[];
    try {
      entries = sortedNames(fs.readdirSync(`${dir}/${dotD}`));
    } catch (err) {
      problem(dotD, err instanceof Error && (err as NodeJS.ErrnoException).code === 'ENOTDIR' ? 'is not a directory' : `unable to read: ${strerror(err)}`);
      return out;
    }
    if (present.has(file)) warn(file, `ignored: ${dotD}/ is used instead`);
    const base = `${dir}/${dotD}/`;
    for (const e of entries) out.push({ name: e, file: base + e }); // a directory has no duplicates
    return out;
  }
  if (!present.has(file)) return undefined;
  const text = readText(dir, file, problem);
  if (text === undefined) return out;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^[ \t]+/, '');
    if (line === '' || line.startsWith('#')) continue;
    add(line, `${dir}/${file}`, file);
  }
  return out;
}

/**
 * The names of a directory listing not starting with `.`, in String.prototype.sort's order
 * (UTF-16 code units): an insertion sort, as a listing is short and usually sorted already
 * (libuv sorts it by bytes), where Array.prototype.sort would allocate for each one.
 */
function sortedNames(listing: string[]): string[] {
  const out: string[] = [];
  for (let j = 0; j < listing.length; j++) {
    const name = listing[j]!;
    if (name.startsWith('.')) continue;
    let i = out.length;
    for (; i > 0 && out[i - 1]! > name; i--) out[i] = out[i - 1]!;
    out[i] = name;
  }
  return out;
}

/** Lexes a oneshot script; reports syntax errors with their line. */
export function readScript(dir: string, file: string, problem: Report): string[] | undefined {
  const len = readInto(dir, file, problem, false);
  if (len === undefined) return undefined;
  const r = lexExecline(readBuf.subarray(0, len));
  if (!r.ok) { problem(file, `line ${r.line}: ${r.message}`); return undefined; }
  return r.argv;
}
