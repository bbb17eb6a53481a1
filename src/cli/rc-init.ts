/**
 * t6-rc-init: sets up the live state of t6-rc (s6-rc-init). Exit codes: 0 ok; 100 usage
 * or t6-svscan not running on scandir; 4 invalid compiled database; 111 system error or
 * timeout.
 */
import { t6BinDir } from './_paths.ts';
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { getopt, uintOption } from './_getopt.ts';
import { DEFAULT_COMPILED, DEFAULT_LIVE, LiveError, initLive } from '../rc/live.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-rc-init [ -c compiled ] [ -l live ] [ -p prefix ] [ -t timeout ] [ -b ] [ -d ] scandir';
const HELP = `usage: ${USAGE}
Makes a live directory for the compiled database (default ${DEFAULT_COMPILED}), points
live (default ${DEFAULT_LIVE}) at it, and links every longrun into scandir as
PREFIXNAME with a down file, waiting for t6-svscan to supervise each. Every service
starts out down; bring them up with t6-rc. Under a scanner other than t6-svscan (no
runner socket in scandir), it also links s6-rc's two internal services, s6rc-oneshot-runner
and (for pipelines) s6rc-fdholder, and waits until they are ready.
  -p prefix  link each longrun as PREFIXNAME (no / or newline in it)
  -t ms      give up waiting for the supervisors after ms milliseconds (default: no limit)
  -b         wait for the database's lock (held while it is compiled) instead of failing
  -d         dereference compiled: live/compiled points at its real path, not at the
             (symbolic link) path given, which may then also be relative
`;

export async function main(args: string[], io: CommandIo): Promise<number> {
  if (args.includes('--help')) { io.out(HELP); return EXIT.ok; }
  const { options, rest } = getopt(args, { flags: 'bd', withArg: 'clpt' });
  let compiled = DEFAULT_COMPILED;
  let live = DEFAULT_LIVE;
  let prefix = '';
  let timeoutMs = 0;
  let block = false;
  let dereference = false;
  for (const { name, value = '' } of options) {
    if (name === 'c') compiled = value;
    else if (name === 'l') live = value;
    else if (name === 'p') prefix = value;
    else if (name === 't') timeoutMs = uintOption('t', value);
    else if (name === 'b') block = true;
    else if (name === 'd') dereference = true;
  }
  if (rest.length !== 1) throw new UsageError(USAGE);
  try {
    await initLive({ compiled, live, prefix, scandir: rest[0]!, timeoutMs, block, dereference, t6Bin: t6BinDir() });
  } catch (err) {
    if (err instanceof LiveError) throw new FatalError(err.message, err.exitCode);
    throw err;
  }
  return EXIT.ok;
}
