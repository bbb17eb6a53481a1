/** t6-svscan: the supervision tree's root — scanner, pid 1 and the supervisor of every service. */
import fs from 'node:fs';
import path from 'node:path';
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { getopt, uintOption } from './_getopt.ts';
import { ScannerSetupError } from '../supervise/scanner.ts';
import { serveScandir, type SvscanEnd } from '../supervise/svscan.ts';
import { endTree } from './_tree.ts';
import { EXIT } from '../s6/exit.ts';
import { HANDOVER_ENV } from '../supervise/handover.ts';

const USAGE = 't6-svscan [ -1 ] [ -c max ] [ -t rescan ] [ -d notif ] [ -X consoleholder ] [ scandir ]';
const HELP = `${USAGE}
Supervises every service directory of scandir (default: the current directory), as
s6-svscan and s6-supervise do, in one process. As pid 1 it reaps every orphan; otherwise
it makes itself a child subreaper.
  -c max        at most max supervisors (a service and its logger count as two; default 1000)
  -t rescan     rescan scandir every rescan milliseconds (default: only when told)
  -d notif      write a newline to fd notif once the control FIFO listens, then close it
  -X fd         give fd (a console holder) to the catch-all logger s6-svscan-log as stderr
                (in-process catch-all: where its alerts go)
  -1            console sink (containers): every line of every service without a logger
                goes to stdout as "name: line", whole lines only (and to the catch-all)
Logging: a service's log/t6-log file (t6-log's arguments, one per line) runs its logger
inside t6-svscan; scandir/s6-svscan-log/t6-log makes an in-process catch-all log that
gets the output of every service without a logger, and t6-svscan's own messages.
Re-exec: t6-svscanctl -R makes t6-svscan execute itself again (the program on disk now:
an upgrade), handing its whole state over; no service restarts, no log line is lost.
Control: t6-svscanctl (or s6-svscanctl) on scandir; signals as s6-svscan, with
scandir/.s6-svscan/SIG<NAME> scripts replacing the built-in actions.
`;

export async function main(args: string[], io: CommandIo): Promise<number> {
  if (args.includes('--help')) { io.out(HELP); return EXIT.ok; }
  const { options, rest } = getopt(args, { flags: '1', withArg: 'ctdX' });
  let rescanMs = 0;
  let maxServices = 1000;
  let notifyFd: number | undefined;
  let consoleFd: number | undefined;
  let consoleSink = false;
  for (const opt of options) {
    if (opt.name === '1') consoleSink = true;
    else if (opt.name === 'c') maxServices = Math.min(Math.max(uintOption('c', opt.value), 4), 160000);
    else if (opt.name === 't') rescanMs = uintOption('t', opt.value);
    else if (opt.name === 'd') notifyFd = uintOption('d', opt.value);
    else if (opt.name === 'X') consoleFd = uintOption('X', opt.value);
  }
  if (rest.length > 1) throw new UsageError(USAGE);
  // A re-exec (same arguments): readiness was written by the first image, its fd is gone.
  if (process.env[HANDOVER_ENV] !== undefined) notifyFd = undefined;
  for (const fd of [notifyFd, consoleFd]) {
    if (fd === undefined) continue;
    if (fd < 3) throw new UsageError(`${USAGE}\nfd ${fd} must be 3 or more`);
    try { fs.fstatSync(fd); } catch { throw new UsageError(`${USAGE}\nfd ${fd} is not open`); }
  }
  const scandir = path.resolve(rest[0] ?? '.');
  let end: SvscanEnd;
  try {
    end = await serveScandir({
      scandir, rescanMs, maxServices, consoleSink,
      ...(notifyFd === undefined ? {} : { notifyFd }),
      ...(consoleFd === undefined ? {} : { consoleFd }),
      early: (line) => io.err(`${line}\n`),
    });
  } catch (err) {
    if (err instanceof ScannerSetupError) throw new FatalError(err.message, err.exitCode);
    throw err;
  }
  return endTree(end, io);
}
