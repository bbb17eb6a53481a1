/**
 * A logdir's processor (`?cmd`, s6-spec/tools.md §8.4): at each rotation, `/bin/sh -c cmd`
 * runs in the logdir with the rotated file on its standard input, `processed` (truncated)
 * on its standard output, `state` on fd 4 (to read) and `newstate` (truncated) on fd 5.
 * It stays in the logger's session and process group. The logdir waits for it and, on
 * exit 0, archives `processed` and makes `newstate` the new `state`.
 *
 * The rotated file comes from the logger's own fd of it, read from the start: not by the
 * name `previous`, which the logdir's owner may have changed meanwhile. The three other
 * files are opened through the logdir's held directory with the logdir's rights
 * (logdir-files.ts), and the processor of a logdir owned by another user runs as that
 * user (uid, gid, no supplementary groups), as under `s6-setuidgid user s6-log`. Its
 * working directory is set from the held fd: a renamed logdir cannot send it elsewhere.
 */
import { close as sysClose, rewind, O_WRONLY, O_CREAT, O_RDONLY, O_TRUNC } from '../sys/fd.ts';
import { spawn } from '../sys/spawn.ts';
import type { LogdirFiles } from './logdir-files.ts';

/**
 * Spawns `command` as the processor of the logdir, the rotated file `input` (an fd open
 * for reading) on its stdin; returns its pid. Throws if a file cannot be opened or the
 * spawn fails.
 */
export function spawnProcessor(files: LogdirFiles, command: string, input: number): number {
  const opened: number[] = [];
  try {
    const o = (name: string, flags: number): number => { const fd = files.open(name, flags, 0o666); opened.push(fd); return fd; };
    // The processor reads through a copy of `input`'s offset (dup2): from the start, at each try.
    rewind(input);
    const fds = new Map<number, number>([
      [0, input],
      [1, o('processed', O_WRONLY | O_CREAT | O_TRUNC)],
      [4, o('state', O_RDONLY)],
      [5, o('newstate', O_WRONLY | O_CREAT | O_TRUNC)],
    ]);
    return spawn({ path: '/bin/sh', argv: ['/bin/sh', '-c', command], cwdFd: files.fd, fds, newSession: false, user: files.owner });
  } finally {
    for (const fd of opened) sysClose(fd);
  }
}
