/**
 * t6-rc-update: switches the live state to a new compiled database (s6-rc-update).
 * Exit codes: 0 ok; before the switch: 3/5/6 bad conversion file, 4 bad database or state,
 * 9 a stop transition failed, 10 timed out (the old database stays live); after the switch:
 * 1 a start transition failed, 2 timed out; 100 usage; 111 system error.
 */
import fs from 'node:fs';
import path from 'node:path';
import { t6BinDir } from './_paths.ts';
import { StatusLine, stepProgress } from './_progress.ts';
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { getopt, uintOption } from './_getopt.ts';
import { loadDb, DbError, type Db } from '../rc/db.ts';
import { DEFAULT_LIVE, LiveError, lockDb, lockLive, openLive, type Live } from '../rc/live.ts';
import { Change } from '../rc/engine.ts';
import { parseConversions, planUpdate, switchLive, type UpdatePlan } from '../rc/update.ts';
import { EXIT } from '../s6/exit.ts';
import { strerror } from '../sys/errors.ts';

const USAGE = 't6-rc-update [ -n ] [ -v verbosity ] [ -t timeout ] [ -l live ] [ -f convfile ] [ -b ] [ -e ] newdb';
const HELP = `usage: ${USAGE}
Switches the live state (default ${DEFAULT_LIVE}) to the compiled database newdb while the
services run: stops what must restart (gone, changed type, "restart" in convfile, or
depending on such), switches atomically, then starts the new counterparts. Services that
stay up keep running under the same supervisor.
  -f convfile   lines "OLD [-> NEW] [restart]": renames and forced restarts
  -n            print what would be stopped and started; do nothing
  -e            also stop essential services that must restart
  -t ms         timeout for each of the two changes
`;

/** The conversion file's text; unreadable is fatal (111), as in s6-rc-update. */
function readConversionFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new LiveError(`unable to open ${file}: ${strerror(err)}`, EXIT.system);
  }
}

/** t6-rc-update's steps, in s6-rc-update's -v2 words. */
const UPDATE_STEPS = ['stopping services in the old database', 'updating state and service directories', 'starting services in the new database'] as const;

export async function main(args: string[], io: CommandIo): Promise<number> {
  if (args.includes('--help')) { io.out(HELP); return EXIT.ok; }
  const { options, rest } = getopt(args, { flags: 'nbe', withArg: 'vtlf' });
  let live = DEFAULT_LIVE;
  let verbosity = 1;
  let timeoutMs = 0;
  let convFile: string | undefined;
  let dryRun = false;
  let stopEssentials = false;
  let block = false;
  for (const { name, value } of options) {
    if (name === 'l') live = value!;
    else if (name === 'v') verbosity = uintOption('v', value);
    else if (name === 't') timeoutMs = uintOption('t', value);
    else if (name === 'f') convFile = value;
    else if (name === 'n') dryRun = true;
    else if (name === 'e') stopEssentials = true;
    else if (name === 'b') block = true;
  }
  if (rest.length !== 1) throw new UsageError(USAGE);
  const newdb = rest[0]!;
  if (!path.isAbsolute(newdb) || !path.isAbsolute(live)) throw new UsageError(`${USAGE}\nnewdb and live must be absolute paths`);
  const unlocks: (() => void)[] = [];
  const unlock = (): void => { for (const u of unlocks.splice(0).reverse()) u(); };
  try {
    // As s6-rc-update: LIVE exclusively (shared for a dry run), both databases shared.
    unlocks.push(await lockLive(live, block, dryRun));
    unlocks.push(await lockDb(path.join(live, 'compiled'), block));
    unlocks.push(await lockDb(newdb, block));
    const old = openLive(live);
    let next;
    try {
      next = loadDb(newdb);
    } catch (err) {
      if (err instanceof DbError) throw new LiveError(err.message, EXIT.invalidDb);
      throw err;
    }
    // Keep the path as given (a `compiled` symlink may be swapped later), as t6-rc-init does.
    next = { ...next, dir: newdb };
    const conv = parseConversions(convFile === undefined ? '' : readConversionFile(convFile), old.db, next);
    if (verbosity >= 2) io.err(`${io.prog}: info: computing state adjustments\n`);
    const plan = planUpdate(old.db, old.state, next, conv);
    if (dryRun) {
      const names = (db: typeof next, set: Set<number>): string => [...set].sort((a, b) => a - b).map((i) => db.services[i]!.name).join(' ');
      io.out(`stop: ${names(old.db, plan.stop)}\nstart: ${names(next, plan.start)}\n`);
      return EXIT.ok;
    }
    return await apply(io, old, next, plan, { timeoutMs, verbosity, stopEssentials });
  } catch (err) {
    if (err instanceof LiveError) throw new FatalError(err.message, err.exitCode);
    throw err;
  } finally {
    unlock();
  }
}

/** The update itself, once planned: old services down, the live directory switched, new ones up. */
async function apply(io: CommandIo, old: Live, next: Db, plan: UpdatePlan, o: { timeoutMs: number; verbosity: number; stopEssentials: boolean }): Promise<number> {
  const { timeoutMs, verbosity, stopEssentials } = o;
  // On a terminal, the step under way on a status line; the usual lines above it.
  const status = new StatusLine();
  const steps = stepProgress(status, io.prog, UPDATE_STEPS);
  const say = {
    info: (t: string) => { if (verbosity >= 2) status.print(`${io.prog}: info: ${t}\n`); },
    warn: (t: string) => { if (verbosity >= 1) status.print(`${io.prog}: warning: ${t}\n`); },
    fatal: (t: string) => status.print(`${io.prog}: fatal: ${t}\n`),
  };
  const opts = { prune: false, dryRun: false, timeoutMs, verbosity };
  try {
    // The -v2 steps in s6-rc-update's words, so logs read the same.
    say.info(UPDATE_STEPS[0]);
    steps.step(0, `(${plan.stop.size})`);
    const down = await new Change(old, plan.stop, { ...opts, up: false, stopEssentials }, say).done;
    if (down === EXIT.rcTimedOut) return EXIT.updateTimedOut;
    if (down !== EXIT.ok) return EXIT.updateFailed;
    say.info(UPDATE_STEPS[1]);
    steps.step(1);
    const current = await switchLive(old, next, plan, timeoutMs, say.warn, t6BinDir());
    say.info(UPDATE_STEPS[2]);
    steps.step(2, `(${plan.start.size})`);
    const up = await new Change(current, plan.start, { ...opts, up: true, stopEssentials: false }, say).done;
    steps.done();
    if (up === EXIT.ok) say.info('successfully switched to new database');
    return up;
  } finally {
    steps.done();
  }
}
