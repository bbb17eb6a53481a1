/**
 * A logdir's processor (`?cmd`, s6-spec/tools.md §8.4): at each rotation, `/bin/sh -c cmd`
 * runs in the logdir with the rotated file on its standard input, `processed` (truncated)
 * on its standard output, `state` on fd 4 (to read) and `newstate` (truncated) on fd 5.
 * It stays in the logger's session and process group. The logdir waits for it and, on
 * exit 0, archives `processed` and makes `newstate` the new `state`.
 */
import path from 'node:path';
import { open as sysOpen, close as sysClose, O_WRONLY, O_CREAT, O_RDONLY, O_TRUNC } from '../sys/fd.ts';
import { spawn } from '../sys/spawn.ts';

/** Spawns `command` as the processor of the logdir `dir`; returns its pid. Throws if a file cannot be opened or the spawn fails. */
export function spawnProcessor(dir: string, command: string): number {
  const opened: number[] = [];
  try {
    const o = (name: string, flags: number): number => { const fd = sysOpen(path.join(dir, name), flags, 0o666); opened.push(fd); return fd; };
    const fds = new Map<number, number>([
      [0, o('previous', O_RDONLY)],
      [1, o('processed', O_WRONLY | O_CREAT | O_TRUNC)],
      [4, o('state', O_RDONLY)],
      [5, o('newstate', O_WRONLY | O_CREAT | O_TRUNC)],
    ]);
    return spawn({ path: '/bin/sh', argv: ['/bin/sh', '-c', command], cwd: dir, fds, newSession: false });
  } finally {
    for (const fd of opened) sysClose(fd);
  }
}
