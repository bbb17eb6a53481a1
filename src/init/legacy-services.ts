/**
 * /etc/services.d: plain s6 service directories, supervised straight by the scanner (not by
 * t6-rc). services-up copies each to /run/s6/legacy-services/NAME (so the image's files are
 * never written to) and links it as SCANDIR/NAME; services-down takes the links away and
 * waits for the services (and their loggers) to be down.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type LegacyContext, listEntries, say, stage2Policy } from './legacy-common.ts';
import { waitSupervised } from './legacy-wait.ts';
import { svOk, readStatusFile, waitFor, type WaitResult } from '../s6/client.ts';
import { meets, stateOfStatus, wantOf } from '../s6/svwait.ts';
import { strerror } from '../sys/errors.ts';

const UP = 'services-up';
const DOWN = 'services-down';

/** Copies `from` (followed if a link: it is a services.d entry) to the new `to`: modes, owners when root, links as links. */
export function copyServiceTree(from: string, to: string, st: fs.Stats = fs.statSync(from)): void {
  const asRoot = process.getuid?.() === 0;
  if (st.isDirectory()) {
    fs.mkdirSync(to, { mode: 0o700 });
    for (const name of fs.readdirSync(from)) copyServiceTree(path.join(from, name), path.join(to, name), fs.lstatSync(path.join(from, name)));
  } else if (st.isSymbolicLink()) {
    fs.symlinkSync(fs.readlinkSync(from), to);
  } else if (st.isFile()) {
    fs.copyFileSync(from, to, fs.constants.COPYFILE_EXCL);
  } else {
    return; // a FIFO, a socket or a device has no business in a service definition: not copied
  }
  // Owners kept when root (inferred: a data/ file given to the service's user must stay
  // its); modes with no umask in the way (a run script stays executable).
  if (asRoot) fs.lchownSync(to, st.uid, st.gid);
  if (!st.isSymbolicLink()) fs.chmodSync(to, st.mode & 0o7777);
}

/** A legacy service as linked into the scandir. */
interface Linked {
  name: string;
  dir: string;
  /** It has notification-fd: wait for ready, not only up. */
  notifies: boolean;
}

/** Links SCANDIR/NAME to `target`, replacing only a link of our own from an earlier boot. */
function linkService(ctx: LegacyContext, name: string, target: string): boolean {
  const at = path.join(ctx.dirs.scandir, name);
  const old = fs.lstatSync(at, { throwIfNoEntry: false });
  if (old !== undefined) {
    const ours = old.isSymbolicLink() && path.dirname(path.resolve(ctx.dirs.scandir, fs.readlinkSync(at))) === path.resolve(ctx.dirs.servicesCopy);
    if (!ours) {
      say(ctx, 'error', UP, `${at} exists and is not a legacy service: ${name} not started`);
      return false;
    }
    fs.unlinkSync(at);
  }
  fs.symlinkSync(target, at);
  return true;
}

/** Copies and links every directory of services.d; returns them and the count of failures. */
function installAll(ctx: LegacyContext): { linked: Linked[]; failures: number } {
  const src = path.join(ctx.dirs.legacy, 'services.d');
  const copies = ctx.dirs.servicesCopy;
  fs.rmSync(copies, { recursive: true, force: true });
  fs.mkdirSync(copies, { recursive: true, mode: 0o755 });
  fs.chmodSync(copies, 0o755);
  const linked: Linked[] = [];
  let failures = 0;
  const listed = listEntries(ctx, UP, src);
  failures += listed.unreadable;
  for (const name of listed.names) {
    const from = path.join(src, name);
    const dir = path.join(copies, name);
    try {
      const st = fs.statSync(from);
      if (!st.isDirectory()) continue;
      copyServiceTree(from, dir, st);
      if (linkService(ctx, name, dir)) linked.push({ name, dir, notifies: fs.existsSync(path.join(dir, 'notification-fd')) });
      else failures++;
    } catch (err) {
      failures++;
      say(ctx, 'error', UP, `unable to install ${from}: ${strerror(err)}`);
    }
  }
  return { linked, failures };
}

/** The services of `list` that are not (up, or ready when they notify) now, for a message. */
function notThere(list: readonly Linked[]): string[] {
  return list.filter((s) => {
    try {
      return !meets(stateOfStatus(readStatusFile(s.dir)), wantOf(s.notifies ? 'U' : 'u'));
    } catch {
      return true;
    }
  }).map((s) => s.name);
}

/**
 * S6_CMD_WAIT_FOR_SERVICES: after S6_SERVICES_READYTIME ms, waits until every service is
 * supervised, then up (ready, for those with notification-fd), all within
 * S6_CMD_WAIT_FOR_SERVICES_MAXTIME ms (0: no bound). Returns the count of failures.
 * s6-overlay sleeps the ready time because s6-svwait fails on a directory nobody supervises
 * yet; the waits here need no pause, but images tune the setting, so it is kept. s6-overlay
 * also bounds its two s6-svwait runs (up; ready) one after the other, each by the maximum
 * time; one bound over the whole wait is what the setting's name says.
 */
async function waitServices(ctx: LegacyContext, linked: readonly Linked[]): Promise<number> {
  const s = ctx.settings;
  if (s.servicesReadyTimeMs > 0) await new Promise((resolve) => setTimeout(resolve, s.servicesReadyTimeMs));
  const deadline = s.cmdWaitForServicesMaxTimeMs > 0 ? performance.now() + s.cmdWaitForServicesMaxTimeMs : Infinity;
  const left = (): number => (deadline === Infinity ? 0 : Math.max(1, Math.ceil(deadline - performance.now())));
  const missing = await waitSupervised(linked.map((l) => l.dir), deadline);
  if (missing.length > 0) {
    say(ctx, 'error', UP, `not supervised in time: ${missing.map((d) => path.basename(d)).join(' ')}`);
    return missing.length;
  }
  const wait = (list: Linked[], goal: 'u' | 'U'): Promise<WaitResult> =>
    (list.length === 0 ? Promise.resolve({ reached: true, failures: 0, timedOut: false }) : waitFor(list.map((l) => l.dir), goal, 'all', left()));
  const plain = linked.filter((l) => !l.notifies);
  const notifying = linked.filter((l) => l.notifies);
  const results = await Promise.all([wait(plain, 'u'), wait(notifying, 'U')]);
  if (results.every((r) => r.reached && r.failures === 0)) return 0;
  const late = notThere(linked);
  const why = results.some((r) => r.timedOut) ? 'not up in time' : 'failed to come up';
  say(ctx, 'error', UP, `${why}: ${late.length > 0 ? late.join(' ') : linked.map((l) => l.name).join(' ')}`);
  return Math.max(1, late.length);
}

/**
 * The up of `legacy-services`: a fresh copy of each directory of `<legacy>/services.d`,
 * linked into the scandir, a rescan, and with S6_CMD_WAIT_FOR_SERVICES a wait for them; the
 * stage-2 policy decides the exit code.
 */
export async function servicesUp(ctx: LegacyContext): Promise<number> {
  let installed;
  try {
    installed = installAll(ctx);
  } catch (err) {
    say(ctx, 'error', UP, `unable to prepare ${ctx.dirs.servicesCopy}: ${strerror(err)}`);
    return stage2Policy(ctx, UP, 1);
  }
  let { failures } = installed;
  for (const l of installed.linked) say(ctx, 'info', UP, `starting ${l.name}`);
  try {
    await ctx.host.rescan(false);
  } catch (err) {
    say(ctx, 'error', UP, `unable to have ${ctx.dirs.scandir} rescanned: ${strerror(err)}`);
    return stage2Policy(ctx, UP, failures + 1);
  }
  if (ctx.settings.cmdWaitForServices && installed.linked.length > 0) {
    try {
      failures += await waitServices(ctx, installed.linked);
    } catch (err) {
      say(ctx, 'error', UP, `unable to wait for the services: ${strerror(err)}`);
      failures++;
    }
  }
  return stage2Policy(ctx, UP, failures);
}

/** The directories of `name`'s copy (and its logger's) that a supervisor runs now. */
async function supervisedDirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of [dir, path.join(dir, 'log')]) {
    try {
      if (await svOk(d)) out.push(d);
    } catch { /* not a service directory: nothing to wait for */ }
  }
  return out;
}

/**
 * The down of `legacy-services`: each link SCANDIR/NAME to a copy goes, the scanner drops
 * the services it no longer finds (TERM to a service, HUP to a logger), and the services and
 * their loggers get S6_SERVICES_GRACETIME ms to be down (0: as long as they take). Always 0.
 */
export async function servicesDown(ctx: LegacyContext): Promise<number> {
  const copies = ctx.dirs.servicesCopy;
  const dirs: string[] = [];
  for (const name of listEntries(ctx, DOWN, copies).names) {
    const dir = path.join(copies, name);
    const at = path.join(ctx.dirs.scandir, name);
    try {
      const st = fs.lstatSync(at, { throwIfNoEntry: false });
      if (st?.isSymbolicLink() === true && path.resolve(ctx.dirs.scandir, fs.readlinkSync(at)) === path.resolve(dir)) fs.unlinkSync(at);
    } catch (err) {
      say(ctx, 'warning', DOWN, `unable to remove ${at}: ${strerror(err)}`);
    }
    dirs.push(...await supervisedDirs(dir));
    say(ctx, 'info', DOWN, `stopping ${name}`);
  }
  const rescan = (): Promise<void> => ctx.host.rescan(true).catch((err: unknown) => {
    say(ctx, 'warning', DOWN, `unable to have ${ctx.dirs.scandir} rescanned: ${strerror(err)}`);
  });
  if (dirs.length === 0) {
    await rescan();
    return 0;
  }
  try {
    const r = await waitFor(dirs, 'D', 'all', ctx.settings.servicesGraceTimeMs, rescan);
    if (!r.reached) say(ctx, 'warning', DOWN, `not all down after ${ctx.settings.servicesGraceTimeMs} ms`);
  } catch (err) {
    say(ctx, 'warning', DOWN, `unable to wait for the services: ${strerror(err)}`);
  }
  return 0;
}
