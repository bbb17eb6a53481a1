/**
 * t6-svc: sends commands to the supervisors of service directories (s6-svc).
 * Exit codes (s6-svc ≥ 2.14): 0 ok; 100 usage; 102 supervisor not listening; 1 broken
 * supervise directory; 111 system error; with several directories, the code of the last
 * failure. With -w…: 99 timed out, n = services that failed permanently or lost their
 * supervisor (at most 98), as s6-svwait.
 */
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { uintOption } from './_getopt.ts';
import { CONTROL_EXIT, parseClientArgs } from './_client.ts';
import { ClientError, type WaitGoal, svcSend, waitFor } from '../s6/client.ts';
import { SIGNAL_COMMANDS } from '../s6/control.ts';
import { parseSignal } from '../s6/signals.ts';
import { SIGNALS } from '../sys/signals.ts';
import { strerror } from '../sys/errors.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-svc [ -wu | -wU | -wd | -wD | -wr | -wR ] [ -T timeout ] [ -s signal | -abqhkti12pcyrlPCK ] [ -oduDUxOQ ] servicedir...';

const HELP = `usage: ${USAGE}
Sends commands to the supervisor of each servicedir, in command-line order, in one write.
  -u / -d        want up (start) / want down (stop: down-signal, then SIGCONT)
  -U / -D        same, and remove / create the ./down file
  -o             run once (up, do not restart)      -O / -Q   do not restart (-Q: + ./down)
  -r             restart (send the down-signal)     -x        supervisor exits once down
  -a -b -q -h -k -t -i -1 -2 -y    send ALRM ABRT QUIT HUP KILL TERM INT USR1 USR2 WINCH
  -p / -c        STOP / CONT (pause)     -P -C -K   STOP / CONT / KILL to the process group
  -l             send the reload-signal  -s SIG     one of the signals above, by name or number
  -wu -wU -wd -wD -wr -wR   wait for up / up+ready / down / down+finished / restarted /
                 restarted+ready (subscribes before sending, so nothing is missed)
  -T ms          timeout for -w (0: none)
Exit: 0 ok, 100 usage, 102 not supervised, 1 broken supervise dir, 111 system error;
with -w: 99 timed out, n = services that failed permanently.
`;

/** -s SIG: the command letter of each user-available signal. */
const SIGNAL_LETTER = new Map<number, string>([
  ...Object.entries(SIGNAL_COMMANDS).map(([letter, sig]) => [sig, letter] as [number, string]),
  [SIGNALS.STOP, 'p'], [SIGNALS.CONT, 'c'],
]);

const MAX_COMMANDS = 62;

export async function main(args: string[], io: CommandIo): Promise<number> {
  const parsed = parseClientArgs(args, { flags: 'abqhkti12pcyrlPCKoduDUxOQ', withArg: 'sTw' }, USAGE);
  if (parsed === undefined) { io.out(HELP); return EXIT.ok; }
  let commands = '';
  let timeout = 0;
  let wait: WaitGoal | undefined;
  for (const { name, value = '' } of parsed.options) {
    let letter = name;
    if (name === 'T') { timeout = parseTimeout(value); continue; }
    if (name === 'w') {
      if (value === '' || !'dDuUrR'.includes(value[0]!)) throw new UsageError(USAGE);
      wait = value[0] as WaitGoal;
      continue;
    }
    if (name === 's') {
      const sig = parseSignal(value);
      if (sig === undefined) throw new FatalError(`invalid signal: ${value}`, EXIT.usage);
      letter = SIGNAL_LETTER.get(sig) ?? '';
      if (letter === '') throw new FatalError(`${value} is not in the list of user-available signals`, EXIT.usage);
    }
    if (commands.length >= MAX_COMMANDS) throw new FatalError('too many commands', EXIT.usage);
    commands += letter;
  }
  const dirs = parsed.rest;
  if (dirs.length === 0) throw new UsageError(USAGE);
  if (dirs.includes('')) throw new FatalError('invalid service path', EXIT.usage);

  if (wait === 'U' || wait === 'R') wait = checkNotificationFd(dirs, wait, io);
  if (wait !== undefined) return waitAndSend(dirs, wait, timeout, commands);

  let code = 0;
  for (const dir of dirs) {
    try {
      await svcSend(dir, commands);
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      io.err(`${io.prog}: ${dirs.length > 1 ? 'warning' : 'fatal'}: ${err.message}\n`);
      code = CONTROL_EXIT[err.code];
    }
  }
  return code;
}

function parseTimeout(value: string): number {
  try {
    return uintOption('T', value);
  } catch {
    throw new UsageError(USAGE);
  }
}

/** -wU/-wR need readiness notification; without a notification-fd file they become -wu/-wr. */
function checkNotificationFd(dirs: readonly string[], wait: 'U' | 'R', io: CommandIo): WaitGoal {
  let goal: WaitGoal = wait;
  for (const dir of dirs) {
    const file = `${dir}/notification-fd`;
    try {
      process.getBuiltinModule('node:fs').accessSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new FatalError(`unable to access ${file}: ${strerror(err)}`, EXIT.system);
      io.err(`${io.prog}: warning: ${file} not present - ignoring request for readiness notification\n`);
      goal = wait === 'U' ? 'u' : 'r';
    }
  }
  return goal;
}

/** -w…: subscribe, read the status, send the commands (if any), wait. */
async function waitAndSend(dirs: string[], goal: WaitGoal, timeout: number, commands: string): Promise<number> {
  const send = commands === '' ? undefined : async () => { for (const dir of dirs) await svcSend(dir, commands); };
  try {
    // With commands, a restart's first phase waits for "down and finished", as s6-svlisten.
    const r = await waitFor(dirs, goal, 'all', timeout, send, { restartVia: send === undefined ? 'd' : 'D' });
    if (r.timedOut) throw new FatalError('timed out', EXIT.timedOut);
    if (r.failures > 0) throw new FatalError('some services reported permanent failure or their supervisor died', Math.min(r.failures, 98));
    return EXIT.ok;
  } catch (err) {
    if (err instanceof ClientError) throw new FatalError(err.message, CONTROL_EXIT[err.code]);
    throw err;
  }
}
