/**
 * t6-linux-init: stage 1 of the machine (s6-linux-init, linux-init.md §2), then — in the
 * same process, with no second Node start — pid 1 for the machine's life as t6-svscan on
 * /run/service, with the shutdown daemon, the ctrl-alt-del and signal handling built in.
 */
import path from 'node:path';
import { type CommandIo, UsageError, FatalError, writeAll } from './_run.ts';
import { getopt, uintOption } from './_getopt.ts';
import { endTree } from './_tree.ts';
import { DEFAULT_COMPILED, DEFAULT_LIVE } from '../rc/live.ts';
import { pid1ServiceManager } from '../rc/run.ts';
import { isReexec, runLinuxInit, Stage1Error, type LinuxInitOptions } from '../init/linux-init.ts';
import { type HardLimit, applyHardLimits, parseHardLimits, waitForClosingFd } from '../init/limits.ts';
import type { SvscanEnd } from '../supervise/svscan.ts';
import { ScannerSetupError } from '../supervise/scanner.ts';
import { DEFAULT_BASEDIR, DEFAULT_GRACE_MS, DEFAULT_SCANDIR, MAX_GRACE_MS } from '../s6/initctl.ts';
import { EXIT } from '../s6/exit.ts';
import { isOpen } from '../sys/fd.ts';
import { execve } from '../sys/spawn.ts';
import { getpid } from '../sys/system.ts';
import { SNAPSHOT_FALLBACK_ENV } from '../sys/snapshot.ts';
import { strerror } from '../sys/errors.ts';
import { VERSION } from '../sys/version.ts';

const USAGE = 't6-linux-init [ -c basedir ] [ -p initial_path ] [ -m umask ] [ -s envdump ] [ -d slashdev ] [ -D runlevel ] [ -q grace_ms ] [ -n | -N ] [ -C ] [ -B ] [ -S ] [ -U ] [ -R limits ] [ -W readyfd ] [ -r [ -b compiled ] [ -l live ] ] [ args… ]';
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
  -R list     hard (and soft) resource limits first, s6-softlimit's letters: e.g. o4096,c0
  -W fd       first wait until the container manager writes to fd (>= 3) or closes it
`;


/** The options of t6-linux-init: the library's, plus -r's. */
interface InitOptions extends LinuxInitOptions {
  /** -r: stages 2 and 3 are t6-rc's, run inside pid 1. */
  rcInProcess: boolean;
  compiled: string;
  live: string;
  /** -R: hard resource limits, set first. */
  hardLimits: HardLimit[];
  /** -W: the container manager's synchronisation fd, waited on first. */
  readyFd: number | undefined;
}

function parse(args: string[]): { o: InitOptions; rest: string[] } {
  const { options, rest } = getopt(args, { flags: 'nNCBSUr', withArg: 'cpmsdDqvblRW' });
  const o: InitOptions = {
    basedir: DEFAULT_BASEDIR, initialPath: '/usr/bin:/bin', umask: 0o022, envDump: undefined,
    slashdev: undefined, defaultRunlevel: 'default', graceMs: DEFAULT_GRACE_MS, runMode: 'mount',
    container: false, noLogger: false, syncInContainer: false, busyboxSignals: false,
    rcInProcess: false, compiled: DEFAULT_COMPILED, live: DEFAULT_LIVE, hardLimits: [], readyFd: undefined,
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
      case 'R':
        try { o.hardLimits = parseHardLimits(value); } catch (err) { throw new UsageError(`${USAGE}\n-R: ${strerror(err)}`); }
        break;
      case 'W': { const fd = uintOption('W', value); o.readyFd = fd >= 3 ? fd : undefined; break; }
    }
  }
  for (const [letter, p] of [['c', o.basedir], ['s', o.envDump], ['d', o.slashdev]] as const) {
    if (p !== undefined && !path.isAbsolute(p)) throw new UsageError(`${USAGE}\n-${letter} needs an absolute path`);
  }
  return { o, rest };
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
  writeAll(2, `t6-linux-init: unable to exec /bin/sh: ${strerror(err)}; waiting forever\n`);
  const forever = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(forever, 0, 0);
}

export async function main(args: string[], io: CommandIo): Promise<number> {
  if (args.includes('--help')) { io.out(HELP); return EXIT.ok; }
  // Not pid 1: "init 6" and friends, as telinit.
  if (getpid() !== 1) {
    const telinit = path.join(path.dirname(process.argv[1] ?? '.'), '..', 'bin', 't6-telinit');
    const err = execve(telinit, ['t6-telinit', ...args]);
    throw new FatalError(`not pid 1, and unable to exec ${telinit}: ${strerror(err)}`);
  }
  const { o, rest: kernelArgs } = parse(args);
  if (!isReexec()) {
    // As s6-linux-init: wait for the container manager, then the limits, before anything else.
    const waited = o.readyFd === undefined ? undefined : waitForClosingFd(o.readyFd);
    for (const problem of [...(waited === undefined ? [] : [waited]), ...applyHardLimits(o.hardLimits)]) writeAll(2, `t6-linux-init: warning: ${problem}\n`);
  }
  if (isOpen(1) && !o.container && !isReexec()) writeAll(1, `\n  t6-linux-init version ${VERSION}\n\n`);
  // bin/init could not use the startup snapshot, and says why (it only has a shell to tell).
  const noSnapshot = process.env[SNAPSHOT_FALLBACK_ENV];
  if (noSnapshot !== undefined) {
    delete process.env[SNAPSHOT_FALLBACK_ENV];
    writeAll(2, `t6-linux-init: warning: starting without the startup snapshot: ${noSnapshot}\n`);
  }
  let end: SvscanEnd;
  try {
    end = await runLinuxInit(o, kernelArgs, {
      console: (line) => writeAll(2, `${line}\n`),
      ...(o.rcInProcess ? { serviceManager: pid1ServiceManager({ compiled: o.compiled, live: o.live, scandir: DEFAULT_SCANDIR }) } : {}),
    });
  } catch (err) {
    if (!(err instanceof Stage1Error) && !(err instanceof ScannerSetupError)) throw err;
    // A container's pid 1 exits with the reason; on a real machine, where pid 1 exiting
    // panics the kernel, the console gets a shell.
    if (o.container) throw new FatalError(err.message, err instanceof ScannerSetupError ? err.exitCode : EXIT.system);
    return emergency(err.message);
  }
  return endTree(end, io);
}
