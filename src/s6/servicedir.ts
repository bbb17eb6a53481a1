/**
 * Reading a service directory's small settings files the way s6-supervise does: fresh at
 * each use, first line only, an unsigned decimal (or a signal). A bad value is a warning
 * that names the file, and the default applies.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseSignal } from './signals.ts';
import { O_NONBLOCK, O_RDONLY, close, openIfExists } from '../sys/fd.ts';
import { strerror } from '../sys/errors.ts';

/** A setting's value, or the problem found reading it (absent file = value undefined, no problem). */
export interface Setting<T> {
  value: T | undefined;
  problem?: string;
}

function readFirstLine(file: string, maxBytes: number): Setting<string> {
  let text: string;
  try {
    const fd = openIfExists(file, O_RDONLY | O_NONBLOCK);
    if (fd === undefined) return { value: undefined };
    try {
      const buf = Buffer.alloc(maxBytes);
      text = buf.subarray(0, fs.readSync(fd, buf, 0, maxBytes, 0)).toString('latin1');
    } finally {
      close(fd);
    }
  } catch (err) {
    return { value: undefined, problem: `unable to read ${file}: ${strerror(err)}` };
  }
  const nl = text.indexOf('\n');
  return { value: nl < 0 ? text : text.slice(0, nl) };
}

/**
 * A name setting such as `producer-for` (t6-svscan's pipelines): the first line, which
 * must be a plain scan dir entry name (no slash, no leading dot).
 */
export function readSetting(dir: string, name: string): Setting<string> {
  const file = path.join(dir, name);
  const line = readFirstLine(file, 256);
  if (line.value === undefined) return { value: undefined, ...(line.problem === undefined ? {} : { problem: line.problem }) };
  const value = line.value.trim();
  if (value === '' || value.includes('/') || value.startsWith('.')) {
    return { value: undefined, problem: `invalid ${file}: ${JSON.stringify(line.value.slice(0, 60))} is not the name of a service of the scan directory` };
  }
  return { value };
}

/** An unsigned decimal setting such as `notification-fd` or `timeout-kill`. */
export function readUintSetting(dir: string, name: string): Setting<number> {
  const file = path.join(dir, name);
  const line = readFirstLine(file, 24);
  if (line.value === undefined) return { value: undefined, ...(line.problem === undefined ? {} : { problem: line.problem }) };
  if (!/^\d+$/.test(line.value) || Number(line.value) > 0x7fffffff) {
    return { value: undefined, problem: `invalid ${file}: ${JSON.stringify(line.value.slice(0, 40))} is not an unsigned integer` };
  }
  return { value: Number(line.value) };
}

/** A non-negative decimal setting such as t6's `backoff-factor` (`2`, `1.5`). */
export function readDecimalSetting(dir: string, name: string): Setting<number> {
  const file = path.join(dir, name);
  const line = readFirstLine(file, 24);
  if (line.value === undefined) return { value: undefined, ...(line.problem === undefined ? {} : { problem: line.problem }) };
  if (!/^\d{1,9}(\.\d{1,9})?$/.test(line.value)) {
    return { value: undefined, problem: `invalid ${file}: ${JSON.stringify(line.value.slice(0, 40))} is not a decimal number` };
  }
  return { value: Number(line.value) };
}

/** A signal setting such as `down-signal` (name with or without SIG, or a number). */
export function readSignalSetting(dir: string, name: string): Setting<number> {
  const file = path.join(dir, name);
  const line = readFirstLine(file, 15);
  if (line.value === undefined) return { value: undefined, ...(line.problem === undefined ? {} : { problem: line.problem }) };
  const sig = parseSignal(line.value);
  if (sig === undefined || sig === 0) return { value: undefined, problem: `invalid ${file}: ${JSON.stringify(line.value)} is not a signal` };
  return { value: sig };
}

/** Does this file exist (any type)? Never throws. */
export function exists(file: string): boolean {
  try {
    return fs.lstatSync(file, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

/**
 * Why `run` (or `finish`) cannot be executed, in words, or undefined if it looks runnable.
 * Used to turn a bare ENOENT/EACCES from spawn into a reason a person can act on.
 */
export function explainNotRunnable(file: string): string | undefined {
  let lst: fs.Stats;
  try {
    lst = fs.lstatSync(file);
  } catch {
    return 'no such file';
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return lst.isSymbolicLink() ? `dangling symbolic link to ${fs.readlinkSync(file)}` : 'cannot be read';
  }
  if (st.isDirectory()) return 'is a directory, not a program';
  if (!st.isFile()) return 'is not a regular file';
  if ((st.mode & 0o111) === 0) return `not executable (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
  return undefined;
}
