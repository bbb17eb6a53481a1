/**
 * t6-rc's read-only commands on their short path: `help`, and `list`, `listall` and `diff`
 * read through the database's reader index with no writer at work (rc/read-view.ts). The
 * t6-rc command's bundle is this module alone; it loads the whole command (dist/t6-rc-main.cjs,
 * scripts/build.mjs) only for what it leaves, so a `t6-rc list` neither reads nor compiles
 * the writer's code (issue 12). Whatever is not the plain case here (another command,
 * --json, a writer's mark, no index, an unknown name, a bad command line) goes to the whole
 * command, which also says what is wrong in its own words.
 */
import { type CommandIo, FatalError } from './_run.ts';
import { getopt } from './_getopt.ts';
import { type ReadView, UnknownServiceError, diffIn, listAllIn, listIn, openIndexed, selectIn } from '../rc/read-view.ts';
import { IndexDamagedError } from '../rc/db-index.ts';
import { EXIT } from '../s6/exit.ts';

/** The default live directory (rc/live.ts DEFAULT_LIVE; that module is the writer's). */
const DEFAULT_LIVE = '/run/t6-rc';

/** t6-rc's command line, as its usage message gives it. */
export const USAGE = 't6-rc [ -l live ] [ -v verbosity ] [ -n ] [ -t timeout ] [ --settle=ms ] [ -u | -d | -D ] [ -p ] [ -a ] [ -b ] [ --json ] help|list|listall|diff|start|stop|change [ servicenames... ] | t6-rc [ -l live | -c compiled ] [ --svg ] graph';

/** `t6-rc help`. */
export const HELP = `usage: ${USAGE}
  change names…   bring the services (and their dependencies; with -d, their dependents) up (-u, default) or down (-d)
  start / stop    -u change / -d change
  list names…     the selection, one name per line (-d: everything else; -a adds what is up)
  listall names…  the selection closed over dependencies (-u) or dependents (-d)
  diff            longruns whose supervisor disagrees with t6-rc (+NAME: supervisor wants it up)
  -l live         live directory (default ${DEFAULT_LIVE})
  -v n            0 silent, 1 warnings (default), 2 each transition, 3 debug
  -n              dry run: print what would be done, do nothing
  -t ms           give up after ms milliseconds (exit 2)
  --settle=ms     a longrun this change starts counts as up once it stayed up ms after
                  spawning (with readiness: once ready); dying before fails its start and
                  leaves its dependents down. A longrun's up-settle file wins over it
  -D              down, essential services included    -p   prune: everything else goes the other way
  -a              add every service that is up to the selection
  -b              wait for the locks (LIVE/lock, the database's) instead of failing
  --json          list, listall, diff: print a JSON array of service objects
                  (docs/service.schema.json)
  graph           the dependency graph of the live database (or of -c compiled) as
                  Graphviz DOT; with --svg, as SVG (needs Graphviz's dot installed)
Oneshots run inside t6-svscan (its built-in runner), not as children of t6-rc.
`;

/** t6-rc's options: the whole command's (rc.ts) and this one's, so that both read a command line alike. */
export const RC_OPTIONS = { flags: 'udDpabnh', withArg: 'lvtc', long: { json: 'flag', help: 'flag', svg: 'flag', settle: 'arg' } } as const;

/** Runs `args` on the short path: its exit code, or undefined for the whole command to run them. */
export function readCommand(args: string[], io: CommandIo): number | undefined {
  let parsed;
  try {
    parsed = getopt(args, RC_OPTIONS);
  } catch {
    return undefined;
  }
  let live = DEFAULT_LIVE;
  let up = true;
  let addUp = false;
  let verbosity = 1;
  for (const { name, value } of parsed.options) {
    if (name === 'h' || name === 'help') { io.out(HELP); return EXIT.ok; }
    if (name === 'json' || (name === 'v' && !/^\d+$/.test(value!))) return undefined;
    if (name === 'l') live = value!;
    else if (name === 'v') verbosity = Number(value);
    else if (name === 'u' || name === 'd' || name === 'D') up = name === 'u';
    else if (name === 'a') addUp = true;
  }
  const [command, ...names] = parsed.rest;
  if (command === 'help') { io.out(HELP); return EXIT.ok; }
  if (command !== 'list' && command !== 'listall' && command !== 'diff') return undefined;
  let view: ReadView | undefined;
  try {
    view = openIndexed(live);
  } catch (err) {
    if (!(err instanceof IndexDamagedError)) return undefined;
    if (verbosity >= 1) io.err(`${io.prog}: warning: ${err.message}; reading db.json instead\n`);
    return undefined;
  }
  if (view === undefined) return undefined;
  try {
    return show(view, command, names, up, addUp, io);
  } catch (err) {
    if (err instanceof UnknownServiceError) throw new FatalError(err.message, EXIT.unknownName);
    if (!(err instanceof IndexDamagedError)) throw err;
    if (verbosity >= 1) io.err(`${io.prog}: warning: ${err.message}; reading db.json instead\n`);
    return undefined;
  }
}

/** list, listall, diff over `view`; prints only once all is computed (a damaged index found on the way prints nothing). */
export function show(view: ReadView, command: 'list' | 'listall' | 'diff', names: readonly string[], up: boolean, addUp: boolean, io: CommandIo): number {
  if (command === 'diff') {
    const d = diffIn(view);
    io.out(d.map((e) => `${e.supervisorUp === true ? '+' : '-'}${e.name}\n`).join(''));
    return d.length > 0 ? EXIT.failed : EXIT.ok;
  }
  const selection = selectIn(view, names, addUp);
  const indexes = command === 'list' ? listIn(view, selection, up) : listAllIn(view, selection, up);
  // One join of the names: cheaper, run once and cold, than a template per name.
  io.out(indexes.length === 0 ? '' : `${view.namesOf(indexes).join('\n')}\n`);
  return EXIT.ok;
}
