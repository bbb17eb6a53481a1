/**
 * t6-linux-init-maker's work: the boot tree that t6-linux-init reads (linux-init.md §1),
 * written into a directory that must not exist yet (built beside it, then renamed, so a
 * failure leaves nothing behind).
 *
 *   bin/        init halt poweroff reboot shutdown telinit — small sh scripts calling t6
 *               (init runs t6's Node on the t6-linux-init bundle directly)
 *   env/        one file per -e variable
 *   scripts/    rc.init, rc.shutdown, runlevel, with the t6-rc lines active
 *   run-image/  copied into /run at boot:
 *     uncaught-logs/                 the catch-all log (02750)            [not with -B]
 *     service/.s6-svscan/finish      pid 1's last resort if the scanner is told to exit
 *     service/s6-svscan-log/t6-log   the catch-all logger's script, run inside pid 1  [not with -B]
 *     service/s6-linux-init-shutdownd/fifo   the shutdown FIFO, read by pid 1 itself
 *     service/s6-linux-init-early-getty/run  the -G command                [only with -G]
 *
 * Where s6 has helper daemons (shutdownd, runleveld, the catch-all s6-log) t6 does the work
 * in pid 1 and keeps their interfaces: the FIFO and its 17-byte requests, the
 * `s6-svscan-log` service name, /run/uncaught-logs. Nothing here prints or exits.
 */
import fs from 'node:fs';
import path from 'node:path';
import { mkfifo } from '../sys/fd.ts';
import { DAEMON_NODE_FLAGS } from '../sys/heap.ts';
import { SNAPSHOT_FALLBACK_ENV, snapshotBlobPath } from '../sys/snapshot.ts';
import { lexExecline } from '../s6/execline.ts';
import {
  BIN_DIR, CATCHALL_LOGDIR, CATCHALL_SERVICE, CONTAINER_RESULTS, DEFAULT_SCANDIR, EARLY_GETTY_SERVICE, ENV_DIR, RUN_IMAGE,
  RUNLEVEL_SCRIPT, SCRIPTS_DIR, SHUTDOWND_FIFO, SHUTDOWND_SERVICE, STAGE2, STAGE3, STAGE4, TMPFS_DIR,
} from '../s6/initctl.ts';

// Paths inside the tree, by the names s6-linux-init fixes (initctl.ts): what lives on the
// tmpfs at run time is in the run-image at the same place.
const inRunImage = (runPath: string): string => `${RUN_IMAGE}/${path.posix.relative(TMPFS_DIR, runPath)}`;
const SVC = inRunImage(DEFAULT_SCANDIR);
const RESULTS = inRunImage(CONTAINER_RESULTS);
const UNCAUGHT = inRunImage(CATCHALL_LOGDIR);
const bin = (name: string): string => `${BIN_DIR}/${name}`;

/** The maker's settings, one per option. */
export interface MakerOptions {
  /** -c: where the tree will live on the target (absolute). */
  basedir: string;
  /** -T (t6): the directory of t6's commands on the target (absolute). */
  t6bin: string;
  /** -b (t6): the compiled t6-rc database rc.init starts from. */
  compiled: string;
  /** -l (t6): the t6-rc live directory. */
  live: string;
  /** -u: owner of the catch-all log directory (uid, gid). */
  logOwner?: { uid: number; gid: number };
  /** -G: the early getty command line (execline words). */
  earlyGetty?: string;
  /** -1: the catch-all logger copies every line to the console. */
  logToConsole: boolean;
  /** -p: the initial PATH. */
  initialPath: string;
  /** -m: the initial umask. */
  umask: number;
  /** -t: catch-all timestamps (0 none, 1 TAI64N, 2 ISO 8601, 3 both). */
  timestampStyle: 0 | 1 | 2 | 3;
  /** -d: mount a devtmpfs there at boot. */
  devtmpfs?: string;
  /** -s: dump the kernel environment there at boot. */
  envStore?: string;
  /** -e: variables for env/ (undefined value: an empty file, i.e. unset). */
  env: Array<[string, string | undefined]>;
  /** -q: grace time between TERM and KILL at shutdown, ms. */
  graceMs: number;
  /** -D: the default runlevel. */
  defaultRunlevel: string;
  /** -n / -N: remount /run, or leave it alone, instead of mounting a fresh tmpfs. */
  runMode: 'mount' | 'remount' | 'keep';
  /** -f: take rc.init, rc.shutdown, rc.shutdown.final and runlevel from here instead. */
  skeleton?: string;
  /** -C: container mode. */
  container: boolean;
  /** -B: no catch-all logger. */
  noLogger: boolean;
  /** -S: sync at container halt. */
  syncInContainer: boolean;
  /** -U (t6): SIGUSR1 halts and SIGUSR2 powers off, as busybox's halt and poweroff send them. */
  busyboxSignals?: boolean;
  /** -r (t6): pid 1 runs the service manager's boot and shutdown changes itself (no rc.init, rc.shutdown). */
  rcInProcess?: boolean;
  /** -Z (t6): bin/init never starts from the startup snapshot. */
  noSnapshot?: boolean;
  /** -V: the verbosity given to init as -v. */
  verbosity?: number;
  /** -R: hard resource limits for init (-R), canonical text. */
  hardLimits?: string;
  /** -W: the container manager's synchronisation fd for init (-W), >= 3. */
  readyFd?: number;
}

/** Quotes a word for sh: the generated scripts never let a shell interpret user data. */
export function shQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The catch-all logger's script (the `t6-log` file's lines). */
export function catchAllScript(o: Pick<MakerOptions, 'logToConsole' | 'timestampStyle'>, logdir = CATCHALL_LOGDIR): string[] {
  // -b: block input while output is pending; the console copy without stamps, as s6's.
  const lines = ['-b'];
  if (o.logToConsole) lines.push('1');
  if (o.timestampStyle & 1) lines.push('t');
  if (o.timestampStyle & 2) lines.push('T');
  lines.push(logdir);
  return lines;
}

/** Every file of the tree, as [relative path, content, mode]; FIFOs and dirs apart. */
interface Tree {
  dirs: Array<[string, number]>;
  files: Array<[string, string, number]>;
  fifos: Array<[string, number]>;
}

/** A file of the t6 tree whose `bin/` is t6bin: `dist/…`, `node_modules/node/…`. */
function t6TreePath(o: MakerOptions, rel: string): string {
  return path.join(path.dirname(path.resolve(o.t6bin)), rel);
}

/**
 * bin/halt, bin/poweroff, bin/reboot: t6's Node on the t6-hpr bundle itself, without the
 * bin/ wrapper's shell (a second shell's start is tens of ms under emulation, on the way to
 * "The system is going down"), when both are where the tree's layout puts them; else the
 * wrapper. Shell built-ins only.
 */
function hprScript(o: MakerOptions, what: string, flag: string): string {
  const q = shQuote;
  const node = q(t6TreePath(o, 'node_modules/node/bin/node'));
  const bundle = q(t6TreePath(o, 'dist/t6-hpr.cjs'));
  const args = `${flag}${o.container && !o.syncInContainer ? ' -n' : ''} "$@"`;
  return script(`${what}: ask pid 1 to ${what === 'halt' ? 'halt the machine' : what === 'poweroff' ? 'power the machine off' : 'reboot'} (-f: at once, without stopping services).`,
    `test -x ${node} && test -f ${bundle} && exec ${node} ${bundle} ${args}\nexec ${q(`${o.t6bin}/t6-hpr`)} ${args}`);
}

/**
 * The init command line baked into bin/init. It runs t6's Node on the t6-linux-init bundle
 * itself, as the bin/ wrapper would, without the wrapper's shell: t6bin is a t6 tree's
 * `bin/`, beside its `dist/` and `node_modules/node/` (the layout the wrappers assume too).
 */
function initCommand(o: MakerOptions): string[] {
  const t6Path = (rel: string): string => t6TreePath(o, rel);
  const argv = [t6Path('node_modules/node/bin/node'), ...DAEMON_NODE_FLAGS, t6Path('dist/t6-linux-init.cjs'), '-c', o.basedir, '-m', `0${o.umask.toString(8).padStart(3, '0')}`, '-p', o.initialPath, '-q', String(o.graceMs)];
  if (o.envStore !== undefined) argv.push('-s', o.envStore);
  if (o.devtmpfs !== undefined) argv.push('-d', o.devtmpfs);
  if (o.defaultRunlevel !== 'default') argv.push('-D', o.defaultRunlevel);
  if (o.runMode === 'remount') argv.push('-n');
  if (o.runMode === 'keep') argv.push('-N');
  if (o.container) argv.push('-C');
  if (o.noLogger) argv.push('-B');
  if (o.syncInContainer) argv.push('-S');
  if (o.busyboxSignals === true) argv.push('-U');
  if (o.rcInProcess === true) argv.push('-r', '-b', o.compiled, '-l', o.live);
  if (o.verbosity !== undefined) argv.push('-v', String(o.verbosity));
  if (o.hardLimits !== undefined) argv.push('-R', o.hardLimits);
  if (o.readyFd !== undefined) argv.push('-W', String(o.readyFd));
  return argv;
}

const HEADER = '#!/bin/sh\n# Generated by t6-linux-init-maker.\n';

/**
 * bin/init: exec t6-linux-init. By default from its startup snapshot (sys/snapshot.ts),
 * when the blob is there, checked by the build (its stamp) and unchanged since (not newer
 * than the stamp); Node aborts on a damaged blob, and pid 1 must not. Otherwise from the
 * bundle, with the reason in the environment for t6-linux-init to print. Shell built-ins only.
 */
function initScript(o: MakerOptions): string {
  const q = shQuote;
  const argv = initCommand(o);
  const nodeAndFlags = argv.slice(0, 1 + DAEMON_NODE_FLAGS.length).map(q).join(' ');
  const bundleAndArgs = argv.slice(1 + DAEMON_NODE_FLAGS.length).map(q).join(' ');
  const comment = 'stage 1: t6-linux-init with the settings this tree was made with';
  if (o.noSnapshot === true) return script(`${comment}.`, `exec ${argv.map(q).join(' ')} -- "$@"`);
  const blob = snapshotBlobPath(argv[1 + DAEMON_NODE_FLAGS.length]!);
  return script(`${comment}, from its startup snapshot when that is sound.`, [
    `blob=${q(blob)}`,
    'if ! test -f "$blob"; then why="$blob is missing"',
    'elif ! test -f "$blob.ok"; then why="$blob was never checked (no $blob.ok)"',
    'elif test "$blob" -nt "$blob.ok"; then why="$blob has changed since it was checked"',
    `else exec ${nodeAndFlags} --snapshot-blob "$blob" ${bundleAndArgs} -- "$@"`,
    'fi',
    `${SNAPSHOT_FALLBACK_ENV}=$why`,
    `export ${SNAPSHOT_FALLBACK_ENV}`,
    `exec ${argv.map(q).join(' ')} -- "$@"`,
  ].join('\n'));
}

function script(comment: string, body: string): string {
  return `${HEADER}# ${comment}\n${body}\n`;
}

/** Builds the description of the tree (pure: no I/O). Throws Error on a bad -G line. */
export function describeTree(o: MakerOptions): Tree {
  const q = shQuote;
  const t6 = (cmd: string): string => q(`${o.t6bin}/${cmd}`);
  const tree: Tree = { dirs: [], files: [], fifos: [] };
  for (const d of [BIN_DIR, ENV_DIR, SCRIPTS_DIR, RUN_IMAGE, SVC, `${SVC}/.s6-svscan`, `${SVC}/${SHUTDOWND_SERVICE}`]) tree.dirs.push([d, 0o755]);

  tree.files.push([bin('init'), initScript(o), 0o755]);
  for (const [what, flag] of [['halt', '-h'], ['poweroff', '-p'], ['reboot', '-r']] as const) tree.files.push([bin(what), hprScript(o, what, flag), 0o755]);
  tree.files.push([bin('shutdown'), script('shutdown [-h|-p|-r|-k] [-a] [-t sec] time [message], or shutdown -c.', `exec ${t6('t6-shutdown')} "$@"`), 0o755]);
  if (!o.container) {
    tree.files.push([bin('telinit'), script('telinit RUNLEVEL: run scripts/runlevel under pid 1 (0: power off, 6: reboot).', `exec ${t6('t6-telinit')} -c ${q(o.basedir)} "$@"`), 0o755]);
  }
  for (const [name, value] of o.env) tree.files.push([`${ENV_DIR}/${name}`, value === undefined ? '' : `${value}\n`, 0o644]);

  const rc = `${t6('t6-rc')} -l ${q(o.live)}`;
  const skeleton: Record<string, string> = {
    [STAGE2]: script(
      'rc.init RUNLEVEL [ARGS…]: stage 2, run once at boot by t6-linux-init, its output in the\n# catch-all log. Starts the service manager, then brings up RUNLEVEL (a bundle).',
      `rl="$1"\nshift\n${t6('t6-rc-init')} -c ${q(o.compiled)} -l ${q(o.live)} ${q(DEFAULT_SCANDIR)} || exit\n${o.container ? `exec ${rc} -v2 -up change "$rl"` : `exec ${q(`${o.basedir}/${SCRIPTS_DIR}/${RUNLEVEL_SCRIPT}`)} "$rl"`}`,
    ),
    [RUNLEVEL_SCRIPT]: script(
      'runlevel RUNLEVEL: brings the machine to RUNLEVEL (a t6-rc bundle): what it holds goes\n# up, everything else goes down. Run by rc.init at boot and by telinit.',
      `if [ -z "$1" ]; then echo 'runlevel: usage: runlevel RUNLEVEL' >&2; exit 100; fi\nexec ${rc} -v2 -up change "$1"`,
    ),
    [STAGE3]: script(
      'rc.shutdown: stage 3, run by pid 1 when the machine is asked to go down: every service\n# down, in reverse dependency order, before every process gets SIGTERM.',
      `exec ${rc} -v2 -bDa change`,
    ),
  };
  if (o.container) delete skeleton[RUNLEVEL_SCRIPT];
  // -r: pid 1 does what these two would; a script the administrator adds there still runs.
  if (o.rcInProcess === true && o.skeleton === undefined) {
    delete skeleton[STAGE2];
    delete skeleton[STAGE3];
  }
  for (const [name, text] of Object.entries(skeleton)) {
    const from = o.skeleton === undefined ? undefined : path.join(o.skeleton, name);
    tree.files.push([`${SCRIPTS_DIR}/${name}`, from === undefined ? text : fs.readFileSync(from, 'utf8'), 0o755]);
  }
  if (o.skeleton !== undefined && fs.existsSync(path.join(o.skeleton, STAGE4))) {
    tree.files.push([`${SCRIPTS_DIR}/${STAGE4}`, fs.readFileSync(path.join(o.skeleton, STAGE4), 'utf8'), 0o755]);
  }

  // pid 1 execs .s6-svscan/finish only if its scanner is told to exit (t6-svscanctl -t):
  // on a real machine that must not leave the kernel without an init.
  const finish = o.container
    ? script('finish: the scanner was told to exit; the container ends with its exit code.', `code=0\nif [ -r ${CONTAINER_RESULTS}/exitcode ]; then read -r code < ${CONTAINER_RESULTS}/exitcode; fi\nexit "$code"`)
    : script('finish: the scanner was told to exit; pid 1 must not, so reboot.', `exec >/dev/console 2>&1\necho 't6-svscan exited. Rebooting.'\nexec ${t6('t6-hpr')} -f -r`);
  tree.files.push([`${SVC}/.s6-svscan/finish`, finish, 0o755]);
  tree.fifos.push([`${SVC}/${SHUTDOWND_SERVICE}/${SHUTDOWND_FIFO}`, 0o600]);
  if (o.container) {
    tree.dirs.push([RESULTS, 0o755]);
    tree.files.push([`${RESULTS}/exitcode`, '0\n', 0o644]);
  }

  if (!o.noLogger) {
    tree.dirs.push([UNCAUGHT, 0o2750]);
    tree.dirs.push([`${SVC}/${CATCHALL_SERVICE}`, 0o755]);
    tree.files.push([`${SVC}/${CATCHALL_SERVICE}/t6-log`, `# The catch-all logger: everything that has no logger of its own. Runs inside pid 1.\n${catchAllScript(o).join('\n')}\n`, 0o644]);
  }
  if (o.earlyGetty !== undefined) {
    const lexed = lexExecline(Buffer.from(o.earlyGetty));
    if (!lexed.ok) throw new Error(`-G ${JSON.stringify(o.earlyGetty)}: ${lexed.message}`);
    if (lexed.argv.length === 0) throw new Error('-G needs a command');
    tree.dirs.push([`${SVC}/${EARLY_GETTY_SERVICE}`, 0o755]);
    tree.files.push([`${SVC}/${EARLY_GETTY_SERVICE}/run`, script('the early getty (-G): a login prompt that needs no service manager.', `exec ${lexed.argv.map(q).join(' ')}`), 0o755]);
    // A getty hangs up on SIGHUP; its shell would ignore SIGTERM.
    tree.files.push([`${SVC}/${EARLY_GETTY_SERVICE}/down-signal`, 'SIGHUP\n', 0o644]);
  }
  return tree;
}

/** Writes the tree into `dir` (which must not exist). Throws Error naming the path on failure. */
export function makeTree(dir: string, o: MakerOptions): void {
  if (fs.existsSync(dir)) throw new Error(`${dir} already exists`);
  const tree = describeTree(o);
  const tmp = `${dir}.t6-linux-init-maker.${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const old = process.umask(0);
  try {
    fs.mkdirSync(tmp, { mode: 0o755 });
    for (const [rel, mode] of tree.dirs) fs.mkdirSync(path.join(tmp, rel), { recursive: true, mode });
    for (const [rel, content, mode] of tree.files) fs.writeFileSync(path.join(tmp, rel), content, { mode });
    for (const [rel, mode] of tree.fifos) mkfifo(path.join(tmp, rel), mode);
    for (const [rel, mode] of tree.dirs) fs.chmodSync(path.join(tmp, rel), mode);
    if (o.logOwner !== undefined && !o.noLogger) fs.chownSync(path.join(tmp, UNCAUGHT), o.logOwner.uid, o.logOwner.gid);
    fs.renameSync(tmp, dir);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    process.umask(old);
  }
}
