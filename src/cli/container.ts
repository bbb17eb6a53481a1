/**
 * t6-container: /init for containers (issue 15), for images built for s6-overlay v3 and
 * for any application (`ENTRYPOINT ["/opt/t6/bin/t6-container"]`, the application as CMD).
 * As pid 1 it does s6-overlay's preinit and stage 0 (init/container.ts), then stage 1 and
 * pid 1's life in this same process (t6-linux-init's), with the container's service manager
 * (rc/container-rc.ts) and CMD run once `top` is up. `legacy STEP` runs one step of the old
 * layouts (/etc/fix-attrs.d, cont-init.d, cont-finish.d, services.d): the system oneshots
 * call it. Settings: the S6_* variables (init/container-settings.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { type CommandIo, FatalError, UsageError, writeAll } from './_run.ts';
import { getopt } from './_getopt.ts';
import { profileDirs, readContainerSettings } from '../init/container-settings.ts';
import {
  type LegacyContext, contFinish, contInit, defaultLegacyDirs, fixAttrs, servicesDown, servicesUp,
} from '../init/container-legacy.ts';
import { processLegacyHost } from '../init/legacy-host.ts';
import {
  CONTAINER, cmdRunnerScript, containerEnvironment, containerHooks, containerLinuxInitOptions, containerMakerOptions, containerMaxServices, containerPath, prepareRun,
} from '../init/container.ts';
import { SYSTEM_FD_LIMIT_CALLS } from '../supervise/fdlimit.ts';
import { makeTree } from '../init/maker.ts';
import { isReexec, runLinuxInit, Stage1Error } from '../init/linux-init.ts';
import { waitForClosingFd } from '../init/limits.ts';
import { containerServiceManager } from '../rc/container-rc.ts';
import { ScannerSetupError } from '../supervise/scanner.ts';
import { DEFAULT_SCANDIR, SCRIPTS_DIR, STAGE2 } from '../s6/initctl.ts';
import { EXIT } from '../s6/exit.ts';
import { getpid } from '../sys/system.ts';
import { strerror } from '../sys/errors.ts';
import { endTree } from './_tree.ts';

const USAGE = 't6-container [ -- ] [ CMD... ] | t6-container legacy [ -l legacydir ] [ -s scandir ] [ -c copydir ] [ -P passwd ] [ -G group ] fix-attrs|cont-init|cont-finish|services-up|services-down';

const HELP = `usage: ${USAGE}
As a container's pid 1 (ENTRYPOINT, or /init): prepares /run, saves the container's
environment in /run/s6/container_environment (for t6-with-contenv), compiles the image's
service definitions (/etc/s6-overlay/s6-rc.d and its user bundles, the legacy
/etc/cont-init.d, /etc/services.d…), brings them up, then runs CMD; CMD's exit code is the
container's. SIGTERM (docker or podman stop) brings everything down in reverse order.
With legacy STEP, runs one step of s6-overlay's legacy layouts, as its built-in oneshots do:
  fix-attrs      owners and modes from legacydir/fix-attrs.d (deprecated)
  cont-init      every script of legacydir/cont-init.d, in order
  cont-finish    every script of legacydir/cont-finish.d, in order (S6_KILL_FINISH_MAXTIME)
  services-up    copy legacydir/services.d/* to copydir, link them into scandir, rescan
                 (S6_CMD_WAIT_FOR_SERVICES: wait until they are up, or ready)
  services-down  unlink them, have the scanner drop them, wait (S6_SERVICES_GRACETIME)
  -l legacydir   default /etc, or /etc/cont-profile.d/$S6_RUNTIME_PROFILE
  -s scandir     default /run/service       -c copydir  default /run/s6/legacy-services
  -P passwd      default /etc/passwd        -G group    default /etc/group
Settings: the S6_* variables of s6-overlay v3, and T6_LOG_PREFIX=1 (with S6_LOGGING=0:
each service's lines on stdout as "name: line"). Exit: the step's code (fix-attrs,
cont-init and services-up: 1 when something failed and S6_BEHAVIOUR_IF_STAGE2_FAILS is 2
or more), 100 usage.
`;

const STEPS = {
  'fix-attrs': fixAttrs,
  'cont-init': contInit,
  'cont-finish': contFinish,
  'services-up': servicesUp,
  'services-down': servicesDown,
} as const satisfies Record<string, (ctx: LegacyContext) => Promise<number>>;

/** `legacy [options] step`: runs the step with a host of this process's own. */
async function legacy(args: string[], io: CommandIo): Promise<number> {
  const { options, rest } = getopt(args, { withArg: 'lscPG' });
  const step = rest[0];
  if (rest.length !== 1 || step === undefined || !Object.hasOwn(STEPS, step)) throw new UsageError(USAGE);
  // The oneshots run with pid 1's environment (PATH): the settings are the container's saved ones.
  const { settings, warnings } = readContainerSettings(containerEnvironment(process.env));
  for (const w of warnings) io.err(`${io.prog}: warning: ${w}\n`);
  const dirs = defaultLegacyDirs(profileDirs(settings).legacy);
  for (const { name, value } of options) {
    const v = value!;
    if (name === 'l') dirs.legacy = v;
    else if (name === 's') dirs.scandir = v;
    else if (name === 'c') dirs.servicesCopy = v;
    else if (name === 'P') dirs.passwd = v;
    else dirs.group = v;
  }
  const host = processLegacyHost(dirs.scandir);
  try {
    return await STEPS[step as keyof typeof STEPS]({ settings, dirs, host, log: (line) => io.err(`${io.prog}: ${line}\n`) });
  } finally {
    host.close();
  }
}

export async function main(args: string[], io: CommandIo): Promise<number> {
  if (args[0] === '--help' || args[0] === '-h') { io.out(HELP); return EXIT.ok; }
  if (args[0] === 'legacy') return legacy(args.slice(1), io);
  if (getpid() !== 1) throw new FatalError('must run as the container\'s pid 1 (its ENTRYPOINT, or /init)', EXIT.usage);
  return init(args[0] === '--' ? args.slice(1) : args, io);
}

/** pid 1: preinit, the boot tree, then stage 1 and the tree's life; CMD is `cmd`. */
async function init(cmd: string[], io: CommandIo): Promise<number> {
  const say = (line: string): void => writeAll(2, `t6-container: ${line}\n`);
  const t6bin = path.resolve(path.dirname(process.argv[1] ?? '.'), '..', 'bin');
  // After a re-exec of pid 1 stage 1 is done and the environment is stage 1's: the settings
  // are the saved container environment's, as stage 2's are.
  const resumed = isReexec();
  const { settings, warnings } = readContainerSettings(resumed ? containerEnvironment(process.env) : process.env);
  const initialPath = containerPath(process.env.PATH, t6bin);
  if (!resumed) {
    for (const w of warnings) say(`warning: ${w}`);
    if (settings.waitForClosingFd !== undefined) {
      const problem = waitForClosingFd(settings.waitForClosingFd);
      if (problem !== undefined) say(`warning: ${problem}`);
    }
    process.env.PATH = initialPath;
    try {
      prepareRun(settings, (line) => say(`warning: ${line}`));
      makeTree(CONTAINER.basedir, containerMakerOptions(settings, t6bin, initialPath, process.env));
      fs.writeFileSync(path.join(CONTAINER.basedir, SCRIPTS_DIR, STAGE2), cmdRunnerScript(settings), { mode: 0o755 });
      fs.writeFileSync(CONTAINER.workdir, `${process.cwd()}\n`);
    } catch (err) {
      throw new FatalError(`unable to prepare /run: ${strerror(err)}`, EXIT.usage);
    }
  }
  const { overlay, bundles, legacy: legacyDir } = profileDirs(settings);
  const serviceManager = containerServiceManager({
    where: { overlay, bundles }, legacyDir, ownSources: CONTAINER.ownSources, t6Container: path.join(t6bin, 't6-container'),
    compiled: CONTAINER.compiled, live: CONTAINER.live, scandir: DEFAULT_SCANDIR,
    bootTimeoutMs: settings.cmdWaitForServicesMaxTimeMs, verbosity: settings.verbosity,
    ...(settings.stage2Hook === undefined ? {} : { hook: settings.stage2Hook }), stopOnHookFailure: settings.behaviourIfStage2Fails >= 2,
  });
  try {
    let hard = 1 << 20;
    try { hard = Number(SYSTEM_FD_LIMIT_CALLS.get().hard); } catch { /* the default */ }
    const end = await runLinuxInit(containerLinuxInitOptions(settings, initialPath, containerMaxServices(hard)), cmd, {
      console: (line) => writeAll(2, `${line}\n`),
      serviceManager,
      container: containerHooks(settings, cmd.length > 0, say),
    });
    return endTree(end, io);
  } catch (err) {
    if (!(err instanceof Stage1Error) && !(err instanceof ScannerSetupError)) throw err;
    throw new FatalError(err.message, err instanceof ScannerSetupError ? err.exitCode : EXIT.system);
  }
}
