/**
 * t6-rc-oneshot-runner: t6-svscan's oneshot runner (supervise/runner.ts) as a process of
 * its own, for a scanner that is not t6-svscan. t6-rc-init runs it as the longrun
 * `s6rc-oneshot-runner`, the name s6-rc gives the same job, when it finds no runner socket
 * in the scan directory (Debian's s6-svscan). It serves oneshot requests only (no scan,
 * no control): oneshots run as its children, with its environment — the supervision
 * tree's — as under s6-rc, and not as children of t6-rc.
 *
 * Internal: t6-rc-init writes the run script that starts it.
 */
import fs from 'node:fs';
import { type CommandIo, UsageError } from './_run.ts';
import { getopt, uintOption } from './_getopt.ts';
import { OneshotRunner } from '../supervise/runner.ts';
import { Reaper, reapedSpawns } from '../sys/reaper.ts';
import { kill as sysKill } from '../sys/spawn.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-rc-oneshot-runner [ -d notif ] socket';
const HELP = `usage: ${USAGE}
Serves t6-svscan's oneshot runner protocol on the Unix socket (mode 0600) for a scanner that
is not t6-svscan: t6-rc-init runs it as the longrun s6rc-oneshot-runner. Oneshots run as its
children, with its environment. Runs until SIGTERM.
  -d notif   write a newline to fd notif once the socket listens, then close it (readiness)
`;

export async function main(args: string[], io: CommandIo): Promise<number> {
  if (args.includes('--help')) { io.out(HELP); return EXIT.ok; }
  const { options, rest } = getopt(args, { withArg: 'd' });
  let notify: number | undefined;
  for (const { name, value } of options) if (name === 'd') notify = uintOption('d', value);
  if (rest.length !== 1) throw new UsageError(USAGE);
  const reaper = new Reaper({ onError: (err) => io.err(`${io.prog}: warning: ${String(err)}\n`) });
  process.on('SIGCHLD', () => reaper.reap());
  const runner = OneshotRunner.listen(rest[0]!, {
    ...reapedSpawns(reaper),
    kill: (pid, signal) => { sysKill(pid, signal); },
    report: (level, message) => io.err(`${io.prog}: ${level}: ${message}\n`),
  });
  await runner.listening();
  if (notify !== undefined) {
    // Readiness, as s6's notification-fd protocol wants: one newline, then the fd closed.
    try { fs.writeSync(notify, '\n'); } catch { /* nobody reads it */ }
    fs.closeSync(notify);
  }
  // Until s6-supervise sends SIGTERM: the oneshots running then go on (each leads its own
  // session) and are reaped by whoever inherits them.
  await new Promise<void>((resolve) => process.once('SIGTERM', resolve));
  runner.close();
  return EXIT.ok;
}
