/**
 * t6-svscanctl: sends commands to the scanner of a scan directory (s6-svscanctl).
 * Exit: 0 ok; 100 usage; 102 scanner not listening; 1 broken .s6-svscan directory; 111
 * system error (s6-svscanctl uses 100 for the two middle cases; t6 gives every client the
 * same code for the same outcome, as t6-svc).
 */
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { CONTROL_EXIT, parseClientArgs } from './_client.ts';
import { ClientError, svscanctlSend } from '../s6/client.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-svscanctl [ -zabhitqnNR ] scandir';

const HELP = `usage: ${USAGE}
Sends commands to the scanner (t6-svscan or s6-svscan) of scandir, in order, in one write:
  -a  rescan now              -h  rescan, then prune services that are gone (= -an)
  -n  prune (SIGTERM services, SIGHUP loggers)   -N  prune, SIGTERM loggers too
  -t / -i  terminate: stop every service, then run .s6-svscan/finish
  -q  quit: SIGTERM every supervisor, then finish    -b  abort without waiting
  -z  reap zombies now
  -R  re-exec (t6 only): t6-svscan executes itself again, carrying its state over; no
      service restarts (how t6 is upgraded: replace the files, then -R)
Exit: 0 ok, 100 usage, 102 not listening, 1 broken .s6-svscan directory, 111 system error.
`;

const MAX_COMMANDS = 64;

export async function main(args: string[], io: CommandIo): Promise<number> {
  const parsed = parseClientArgs(args, { flags: 'zabhitqnNR' }, USAGE);
  if (parsed === undefined) { io.out(HELP); return EXIT.ok; }
  const commands = parsed.options.map((o) => o.name).join('');
  if (commands.length > MAX_COMMANDS) throw new FatalError('too many commands', EXIT.usage);
  const scandir = parsed.rest[0];
  if (scandir === undefined) throw new UsageError(USAGE);
  try {
    await svscanctlSend(scandir, commands);
  } catch (err) {
    if (err instanceof ClientError) throw new FatalError(err.message, CONTROL_EXIT[err.code]);
    throw err;
  }
  return EXIT.ok;
}
