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
import { viewOfLive } from '../rc/engine.ts';
import { diffIn, listAllIn, listIn, selectIn } from '../rc/read-view.ts';
import { HELP, RC_OPTIONS, USAGE, readCommand, show as showView } from './_rc-read.ts';
import { describeServices } from '../rc/describe.ts';
import { type ChangeRequest, openForReading, rcExitCode, sayAt, startChange } from '../rc/run.ts';
import { StatusLine, changeProgress } from './_progress.ts';
import { EXIT } from '../s6/exit.ts';
import { tainFromUnixMs } from '../s6/tai.ts';

export async function main(args: string[], io: CommandIo): Promise<number> {
  return readCommand(args, io) ?? mainFull(args, io);
}

/** Every command, through the whole database and the locks (after readCommand left `args`). */
export async function mainFull(args: string[], io: CommandIo): Promise<number> {
  const { options, rest } = getopt(args, RC_OPTIONS);
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

/** list, listall, diff: read under the shared lock (or with no writer at work: rc/run.ts), print (or JSON). */
async function show(command: 'list' | 'listall' | 'diff', req: ChangeRequest, json: boolean, io: CommandIo): Promise<number> {
  const { state, unlock } = await openForReading(req.live, req.block);
  try {
    const view = viewOfLive(state);
    if (!json) return showView(view, command, req.names, req.up, req.addUp, io);
    const now = tainFromUnixMs(Date.now());
    if (command === 'diff') {
      const d = diffIn(view);
      io.out(`${JSON.stringify(await describeServices(state, d.map((e) => e.index), now))}\n`);
      return d.length > 0 ? EXIT.failed : EXIT.ok;
    }
    const selection = selectIn(view, req.names, req.addUp);
    const indexes = command === 'list' ? listIn(view, selection, req.up) : listAllIn(view, selection, req.up);
    io.out(`${JSON.stringify(await describeServices(state, indexes, now))}\n`);
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
