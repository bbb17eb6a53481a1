/**
 * t6-rc: the service manager (s6-rc). Exit codes: 0 ok; 1 a transition failed (or `diff`
 * found differences, or the change was interrupted); 2 timed out; 3 unknown service name;
 * 4 invalid database or live state; 100 usage; 111 system error.
 */
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { getopt, uintOption } from './_getopt.ts';
import path from 'node:path';
import { DEFAULT_LIVE, LiveError, type Live, lockDb, lockLive, openLive } from '../rc/live.ts';
import { type CompiledDb, DbError, loadDb } from '../rc/db.ts';
import { toDot } from '../rc/graph.ts';
import { Change, UnknownServiceError, diff, list, listAll, select } from '../rc/engine.ts';

const USAGE = 't6-rc [ -l live ] [ -v verbosity ] [ -n ] [ -t timeout ] [ -u | -d | -D ] [ -p ] [ -a ] [ -b ] [ --json ] help|list|listall|diff|start|stop|change [ servicenames... ] | t6-rc [ -l live | -c compiled ] [ --svg ] graph';
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
  -D              down, essential services included    -p   prune: everything else goes the other way
  -a              add every service that is up to the selection
  -b              wait for the locks (LIVE/lock, the database's) instead of failing
  --json          list, listall, diff: print JSON
  graph           the dependency graph of the live database (or of -c compiled) as
                  Graphviz DOT; with --svg, as SVG (needs Graphviz's dot installed)
Oneshots run inside t6-svscan (its built-in runner), not as children of t6-rc.
`;

export function main(args: string[], io: CommandIo): Promise<number> {
  return run(args, io, true);
}

/**
 * t6-rc's work. `ownProcess`: t6-rc is the process (Ctrl-C aborts the change, a timeout
 * exits at once); false when pid 1 runs a change itself (t6-linux-init -r), where signals
 * and the process's life are not t6-rc's to take.
 */
export async function run(args: string[], io: CommandIo, ownProcess: boolean): Promise<number> {
  const { options, rest } = getopt(args, { flags: 'udDpabnh', withArg: 'lvtc', long: { json: 'flag', help: 'flag', svg: 'flag' } });
  let compiled: string | undefined;
  let svg = false;
  let live = DEFAULT_LIVE;
  let verbosity = 1;
  let up = true;
  let stopEssentials = false;
  let prune = false;
  let addUp = false;
  let block = false;
  let dryRun = false;
  let json = false;
  let timeoutMs = 0;
  for (const { name, value } of options) {
    switch (name) {
      case 'l': live = value!; break;
      case 'v': verbosity = uintOption('v', value); break;
      case 't': timeoutMs = uintOption('t', value); break;
      case 'u': up = true; stopEssentials = false; break;
      case 'd': up = false; stopEssentials = false; break;
      case 'D': up = false; stopEssentials = true; break;
      case 'p': prune = true; break;
      case 'a': addUp = true; break;
      case 'b': block = true; break;
      case 'n': dryRun = true; break;
      case 'json': json = true; break;
      case 'c': compiled = value!; break;
      case 'svg': svg = true; break;
      case 'h': case 'help': io.out(HELP); return 0;
    }
  }
  const [command, ...names] = rest;
  if (command === 'help') { io.out(HELP); return 0; }
  if (command === 'graph') return graph(compiled, live, svg, io);
  if (command === undefined || !['list', 'listall', 'diff', 'start', 'stop', 'change'].includes(command)) throw new UsageError(USAGE);
  if (dryRun) verbosity = Math.max(verbosity, 2);

  const changing = command === 'change' || command === 'start' || command === 'stop';
  let state: Live;
  // As s6-rc: LIVE/lock exclusively to change the state, shared to read it (so a reader
  // never sees a change half made), and the database's lock shared. The locks come before
  // the state is read, so that two changes never work from one state.
  const unlocks: (() => void)[] = [];
  const unlock = (): void => { for (const u of unlocks.splice(0).reverse()) u(); };
  try {
    unlocks.push(await lockLive(live, block, !changing || dryRun));
    unlocks.push(await lockDb(path.join(live, 'compiled'), block));
    state = openLive(live);
  } catch (err) {
    unlock();
    if (err instanceof LiveError) throw new FatalError(err.message, err.exitCode);
    throw err;
  }
  let selection: Set<number>;
  try {
    selection = select(state, names, addUp);
  } catch (err) {
    unlock();
    if (err instanceof UnknownServiceError) throw new FatalError(err.message, 3);
    throw err;
  }
  const nameOf = (i: number): string => state.db.services[i]!.name;
  const print = (indexes: number[]): void => {
    if (json) io.out(`${JSON.stringify(indexes.map((i) => ({ name: nameOf(i), type: state.db.services[i]!.type, up: state.state[i] })))}\n`);
    else io.out(indexes.map((i) => `${nameOf(i)}\n`).join(''));
  };

  switch (command) {
    case 'list': print(list(state, selection, up)); unlock(); return 0;
    case 'listall': print(listAll(state, selection, up)); unlock(); return 0;
    case 'diff': {
      const d = diff(state);
      unlock();
      if (json) io.out(`${JSON.stringify(d.map((e) => ({ name: e.name, rc: e.rcUp ? 'up' : 'down', supervisor: e.supervisorUp === undefined ? 'unknown' : e.supervisorUp ? 'up' : 'down' })))}\n`);
      else io.out(d.map((e) => `${e.supervisorUp === true ? '+' : '-'}${e.name}\n`).join(''));
      return d.length > 0 ? 1 : 0;
    }
    case 'start': up = true; prune = false; stopEssentials = false; break;
    case 'stop': up = false; prune = false; break;
    case 'change': break;
    default: throw new UsageError(USAGE);
  }

  const say = {
    info: (t: string) => { if (verbosity >= 2) io.err(`${io.prog}: info: ${t}\n`); },
    warn: (t: string) => { if (verbosity >= 1) io.err(`${io.prog}: warning: ${t}\n`); },
    fatal: (t: string) => io.err(`${io.prog}: fatal: ${t}\n`),
  };
  const change = new Change(state, selection, { up, prune, stopEssentials, dryRun, timeoutMs, verbosity }, say);
  const onSignal = (sig: NodeJS.Signals): void => {
    if (change.aborted) {
      // Second signal: stop waiting; the state file already says what has happened.
      say.warn(`received ${sig.slice(3)} again, exiting now`);
      process.exit(1);
    }
    say.warn(`received ${sig.slice(3)}, launching no more transitions; waiting for those under way`);
    change.abort();
  };
  if (ownProcess) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  let code: number;
  try {
    code = await change.done;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    unlock();
  }
  // Timed out: leave at once; transitions under way are abandoned, not undone (as s6-rc,
  // whose children are not killed), and the state file holds what had finished.
  if (code === 2 && ownProcess) process.exit(2);
  return code;
}

/** `t6-rc graph`: DOT (or SVG through Graphviz) of the live or a compiled database. */
function graph(compiled: string | undefined, live: string, svg: boolean, io: CommandIo): number {
  let db: CompiledDb;
  try {
    db = compiled !== undefined ? loadDb(compiled) : openLive(live).db;
  } catch (err) {
    if (err instanceof LiveError) throw new FatalError(err.message, err.exitCode);
    if (err instanceof DbError) throw new FatalError(err.message, 4);
    throw err;
  }
  const dot = toDot(db);
  if (!svg) { io.out(dot); return 0; }
  // A short-lived client, not the supervisor: running Graphviz as a child is harmless here.
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const r = spawnSync('dot', ['-Tsvg'], { input: dot, encoding: 'utf8' });
  if (r.error !== undefined) throw new FatalError(`unable to run Graphviz's dot (is it installed?): ${r.error.message}`, 111);
  if (r.status !== 0) throw new FatalError(`dot failed: ${r.stderr.trim()}`, 111);
  io.out(r.stdout);
  return 0;
}
