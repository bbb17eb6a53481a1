/**
 * The environment a oneshot runs in, and where its program is found.
 *
 * Debian installs execline's programs (`if`, `foreground`, `fdmove`…) in
 * `/usr/lib/execline/bin`, off the normal PATH; its `execlineb` is a wrapper that puts that
 * directory first in PATH. s6-rc's oneshot runner is an execline script, so on Debian every
 * s6-rc oneshot gets that PATH, and real trees rely on it. t6's runner lives in t6-svscan, so
 * it does the same for the oneshots it runs in t6-svscan's own environment.
 *
 * The program is then found in the oneshot's PATH (sys/spawn.ts `searchPath`).
 */
import fs from 'node:fs';
import { DEFAULT_PATH } from '../sys/spawn.ts';

/** Where Debian's execline package puts its programs. */
export const EXECLINE_BIN = '/usr/lib/execline/bin';

/** `env` with `dir` put first in its PATH, if that directory exists and PATH lacks it (PATH unset: the default after it). */
export function withExeclinePath(env: readonly string[], dir = EXECLINE_BIN): string[] {
  const at = env.findIndex((e) => e.startsWith('PATH='));
  const current = at < 0 ? DEFAULT_PATH : env[at]!.slice(5);
  if (current.split(':').includes(dir) || !isDirectory(dir)) return [...env];
  const out = [...env];
  const value = `PATH=${dir}:${current}`;
  if (at < 0) out.push(value);
  else out[at] = value;
  return out;
}

function isDirectory(dir: string): boolean {
  try { return fs.statSync(dir).isDirectory(); } catch { return false; }
}
