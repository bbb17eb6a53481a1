/**
 * t6-svwait: waits until services reach a state (s6-svwait). Subscribes to every
 * DIR/event before reading the statuses, so no transition is missed.
 * Exit: 0 reached; 99 timed out; 100 usage; 111 system error; otherwise the number of
 * services that failed permanently or whose supervisor exited (at most 98).
 */
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { uintOption } from './_getopt.ts';
import { parseClientArgs } from './_client.ts';
import { ClientError, type WaitGoal, waitFor } from '../s6/client.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-svwait [ -U | -u | -d | -D | -r | -R ] [ -a | -o ] [ -t timeout ] servicedir...';

const HELP = `usage: ${USAGE}
Waits until the services are up (-u, default), up and ready (-U), down (-d), down with
finish done (-D), restarted (-r: down, then up) or restarted and ready (-R).
  -a   all of them (default)      -o   any one of them
  -t ms   give up after ms milliseconds (0: never)
Exit: 0 reached, 99 timed out, 100 usage, 111 system error, n = services that failed
permanently (finish exited 125 while waiting for up) or whose supervisor exited.
`;

export async function main(args: string[], io: CommandIo): Promise<number> {
  const parsed = parseClientArgs(args, { flags: 'UudDrRao', withArg: 't' }, USAGE);
  if (parsed === undefined) { io.out(HELP); return EXIT.ok; }
  let goal: WaitGoal = 'u';
  let mode: 'all' | 'any' = 'all';
  let timeout = 0;
  for (const { name, value } of parsed.options) {
    if (name === 'a') mode = 'all';
    else if (name === 'o') mode = 'any';
    else if (name === 't') {
      try { timeout = uintOption('t', value); } catch { throw new UsageError(USAGE); }
    } else goal = name as WaitGoal;
  }
  if (parsed.rest.length === 0) return EXIT.ok; // as s6-svwait ≥ 2.12
  let r;
  try {
    r = await waitFor(parsed.rest, goal, mode, timeout);
  } catch (err) {
    if (err instanceof ClientError) throw new FatalError(err.message, EXIT.system);
    throw err;
  }
  if (r.timedOut) throw new FatalError('timed out', EXIT.timedOut);
  if (r.failures > 0) throw new FatalError('some services reported permanent failure or their supervisor died', Math.min(r.failures, 98));
  return EXIT.ok;
}
