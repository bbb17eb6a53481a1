/**
 * What the legacy-layout steps of t6-container share (s6-overlay's /etc/fix-attrs.d,
 * cont-init.d, cont-finish.d, services.d): their context, the listing order and the
 * stage-2 failure policy.
 */
import fs from 'node:fs';
import type { ContainerSettings } from './container-settings.ts';
import { byteOrder } from './legacy-glob.ts';
import { strerror } from '../sys/errors.ts';

/** Where the steps look and write (all configurable, so tests use temporary directories). */
export interface LegacyDirs {
  /** The profile's legacy base: holds fix-attrs.d, cont-init.d, cont-finish.d, services.d (profileDirs().legacy). */
  legacy: string;
  /** The scan directory the supervisor watches (/run/service). */
  scandir: string;
  /** Where services.d is copied to and supervised from (/run/s6/legacy-services). */
  servicesCopy: string;
  /** The image's account files, for fix-attrs.d (/etc/passwd, /etc/group). */
  passwd: string;
  group: string;
}

/** The default directories of a container. */
export function defaultLegacyDirs(legacy: string): LegacyDirs {
  return { legacy, scandir: '/run/service', servicesCopy: '/run/s6/legacy-services', passwd: '/etc/passwd', group: '/etc/group' };
}

/** A started child: its pid (also its process group: it leads one) and its wait status to come. */
export interface StartedChild {
  pid: number;
  exited: Promise<number>;
}

/** What the steps need from the process that runs them. */
export interface LegacyHost {
  /**
   * Starts the executable `path` with no arguments, stdin /dev/null, our stdout and stderr,
   * as the leader of a new process group. Throws (SysError ENOENT, EACCES, ENOEXEC…) when
   * it cannot be started.
   */
  start(path: string): Promise<StartedChild>;
  /** Sends `signal` to every process of the group `pgid`. */
  killGroup(pgid: number, signal: number): void;
  /** Has the supervisor rescan the scan directory; with `prune`, also drop the services whose directory is gone. */
  rescan(prune: boolean): Promise<void>;
}

/** Everything a step gets. */
export interface LegacyContext {
  settings: ContainerSettings;
  dirs: LegacyDirs;
  /** One line of output (without its newline), such as `warning: cont-init: …`. */
  log(line: string): void;
  host: LegacyHost;
}

/** The verbosity each kind of line needs (s6-overlay's: errors always, warnings from 1, info from 2). */
const LEVEL_MIN = { error: 0, warning: 1, info: 2 } as const;

/** Logs `text` as `level: step: text` when the verbosity allows it. */
export function say(ctx: LegacyContext, level: keyof typeof LEVEL_MIN, step: string, text: string): void {
  if (ctx.settings.verbosity >= LEVEL_MIN[level]) ctx.log(`${level}: ${step}: ${text}`);
}

/**
 * The entries of `dir` to run or apply, in byte order, dot-files skipped (s6-ls | s6-sort);
 * none when it does not exist. Another failure to read it is said, and counted by the
 * caller as one failure (`unreadable`).
 */
export function listEntries(ctx: LegacyContext, step: string, dir: string): { names: string[]; unreadable: number } {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { names: [], unreadable: 0 };
    say(ctx, 'error', step, `unable to read ${dir}: ${strerror(err)}`);
    return { names: [], unreadable: 1 };
  }
  return { names: names.filter((n) => !n.startsWith('.')).sort(byteOrder), unreadable: 0 };
}

/**
 * S6_BEHAVIOUR_IF_STAGE2_FAILS after a step with `failures`: 0 goes on quietly, 1 goes on
 * with a warning, 2 and more end the step with 1 (making the boot fail). Returns the exit code.
 */
export function stage2Policy(ctx: LegacyContext, step: string, failures: number): number {
  const b = ctx.settings.behaviourIfStage2Fails;
  if (failures === 0 || b === 0) return 0;
  if (b === 1) {
    say(ctx, 'warning', step, `${failures} failure${failures === 1 ? '' : 's'}; going on (S6_BEHAVIOUR_IF_STAGE2_FAILS=1)`);
    return 0;
  }
  say(ctx, 'error', step, `${failures} failure${failures === 1 ? '' : 's'}; stopping (S6_BEHAVIOUR_IF_STAGE2_FAILS=${b})`);
  return 1;
}
