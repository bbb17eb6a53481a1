/**
 * t6-shutdown: schedules a shutdown through the shutdown daemon's FIFO
 * (s6-linux-init-shutdown; linux-init.md §3.2). Asynchronous: it exits once the request is
 * written. Exit: 0 ok; 1 refused by -a (or a -i mismatch); 100 usage or invalid time;
 * 111 the daemon cannot be reached or written to.
 */
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { parseClientArgs } from './_client.ts';
import { confirmHostname, probeShutdownd, sendToShutdownd, shutdownPaths } from './_shutdown.ts';
import { MAX_GRACE_MS, type ShutdownAction, encodeCancel, encodeShutdownRequest } from '../s6/initctl.ts';
import { ShutdownTimeError, parseShutdownTime, wallMessage } from '../init/shutdown-time.ts';
import { checkShutdownAllowed } from '../init/shutdown-allow.ts';
import { wall } from '../init/utmp.ts';
import { strerror } from '../sys/errors.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-shutdown [ -h [ -H | -P ] | -p | -r | -k ] [ -f | -F ] [ -a ] [ -i ] [ -t sec ] time [ message ]  or  t6-shutdown -c [ message ]';

const HELP = `usage: ${USAGE}
Asks the shutdown daemon (in t6-svscan) to bring the system down at the given time.
  time        now | +M | M (in M minutes) | hh:mm (next time the local clock shows it)
  -h / -p / -r   halt / power off / reboot after rc.shutdown (none: rc.shutdown only)
  -H / -P     with -h: halt / power off          -k   only warn the users, shut nothing down
  -t sec      grace between SIGTERM and SIGKILL (at most 300)
  -a          only if a user listed in /etc/shutdown.allow is logged in (else exit 1)
  -i          ask for the host name first          -f / -F   accepted, ignored
  -c          cancel a pending shutdown (message: told to every logged-in user)
  --fifo PATH the shutdown FIFO (default $T6_SHUTDOWND_FIFO or
              /run/service/s6-linux-init-shutdownd/fifo)
Environment (tests, alternate roots): T6_UTMP, T6_SHUTDOWN_ALLOW.
Exit: 0 requested, 1 refused, 100 usage or invalid time, 111 shutdown daemon unreachable.
`;

/** The largest -t value, in seconds. */
const MAX_GRACE_SEC = MAX_GRACE_MS / 1000;

export function main(args: string[], io: CommandIo): number {
  const parsed = parseClientArgs(args, { flags: 'HPhprkafFci', withArg: 't', long: { fifo: 'arg' } }, USAGE);
  if (parsed === undefined) { io.out(HELP); return EXIT.ok; }
  let what: ShutdownAction | 'k' = 'S';
  let sub: 'h' | 'p' | undefined;
  let access = false;
  let cancel = false;
  let confirm = false;
  let graceSec = 0;
  let fifo: string | undefined;
  for (const { name, value } of parsed.options) {
    switch (name) {
      case 'h': case 'p': case 'r': case 'k': what = name; break;
      case 'H': sub = 'h'; break;
      case 'P': sub = 'p'; break;
      case 'a': access = true; break;
      case 'c': cancel = true; break;
      case 'i': confirm = true; break;
      case 't':
        if (value === undefined || !/^\d+$/.test(value)) throw new UsageError(USAGE);
        graceSec = Number(value);
        break;
      case 'fifo': fifo = value; break;
      default: break; // -f, -F: accepted for compatibility, they mean nothing here
    }
  }
  if (sub !== undefined) {
    if (what !== 'h') throw new UsageError(USAGE);
    what = sub;
  }
  const paths = shutdownPaths(fifo);
  probeShutdownd(paths.fifo, EXIT.system);
  if (access) {
    let r: ReturnType<typeof checkShutdownAllowed>;
    try {
      r = checkShutdownAllowed(paths.allow, paths.utmp);
    } catch (err) {
      throw new FatalError(`unable to check ${paths.allow} against ${paths.utmp}: ${strerror(err)}`, EXIT.system);
    }
    for (const w of r.warnings) io.err(`${io.prog}: warning: ${w}\n`);
    if (!r.allowed) throw new FatalError(r.reason, EXIT.failed);
  }
  if (confirm) confirmHostname(io);
  const rest = parsed.rest;
  if (cancel) {
    if (rest[0] !== undefined) wall(`${rest[0]}\n`, { utmpPath: paths.utmp });
    sendToShutdownd(paths.fifo, encodeCancel());
    return EXIT.ok;
  }
  if (rest[0] === undefined) throw new UsageError(USAGE);
  let delayMs: number;
  try {
    delayMs = parseShutdownTime(rest[0], new Date());
  } catch (err) {
    if (err instanceof ShutdownTimeError) throw new FatalError(`invalid time format: ${rest[0]}`, EXIT.usage);
    throw err;
  }
  wall(wallMessage(delayMs, rest[1]), { utmpPath: paths.utmp });
  if (what === 'k') return EXIT.ok;
  if (graceSec > MAX_GRACE_SEC) {
    graceSec = MAX_GRACE_SEC;
    io.err(`${io.prog}: warning: delay between SIGTERM and SIGKILL is capped to ${MAX_GRACE_SEC} seconds\n`);
  }
  sendToShutdownd(paths.fifo, encodeShutdownRequest(what, delayMs, graceSec * 1000));
  return EXIT.ok;
}
