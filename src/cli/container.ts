/**
 * t6-container: /init for containers built for s6-overlay v3 (issue 15). For now only its
 * `legacy` subcommands: the work of s6-overlay's built-in oneshots for the old layouts
 * (/etc/fix-attrs.d, cont-init.d, cont-finish.d, services.d), each runnable on its own.
 * Settings come from the S6_* variables of the environment (container-settings.ts).
 */
import { type CommandIo, UsageError } from './_run.ts';
import { getopt } from './_getopt.ts';
import { profileDirs, readContainerSettings } from '../init/container-settings.ts';
import {
  type LegacyContext, contFinish, contInit, defaultLegacyDirs, fixAttrs, servicesDown, servicesUp,
} from '../init/container-legacy.ts';
import { processLegacyHost } from '../init/legacy-host.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-container legacy [ -l legacydir ] [ -s scandir ] [ -c copydir ] [ -P passwd ] [ -G group ] fix-attrs|cont-init|cont-finish|services-up|services-down';

const HELP = `usage: ${USAGE}
Runs one step of s6-overlay's legacy layouts, as its built-in oneshots do:
  fix-attrs      owners and modes from legacydir/fix-attrs.d (deprecated)
  cont-init      every script of legacydir/cont-init.d, in order
  cont-finish    every script of legacydir/cont-finish.d, in order (S6_KILL_FINISH_MAXTIME)
  services-up    copy legacydir/services.d/* to copydir, link them into scandir, rescan
                 (S6_CMD_WAIT_FOR_SERVICES: wait until they are up, or ready)
  services-down  unlink them, have the scanner drop them, wait (S6_SERVICES_GRACETIME)
  -l legacydir   default /etc, or /etc/cont-profile.d/$S6_RUNTIME_PROFILE
  -s scandir     default /run/service       -c copydir  default /run/s6/legacy-services
  -P passwd      default /etc/passwd        -G group    default /etc/group
Settings: the S6_* variables of s6-overlay v3. Exit: the step's code (fix-attrs, cont-init
and services-up: 1 when something failed and S6_BEHAVIOUR_IF_STAGE2_FAILS is 2 or more),
100 usage.
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
  const { settings, warnings } = readContainerSettings(process.env);
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
  throw new UsageError(USAGE);
}
