/**
 * Reading s6-rc source directories (s6-spec/s6-rc.md §1) into plain records, collecting
 * every problem instead of stopping at the first. Nothing here looks across services:
 * names are resolved, pipelines matched (pipelines.ts) and cycles found in compile.ts.
 * How each file is read (one shared buffer, lists, numbers, scripts) is definition-files.ts.
 *
 * A source directory holds one definition directory per service (its name is the
 * service's name); entries starting with `.` and entries that are not directories are
 * ignored; names are read in sorted order, sources in the order given.
 *
 * Each problem is `{ file, message }`: the file (or directory) to fix and what is wrong
 * with it. Warnings have the same shape and do not stop compilation.
 */
import fs from 'node:fs';
import path from 'node:path';
import { RESERVED_PREFIXES } from './db.ts';
import { type FileData, type NameRef, type Report, readFile, readList, readScript, readText, readUint, uintOf } from './definition-files.ts';
import { PROBE_DIR, POLICY_FILES, T6_LONGRUN_ONLY, checkPolicyFiles, checkProbeDir } from './policy-files.ts';
import { parseSignal } from '../s6/signals.ts';
import { strerror } from '../sys/errors.ts';

/** One problem found in the sources: the file to fix and what is wrong with it. */
export interface Problem {
  file: string;
  message: string;
  /** The -v level from which a warning is shown (default 1): 2 for those s6-rc-compile does not print. */
  verbosity?: number;
}

export type { FileData, NameRef } from './definition-files.ts';

/**
 * The files of a longrun's source that become its compiled servicedir, copied as they are
 * (numbers rewritten as `N\n`): s6's, then t6's additions (policy-files.ts).
 * `nosetsid` is not one: s6 ignores it since 2.10 and s6-rc-compile does not copy it.
 */
export const SERVICEDIR_FILES = [
  'run', 'finish', 'notification-fd', 'lock-fd', 'timeout-kill', 'timeout-finish',
  'max-death-tally', 'down-signal', 'reload-signal', 'flag-newpidns', 'flag-timeout-killpg',
  ...POLICY_FILES,
] as const;
/** Directories of a longrun's source copied recursively into its servicedir (probe/ is t6's). */
export const SERVICEDIR_DIRS = ['env', 'data', 'template', PROBE_DIR] as const;

const COPIED: readonly string[] = [...SERVICEDIR_FILES, ...SERVICEDIR_DIRS];
const LONGRUN_ONLY = ['run', 'finish', 'producer-for', 'consumer-for', 'pipeline-name', 'notification-fd'] as const;
const NOT_FOR_BUNDLES = ['dependencies', 'dependencies.d', 'up', 'run', 'producer-for', 'consumer-for'] as const;
const UINT_FILES = ['notification-fd', 'lock-fd', 'timeout-kill', 'timeout-finish', 'max-death-tally'] as const;
const SIGNAL_FILES = ['down-signal', 'reload-signal'] as const;
const SERVICE_TYPES = ['oneshot', 'longrun', 'bundle'] as const;
/** The usual `type` files (a word, with or without its newline) and their word, read without the byte-level rule. */
const PLAIN_TYPES = new Map<string, string>(SERVICE_TYPES.flatMap((t) => [[t, t], [`${t}\n`, t]]));
/** The service types of the source format. */
export type ServiceType = typeof SERVICE_TYPES[number];

/** One service definition directory, as read. */
export interface SourceService {
  name: string;
  /** The source directory (absolute) it was found in. */
  source: string;
  /** Its definition directory (absolute). */
  dir: string;
  /** undefined when the type file is missing or invalid (a problem was reported). */
  type: ServiceType | undefined;
  essential: boolean;
  /** Declared direct dependencies (atomic services). */
  dependencies: NameRef[];
  /** Declared members (bundles). */
  contents: NameRef[];
  timeoutUp: number;
  timeoutDown: number;
  /** Oneshot argvs. */
  up: string[];
  down: string[];
  /** Longrun: which of SERVICEDIR_FILES and SERVICEDIR_DIRS exist (to copy). */
  files: string[];
  /** Longrun: the content of each of SERVICEDIR_FILES present, read once here (mode: run/finish only). */
  fileData: Map<string, FileData>;
  notificationFd: number | undefined;
  lockFd: number | undefined;
  /** t6-rc's settle time (up-settle), ms; undefined without the file. */
  upSettle: number | undefined;
  /** Readiness other than notification-fd: flag-sd-notify or probe/. */
  t6Readiness: boolean;
  producerFor: NameRef | undefined;
  consumerFor: NameRef[];
  pipelineName: NameRef | undefined;
}

/** What reading the sources gave. */
export interface SourceSet {
  services: SourceService[];
  problems: Problem[];
  warnings: Problem[];
}

/** Why a name cannot be a service name, or undefined if it can. */
export function badName(name: string): string | undefined {
  if (name === '') return 'an empty name';
  if (name.includes('\n')) return `${JSON.stringify(name)} contains a newline character`;
  if (name.includes('/') || name.includes('\0')) return `${JSON.stringify(name)} contains a / or a NUL byte`;
  if (name === '.' || name === '..') return `${JSON.stringify(name)} is not a service name`;
  for (let i = 0; i < RESERVED_PREFIXES.length; i++) {
    const p = RESERVED_PREFIXES[i]!;
    if (name.startsWith(p)) return `${JSON.stringify(name)} starts with the reserved prefix ${p}`;
  }
  return undefined;
}

/** Reads every source directory. Problems with a source directory itself are problems too. */
export function readSources(sourceDirs: readonly string[]): SourceSet {
  const set: SourceSet = { services: [], problems: [], warnings: [] };
  for (const src of sourceDirs) readSource(path.resolve(src), set);
  return set;
}

function readSource(src: string, set: SourceSet): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(src, { withFileTypes: true });
  } catch (err) {
    set.problems.push({ file: src, message: `unable to read the source directory: ${strerror(err)}` });
    return;
  }
  // Sorted as String.prototype.sort sorts (UTF-16 code units); src is absolute, and a
  // name from readdir has no `/` and is not `.` or `..`, so the paths need no path.join.
  const listed = entries.filter((e) => !e.name.startsWith('.')).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const prefix = src.endsWith('/') ? src : `${src}/`;
  let count = 0;
  for (let i = 0; i < listed.length; i++) {
    const ent = listed[i]!;
    const name = ent.name;
    const dir = prefix + name;
    if (!ent.isDirectory()) {
      if (!ent.isSymbolicLink()) continue;
      try {
        if (!fs.statSync(dir).isDirectory()) continue;
      } catch {
        set.warnings.push({ file: dir, message: 'dangling symbolic link, ignored' });
        continue;
      }
    }
    count++;
    const bad = badName(name);
    if (bad !== undefined) {
      set.problems.push({ file: dir, message: `invalid service name: ${bad}` });
      continue;
    }
    set.services.push(readService(src, name, dir, set));
  }
  if (count === 0) set.warnings.push({ file: src, message: 'source directory is empty' });
}

/** Reads one definition directory. */
export function readService(src: string, name: string, dir: string, set: SourceSet): SourceService {
  const svc: SourceService = {
    name, source: src, dir, type: undefined, essential: false, dependencies: [], contents: [],
    timeoutUp: 0, timeoutDown: 0, up: [], down: [], files: [], fileData: new Map(), notificationFd: undefined,
    lockFd: undefined, upSettle: undefined, t6Readiness: false, producerFor: undefined, consumerFor: [], pipelineName: undefined,
  };
  const problem: Report = (file, message) => { set.problems.push({ file: `${dir}/${file}`, message }); };
  const warn: Report = (file, message) => { set.warnings.push({ file: `${dir}/${file}`, message }); };
  // What s6-rc-compile passes over in silence is said only at -v2 (real trees trip these often).
  const note: Report = (file, message) => { set.warnings.push({ file: `${dir}/${file}`, message, verbosity: 2 }); };
  let present: Set<string>;
  try {
    present = new Set(fs.readdirSync(dir));
  } catch (err) {
    set.problems.push({ file: dir, message: `unable to read the definition directory: ${strerror(err)}` });
    return svc;
  }
  const type = readType(dir, present, problem);
  if (type === undefined) return svc;
  svc.type = type;
  svc.essential = present.has('flag-essential');

  if (type === 'bundle') {
    svc.contents = readList(dir, 'contents', present, problem, warn) ?? [];
    if (!present.has('contents') && !present.has('contents.d')) problem('contents', 'missing: a bundle needs contents.d/ or a contents file');
    eachPresent(NOT_FOR_BUNDLES, present, (f) => warn(f, `ignored: a bundle has no ${f}`));
    eachPresent(T6_LONGRUN_ONLY, present, (f) => problem(f, `${f} is for longruns; this service is a bundle`));
    return svc;
  }

  // atomic services
  svc.dependencies = readList(dir, 'dependencies', present, problem, warn) ?? [];
  svc.timeoutUp = readUint(dir, 'timeout-up', present, problem, 0xffffffff) ?? 0;
  svc.timeoutDown = readUint(dir, 'timeout-down', present, problem, 0xffffffff) ?? 0;

  if (type === 'oneshot') {
    if (!present.has('up')) problem('up', 'missing: a oneshot needs an up script');
    else svc.up = readScript(dir, 'up', problem) ?? [];
    if (present.has('down')) svc.down = readScript(dir, 'down', problem) ?? [];
    eachPresent(LONGRUN_ONLY, present, (f) => note(f, `ignored: ${f} is for longruns; this service is a oneshot`));
    // t6's own files have no s6-rc source to stay compatible with: a mistake, said as one.
    eachPresent(T6_LONGRUN_ONLY, present, (f) => problem(f, `${f} is for longruns; this service is a oneshot`));
    return svc;
  }
  readLongrun(svc, present, set, problem, warn, note);
  return svc;
}

/** Calls `f` for each name of `names` that `present` holds, in the order of `names`. */
function eachPresent<T extends string>(names: readonly T[], present: Set<string>, f: (name: T) => void): void {
  for (let i = 0; i < names.length; i++) if (present.has(names[i]!)) f(names[i]!);
}

/** The `type` file's word; undefined when it is missing, unreadable or not a type (reported). */
function readType(dir: string, present: Set<string>, problem: Report): ServiceType | undefined {
  if (!present.has('type')) {
    problem('type', 'missing: every service needs a type file (oneshot, longrun or bundle)');
    return undefined;
  }
  const typeText = readText(dir, 'type', problem);
  if (typeText === undefined) return undefined;
  // As s6-rc-compile: the first 8 bytes, one trailing newline removed ("oneshot\n\n" is a oneshot).
  const typeWord = PLAIN_TYPES.get(typeText) ?? Buffer.from(typeText, 'utf8').subarray(0, 8).toString('latin1').replace(/\n$/, '');
  if (!(SERVICE_TYPES as readonly string[]).includes(typeWord)) {
    problem('type', `invalid type ${JSON.stringify(typeText.slice(0, 40))}: must be oneshot, longrun, or bundle`);
    return undefined;
  }
  return typeWord as ServiceType;
}

/** The longrun part of readService: the servicedir's files and directories, then the pipeline files. */
function readLongrun(svc: SourceService, present: Set<string>, set: SourceSet, problem: Report, warn: Report, note: Report): void {
  const dir = svc.dir;
  // Each servicedir file is read once; it is checked here and written from memory.
  // (Indexed loops over the constant lists, here and below: a for-of in code that has not
  // been optimised yet allocates an iterator result per step, for each of 1,000 services.)
  eachPresent(SERVICEDIR_FILES, present, (f) => {
    const fd = readFile(dir, f, problem, f === 'run' || f === 'finish');
    if (fd !== undefined) svc.fileData.set(f, fd);
  });
  if (!present.has('run')) problem('run', 'missing: a longrun needs a run script');
  const run = svc.fileData.get('run');
  if (run !== undefined) checkExecutable(run, 'run', problem, note);
  const finish = svc.fileData.get('finish');
  if (finish !== undefined) checkExecutable(finish, 'finish', problem, note);
  checkServicedirSettings(svc, problem, warn);
  const policy = checkPolicyFiles(svc.fileData, problem);
  svc.upSettle = policy.upSettle;
  svc.t6Readiness = policy.sdNotify;
  for (let i = 0; i < SERVICEDIR_DIRS.length; i++) {
    const d = SERVICEDIR_DIRS[i]!;
    if (!present.has(d)) continue;
    let st: fs.Stats;
    try {
      st = fs.statSync(`${dir}/${d}`);
    } catch (err) {
      problem(d, `unable to stat: ${strerror(err)}`);
      continue;
    }
    if (!st.isDirectory()) { problem(d, 'is not a directory'); continue; }
    if (d === 'env') checkEnvDir(`${dir}/${d}`, set);
    if (d === PROBE_DIR) {
      checkProbeDir(dir, problem);
      svc.t6Readiness = true;
    }
  }
  eachPresent(COPIED, present, (f) => { svc.files.push(f); });
  if (present.has('log')) warn('log', 'ignored: s6-rc services log through pipelines (producer-for / consumer-for), not log/');
  readPipelineFiles(svc, present, problem, warn);
}

/** The numeric settings (fds, timeouts, max-death-tally) and the signal files of a servicedir. */
function checkServicedirSettings(svc: SourceService, problem: Report, warn: Report): void {
  for (let i = 0; i < UINT_FILES.length; i++) {
    const f = UINT_FILES[i]!;
    const fd = svc.fileData.get(f);
    if (fd === undefined) continue;
    // As s6-rc-compile: the first line only, written back as `N\n`.
    const v = uintOf(fd.data.toString('utf8').split('\n')[0]!, f, problem, 0x7fffffff);
    if (v !== undefined) svc.fileData.set(f, { ...fd, data: Buffer.from(`${v}\n`) });
    if (f === 'notification-fd') svc.notificationFd = v;
    if (f === 'lock-fd') svc.lockFd = v;
    if (f === 'max-death-tally' && v !== undefined && v > 4096) warn(f, `${v} is above 4096; the supervisor keeps 4096`);
  }
  if (svc.notificationFd !== undefined && svc.notificationFd < 3) warn('notification-fd', `fd ${svc.notificationFd} is one of stdin, stdout, stderr`);
  if (svc.lockFd !== undefined && svc.lockFd < 3) warn('lock-fd', `fd ${svc.lockFd} is one of stdin, stdout, stderr`);
  if (svc.notificationFd !== undefined && svc.notificationFd === svc.lockFd) {
    problem('lock-fd', `same fd as notification-fd (${svc.lockFd}); they must differ`);
  }
  for (let i = 0; i < SIGNAL_FILES.length; i++) {
    const f = SIGNAL_FILES[i]!;
    const fd = svc.fileData.get(f);
    if (fd === undefined) continue;
    const text = fd.data.toString('utf8');
    const first = text.split('\n')[0]!;
    const sig = parseSignal(first);
    if (sig === undefined || sig === 0) problem(f, `${JSON.stringify(first.slice(0, 40))} is not a signal (a name like TERM or SIGTERM, or a number)`);
  }
}

/** producer-for (one name), consumer-for (one or more), pipeline-name (one name). */
function readPipelineFiles(svc: SourceService, present: Set<string>, problem: Report, warn: Report): void {
  const dir = svc.dir;
  if (present.has('producer-for')) {
    const names = readList(dir, 'producer-for', present, problem, warn) ?? [];
    if (names.length !== 1) problem('producer-for', `must name exactly one service (the consumer), found ${names.length}`);
    else svc.producerFor = names[0];
  }
  if (present.has('consumer-for')) {
    // An empty one is accepted, as s6-rc-compile does: the service consumes nothing.
    const names = readList(dir, 'consumer-for', present, problem, warn) ?? [];
    if (names.length > 0) svc.consumerFor = names;
  }
  if (present.has('pipeline-name')) {
    const names = readList(dir, 'pipeline-name', present, problem, warn) ?? [];
    if (names.length !== 1) problem('pipeline-name', `must contain exactly one name, found ${names.length}`);
    else svc.pipelineName = names[0];
  }
}

/**
 * run/finish: a regular file (symlinks followed) starting with `#!` or an ELF header.
 * Not being executable is only a warning: s6-rc-compile installs them 0755 whatever their
 * mode (s6-rc's own examples ship 0644 run scripts), and so does t6.
 */
function checkExecutable(fd: FileData, file: string, problem: Report, note: Report): void {
  if ((fd.mode & 0o111) === 0) note(file, `is not executable (mode ${fd.mode.toString(8).padStart(4, '0')}); installed as 0755`);
  const head = fd.data;
  if (head.length === 0) { problem(file, 'is empty'); return; }
  const isScript = head[0] === 0x23 && head[1] === 0x21;
  const isElf = head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
  if (!isScript && !isElf) problem(file, 'has no #! line and is not an ELF binary: the kernel cannot execute it (start it with e.g. #!/bin/sh)');
}

/** env/: names must be usable as environment variable names (no `=`), entries regular files. */
function checkEnvDir(envDir: string, set: SourceSet): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(envDir, { withFileTypes: true });
  } catch (err) {
    set.problems.push({ file: envDir, message: `unable to read: ${strerror(err)}` });
    return;
  }
  for (const e of entries) {
    if (e.name.includes('=')) set.problems.push({ file: path.join(envDir, e.name), message: 'an environment variable name cannot contain =' });
    else if (e.isDirectory()) set.problems.push({ file: path.join(envDir, e.name), message: 'is a directory; env/ holds one file per variable' });
  }
}
