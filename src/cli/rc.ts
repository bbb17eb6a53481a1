/**
 * t6-rc: the service manager (s6-rc). Exit codes: 0 ok; 1 a transition failed (or `diff`
 * found differences, or the change was interrupted); 2 timed out; 3 unknown service name;
 * 4 invalid database or live state; 100 usage; 111 system error.
 */
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { getopt, uintOption } from './_getopt.ts';
import { DEFAULT_LIVE, openLive } from '../rc/live.ts';
import { type CompiledDb, loadDb } from '../rc/db.ts';
import { toDot } from '../rc/graph.ts';
import { diff, list, listAll, select } from '../rc/engine.ts';
import { describeServices } from '../rc/describe.ts';
import { type ChangeRequest, openForReading, rcExitCode, sayAt, startChange } from '../rc/run.ts';
import { StatusLine, changeProgress } from './_progress.ts';
import { EXIT } from '../s6/exit.ts';
import { tainFromUnixMs } from '../s6/tai.ts';

const USAGE = 't6-rc [ -l live ] [ -v verbosity ] [ -n ] [ -t timeout ] [ --settle=ms ] [ -u | -d | -D ] [ -p ] [ -a ] [ -b ] [ --json ] help|list|listall|diff|start|stop|change [ servicenames... ] | t6-rc [ -l live | -c compiled ] [ --svg ] graph';
const HELP = `usage: ${USAGE}
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

export async function main(args: string[], io: CommandIo): Promise<number> {
  const { options, rest } = getopt(args, { flags: 'udDpabnh', withArg: 'lvtc', long: { json: 'flag', help: 'flag', svg: 'flag', settle: 'arg' } });
  let compiled: string | undefined;
  let svg = false;
  let json = false;
  const req: ChangeRequest = {
    live: DEFAULT_LIVE, names: [], addUp: false, up: true, prune: false, stopEssentials: false,
    block: false, dryRun: false, timeoutMs: 0, verbosity: 1,
  };
  for (const { name, value } of options) {
    switch (name) {
      case 'l': req.live = value!; break;
      case 'v': req.verbosity = uintOption('v', value); break;
      case 't': req.timeoutMs = uintOption('t', value); break;
      case 'settle': req.settleMs = uintOption('-settle', value); break;
      case 'u': req.up = true; req.stopEssentials = false; break;
      case 'd': req.up = false; req.stopEssentials = false; break;
      case 'D': req.up = false; req.stopEssentials = true; break;
      case 'p': req.prune = true; break;
      case 'a': req.addUp = true; break;
      case 'b': req.block = true; break;
      case 'n': req.dryRun = true; break;
      case 'json': json = true; break;
      case 'c': compiled = value!; break;
      case 'svg': svg = true; break;
      case 'h': case 'help': io.out(HELP); return EXIT.ok;
    }
  }
  const [command, ...names] = rest;
  req.names = names;
  if (command === 'help') { io.out(HELP); return EXIT.ok; }
  if (command === 'graph') return graph(compiled, req.live, svg, io);
  if (command === 'list' || command === 'listall' || command === 'diff') return rcFailure(() => show(command, req, json, io));
  if (command === 'start') Object.assign(req, { up: true, prune: false, stopEssentials: false });
  else if (command === 'stop') Object.assign(req, { up: false, prune: false });
  else if (command !== 'change') throw new UsageError(USAGE);
  if (req.dryRun) req.verbosity = Math.max(req.verbosity, 2);
  return rcFailure(() => change(req, io));
}

/** Runs the work; a t6-rc failure becomes `fatal:` with its exit code. */
async function rcFailure(work: () => Promise<number>): Promise<number> {
  try {
    return await work();
  } catch (err) {
    const code = rcExitCode(err);
    if (code !== undefined && err instanceof Error) throw new FatalError(err.message, code);
    throw err;
  }
}

/** list, listall, diff: read under the shared lock, print (or JSON). */
async function show(command: 'list' | 'listall' | 'diff', req: ChangeRequest, json: boolean, io: CommandIo): Promise<number> {
  const { state, unlock } = await openForReading(req.live, req.block);
  try {
    if (command === 'diff') {
      const d = diff(state);
      if (json) io.out(`${JSON.stringify(await describeServices(state, d.map((e) => e.index), tainFromUnixMs(Date.now())))}\n`);
      else io.out(d.map((e) => `${e.supervisorUp === true ? '+' : '-'}${e.name}\n`).join(''));
      return d.length > 0 ? EXIT.failed : EXIT.ok;
    }
    const selection = select(state, req.names, req.addUp);
    const indexes = command === 'list' ? list(state, selection, req.up) : listAll(state, selection, req.up);
    const services = state.db.services;
    if (json) io.out(`${JSON.stringify(await describeServices(state, indexes, tainFromUnixMs(Date.now())))}\n`);
    else io.out(indexes.map((i) => `${services[i]!.name}\n`).join(''));
    return EXIT.ok;
  } finally {
    unlock();
  }
}

/**
 * A change, as its own process: SIGINT/SIGTERM launch nothing more and wait for the
 * transitions under way (a second signal exits at once); a timeout exits at once, leaving
 * what is under way alone (as s6-rc, whose children are not killed).
 */
async function change(req: ChangeRequest, io: CommandIo): Promise<number> {
  // On a terminal, a status line (done/total, in flight, slowest) under the usual messages.
  const status = new StatusLine();
  const say = sayAt(req.verbosity, io.prog, (line) => status.print(`${line}\n`));
  const progress = status.enabled && !req.dryRun ? changeProgress(status, io.prog) : undefined;
  const running = await startChange(progress === undefined ? req : { ...req, observer: progress }, say);
  const onSignal = (sig: NodeJS.Signals): void => {
    if (running.aborted) {
      // Second signal: stop waiting; the state file already says what has happened.
      status.clear();
      say.warn(`received ${sig.slice(3)} again, exiting now`);
      process.exit(EXIT.failed);
    }
    say.warn(`received ${sig.slice(3)}, launching no more transitions; waiting for those under way`);
    running.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let code: number;
  try {
    code = await running.done;
  } finally {
    status.flush();
    status.clear();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (code === EXIT.rcTimedOut) process.exit(code);
  return code;
}

/** `t6-rc graph`: DOT (or SVG through Graphviz) of the live or a compiled database. */
function graph(compiled: string | undefined, live: string, svg: boolean, io: CommandIo): number {
  let db: CompiledDb;
  try {
    db = compiled !== undefined ? loadDb(compiled) : openLive(live).db;
  } catch (err) {
    const code = rcExitCode(err);
    if (code !== undefined && err instanceof Error) throw new FatalError(err.message, code);
    throw err;
  }
  const dot = toDot(db);
  if (!svg) { io.out(dot); return EXIT.ok; }
  // A short-lived client, not the supervisor: running Graphviz as a child is harmless here.
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const r = spawnSync('dot', ['-Tsvg'], { input: dot, encoding: 'utf8' });
  if (r.error !== undefined) throw new FatalError(`unable to run Graphviz's dot (is it installed?): ${r.error.message}`, EXIT.system);
  if (r.status !== 0) throw new FatalError(`dot failed: ${r.stderr.trim()}`, EXIT.system);
  io.out(r.stdout);
  return EXIT.ok;
}
