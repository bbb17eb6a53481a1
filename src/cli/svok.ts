/**
 * t6-svok: exits 0 if a supervisor runs on the service directory, 1 if not (s6-svok).
 * 100 usage, 111 system error. Prints nothing.
 */
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { parseClientArgs } from './_client.ts';
import { ClientError, isSupervised } from '../s6/client.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-svok servicedir';

export async function main(args: string[], io: CommandIo): Promise<number> {
  const parsed = parseClientArgs(args, {}, USAGE);
  if (parsed === undefined) {
    io.out(`usage: ${USAGE}\nExits 0 if a supervisor runs on servicedir (it reads supervise/control, or holds\nsupervise/lock), 1 if not; 100 usage, 111 error.\n`);
    return EXIT.ok;
  }
  const dir = parsed.rest[0];
  if (dir === undefined) throw new UsageError(USAGE);
  try {
    return (await isSupervised(dir)) ? EXIT.ok : EXIT.failed;
  } catch (err) {
    if (err instanceof ClientError) throw new FatalError(err.message, EXIT.system);
    throw err;
  }
}
