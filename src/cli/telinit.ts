/**
 * t6-telinit: changes the runlevel (s6-linux-init-telinit; linux-init.md §3.4), and is what
 * `init` becomes when it is not pid 1.
 *
 * s6 has a runleveld service run `BASEDIR/scripts/runlevel RL` for it; in t6 the script runs
 * through t6-svscan's built-in oneshot runner (`SCANDIR/.s6-svscan/run`), so it is a child
 * of pid 1 with the boot environment, cwd /, stdin /dev/null and pid 1's stdout/stderr,
 * and it runs to its end even if t6-telinit is interrupted. t6-telinit waits and exits
 * with the script's exit code; if the script was killed by signal N, with 128 + N (the
 * convention of shells and of skalibs' wait_estatus, which s6-sudo relays).
 * `0` and `6` first change the runlevel (stopping at a failure, with its code), then act as
 * `t6-hpr -p` and `t6-hpr -r`.
 *
 * s6-linux-init's options are accepted and ignored (so `init -c … 6` works from a shell),
 * except -c, which names the base directory. The scan directory is `--scandir DIR` (not -s:
 * for `init`, -s is the environment dump directory).
 */
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { parseClientArgs } from './_client.ts';
import { requestShutdownNow } from './_shutdown.ts';
import { DEFAULT_BASEDIR, DEFAULT_SCANDIR, RUNLEVEL_SCRIPT, SCRIPTS_DIR, shutdowndFifo } from '../s6/initctl.ts';
import { runOneshot, runnerSocket } from '../rc/oneshot.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-telinit [ -c basedir ] [ --scandir dir ] runlevel';

const HELP = `usage: ${USAGE}
Runs BASEDIR/scripts/runlevel RUNLEVEL under t6-svscan (its built-in runner) and exits
with the script's exit code (128+N if killed by signal N). 0 and 6: change the runlevel,
then power off / reboot as t6-hpr -p / -r.
  -c basedir     default ${DEFAULT_BASEDIR}
  --scandir dir  default ${DEFAULT_SCANDIR}
t6-linux-init's other options (-p -s -m -d -D -v -W -n -N -C -B) are accepted and ignored.
Exit: the script's code; 100 usage; 111 t6-svscan unreachable or the script could not run.
`;

/** The exit code a wait status stands for: the exit code, or 128 + signal. */
export function waitExitCode(wstat: number): number {
  const sig = wstat & 0x7f;
  return sig === 0 ? (wstat >> 8) & 0xff : 128 + sig;
}

export async function main(args: string[], io: CommandIo): Promise<number> {
  // t6-linux-init's options are taken and ignored (but -c): `init 3`, not as pid 1, comes
  // here with the whole command line of the maker's bin/init.
  const parsed = parseClientArgs(args, { flags: 'nNCBSUr', withArg: 'cpsmdDvWqbl', long: { scandir: 'arg' } }, USAGE);
  if (parsed === undefined) { io.out(HELP); return EXIT.ok; }
  let basedir = DEFAULT_BASEDIR;
  let scandir: string | undefined;
  for (const { name, value } of parsed.options) {
    if (name === 'c' && value !== undefined) basedir = value;
    if (name === 'scandir' && value !== undefined) scandir = value;
  }
  const rl = parsed.rest[0];
  if (rl === undefined || rl === '') throw new UsageError(USAGE);
  const script = `${basedir}/${SCRIPTS_DIR}/${RUNLEVEL_SCRIPT}`;
  const r = await runOneshot(runnerSocket(scandir ?? DEFAULT_SCANDIR), { argv: [script, rl], cwd: '/', env: null, timeoutMs: 0 });
  if (r.kind !== 'exited') throw new FatalError(`unable to run ${script} ${rl}: ${r.message}`, EXIT.system);
  const code = waitExitCode(r.wstat);
  if (rl !== '0' && rl !== '6') return code;
  if (code !== 0) {
    const how = (r.wstat & 0x7f) === 0 ? `exited ${code}` : `crashed with signal ${r.wstat & 0x7f}`;
    throw new FatalError(`${script} ${rl} ${how}: not ${rl === '0' ? 'powering off' : 'rebooting'}`, code);
  }
  requestShutdownNow(rl === '0' ? 'p' : 'r', { fifo: scandir === undefined ? undefined : shutdowndFifo(scandir), wtmp: 'yes', wall: true }, io);
  return EXIT.ok;
}
