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
 * `processed` and `newstate` stay open after the spawn: the logdir syncs (and marks) what
 * the processor wrote through them, whatever their names have become meanwhile. A missing
 * `state` is made (empty), so that a removed one cannot stall the rotations.
 */
import fs from 'node:fs';
import { close as sysClose, rewind, O_WRONLY, O_CREAT, O_RDONLY, O_TRUNC } from '../sys/fd.ts';
import { spawn } from '../sys/spawn.ts';
import { LogdirStepError, type LogdirFiles } from './logdir-files.ts';

/** One run of a logdir's processor: its pid, and the fds of the two files it writes. */
export class ProcessorRun {
  readonly pid: number;
  #processed: number;
  #newstate: number;

  private constructor(pid: number, processed: number, newstate: number) {
    this.pid = pid;
    this.#processed = processed;
    this.#newstate = newstate;
  }

  /**
   * Spawns `command` as the processor of the logdir, the rotated file `input` (an fd open
   * for reading) on its stdin. Throws LogdirStepError (naming the file) if a file cannot be
   * opened, SysError if the spawn fails.
   */
  static start(files: LogdirFiles, command: string, input: number): ProcessorRun {
    const opened: number[] = [];
    const o = (name: string, flags: number): number => {
      try { opened.push(files.open(name, flags, 0o666)); } catch (err) { throw new LogdirStepError(`open ${files.path(name)}`, err); }
      return opened[opened.length - 1]!;
    };
    try {
      const processed = o('processed', O_WRONLY | O_CREAT | O_TRUNC);
      const state = o('state', O_RDONLY | O_CREAT);
      const newstate = o('newstate', O_WRONLY | O_CREAT | O_TRUNC);
      // The processor reads through a copy of `input`'s offset (dup2): from the start, at each try.
      rewind(input);
      const fds = new Map<number, number>([[0, input], [1, processed], [4, state], [5, newstate]]);
      const pid = spawn({ path: '/bin/sh', argv: ['/bin/sh', '-c', command], cwdFd: files.fd, fds, newSession: false, user: files.owner });
      sysClose(state);
      return new ProcessorRun(pid, processed, newstate);
    } catch (err) {
      for (const fd of opened) sysClose(fd);
      throw err;
    }
  }

  /** fsyncs what the processor wrote, and marks `processed` finished (`finishedMode`, u+x). Throws; may be retried. */
  sync(finishedMode: number): void {
    fs.fsyncSync(this.#processed);
    fs.fchmodSync(this.#processed, finishedMode);
    fs.fsyncSync(this.#newstate);
  }

  /** Closes the two files (after `sync`, or when the run failed). */
  close(): void {
    if (this.#processed >= 0) sysClose(this.#processed);
    if (this.#newstate >= 0) sysClose(this.#newstate);
    this.#processed = -1;
    this.#newstate = -1;
  }
}
