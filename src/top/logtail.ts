/**
 * The last line a service logged, for `t6 top`: the last whole line of its logdir's
 * `current`, read from the file's end (at most TAIL_BYTES, however big the file), and read
 * again only when the file's size or time changed.
 *
 * Where the logdir is: for an in-process logger, the first logdir of `log/t6-log`'s script
 * (parsed as t6-svscan parses it); for a supervised `log/run`, the first word of the script
 * that names a directory holding a `current` file (`./main`, `/var/log/web`), as s6-log's
 * command line in a `run` usually does — a guess from the words, not a shell: a logdir that
 * `run` computes is not found, and the service shows no line. A service with no `log/`
 * shows none.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseScriptFile } from '../log/scriptfile.ts';
import { parseLine } from '../log/reader.ts';
import { LOGGER_SCRIPT_FILE, logDirKind } from '../s6/servicefacts.ts';

/** The most of a `current` file read for its last line. */
export const TAIL_BYTES = 4096;
/** The most of a `log/run` script read for its logdir. */
const RUN_BYTES = 16 * 1024;

function readHead(file: string, max: number): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.alloc(max);
    return buf.toString('utf8', 0, fs.readSync(fd, buf, 0, max, 0));
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

const hasCurrent = (dir: string): boolean => {
  try {
    return fs.statSync(path.join(dir, 'current')).isFile();
  } catch {
    return false;
  }
};

/** The logdir of the service in `serviceDir`, or undefined when it has none that can be found. */
export function logdirOf(serviceDir: string): string | undefined {
  const logDir = path.join(serviceDir, 'log');
  const kind = logDirKind(serviceDir);
  if (kind === 'none') return undefined;
  if (kind === 'inproc') {
    const text = readHead(path.join(logDir, LOGGER_SCRIPT_FILE), RUN_BYTES);
    if (text === undefined) return undefined;
    try {
      const dir = parseScriptFile(text, logDir).script.logdirs[0]?.dir;
      return dir === undefined ? undefined : path.resolve(logDir, dir);
    } catch {
      return undefined; // a script t6-svscan refuses too: no logdir
    }
  }
  const words = (readHead(path.join(logDir, 'run'), RUN_BYTES) ?? '').split(/[\s;'"]+/);
  for (const w of words) {
    if (!w.startsWith('/') && !w.startsWith('./')) continue;
    const dir = path.resolve(logDir, w);
    if (hasCurrent(dir)) return dir;
  }
  return undefined;
}

/**
 * The last whole line of `text` (the end of a file), or undefined if it has none; the
 * first line is left out when `cut` says the text starts in the middle of one.
 */
export function lastLine(text: string, cut: boolean): string | undefined {
  const end = text.endsWith('\n') ? text.length - 1 : text.lastIndexOf('\n');
  if (end < 0) return undefined;
  const start = text.lastIndexOf('\n', end - 1) + 1;
  if (start === 0 && cut) return undefined;
  return text.slice(start, end);
}

/** Last lines of logdirs, each read again only when its `current` changed. */
export class LogTails {
  readonly #seen = new Map<string, { size: number; mtimeMs: number; ino: number; line: string | undefined }>();

  /** The last line of `logdir/current` without its stamps; undefined when there is none. */
  read(logdir: string): string | undefined {
    const file = path.join(logdir, 'current');
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      this.#seen.delete(logdir);
      return undefined;
    }
    try {
      const st = fs.fstatSync(fd);
      const before = this.#seen.get(logdir);
      if (before !== undefined && before.size === st.size && before.mtimeMs === st.mtimeMs && before.ino === st.ino) return before.line;
      const length = Math.min(st.size, TAIL_BYTES);
      const buf = Buffer.alloc(length);
      const n = fs.readSync(fd, buf, 0, length, st.size - length);
      const raw = lastLine(buf.toString('utf8', 0, n), st.size > length);
      const line = raw === undefined ? undefined : parseLine(logdir, 'current', raw, { sec: undefined, nano: 0 }).text;
      this.#seen.set(logdir, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, line });
      return line;
    } catch {
      return undefined;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Forgets the logdirs not in `keep` (services gone, or no longer on the screen). */
  prune(keep: ReadonlySet<string>): void {
    for (const dir of this.#seen.keys()) if (!keep.has(dir)) this.#seen.delete(dir);
  }
}
