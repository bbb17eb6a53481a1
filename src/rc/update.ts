/**
 * t6-rc-update: switches the live state to another compiled database while services run
 * (s6-spec/s6-rc.md §8).
 *
 * 1. Plan (pure, `planUpdate`): every up atomic of the old db maps to the same name, or to
 *    its new name from the conversion file, in the new db. It must restart if it is gone,
 *    changed type, is flagged `restart`, or (to a fixed point) depends in the new db on
 *    something that restarts or that was not up before.
 * 2. Stop what must restart, with the old db (failure: exit 9, timeout: 10; nothing switched).
 * 3. A new live dir `LIVE:t6-rc-update:XXXXXX`: new longruns copied (with a `down` file),
 *    carried-over ones given the new files where they run; then (point of no return) the
 *    carried-over servicedirs renamed into it and LIVE repointed atomically; old longruns
 *    not carried over unlinked from the scandir and pruned, new ones linked (race-free);
 *    the old live dir removed once nothing runs in it (livedirs.ts).
 * 4. Start, with the new db, the new counterparts of what was stopped (failure 1, timeout 2).
 *
 * As s6-rc-update does, a carried-over servicedir is *renamed* into the new live dir: its
 * supervisor and process go on untouched (t6-svscan's supervisors follow the rename at the
 * scan that comes right after the switch), and one live directory is left after any number
 * of updates.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Db, type Service, atomicsOf } from './db.ts';
import { reverseDeps } from './plan.ts';
import { SERVICEDIR_DIRS, SERVICEDIR_FILES } from './source.ts';
import { type Live, LiveError, foreignToolsFor, unlinkIfExists, linkIntoScandir, liveServicedir, openLive, startInternal, writeState, writePipelineLink } from './live.ts';
import { type ForeignTools, isForeignLive, prepareInternalUpdate, rewrapCarried, wrapIfPipelined } from './foreign.ts';
import { type Move, SwitchError, moveAndSwitch, removeOldLiveDirs, replaceLink } from './livedirs.ts';
import { svscanctlSend } from '../s6/client.ts';
import { listenFifodir, makeFifodir } from '../s6/fifodir.ts';
import { carryRecords } from './timings-store.ts';
import { strerror } from '../sys/errors.ts';
import { EXIT } from '../s6/exit.ts';
import { lexExecline } from '../s6/execline.ts';

/** One line of the conversion file: `OLD [-> NEW] [restart]`. */
export interface Conversion {
  to: string | undefined;
  restart: boolean;
}

/**
 * Parses a conversion file as s6-rc-update does: each line lexed as execline (quotes,
 * backslashes, `#` comments where a word could start), then `OLD [-> NEW] [restart]...`.
 * Throws LiveError before anything is touched, with s6-rc-update's exit codes, checks in
 * its order and its words: per line, 100 (syntax), 3 (unknown old name), 5 (not atomic), 6
 * (a name twice), 100 (unknown keyword); then, over the old services from the last, 4 (a
 * new name the new database does not define) and 6 (a new service that two old ones
 * would become).
 */
export function parseConversions(text: string, old: Db, next: Db): Map<string, Conversion> {
  const out = new Map<string, Conversion>();
  for (const raw of text.split('\n')) {
    const lexed = lexExecline(Buffer.from(raw, 'utf8'));
    if (!lexed.ok) {
      const braces = /[{}]/.test(lexed.message);
      throw new LiveError(`${braces ? 'mismatched braces' : 'syntax error'} in conversion file: ${raw}`, EXIT.usage);
    }
    if (lexed.argv.length === 0) continue;
    const [name, ...rest] = lexed.argv as [string, ...string[]];
    const s = old.byName.get(name);
    if (s === undefined) throw new LiveError(`unknown identifier in ${old.dir}: ${name}`, EXIT.unknownName);
    if (s.type === 'bundle') throw new LiveError(`identifier ${name} does not represent an atomic service in ${old.dir}`, EXIT.wrongType);
    if (out.has(name)) throw new LiveError(`service ${name} appears more than once in conversion file`, EXIT.duplicate);
    const renamed = rest.length >= 2 && rest[0] === '->';
    const keywords = renamed ? rest.slice(2) : rest;
    const bad = keywords.find((k) => k !== 'restart');
    if (bad !== undefined) throw new LiveError(`unknown keyword in conversion file: ${bad}`, EXIT.usage);
    out.set(name, { to: renamed ? rest[1] : undefined, restart: keywords.length > 0 });
  }
  checkTargets(old, next, out);
  return out;
}

/**
 * Every new name exists, and every new atomic service is what at most one old atomic
 * service becomes (renamed, or by its own name). Old services are taken from the last,
 * as s6-rc-update takes them, so the same one is named when several are wrong.
 */
function checkTargets(old: Db, next: Db, conv: ReadonlyMap<string, Conversion>): void {
  const from = new Map<number, string>();
  for (let i = old.atomics - 1; i >= 0; i--) {
    const name = old.services[i]!.name;
    const to = conv.get(name)?.to;
    const target = next.byName.get(to ?? name);
    if (target === undefined) {
      if (to !== undefined) throw new LiveError(`bad conversion file: new service ${to} is undefined in database ${next.dir}`, EXIT.invalidDb);
      continue;
    }
    for (const a of atomicsOf(target)) {
      const other = from.get(a);
      if (other !== undefined) throw new LiveError(`unable to convert database: new service ${next.services[a]!.name} is a target for more than one conversion, including old service ${name}`, EXIT.duplicate);
      from.set(a, name);
    }
  }
}

/** What an update does. */
export interface UpdatePlan {
  /** Old atomic indexes to bring down before the switch. */
  stop: Set<number>;
  /** New atomic indexes to bring up after the switch. */
  start: Set<number>;
  /** New longrun index → old longrun index whose running servicedir it takes over. */
  carry: Map<number, number>;
  /** The new db's state right after the switch (before `start`). */
  state: boolean[];
}

/** Computes the update (pure). */
export function planUpdate(old: Db, oldState: readonly boolean[], next: Db, conv: ReadonlyMap<string, Conversion>): UpdatePlan {
  // The new service each up old atomic becomes, or undefined when it must restart outright.
  const target = new Map<number, Service | undefined>();
  const restart = new Set<number>();
  for (let i = 0; i < old.atomics; i++) {
    if (!oldState[i]) continue;
    const s = old.services[i]!;
    const c = conv.get(s.name);
    const n = next.byName.get(c?.to ?? s.name);
    target.set(i, n);
    if (n === undefined || n.type !== s.type || c?.restart === true) restart.add(i);
  }
  // New atomics that stay up: targets of up old services that do not restart.
  const stays = (): Map<number, number> => {
    const m = new Map<number, number>();
    for (const [i, n] of target) if (!restart.has(i) && n !== undefined) m.set(n.index, i);
    return m;
  };
  // Fixed point: staying up requires every new dependency to stay up too; and stopping an
  // old service stops (in the old db) whatever depends on it there.
  const oldRdeps = reverseDeps({ atomics: old.atomics, deps: old.services.slice(0, old.atomics).map((s) => (s as { deps: number[] }).deps), essential: [] });
  for (let changed = true; changed;) {
    changed = false;
    for (const i of [...restart]) {
      for (const r of oldRdeps[i]!) if (oldState[r] && !restart.has(r)) { restart.add(r); changed = true; }
    }
    const up = stays();
    for (const [ni, oi] of up) {
      const n = next.services[ni] as Extract<Service, { deps: number[] }>;
      if (n.deps.some((d) => !up.has(d))) { restart.add(oi); changed = true; }
    }
  }
  const up = stays();
  const state = Array.from({ length: next.atomics }, (_, i) => up.has(i));
  const start = new Set<number>();
  for (const i of restart) {
    const n = target.get(i);
    if (n !== undefined) for (const a of atomicsOf(n)) start.add(a);
  }
  const carry = new Map<number, number>();
  for (const [ni, oi] of up) if (next.services[ni]!.type === 'longrun') carry.set(ni, oi);
  return { stop: restart, start, carry, state };
}

/**
 * Builds the new live dir for `next`, moves the carried-over servicedirs into it, repoints
 * LIVE, swaps the scandir links, and removes the old live dir once its removed services'
 * supervisors are gone. Returns the new Live. Throws LiveError 111 on failure before the
 * point of no return (LIVE still the old one, its servicedirs where they were).
 */
export async function switchLive(old: Live, next: Db, plan: UpdatePlan, timeoutMs: number, warn: (message: string) => void = () => {}, t6Bin?: string): Promise<Live> {
  const oldReal = fs.realpathSync(old.dir);
  // Under a foreign scanner, its tools are checked before anything is made.
  const foreign = isForeignLive(oldReal) ? foreignToolsFor(next, { scandir: old.scandir, t6Bin }) : undefined;
  const real = fs.mkdtempSync(`${old.dir}:t6-rc-update:`);
  let built: Built;
  try {
    built = buildLive(real, old, oldReal, next, plan, foreign);
  } catch (err) {
    fs.rmSync(real, { recursive: true, force: true });
    throw new LiveError(`unable to build ${real}: ${strerror(err)}`, EXIT.system);
  }
  try {
    moveAndSwitch(old.dir, real, built.moves);
  } catch (err) {
    if (!(err instanceof SwitchError)) throw err;
    if (err.stuck.length === 0) fs.rmSync(real, { recursive: true, force: true });
    throw new LiveError(`unable to switch ${old.dir} to ${real}: ${err.message}`, EXIT.system);
  }
  try {
    carryRecords(oldReal, real);
  } catch (err) {
    warn(`unable to move the boot analysis records into ${real}: ${strerror(err)}`);
  }
  // Unlink the old longruns that are not carried over: they lose their supervisor when the
  // scanner is told `a` (their link is gone: inactive) then `n` (prune); their directories
  // are removed once each supervisor has said `x` (bounded wait). The carried-over ones keep
  // their link (it goes through LIVE), or get one by their new name before the old goes.
  const gone = old.db.services.filter((s) => s.type === 'longrun' && !built.carried.has(s.name)).map((s) => s.name);
  const exited = waitForExits(gone.map((name) => path.join(oldReal, 'servicedirs', name)), 5000);
  for (const name of gone) unlinkIfExists(path.join(old.scandir, old.prefix + name));
  for (const [from, to] of built.carried) {
    replaceLink(liveServicedir(old.dir, to), path.join(old.scandir, old.prefix + to));
    if (from !== to) unlinkIfExists(path.join(old.scandir, old.prefix + from));
  }
  let followed = false;
  try {
    // This scan also shows t6-svscan where the carried-over servicedirs are now.
    followed = await linkIntoScandir(old.dir, old.scandir, old.prefix, built.fresh, timeoutMs);
    await svscanctlSend(old.scandir, 'n').catch(() => {});
    if (built.startInternal.length > 0) await startInternal(old.dir, built.startInternal, timeoutMs > 0 ? performance.now() + timeoutMs : Infinity);
    await exited.promise;
    if (!followed && built.moves.length > 0) warn(`t6-svscan on ${old.scandir} did not say that its supervisors follow renamed servicedirs (an older image?): keeping the links to them in ${oldReal} until an update after its re-exec`);
  } finally {
    // Even when the new services could not be waited for: what is left is reduced to
    // servicedirs/, for a later update to remove.
    for (const problem of await removeOldLiveDirs(old.dir, real, oldReal, followed)) warn(problem);
  }
  return openLive(old.dir);
}

/**
 * The new live dir's files and fresh servicedirs (copied, with a `down` file). A carried-over
 * servicedir gets the new files where it runs, online, and is listed to be moved in.
 */
interface Built {
  moves: Move[];
  /** Servicedirs made new, to be linked into the scandir (with a `down` file). */
  fresh: string[];
  /** Old name → new name of every servicedir moved in. */
  carried: Map<string, string>;
  /** Internal services made new (foreign.ts), to be started once linked. */
  startInternal: string[];
}

function buildLive(real: string, old: Live, oldReal: string, next: Db, plan: UpdatePlan, foreign: ForeignTools | undefined): Built {
  fs.chmodSync(real, 0o755);
  fs.symlinkSync(next.dir, path.join(real, 'compiled'));
  fs.symlinkSync(old.scandir, path.join(real, 'scandir'));
  fs.writeFileSync(path.join(real, 'prefix'), old.prefix);
  fs.writeFileSync(path.join(real, 'lock'), '');
  writeState(real, plan.state);
  fs.mkdirSync(path.join(real, 'servicedirs'));
  const moves: Move[] = [];
  const fresh: string[] = [];
  const carried = new Map<string, string>();
  for (const s of next.services) {
    if (s.type !== 'longrun') continue;
    const src = path.join(next.dir, 'servicedirs', s.name);
    const dst = path.join(real, 'servicedirs', s.name);
    const oi = plan.carry.get(s.index);
    if (oi !== undefined) {
      // Where it runs: in the old live dir, or (left by an older t6) behind a link from it.
      const from = old.db.services[oi]!.name;
      const running = fs.realpathSync(path.join(oldReal, 'servicedirs', from));
      copyOnline(src, running);
      if (foreign !== undefined) rewrapCarried(running, next, s, foreign);
      else writePipelineLink(running, next, s, old.prefix);
      moves.push({ from: running, to: dst });
      carried.set(from, s.name);
    } else {
      fs.cpSync(src, dst, { recursive: true });
      if (foreign !== undefined) wrapIfPipelined(dst, next, s, foreign);
      else writePipelineLink(dst, next, s, old.prefix);
      fs.writeFileSync(path.join(dst, 'down'), '');
      makeFifodir(path.join(dst, 'event'));
      fresh.push(s.name);
    }
  }
  if (foreign === undefined) return { moves, fresh, carried, startInternal: [] };
  const internal = prepareInternalUpdate(oldReal, real, next, foreign);
  for (const name of internal.carried) {
    moves.push({ from: path.join(oldReal, 'servicedirs', name), to: path.join(real, 'servicedirs', name) });
    carried.set(name, name);
  }
  return { moves, fresh: [...internal.fresh, ...fresh], carried, startInternal: internal.fresh };
}

/** Every file and directory of a servicedir that t6-rc-compile writes, `run` aside (always there). */
const COMPILED_ENTRIES: readonly string[] = [...SERVICEDIR_FILES, ...SERVICEDIR_DIRS].filter((n) => n !== 'run');

/**
 * Gives a running servicedir the compiled one's files, as s6-rc-update's copy does
 * (s6rc_servicedir_copy_online): each compiled file or directory is replaced whole, and one
 * the new database no longer has is removed — a probe/ of another kind, a variable gone
 * from env/, or a dropped setting (notification-fd, flag-sd-notify, up-settle…) must not
 * linger where the supervisor reads it. The new entries are copied beside the old ones
 * first, then each is renamed into place: a file is replaced atomically, a directory with
 * only the removal of the old one between (the supervisor reads them when run starts).
 */
function copyOnline(src: string, running: string): void {
  const staged = fs.mkdtempSync(path.join(running, '.t6-rc-update:'));
  try {
    fs.cpSync(src, staged, { recursive: true });
    const fresh = new Set(fs.readdirSync(staged));
    for (const name of fresh) {
      const to = path.join(running, name);
      // rename(2) replaces a file, not a directory: a directory on either side goes first.
      const dirThere = fs.lstatSync(to, { throwIfNoEntry: false })?.isDirectory() === true;
      if (dirThere || fs.lstatSync(path.join(staged, name)).isDirectory()) fs.rmSync(to, { recursive: true, force: true });
      fs.renameSync(path.join(staged, name), to);
    }
    for (const name of COMPILED_ENTRIES) if (!fresh.has(name)) fs.rmSync(path.join(running, name), { recursive: true, force: true });
  } finally {
    fs.rmSync(staged, { recursive: true, force: true });
  }
}

/** Subscribes now to each dir's `x` event; `promise` resolves when all came or after `ms`. */
function waitForExits(dirs: readonly string[], ms: number): { promise: Promise<void>; pending: Set<string> } {
  const pending = new Set(dirs);
  let done: () => void = () => {};
  const listeners: { close(): void }[] = [];
  for (const dir of dirs) {
    try {
      listeners.push(listenFifodir(path.join(dir, 'event'), (byte) => {
        if (byte !== 'x') return;
        pending.delete(dir);
        if (pending.size === 0) done();
      }));
    } catch {
      pending.delete(dir); // no event dir: nothing to wait for
    }
  }
  const promise = new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    done = () => { clearTimeout(t); resolve(); };
    if (pending.size === 0) done();
  }).finally(() => { for (const l of listeners) l.close(); });
  return { promise, pending };
}
