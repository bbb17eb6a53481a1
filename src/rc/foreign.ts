/**
 * t6-rc under a scanner that is not t6-svscan (Debian's s6-svscan): s6-rc's two internal
 * longruns, under s6-rc's own names.
 *
 * t6-svscan runs oneshots (its runner socket) and holds pipeline pipes (plumbing.ts)
 * itself. Another scanner does neither, so t6-rc-init adds to the live directory, as
 * s6-rc-compile adds to every database:
 *
 * - `s6rc-oneshot-runner`: t6-rc-oneshot-runner, the runner of t6-svscan as a process of
 *   its own, on the socket `s` of its servicedir. Oneshots run as its children, in the
 *   supervision tree's environment, as under s6-rc.
 * - `s6rc-fdholder` (only when the database has pipelines): s6's s6-fdholder-daemon on
 *   `s`, filled with one pipe per consumer by t6-rc-fdholder-filler before it reports
 *   ready. The run script of every pipelined longrun is then a wrapper that takes its
 *   pipe ends from there (s6-fdholder-retrieve) and execs the service's own script, kept
 *   as `run.user` (`finish.user`), as s6-rc's wrappers do.
 *
 * Both are always up: t6-rc-init starts them and waits for their readiness; no change
 * stops them. (The `s6rc-` prefix is reserved, so no user service can take these names.)
 * The tools they need are found when the live directory is made, and written into the
 * scripts with their full paths, so the scanner's PATH does not matter; a missing tool is
 * an error then, naming it, never a pipeline that silently loses its output.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_PATH, findInPath } from '../sys/spawn.ts';
import type { Db, LongrunService } from './db.ts';
import { deletePipes, storePipes } from './fdholder.ts';

/** The oneshot runner's service name (s6-rc's). */
export const RUNNER_SERVICE = 's6rc-oneshot-runner';
/** The fd holder's service name (s6-rc's). */
export const FDHOLDER_SERVICE = 's6rc-fdholder';
/** Where Debian installs execline's programs (off the usual PATH). */
const EXECLINE_LIBEXEC = '/usr/lib/execline/bin';

/** Full paths of the programs the scripts run. */
export interface ForeignTools {
  /** t6's own bin directory (t6-rc-oneshot-runner, t6-rc-fdholder-filler). */
  t6Bin: string;
  /** Only when pipelines need them: execline and s6's fd holder. */
  pipes?: {
    execlineb: string; fdmove: string; fdswap: string; fdclose: string; piperw: string; background: string;
    elgetpositionals: string; emptyenv: string;
    daemon: string; retrieve: string; store: string; delete: string;
  };
}

/** A tool the live directory needs is nowhere to be found. */
export class MissingToolError extends Error {
  override name = 'MissingToolError';
}

/**
 * Finds the tools: t6's own in `t6Bin`; with `pipelines`, execline's (its own directory
 * first: Debian's /usr/bin/execlineb is a wrapper script, not the interpreter) and s6's
 * fd holder, in `env`'s PATH. Throws MissingToolError naming every one missing.
 */
export function findForeignTools(env: readonly string[], t6Bin: string, pipelines: boolean): ForeignTools {
  const missing: string[] = [];
  const pathDirs = (env.findLast((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH).split(':').filter((d) => d.startsWith('/'));
  const find = (name: string, dirs: readonly string[]): string => {
    try {
      return findInPath(name, [`PATH=${dirs.join(':')}`]);
    } catch {
      missing.push(name);
      return '';
    }
  };
  for (const own of ['t6-rc-oneshot-runner', 't6-rc-fdholder-filler']) find(own, [t6Bin]);
  let pipes: ForeignTools['pipes'];
  if (pipelines) {
    const el = [EXECLINE_LIBEXEC, ...pathDirs];
    pipes = {
      execlineb: find('execlineb', el), fdmove: find('fdmove', el), fdswap: find('fdswap', el),
      fdclose: find('fdclose', el), piperw: find('piperw', el), background: find('background', el),
      elgetpositionals: find('elgetpositionals', el), emptyenv: find('emptyenv', el),
      daemon: find('s6-fdholder-daemon', pathDirs), retrieve: find('s6-fdholder-retrieve', pathDirs),
      store: find('s6-fdholder-store', pathDirs), delete: find('s6-fdholder-delete', pathDirs),
    };
  }
  if (missing.length > 0) {
    const why = pipelines ? 'run oneshots and hold pipeline pipes (install s6 and execline)' : 'run oneshots';
    throw new MissingToolError(`the scanner is not t6-svscan, so t6-rc needs its own services to ${why}, but these programs are missing: ${missing.join(', ')} (searched ${t6Bin}${pipelines ? ` and PATH=${pathDirs.join(':')}` : ''})`);
  }
  return { t6Bin, ...(pipes === undefined ? {} : { pipes }) };
}

/** An execline word: quoted, so any name is one word, read back exactly (no script here substitutes). */
export function execlineWord(s: string): string {
  return `"${s.replace(/[\\"]/g, '\\$&')}"`;
}

/** A shell word in single quotes (for fixed paths of t6's own install only). */
function shellWord(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

/** Writes the servicedir of s6rc-oneshot-runner into `dir` (which must not exist). */
export function writeRunnerService(dir: string, tools: ForeignTools): void {
  fs.mkdirSync(dir, { mode: 0o755 });
  const runner = path.join(tools.t6Bin, 't6-rc-oneshot-runner');
  fs.writeFileSync(path.join(dir, 'run'), `#!/bin/sh\nexec ${shellWord(runner)} -d 3 s\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'notification-fd'), '3\n');
}

/**
 * Writes the servicedir of s6rc-fdholder into `dir`: the daemon on `s`, filled with the
 * pipes of `consumers` before it is ready; only this uid and gid may use it.
 */
export function writeFdholderService(dir: string, tools: ForeignTools, consumers: readonly string[]): void {
  const p = tools.pipes!;
  fs.mkdirSync(dir, { mode: 0o755 });
  const filler = path.join(tools.t6Bin, 't6-rc-fdholder-filler');
  const w = (s: string): string => execlineWord(s);
  // fd 4/5: the daemon's readiness line (-1) goes to the filler, which reports the
  // service ready (fd 3) only once every pipe is stored.
  const run = [
    `#!${p.execlineb} -P`,
    `${w(p.piperw)} 4 5`,
    `${w(p.background)} { ${w(p.fdclose)} 5 ${w(p.fdmove)} 0 4 ${w(filler)} -d 3 -s ${w(p.store)} s data/consumers }`,
    `${w(p.fdclose)} 4`,
    `${w(p.fdclose)} 3`,
    `${w(p.fdmove)} 1 5`,
    `${w(p.daemon)} -1 -i data/rules -- s`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'run'), run, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'notification-fd'), '3\n');
  fs.mkdirSync(path.join(dir, 'data'), { mode: 0o755 });
  writeConsumers(dir, consumers);
  const uid = process.geteuid?.() ?? 0;
  const gid = process.getegid?.() ?? 0;
  for (const who of [`uid/${uid}`, `gid/${gid}`]) {
    const envDir = path.join(dir, 'data', 'rules', who, 'env');
    fs.mkdirSync(envDir, { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'data', 'rules', who, 'allow'), '');
    for (const v of ['S6_FDHOLDER_STORE_REGEX', 'S6_FDHOLDER_RETRIEVE_REGEX']) fs.writeFileSync(path.join(envDir, v), '^pipe:s6rc-\n');
    fs.writeFileSync(path.join(envDir, 'S6_FDHOLDER_LIST'), '\n');
  }
}

/** Rewrites the fd holder's list of consumers (what its filler stores at its next start). */
export function writeConsumers(fdholderDir: string, consumers: readonly string[]): void {
  fs.writeFileSync(path.join(fdholderDir, 'data', 'consumers'), consumers.map((c) => `${c}\n`).join(''));
}

/**
 * Wraps a pipelined longrun's `run` (and `finish`): the service's own script becomes
 * `run.user`, and `run` takes the pipe ends first — stdout the write end of `feeds`'s pipe
 * (a producer), stdin the read end of its own (`consumes`: a consumer), or both.
 */
export function wrapPipelined(dir: string, tools: ForeignTools, feeds: string | undefined, consumes: string | undefined): void {
  const p = tools.pipes!;
  const w = execlineWord;
  const socket = w(path.join('..', FDHOLDER_SERVICE, 's'));
  const take: string[] = [];
  // The producer part first: stdin is parked on fd 1 while the write end comes in on fd 0.
  if (feeds !== undefined) take.push(`${w(p.fdmove)} 1 0`, `${w(p.retrieve)} ${socket} ${w(`pipe:s6rc-w-${feeds}`)}`, `${w(p.fdswap)} 0 1`);
  if (consumes !== undefined) take.push(`${w(p.retrieve)} ${socket} ${w(`pipe:s6rc-r-${consumes}`)}`);
  for (const script of ['run', 'finish']) {
    const file = path.join(dir, script);
    if (!fs.existsSync(file)) continue;
    // finish gets arguments: execlineb pushes them into the environment without
    // substituting anything in the script (names may hold `$`); elgetpositionals puts
    // them back on the last command line only, and emptyenv -P pops them.
    const lines = script === 'run'
      ? [`#!${p.execlineb} -P`, ...take, './run.user']
      : [`#!${p.execlineb}`, ...take, `${w(p.elgetpositionals)} ${w(p.emptyenv)} -P ./finish.user $@`];
    fs.renameSync(file, `${file}.user`);
    fs.writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o755 });
  }
}

/** The oneshot runner socket of a live directory under a foreign scanner, or undefined. */
export function foreignRunnerSocket(live: string): string | undefined {
  const dir = path.join(live, 'servicedirs', RUNNER_SERVICE);
  return fs.existsSync(dir) ? path.join(dir, 's') : undefined;
}

/** Whether a live directory (its real path) was made for a foreign scanner. */
export function isForeignLive(liveReal: string): boolean {
  return fs.existsSync(path.join(liveReal, 'servicedirs', RUNNER_SERVICE));
}

/** The consumers of a database's pipelines, by name. */
export function consumersOf(db: Db): string[] {
  return db.services.filter((s) => s.type === 'longrun' && s.consumerFor.length > 0).map((s) => s.name);
}

/** A longrun's run (and finish) as the foreign scanner needs them: wrapped when it is pipelined. */
export function wrapIfPipelined(dir: string, db: Db, s: LongrunService, tools: ForeignTools): void {
  const feeds = s.producerFor === undefined ? undefined : db.services[s.producerFor]!.name;
  const consumes = s.consumerFor.length > 0 ? s.name : undefined;
  if (feeds !== undefined || consumes !== undefined) wrapPipelined(dir, tools, feeds, consumes);
}

/** What t6-rc-update does with the internal services of a foreign live dir. */
export interface InternalUpdate {
  /** Running internal servicedirs, to be moved into the new live dir like carried longruns. */
  carried: string[];
  /** Internal services made new (down), to be linked, then started. */
  fresh: string[];
}

/**
 * Prepares the internal services for an update to `next`, before the switch: the running
 * ones are carried; the fd holder (made if `next` has its first pipelines) gets the pipes
 * of every new consumer now, so that they are there when the consumers start, and the new
 * list of consumers for its next start. Throws FdholderError if a pipe cannot be stored.
 */
export function prepareInternalUpdate(oldReal: string, newReal: string, next: Db, tools: ForeignTools): InternalUpdate {
  const out: InternalUpdate = { carried: [RUNNER_SERVICE], fresh: [] };
  const consumers = consumersOf(next);
  const holder = path.join(oldReal, 'servicedirs', FDHOLDER_SERVICE);
  if (fs.existsSync(holder)) {
    out.carried.push(FDHOLDER_SERVICE);
    const had = fs.readFileSync(path.join(holder, 'data', 'consumers'), 'utf8').split('\n').filter((c) => c !== '');
    const socket = path.join(holder, 's');
    // A consumer that goes loses its pipe (it would be refused if it came back later).
    const removed = had.filter((c) => !consumers.includes(c));
    if (removed.length > 0) deletePipes(tools.pipes!.delete, socket, removed);
    const added = consumers.filter((c) => !had.includes(c));
    if (added.length > 0) storePipes(tools.pipes!.store, socket, added);
    writeConsumers(holder, consumers);
  } else if (tools.pipes !== undefined) {
    const dir = path.join(newReal, 'servicedirs', FDHOLDER_SERVICE);
    writeFdholderService(dir, tools, consumers);
    fs.writeFileSync(path.join(dir, 'down'), '');
    out.fresh.push(FDHOLDER_SERVICE);
  }
  return out;
}

/** A carried-over servicedir after the new files were copied over it: old wrappers gone, rewrapped if pipelined. */
export function rewrapCarried(dir: string, next: Db, s: LongrunService, tools: ForeignTools): void {
  for (const f of ['run.user', 'finish.user']) fs.rmSync(path.join(dir, f), { force: true });
  wrapIfPipelined(dir, next, s, tools);
}
