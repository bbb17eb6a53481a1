/**
 * File tests every layer asks, pure Node (no libc, no koffi): a module that loads koffi
 * costs a client command its start-up, and a copy of a helper in each module that needs it
 * drifts. fs comes through getBuiltinModule: an ESM `import fs from 'node:fs'` builds the
 * module's ESM facade, about 3 ms of a client command's start-up (see s6/client.ts).
 */
const fs = process.getBuiltinModule('node:fs');

/**
 * Whether `path` is a directory, symbolic links followed. False when it does not exist or
 * cannot be looked at (a dangling link, EACCES…): callers treat those as "not a directory".
 */
export function isDirectory(path: string): boolean {
  try {
    // Mostly absent (a service without log/): no exception for that, it costs more than the stat.
    return fs.statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
}
