/**
 * t6-linux-init: stage 1 of the machine (s6-linux-init, linux-init.md §2), then — in the
 * same process, with no second Node start — pid 1 for the machine's life as t6-svscan on
 * /run/service, with the shutdown daemon, the ctrl-alt-del and signal handling built in.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type CommandIo, UsageError, FatalError, writeAll } from './_run.ts';
import { DEFAULT_COMPILED, DEFAULT_LIVE } from '../rc/live.ts';
import { getopt, uintOption } from './_getopt.ts';
import { serve } from './svscan.ts';
import { main as rcInitMain } from './rc-init.ts';
import { run as rcRun } from './rc.ts';
import type { Scanner, ScannerSignal } from '../supervise/scanner.ts';
import {
  O_RDWR, open, close, dup2, dupCloexec, isOpen, describeError, getpid, setsid, umask,
  mount, MS, reboot, RB, spawn, execve, acceptKeyboardRequests, describeWaitStatus,
} from '../sys/index.ts';
import { prepareTmpfs, copyTree, readEnvDir, buildEnvironment, dumpEnvironment, pickRunlevel, type RunMode } from '../init/stage1.ts';
import { Shutdownd } from '../init/shutdownd.ts';
import {
  CONTAINER_RESULTS, DEFAULT_BASEDIR, DEFAULT_GRACE_MS, DEFAULT_SCANDIR as SCANDIR, MAX_GRACE_MS, RUNLEVELD_SERVICE,
  SHUTDOWND_SERVICE, TMPFS_DIR as TMPFS, shutdowndFifo,
} from '../s6/initctl.ts';
import { rebootCommand, runFinale, type FinalAction } from '../init/finale.ts';

const USAGE = 't6-linux-init [ -c basedir ] [ -p initial_path ] [ -m umask ] [ -s envdump ] [ -d slashdev ] [ -D runlevel ] [ -q grace_ms ] [ -n | -N ] [ -C ] [ -B ] [ -S ] [ -U ] [ -r [ -b compiled ] [ -l live ] ] [ args… ]';
const HELP = `${USAGE}
Stage 1 of the boot, run by the kernel as /sbin/init (normally through basedir/bin/init,
written by t6-linux-init-maker): mounts a tmpfs on /run, copies basedir/run-image into it,
builds the environment (PATH plus basedir/env), starts basedir/scripts/rc.init RUNLEVEL
ARGS… with its output in the catch-all log, and carries on as t6-svscan /run/service,
which is pid 1 until the machine goes down. Shutdown requests come through
/run/service/s6-linux-init-shutdownd/fifo (t6-shutdown, halt, poweroff, reboot) and the
signals: SIGINT (ctrl-alt-del) reboots, SIGUSR1 and SIGPWR power off, SIGUSR2 halts.
Not as pid 1, it is telinit.
  -c basedir  the boot tree (default /etc/t6-linux-init/current)
  -p path     initial PATH (default /usr/bin:/bin)
  -m umask    initial umask, octal (default 022)
  -s dir      dump the kernel's environment into dir
  -d dir      mount a devtmpfs on dir first
  -D rl       runlevel for rc.init when the kernel command line names none (default "default")
  -q ms       grace time between SIGTERM and SIGKILL at shutdown (default 3000)
  -n / -N     remount /run / leave /run alone, instead of mounting a fresh tmpfs
  -C          container mode: no kernel set-up; halt ends the container with its exit code
  -B          no catch-all logger: everything goes to the console
  -S          with -C: sync at halt
  -r          the service manager runs in pid 1: at boot, t6-rc-init -c compiled -l live
              /run/service then t6-rc -v2 -up change RUNLEVEL; at shutdown t6-rc -v2 -bDa
              change; each in this process (no Node start for them). scripts/rc.init runs
              after the boot change and scripts/rc.shutdown before the shutdown one, if they exist
  -b compiled the compiled t6-rc database for -r (default ${DEFAULT_COMPILED})
  -l live     the t6-rc live directory for -r (default ${DEFAULT_LIVE})
  -U          busybox's signals: SIGUSR1 halts, SIGUSR2 powers off, SIGTERM reboots
              (default: s6's: SIGUSR1 powers off, SIGUSR2 halts, SIGTERM is ignored)
`;

const VERSION = '0.1.0';

interface InitOptions {
  basedir: string;
  initialPath: string;
  umask: number;
  envDump: string | undefined;
  slashdev: string | undefined;
  defaultRunlevel: string;
  graceMs: number;
  runMode: RunMode;
  container: boolean;
  noLogger: boolean;
  syncInContainer: boolean;
  busyboxSignals: boolean;
  /** -r: stages 2 and 3 are t6-rc's, run inside pid 1. */
  rcInProcess: boolean;
  compiled: string;
  live: string;
}

function parse(args: string[]): { o: InitOptions; rest: string[] } {
  const { options, rest } = getopt(args, { flags: 'nNCBSUr', withArg: 'cpmsdDqvbl' });
  const o: InitOptions = {
    basedir: DEFAULT_BASEDIR, initialPath: '/usr/bin:/bin', umask: 0o022, envDump: undefined,
    slashdev: undefined, defaultRunlevel: 'default', graceMs: DEFAULT_GRACE_MS, runMode: 'mount',
    container: false, noLogger: false, syncInContainer: false, busyboxSignals: false,
    rcInProcess: false, compiled: DEFAULT_COMPILED, live: DEFAULT_LIVE,
  };
  for (const { name, value = '' } of options) {
    switch (name) {
      case 'c': o.basedir = value; break;
      case 'p': o.initialPath = value; break;
      case 'm':
        if (!/^[0-7]{1,5}$/.test(value)) throw new UsageError(`${USAGE}\n-m needs an octal umask`);
        o.umask = parseInt(value, 8) & 0o777;
        break;
      case 's': o.envDump = value; break;
      case 'd': o.slashdev = value; break;
      case 'D': o.defaultRunlevel = value; break;
      case 'q': o.graceMs = Math.min(uintOption('q', value), MAX_GRACE_MS); break;
      case 'n': o.runMode = 'remount'; break;
      case 'N': o.runMode = 'keep'; break;
      case 'C': o.container = true; break;
      case 'B': o.noLogger = true; break;
      case 'S': o.syncInContainer = true; break;
      case 'U': o.busyboxSignals = true; break;
      case 'r': o.rcInProcess = true; break;
      case 'b': o.compiled = value; break;
      case 'l': o.live = value; break;
      case 'v': break; // verbosity, as s6-linux-init 1.1.2 has it
    }
  }
  for (const [letter, p] of [['c', o.basedir], ['s', o.envDump], ['d', o.slashdev]] as const) {
    if (p !== undefined && !path.isAbsolute(p)) throw new UsageError(`${USAGE}\n-${letter} needs an absolute path`);
  }
  return { o, rest };
}

/** Points fds 0–2 at `file` (the console after mounting /dev, or /dev/null without one). */
function reopenStdio(file: string): boolean {
  let fd: number;
  try {
    fd = open(file, O_RDWR);
  } catch {
    return false;
  }
  for (let i = 0; i <= 2; i++) if (fd !== i) dup2(fd, i);
  if (fd > 2) close(fd);
  return true;
}

/**
 * Stage 1 failed on a real machine. s6-linux-init exits (and the kernel panics); t6 gives
 * the console a shell instead, so that a person can see why and repair. pid 1 never exits:
 * if even the shell cannot run, it waits forever.
 */
function emergency(why: string): never {
  writeAll(2, `t6-linux-init: fatal: ${why}\nt6-linux-init: emergency shell on the console (leaving it starts another; reboot -f restarts the machine)\n`);
  // pid 1 becomes a loop of shells: a shell that ends would otherwise end pid 1.
  const err = execve('/bin/sh', ['sh', '-c', 'while :; do /bin/sh -i; done'], ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'PS1=(t6 emergency) # ']);
  writeAll(2, `t6-linux-init: unable to exec /bin/sh: ${err.message}; waiting forever\n`);
  const forever = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(forever, 0, 0);
}

export async function main(args: string[], io: CommandIo): Promise<number> {
  if (args.includes('--help')) { io.out(HELP); return 0; }
  // Not pid 1: "init 6" and friends, as telinit.
  if (getpid() !== 1) {
    const telinit = path.join(path.dirname(process.argv[1] ?? '.'), '..', 'bin', 't6-telinit');
    const err = execve(telinit, ['t6-telinit', ...args]);
    throw new FatalError(`not pid 1, and unable to exec ${telinit}: ${err.message}`);
  }
  const { o, rest: kernelArgs } = parse(args);
  const say = (line: string): void => writeAll(2, `t6-linux-init: ${line}\n`);
  // A stage-1 step that fails is named with its reason: a container's pid 1 exits 111 with
  // it; on a real machine, where pid 1 exiting panics the kernel, the console gets a shell.
  const step = <T>(what: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (o.container) throw new FatalError(`${what}: ${describeError(err)}`, 111);
      return emergency(`${what}: ${describeError(err)}`);
    }
  };

  if (isOpen(1) && !o.container) writeAll(1, `\n  t6-linux-init version ${VERSION}\n\n`);
  process.chdir('/');
  umask(o.umask);
  if (o.slashdev !== undefined) {
    const dev = o.slashdev;
    step(`unable to mount a devtmpfs on ${dev}`, () => mount('dev', dev, 'devtmpfs', MS.NOSUID | MS.NOEXEC, 'mode=0755'));
    if (!reopenStdio(path.join(dev, 'console'))) reopenStdio('/dev/null');
  }
  if (!isOpen(1)) reopenStdio('/dev/null');
  step(`unable to prepare the tmpfs on ${TMPFS}`, () => prepareTmpfs(TMPFS, o.runMode));
  const runImage = path.join(o.basedir, 'run-image');
  step(`unable to copy ${runImage} into ${TMPFS}`, () => {
    for (const name of fs.readdirSync(runImage)) copyTree(path.join(runImage, name), path.join(TMPFS, name));
  });
  const envChanges = step('unable to read the env directory', () => readEnvDir(path.join(o.basedir, 'env')));
  if (o.envDump !== undefined) {
    const dir = o.envDump;
    try {
      dumpEnvironment(dir, process.env);
    } catch (err) {
      say(`warning: unable to dump the environment into ${dir}: ${describeError(err)}`);
    }
  }
  // Everything from here on gets PATH and the env dir's variables, not the kernel's.
  const env = buildEnvironment(o.initialPath, envChanges);
  for (const name of Object.keys(process.env)) delete process.env[name];
  for (const [name, value] of env) process.env[name] = value;
  const runlevel = o.container ? o.defaultRunlevel : pickRunlevel(kernelArgs, o.defaultRunlevel);

  // Stage 2's stdin is the console (or the container's tty); pid 1's is /dev/null.
  const stage2Stdin = step('unable to keep the console', () => dupCloexec(0));
  step('unable to point stdin at /dev/null', () => {
    const fd = open('/dev/null', O_RDWR);
    dup2(fd, 0);
    close(fd);
  });
  try { setsid(); } catch { /* already a session leader */ }
  if (!o.container) {
    // ctrl-alt-del becomes SIGINT to pid 1 instead of an immediate reboot.
    try { reboot(RB.DISABLE_CAD); } catch (err) { say(`warning: unable to trap ctrl-alt-del: ${describeError(err)}`); }
    // kbrequest becomes SIGWINCH; a machine without a virtual console (serial only) has none.
    try { acceptKeyboardRequests(28 /* SIGWINCH */); } catch { /* no /dev/tty0 */ }
  }

  let scanner: Scanner | undefined;
  const finaleHost = {
    unsuperviseAll: () => scanner?.unsuperviseAll(),
    untilChildless: () => scanner?.reaper.untilChildless() ?? Promise.resolve(),
    flushLogs: async () => { await scanner?.flushLogs(); },
    runScript: (file: string) => runChild(file, [], 2),
    say,
  };
  /** Runs a script as pid 1's child, output to `out`; undefined if it does not exist. */
  const runChild = (file: string, argv: string[], out: number, stdin: number | 'null' = 'null'): Promise<number | undefined> => {
    if (!fs.existsSync(file)) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      try {
        const pid = spawn({ path: file, argv: [file, ...argv], cwd: '/', fds: new Map([[0, stdin], [1, out], [2, out]]), allCloexec: true });
        scanner!.reaper.watch(pid, resolve);
      } catch (err) {
        reject(err);
      }
    });
  };
  const catchAll = (): number => scanner?.catchAllFd ?? 2;
  /** Runs a t6-rc command's work inside pid 1, its messages into the catch-all log; its exit code. */
  const rcInPid1 = async (prog: string, work: (io: CommandIo) => Promise<number>): Promise<number> => {
    const toLog = (text: string): void => {
      for (const line of text.split('\n')) if (line !== '') (scanner === undefined ? say(line) : scanner.log(line));
    };
    try {
      return await work({ prog, out: toLog, err: toLog });
    } catch (err) {
      toLog(`${prog}: fatal: ${err instanceof Error ? err.message : String(err)}`);
      return err instanceof FatalError ? err.exitCode : err instanceof UsageError ? 100 : 111;
    }
  };
  const shutdownd = new Shutdownd({
    runRcShutdown: async () => {
      const script = await runChild(path.join(o.basedir, 'scripts/rc.shutdown'), [], catchAll());
      if (!o.rcInProcess) return script;
      const code = await rcInPid1('t6-rc', (io) => rcRun(['-l', o.live, '-v2', '-bDa', 'change'], io, false));
      return code === 0 ? script : code << 8;
    },
    report: (level, message) => scanner === undefined ? say(`${level}: ${message}`) : scanner.log(`t6-linux-init: ${level}: ${message}`),
    finale: (action, graceMs) => void finish(action, graceMs),
  }, o.graceMs);

  const finish = async (action: FinalAction, graceMs: number): Promise<void> => {
    const name = action === 'h' ? 'halt' : action === 'p' ? 'poweroff' : 'reboot';
    say(`${name}: stage 4`);
    let err: Error | undefined;
    try {
      err = await runFinale(finaleHost, action, {
        graceMs, container: o.container, syncInContainer: o.syncInContainer,
        tmpfsDir: TMPFS, finalScript: path.join(o.basedir, 'scripts/rc.shutdown.final'),
      });
    } catch (e) {
      // Whatever went wrong on the way, the machine was asked to go down: it still goes.
      say(`warning: stage 4 failed: ${describeError(e)} - going down anyway`);
      if (!o.container) {
        try { reboot(rebootCommand(action)); } catch (e2) { err = e2 instanceof Error ? e2 : new Error(String(e2)); }
      }
    }
    if (o.container) {
      if (action === 'h') {
        let code = 0;
        try { code = Number(fs.readFileSync(path.join(CONTAINER_RESULTS, 'exitcode'), 'utf8').trim()) || 0; } catch { /* 0 */ }
        process.exit(code);
      }
      // In a pid namespace, reboot(2) ends pid 1 (SIGINT: power off or halt, SIGHUP: restart).
      try { reboot(action === 'p' ? RB.POWER_OFF : RB.AUTOBOOT); } catch (e) { say(`unable to ${name}: ${describeError(e)}`); }
      process.exit(0);
    }
    // A real machine: reboot(2) failed. pid 1 stays, and says so.
    say(`fatal: unable to ${name}: ${err === undefined ? 'reboot(2) returned' : describeError(err)} - the machine stays up; try ${name} -f`);
  };

  const request = (action: 'h' | 'p' | 'r') => (): void => {
    if (o.container && action !== 'h') {
      const results = path.join(CONTAINER_RESULTS, 'haltcode');
      try { fs.writeFileSync(results, `${action}\n`); } catch { /* best effort */ }
    }
    shutdownd.request(action, 0);
  };
  const nothing = (): void => {};
  const signalActions: Partial<Record<ScannerSignal, () => void>> = {
    SIGINT: request('r'), SIGPWR: request('p'),
    SIGUSR1: request(o.busyboxSignals ? 'h' : 'p'), SIGUSR2: request(o.busyboxSignals ? 'p' : 'h'),
    // busybox's reboot applet sends SIGTERM; s6's machine ignores it, a container halts.
    SIGTERM: o.container ? request('h') : o.busyboxSignals ? request('r') : nothing,
    SIGQUIT: nothing, SIGWINCH: nothing,
  };

  const started = (s: Scanner): void => {
    scanner = s;
    try {
      shutdownd.listen(shutdowndFifo(SCANDIR));
    } catch (err) {
      s.log(`t6-linux-init: warning: unable to listen on ${shutdowndFifo(SCANDIR)}: ${describeError(err)} - shutdown works through signals only`);
    }
    const rcInit = path.join(o.basedir, 'scripts/rc.init');
    // A mark on the kernel clock, for boot analysis (dmesg shows where stage 1 ended).
    if (!o.container) {
      try { fs.writeFileSync('/dev/kmsg', '<6>t6-linux-init: stage 1 done, starting rc.init\n'); } catch { /* no /dev/kmsg */ }
    }
    const rcBoot = async (): Promise<void> => {
      if (!o.rcInProcess) return;
      const init = await rcInPid1('t6-rc-init', (io) => rcInitMain(['-c', o.compiled, '-l', o.live, SCANDIR], io));
      const code = init !== 0 ? init : await rcInPid1('t6-rc', (io) => rcRun(['-l', o.live, '-v2', '-up', 'change', runlevel], io, false));
      if (code !== 0) say(`warning: the service manager could not bring ${runlevel} up (exit ${code}); see /run/uncaught-logs`);
    };
    // With -r, rc.init is optional (pid 1 did its work); without, it is stage 2.
    rcBoot().then(() => o.rcInProcess && !fs.existsSync(rcInit) ? 0 : runChild(rcInit, [runlevel, ...kernelArgs], o.noLogger ? 2 : catchAll(), stage2Stdin)).then((wstat) => {
      close(stage2Stdin);
      if (wstat === undefined) say(`warning: ${rcInit} does not exist`);
      else if (wstat !== 0) say(`warning: ${rcInit} ${describeWaitStatus(wstat)}; the services it did not start stay down - log in on the console and see /run/uncaught-logs`);
    }, (err: unknown) => {
      close(stage2Stdin);
      say(`warning: unable to run ${rcInit}: ${describeError(err)}`);
    });
  };

  return serve({
    scandir: SCANDIR, rescanMs: 0, maxServices: 1000,
    notServices: new Set([SHUTDOWND_SERVICE, RUNLEVELD_SERVICE]),
    signalActions, started,
  }, io);
}
