/**
 * The live state of t6-rc (s6-spec/s6-rc.md §6): the directory that LIVE (default
 * /run/t6-rc) points at, holding
 *
 *   compiled      symlink → the compiled database in use
 *   scandir       symlink → the scan directory t6-svscan watches
 *   prefix        the prefix of the scandir links (no newline; may be empty)
 *   state         one byte per atomic service, in index order; bit 0 = up
 *   lock          empty; t6-rc change takes it exclusively
 *   servicedirs/  a copy of the database's servicedirs, linked into the scandir as
 *                 SCANDIR/PREFIXNAME; a `down` file in each while t6-rc considers it down
 *
 * `initLive` is t6-rc-init; `openLive` is how the other tools find all of it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Db, DbError, type Service, loadDb } from './db.ts';
import { ClientError, svOk, svcSend, svscanctlSend, waitFor } from '../s6/client.ts';
import {
  FDHOLDER_SERVICE, type ForeignTools, MissingToolError, RUNNER_SERVICE,
  consumersOf, findForeignTools, wrapIfPipelined, writeFdholderService, writeRunnerService,
} from './foreign.ts';
import { currentEnv } from '../sys/spawn.ts';
import { listenFifodir } from '../s6/fifodir.ts';
import { PRODUCER_FOR_FILE } from '../s6/servicefacts.ts';
import { runnerSocket } from './oneshot.ts';
import { copyTree } from './copy-tree.ts';
import { strerror } from '../sys/errors.ts';
import { EXIT } from '../s6/exit.ts';
import type { LocalRunner } from '../supervise/scanner-host.ts';

export const DEFAULT_LIVE = '/run/t6-rc';
export const DEFAULT_COMPILED = '/etc/t6-rc/compiled';

/** A failure of a live-state operation with the exit code the tools use. */
export class LiveError extends Error {
  override name = 'LiveError';
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** An opened live directory. */
export interface Live {
  /** LIVE as given (the symlink). */
  dir: string;
  db: Db;
  scandir: string;
  prefix: string;
  /** bit 0 of every state byte. */
  state: boolean[];
}

/** The live servicedir of a longrun (through the LIVE symlink, as it is linked into the scandir). */
export function liveServicedir(live: string, name: string): string {
  return path.join(live, 'servicedirs', name);
}

/** Writes `LIVE/state` atomically (state.new, then rename). */
export function writeState(live: string, state: readonly boolean[]): void {
  const tmp = path.join(live, 'state.new');
  fs.writeFileSync(tmp, Buffer.from(state.map((up) => (up ? 1 : 0))));
  fs.renameSync(tmp, path.join(live, 'state'));
}

/** Opens LIVE: the database it uses, its scandir, prefix and state. Throws LiveError (4: bad db or state, 111: system). */
export function openLive(live: string): Live {
  let db: Db;
  try {
    db = loadDb(path.join(live, 'compiled'));
  } catch (err) {
    if (err instanceof DbError) throw new LiveError(err.message, EXIT.invalidDb);
    throw err;
  }
  let scandir: string;
  let prefix: string;
  let bytes: Buffer;
  try {
    scandir = fs.readlinkSync(path.join(live, 'scandir'));
    prefix = fs.readFileSync(path.join(live, 'prefix'), 'utf8');
    bytes = fs.readFileSync(path.join(live, 'state'));
  } catch (err) {
    throw new LiveError(`unable to read valid state in ${live}: ${strerror(err)}`, EXIT.invalidDb);
  }
  if (bytes.length !== db.atomics) throw new LiveError(`unable to read valid state in ${live}: ${bytes.length} bytes for ${db.atomics} services`, EXIT.invalidDb);
  return { dir: live, db, scandir, prefix, state: [...bytes].map((b) => (b & 1) === 1) };
}

/** Options of t6-rc-init. */
export interface InitOptions {
  compiled: string;
  live: string;
  prefix: string;
  scandir: string;
  /** Bound on the wait for the supervisors (0 = none). */
  timeoutMs: number;
  /** Wait for the database's lock instead of failing (-b). */
  block?: boolean;
  /** -d: `compiled` may be relative; LIVE/compiled points at its real path. */
  dereference?: boolean;
  /**
   * t6's bin directory, for the internal services a scanner other than t6-svscan needs
   * (foreign.ts). Undefined: such a scanner is refused.
   */
  t6Bin?: string;
  /** pid 1's own t6-rc: the scanner is in this process, and scans when asked (no socket). */
  local?: LocalRunner;
}

/**
 * t6-rc-init: a new live directory next to LIVE, LIVE switched to it atomically, every
 * longrun's servicedir linked into the scandir with a `down` file and its supervisor
 * waited for. Throws LiveError: 100 when t6-svscan does not run on the scandir, 4 for a
 * bad database, 111 otherwise (and on timeout).
 */
export async function initLive(opts: InitOptions): Promise<void> {
  for (const [what, p] of [['compiled', opts.compiled], ['live', opts.live], ['scandir', opts.scandir]] as const) {
    if (!path.isAbsolute(p) && !(what === 'compiled' && opts.dereference === true)) throw new LiveError(`${what} must be an absolute path`, EXIT.usage);
  }
  if (opts.prefix.includes('/') || opts.prefix.includes('\n')) throw new LiveError('prefix may not contain / or newline', EXIT.usage);
  let compiled = opts.compiled;
  if (opts.dereference === true) {
    try {
      compiled = fs.realpathSync(compiled);
    } catch (err) {
      throw new LiveError(`unable to resolve ${compiled}: ${strerror(err)}`, EXIT.system);
    }
  }
  // Held while the database is read and copied: a compiler writing it holds it exclusively.
  const unlockDb = await lockDb(compiled, opts.block === true);
  try {
    await initLocked({ ...opts, compiled });
  } finally {
    unlockDb();
  }
}

async function initLocked(opts: InitOptions): Promise<void> {
  let db: Db;
  try {
    db = loadDb(opts.compiled);
  } catch (err) {
    if (err instanceof DbError) throw new LiveError(err.message, EXIT.invalidDb);
    throw err;
  }
  // No runner socket: the scanner is not t6-svscan, and t6-rc brings its own runner and
  // fd holder (foreign.ts). Their tools are checked before anything is made.
  const foreign = isSocket(runnerSocket(opts.scandir)) ? undefined : foreignToolsFor(db, opts);
  // The real directory, named like s6-rc-init's mkdtemp next to LIVE.
  const real = fs.mkdtempSync(`${opts.live}:t6-rc-init:`);
  fs.chmodSync(real, 0o755);
  fs.symlinkSync(opts.compiled, path.join(real, 'compiled'));
  fs.symlinkSync(opts.scandir, path.join(real, 'scandir'));
  fs.writeFileSync(path.join(real, 'prefix'), opts.prefix);
  fs.writeFileSync(path.join(real, 'lock'), '');
  writeState(real, new Array<boolean>(db.atomics).fill(false));
  const longruns = db.services.filter((s) => s.type === 'longrun');
  fs.mkdirSync(path.join(real, 'servicedirs'));
  for (const s of longruns) {
    const dst = path.join(real, 'servicedirs', s.name);
    copyTree(path.join(db.dir, 'servicedirs', s.name), dst);
    if (foreign !== undefined) wrapIfPipelined(dst, db, s, foreign);
    else if (s.producerFor !== undefined) writePipelineLink(dst, db, s, opts.prefix);
    fs.writeFileSync(path.join(dst, 'down'), '');
  }
  const internal = foreign === undefined ? [] : writeInternalServices(path.join(real, 'servicedirs'), db, foreign);
  // Switch LIVE atomically: a new symlink renamed over the old one.
  const tmpLink = `${opts.live}:t6-rc-init:link`;
  unlinkIfExists(tmpLink);
  fs.symlinkSync(path.basename(real), tmpLink);
  try {
    fs.renameSync(tmpLink, opts.live);
  } catch (err) {
    unlinkIfExists(tmpLink);
    throw new LiveError(`unable to switch ${opts.live} to ${real}: ${strerror(err)}`, EXIT.system);
  }
  const deadline = opts.timeoutMs > 0 ? performance.now() + opts.timeoutMs : Infinity;
  await linkIntoScandir(opts.live, opts.scandir, opts.prefix, [...internal, ...longruns.map((s) => s.name)], opts.timeoutMs, opts.local);
  if (internal.length > 0) await startInternal(opts.live, internal, deadline);
}

/** The tools of the internal services, or LiveError 111 naming what is missing. */
export function foreignToolsFor(db: Db, opts: { scandir: string; t6Bin?: string | undefined }): ForeignTools {
  if (opts.t6Bin === undefined) throw new LiveError(`no t6-svscan runner socket in ${opts.scandir}, and no t6 bin directory to run the oneshot runner from`, EXIT.system);
  const pipelines = db.services.some((s) => s.type === 'longrun' && s.producerFor !== undefined);
  try {
    return findForeignTools(currentEnv(), opts.t6Bin, pipelines);
  } catch (err) {
    if (err instanceof MissingToolError) throw new LiveError(err.message, EXIT.system);
    throw err;
  }
}

/** Writes s6rc-oneshot-runner (and s6rc-fdholder when there are pipelines), down; returns their names. */
function writeInternalServices(servicedirs: string, db: Db, tools: ForeignTools): string[] {
  const names = [RUNNER_SERVICE];
  writeRunnerService(path.join(servicedirs, RUNNER_SERVICE), tools);
  const consumers = consumersOf(db);
  if (tools.pipes !== undefined) {
    writeFdholderService(path.join(servicedirs, FDHOLDER_SERVICE), tools, consumers);
    names.push(FDHOLDER_SERVICE);
  }
  for (const n of names) fs.writeFileSync(path.join(servicedirs, n, 'down'), '');
  return names;
}

/** Brings the internal services up and waits for their readiness; they stay up from then on. */
export async function startInternal(live: string, names: readonly string[], deadline: number): Promise<void> {
  const dirs = names.map((n) => liveServicedir(live, n));
  const left = deadline === Infinity ? 0 : Math.max(1, Math.floor(deadline - performance.now()));
  let w;
  try {
    w = await waitFor(dirs, 'U', 'all', left, () => Promise.all(dirs.map((d) => svcSend(d, 'u'))));
  } catch (err) {
    throw new LiveError(`unable to start ${names.join(' and ')}: ${strerror(err)}`, EXIT.system);
  }
  if (!w.reached) throw new LiveError(`${names.join(' and ')} did not become ready${w.timedOut ? ' in time' : ''} (see the scanner's log)`, EXIT.system);
  for (const d of dirs) fs.rmSync(path.join(d, 'down'), { force: true });
}

/**
 * Links each live servicedir into the scandir (SCANDIR/PREFIXNAME) and returns once
 * t6-svscan supervises every one. The fast way is one request on t6-svscan's runner socket
 * (runner.ts: scan, then answer with what is supervised). Without it (another scanner, or
 * no socket), the race-free protocol of svscan.md §8: subscribe to each event/ fifodir,
 * create the links, send `a`, wait for every `s` — or find the service supervised already.
 * Resolves with whether the scanner's supervisors are known to have followed any renamed
 * servicedir by then: t6-svscan says so in its answer; s6-supervise lives in its directory.
 */
export async function linkIntoScandir(live: string, scandir: string, prefix: string, names: readonly string[], timeoutMs: number, local?: LocalRunner): Promise<boolean> {
  const deadline = timeoutMs > 0 ? performance.now() + timeoutMs : Infinity;
  const link = (): void => {
    for (const name of names) {
      const at = path.join(scandir, prefix + name);
      const target = liveServicedir(live, name);
      try {
        fs.symlinkSync(target, at);
      } catch (err) {
        // Mostly absent: replace what is there only when something is.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        unlinkIfExists(at);
        fs.symlinkSync(target, at);
      }
    }
  };
  const socket = runnerSocket(scandir);
  if (!isSocket(socket)) {
    await waitSupervised(live, scandir, names, deadline, () => { link(); return sendScan(scandir); });
    return true;
  }
  link();
  const answer = local === undefined ? await askScan(socket, deadline) : { supervised: new Set(local.scan()), follows: true };
  // Refused or unreachable (an older scanner): the event protocol, with the links made.
  const left = answer === undefined ? names : names.filter((n) => !answer.supervised.has(prefix + n));
  if (left.length > 0) await waitSupervised(live, scandir, left, deadline, () => (answer === undefined ? sendScan(scandir) : undefined));
  return answer?.follows === true;
}

/** `a` to the scanner; "not running" is LiveError 100. */
async function sendScan(scandir: string): Promise<void> {
  try {
    await svscanctlSend(scandir, 'a');
  } catch (err) {
    if (err instanceof ClientError && (err.code === 'not-supervised' || err.errno === 'ENOENT')) {
      throw new LiveError(`t6-svscan not running on ${scandir}`, EXIT.usage);
    }
    throw new LiveError(strerror(err), EXIT.system);
  }
}

/**
 * Subscribes to the event fifodir of each service, runs `trigger`, then waits for each
 * that is not supervised yet to say `s`. Subscribing first means no `s` can be missed.
 */
async function waitSupervised(live: string, scandir: string, names: readonly string[], deadline: number, trigger: () => Promise<void> | undefined): Promise<void> {
  const waiting = new Set(names);
  let wake: (() => void) | undefined;
  const listeners = names.map((name) => listenFifodir(path.join(liveServicedir(live, name), 'event'), (byte) => {
    if (byte !== 's') return;
    waiting.delete(name);
    if (waiting.size === 0) wake?.();
  }));
  let timer: NodeJS.Timeout | undefined;
  try {
    await trigger();
    for (const name of [...waiting]) {
      if (await svOk(liveServicedir(live, name))) waiting.delete(name);
    }
    if (waiting.size === 0) return;
    await new Promise<void>((resolve, reject) => {
      wake = resolve;
      if (deadline !== Infinity) {
        timer = setTimeout(() => reject(new LiveError(`timed out waiting for t6-svscan on ${scandir} to supervise ${[...waiting].join(', ')}`, EXIT.system)), Math.max(1, deadline - performance.now()));
      }
    });
  } finally {
    clearTimeout(timer);
    for (const l of listeners) l.close();
  }
}

/**
 * Asks t6-svscan's runner to scan now. Resolves with the scan dir entries supervised after
 * that scan and whether its supervisors follow renamed directories, or undefined if the
 * request was refused or the socket would not answer.
 */
function askScan(socketPath: string, deadline: number): Promise<{ supervised: Set<string>; follows: boolean } | undefined> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const sock = process.getBuiltinModule('node:net').connect(socketPath);
    const finish = (v: { supervised: Set<string>; follows: boolean } | undefined, err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err !== undefined) reject(err); else resolve(v);
    };
    if (deadline !== Infinity) {
      timer = setTimeout(() => finish(undefined, new LiveError(`timed out waiting for t6-svscan to scan ${path.dirname(path.dirname(socketPath))}`, EXIT.system)), Math.max(1, deadline - performance.now()));
    }
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write('{"scan":true}\n'));
    sock.on('error', () => finish(undefined));
    sock.on('close', () => finish(undefined));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let reply: { scanned?: unknown; supervised?: unknown; follows?: unknown };
      try {
        reply = JSON.parse(buf.slice(0, nl)) as typeof reply;
      } catch {
        finish(undefined);
        return;
      }
      const list = reply.supervised;
      finish(reply.scanned === true && Array.isArray(list) ? { supervised: new Set(list.filter((n): n is string => typeof n === 'string')), follows: reply.follows === true } : undefined);
    });
  });
}

function isSocket(p: string): boolean {
  try {
    return fs.statSync(p, { throwIfNoEntry: false })?.isSocket() === true;
  } catch {
    return false;
  }
}

/** Removes a file or symlink (never what a symlink points to); absent is fine. */
export function unlinkIfExists(p: string): void {
  try {
    fs.unlinkSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Takes `LIVE/lock` (s6-rc.md §6.2): exclusively to change the state (t6-rc change,
 * t6-rc-update), shared to read it (list, listall, diff). Returns its release. Contention
 * is LiveError 111 unless `block`, which waits for the holder to let go.
 *
 * A writer also marks the file, writing its pid into it while it holds the lock and
 * emptying it before letting go: a reader learns from one stat that no writer is at work,
 * without the native addon a lock test needs (read-view.ts liveWriterMarked, rc/run.ts openForReading). A writer
 * that died leaves its mark; readers then take the lock as before, and the next writer
 * clears it.
 */
export async function lockLive(live: string, block: boolean, shared = false): Promise<() => void> {
  return lockFile(path.join(live, 'lock'), block, shared, true);
}

/**
 * Takes the compiled database's `lock` shared, as every user of a database does (its
 * compiler holds it exclusively while it writes). A database without a lock file (made by
 * an older t6-rc-compile) is used unlocked.
 */
export async function lockDb(compiled: string, block: boolean): Promise<() => void> {
  return lockFile(path.join(compiled, 'lock'), block, true, false);
}

async function lockFile(file: string, block: boolean, shared: boolean, create: boolean): Promise<() => void> {
  const { O_RDONLY, O_RDWR, O_CREAT, open, openIfExists, close, tryLock, tryLockShared, lockWait } = await import('../sys/fd.ts');
  let fd: number | undefined;
  try {
    // Shared: read access is enough, so anyone who may read the state can list it.
    fd = create ? open(file, (shared ? O_RDONLY : O_RDWR) | O_CREAT, 0o644) : openIfExists(file, shared ? O_RDONLY : O_RDWR);
  } catch (err) {
    throw new LiveError(`unable to open ${file}: ${strerror(err)}`, EXIT.system);
  }
  if (fd === undefined) return () => {};
  const held = fd;
  if (!(shared ? tryLockShared(held, file) : tryLock(held, file))) {
    if (!block) {
      close(held);
      throw new LiveError(`unable to take lock on ${file}: Resource busy`, EXIT.system);
    }
    try {
      await lockWait(held, shared, file);
    } catch (err) {
      close(held);
      throw new LiveError(strerror(err), EXIT.system);
    }
  }
  if (shared || !create) return () => close(held);
  markWriter(held, `${process.pid}\n`);
  return () => { markWriter(held, ''); close(held); };
}

/** Sets the writer's mark in LIVE/lock (held exclusively); best effort: without it, readers only lose their shortcut. */
function markWriter(fd: number, mark: string): void {
  try {
    fs.ftruncateSync(fd, 0);
    if (mark !== '') fs.writeSync(fd, mark, 0);
  } catch { /* a full or read-only /run: the lock itself still holds */ }
}

/**
 * Tells t6-svscan which scan dir entry a producer's stdout feeds: `producer-for` holds the
 * consumer's name as linked into the scandir (prefix included). t6-svscan holds that pipe,
 * as s6-rc's fd holder does, so either side can restart without losing data. A service
 * that is not (or no longer) a producer has no such file.
 */
export function writePipelineLink(servicedir: string, db: Db, service: Service, prefix: string): void {
  const file = path.join(servicedir, PRODUCER_FOR_FILE);
  if (service.type === 'longrun' && service.producerFor !== undefined) {
    fs.writeFileSync(file, `${prefix}${db.services[service.producerFor]!.name}\n`);
  } else {
    fs.rmSync(file, { force: true });
  }
}
