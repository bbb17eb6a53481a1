/** t6-linux-init-maker: writes the boot tree that t6-linux-init boots from. */
import fs from 'node:fs';
import path from 'node:path';
import { type CommandIo, UsageError, FatalError } from './_run.ts';
import { getopt, uintOption } from './_getopt.ts';
import { makeTree, type MakerOptions } from '../init/maker.ts';
import { formatHardLimits, parseHardLimits } from '../init/limits.ts';
import { DEFAULT_BASEDIR } from '../s6/initctl.ts';
import { DEFAULT_COMPILED, DEFAULT_LIVE } from '../rc/live.ts';
import { strerror } from '../sys/errors.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-linux-init-maker [ -c basedir ] [ -T t6bin ] [ -b compiled ] [ -l live ] [ -u log_user ] [ -G early_getty_cmd ] [ -1 ] [ -L ] [ -p initial_path ] [ -m initial_umask ] [ -t timestamp_style ] [ -d slashdev ] [ -s env_store ] [ -e VAR[=VALUE] ]... [ -q grace_ms ] [ -D initdefault ] [ -n | -N ] [ -f skeldir ] [ -R resource_limits ] [ -C ] [ -B ] [ -S ] [ -W readyfd ] [ -V verbosity ] [ -U ] [ -r ] [ -Z ] dir';
const HELP = `${USAGE}
Writes into dir (which must not exist) the boot tree t6-linux-init reads: bin/ (init halt
poweroff reboot shutdown telinit), env/, scripts/ (rc.init rc.shutdown runlevel, with the
t6-rc lines active) and run-image/ (copied into /run at boot). Copy dir to basedir on the
target, and make /sbin/init run basedir/bin/init.
  -c basedir    where dir will live on the target (default ${DEFAULT_BASEDIR})
  -T t6bin      where t6's commands live on the target (default: this t6's bin/)
  -b compiled   the compiled t6-rc database for rc.init (default ${DEFAULT_COMPILED})
  -l live       the t6-rc live directory (default ${DEFAULT_LIVE})
  -u user       owner of /run/uncaught-logs (the catch-all logger runs inside pid 1, as root)
  -G cmd        an early getty: a service running cmd (execline words), e.g. "getty 38400 ttyS0"
  -1            the catch-all logger also copies every line to the console
  -L            accepted for compatibility: t6 has no logout hook daemon (a warning says so)
  -R list       hard resource limits for init and all it starts (s6-softlimit's letters:
                a c d f l m o p r s t, each with a number or =), e.g. "o4096,c0"
  -W fd         init first waits until the container manager writes to fd or closes it
                (Docker-style synchronisation; fds 0-2 mean none)
  -V n          verbosity given to init
  -p path       initial PATH (default /usr/bin:/bin)
  -m umask      initial umask, octal (default 022)
  -t style      catch-all timestamps: 0 none, 1 TAI64N (default), 2 ISO 8601, 3 both
  -d dir        mount a devtmpfs on dir at boot
  -s dir        dump the kernel's environment into dir at boot
  -e VAR=VALUE  set VAR for everything after stage 1 (-e VAR: unset it); repeatable
  -q ms         grace time between SIGTERM and SIGKILL at shutdown (default 3000)
  -D runlevel   default runlevel (bundle) for rc.init (default "default")
  -n / -N       remount /run / leave /run alone, instead of mounting a fresh tmpfs
  -f skeldir    take rc.init, rc.shutdown, rc.shutdown.final, runlevel from skeldir
  -C            container mode;  -B: no catch-all logger;  -S: sync at container halt
  -r            pid 1 runs t6-rc itself at boot (t6-rc-init, then -up change RUNLEVEL) and
                at shutdown (-bDa change): no Node start for either; scripts/rc.init and
                rc.shutdown are not written (one added there still runs, after / before)
  -U            busybox's signals: SIGUSR1 halts, SIGUSR2 powers off, SIGTERM reboots (s6's:
                USR1 powers off, USR2 halts, TERM ignored); for busybox's halt/poweroff/reboot
  -Z            bin/init never starts Node from t6-linux-init's startup snapshot
                (default: it does when the blob is there and unchanged since the build
                checked it, and says why when it is not)
`;

/** The uid and gid of a user, from /etc/passwd. */
function lookupUser(name: string): { uid: number; gid: number } | undefined {
  let text: string;
  try {
    text = fs.readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

function absolute(letter: string, value: string): string {
  if (!path.isAbsolute(value)) throw new UsageError(`${USAGE}\n-${letter} needs an absolute path, got ${JSON.stringify(value)}`);
  return value;
}

/** The options when none is given; t6's commands are taken from this t6's bin/. */
function defaults(): MakerOptions {
  return {
    basedir: DEFAULT_BASEDIR, t6bin: path.resolve(path.dirname(process.argv[1] ?? '.'), '..', 'bin'),
    compiled: DEFAULT_COMPILED, live: DEFAULT_LIVE, logToConsole: false, initialPath: '/usr/bin:/bin',
    umask: 0o022, timestampStyle: 1, env: [], graceMs: 3000, defaultRunlevel: 'default', runMode: 'mount',
    container: false, noLogger: false, syncInContainer: false,
  };
}

export function main(args: string[], io: CommandIo): number {
  if (args.includes('--help')) { io.out(HELP); return EXIT.ok; }
  const { options, rest } = getopt(args, { flags: '1LnNCBSUrZ', withArg: 'cTbluGpmtdseqDfVRW' });
  if (rest.length !== 1) throw new UsageError(USAGE);
  const o = defaults();
  for (const { name, value = '' } of options) {
    switch (name) {
      case 'c': o.basedir = absolute('c', value); break;
      case 'T': o.t6bin = absolute('T', value); break;
      case 'b': o.compiled = absolute('b', value); break;
      case 'l': o.live = absolute('l', value); break;
      case 'u': {
        const owner = lookupUser(value);
        if (owner === undefined) throw new UsageError(`${USAGE}\nunknown user ${JSON.stringify(value)}`);
        o.logOwner = owner;
        break;
      }
      case 'G': o.earlyGetty = value; break;
      case '1': o.logToConsole = true; break;
      case 'L': io.err(`${io.prog}: warning: -L ignored: t6 has no logout hook daemon\n`); break;
      case 'p': o.initialPath = value; break;
      case 'm':
        if (!/^[0-7]{1,4}$/.test(value)) throw new UsageError(`${USAGE}\n-m needs an octal umask, got ${JSON.stringify(value)}`);
        o.umask = parseInt(value, 8) & 0o777;
        break;
      case 't': {
        const style = uintOption('t', value);
        if (style > 3) throw new UsageError(`${USAGE}\n-t must be 0, 1, 2 or 3`);
        o.timestampStyle = style as 0 | 1 | 2 | 3;
        break;
      }
      case 'd': o.devtmpfs = absolute('d', value); break;
      case 's': o.envStore = absolute('s', value); break;
      case 'e': {
        const eq = value.indexOf('=');
        const varName = eq < 0 ? value : value.slice(0, eq);
        if (varName === '' || varName.includes('/') || varName.startsWith('.')) throw new UsageError(`${USAGE}\n-e: invalid variable name ${JSON.stringify(varName)}`);
        o.env.push([varName, eq < 0 ? undefined : value.slice(eq + 1)]);
        break;
      }
      case 'q': o.graceMs = Math.min(uintOption('q', value), 300_000); break;
      case 'D': o.defaultRunlevel = value; break;
      case 'n': o.runMode = 'remount'; break;
      case 'N': o.runMode = 'keep'; break;
      case 'f': o.skeleton = absolute('f', value); break;
      case 'C': o.container = true; break;
      case 'B': o.noLogger = true; break;
      case 'S': o.syncInContainer = true; break;
      case 'U': o.busyboxSignals = true; break;
      case 'r': o.rcInProcess = true; break;
      case 'Z': o.noSnapshot = true; break;
      case 'V': o.verbosity = uintOption('V', value); break;
      case 'R':
        try { o.hardLimits = formatHardLimits(parseHardLimits(value)); } catch (err) { throw new UsageError(`${USAGE}\n-R: ${strerror(err)}`); }
        break;
      case 'W': { const fd = uintOption('W', value); o.readyFd = fd >= 3 ? fd : undefined; break; }
    }
  }
  if (o.syncInContainer && !o.container) throw new UsageError(`${USAGE}\n-S only makes sense with -C`);
  const dir = path.resolve(rest[0]!);
  if (fs.existsSync(dir)) throw new FatalError(`${dir} already exists: the maker writes a new tree, it does not update one`, EXIT.usage);
  try {
    makeTree(dir, o);
  } catch (err) {
    throw new FatalError(`unable to make ${dir}: ${strerror(err)}`, EXIT.system);
  }
  return EXIT.ok;
}
