/**
 * t6-hpr: halt, power off or reboot (s6-linux-init-hpr; linux-init.md §3.3). The generated
 * `bin/halt`, `bin/poweroff`, `bin/reboot` run `t6-hpr -h|-p|-r "$@"`.
 *
 * Without -f it asks the shutdown daemon (in t6-svscan) for an immediate shutdown: the
 * whole sequence runs (rc.shutdown, TERM, KILL, unmount, reboot(2)). With -f it calls
 * reboot(2) at once, after sync() unless -n: what stage 4 itself runs, and a last resort.
 * Exit: 0 requested; 100 usage, or the daemon cannot be reached; 111 system error (with -f:
 * reboot(2) failed, e.g. not root).
 */
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { parseClientArgs } from './_client.ts';
import { confirmHostname, requestShutdownNow } from './_shutdown.ts';
import { RB, reboot, sync } from '../sys/index.ts';
import { strerror } from '../sys/errors.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-hpr [ -h | -p | -r ] [ -n ] [ -d | -w ] [ -W ] [ -f ] [ -i ]';

const HELP = `usage: ${USAGE}
Halts (-h), powers off (-p) or reboots (-r) the machine; one of them is required.
  (default)  ask the shutdown daemon in t6-svscan for the full shutdown sequence, now
  -f         do it immediately: sync(), then reboot(2) — no services are stopped
  -n         with -f: do not sync first
  -d         do not write a wtmp record     -w   only write the wtmp record
  -W         do not warn logged-in users    -i   ask for the host name first
  --fifo PATH   the shutdown FIFO (default $T6_SHUTDOWND_FIFO or
                /run/service/s6-linux-init-shutdownd/fifo)
Environment (tests, alternate roots): T6_UTMP, T6_WTMP.
Exit: 0 requested, 100 usage or shutdown daemon unreachable, 111 system error.
`;

const REBOOT_CMD = { h: RB.HALT_SYSTEM, p: RB.POWER_OFF, r: RB.AUTOBOOT } as const;

export function main(args: string[], io: CommandIo): number {
  const parsed = parseClientArgs(args, { flags: 'hprfdwWni', long: { fifo: 'arg' } }, USAGE);
  if (parsed === undefined) { io.out(HELP); return EXIT.ok; }
  let what: 'h' | 'p' | 'r' | undefined;
  let force = false;
  let wtmp: 'no' | 'yes' | 'only' = 'yes';
  let doWall = true;
  let doSync = true;
  let confirm = false;
  let fifo: string | undefined;
  for (const { name, value } of parsed.options) {
    switch (name) {
      case 'h': case 'p': case 'r': what = name; break;
      case 'f': force = true; break;
      case 'd': wtmp = 'no'; break;
      case 'w': wtmp = 'only'; break;
      case 'W': doWall = false; break;
      case 'n': doSync = false; break;
      case 'i': confirm = true; break;
      case 'fifo': fifo = value; break;
      default: throw new UsageError(USAGE);
    }
  }
  if (what === undefined) throw new FatalError('one of the -h, -p or -r options must be given', EXIT.usage);
  if (confirm) confirmHostname(io);
  if (force) {
    if (doSync) sync();
    try {
      reboot(REBOOT_CMD[what]);
    } catch (err) {
      throw new FatalError(`unable to reboot(): ${strerror(err)}`, EXIT.system);
    }
    throw new FatalError('unable to reboot(): it returned', EXIT.system);
  }
  requestShutdownNow(what, { fifo, wtmp, wall: doWall }, io);
  return EXIT.ok;
}
