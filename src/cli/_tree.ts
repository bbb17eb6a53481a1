/** What t6-svscan and t6-linux-init do when the supervision tree has ended. */
import type { CommandIo } from './_run.ts';
import type { SvscanEnd } from '../supervise/svscan.ts';
import { execve } from '../sys/spawn.ts';
import { strerror } from '../sys/errors.ts';
import { EXIT } from '../s6/exit.ts';

/** Does what the tree's end asks: exec `.s6-svscan/finish`, or exit (pid 1 exiting would panic the kernel; t6-linux-init always provides a finish). */
export function endTree(end: SvscanEnd, io: CommandIo): number {
  if (end.kind === 'exec') {
    process.chdir(end.cwd);
    const err = execve(end.path, [end.argv0]);
    io.err(`t6-svscan: fatal: unable to exec ${end.path}: ${strerror(err)}\n`);
    return EXIT.system;
  }
  process.exit(end.code);
}
