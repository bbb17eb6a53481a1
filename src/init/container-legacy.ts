/**
 * s6-overlay's legacy layouts as t6-container runs them, each the work of one of s6-overlay's
 * built-in oneshots:
 *
 *   fix-attrs       /etc/fix-attrs.d      owners and modes (legacy-fix-attrs.ts)
 *   cont-init       /etc/cont-init.d      scripts run in order at boot
 *   cont-finish     /etc/cont-finish.d    scripts run in order at shutdown
 *   services-up     /etc/services.d       copied to /run/s6/legacy-services, linked into the scandir
 *   services-down                         unlinked, and waited for (legacy-services.ts)
 *
 * Each takes a LegacyContext (settings, directories, a log sink, a host that starts
 * processes and talks to the scanner) and resolves with the step's exit code.
 */
import path from 'node:path';
import { type LegacyContext, listEntries, say, stage2Policy } from './legacy-common.ts';
import { describeWaitStatus, decodeWaitStatus } from '../sys/wait.ts';
import { SIGNALS } from '../sys/signals.ts';
import { strerror } from '../sys/errors.ts';

export { fixAttrs } from './legacy-fix-attrs.ts';
export { servicesDown, servicesUp } from './legacy-services.ts';
export { type LegacyContext, type LegacyDirs, type LegacyHost, type StartedChild, defaultLegacyDirs } from './legacy-common.ts';

/**
 * Runs one script and waits for it; past `maxMs` (> 0) its process group is killed with
 * SIGKILL. Resolves with its wait status, undefined when it could not be started (said).
 */
async function runScript(ctx: LegacyContext, step: string, file: string, maxMs: number): Promise<number | undefined> {
  let child;
  try {
    child = await ctx.host.start(file);
  } catch (err) {
    say(ctx, 'error', step, `unable to run ${file}: ${strerror(err)}`);
    return undefined;
  }
  let timer: NodeJS.Timeout | undefined;
  if (maxMs > 0) {
    timer = setTimeout(() => {
      say(ctx, 'warning', step, `${file} still runs after ${maxMs} ms: killing it`);
      // The whole group: a script's own children would otherwise keep running (and keep
      // our stdout open). s6-maximumtime kills the script alone.
      ctx.host.killGroup(child.pid, SIGNALS.KILL);
    }, maxMs);
  }
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every entry of `dir` in order, one after the other; returns how many failed. */
async function runAll(ctx: LegacyContext, step: string, dir: string, maxMs: number): Promise<number> {
  const { names, unreadable } = listEntries(ctx, step, dir);
  let failures = unreadable;
  for (const name of names) {
    const file = path.join(dir, name);
    say(ctx, 'info', step, `starting ${file}`);
    const wstat = await runScript(ctx, step, file, maxMs);
    if (wstat === undefined) {
      failures++;
      continue;
    }
    const ws = decodeWaitStatus(wstat);
    if (!ws.exited || ws.exitCode !== 0) failures++;
    say(ctx, 'info', step, `${file} ${describeWaitStatus(wstat)}`);
  }
  return failures;
}

/**
 * The up of `legacy-cont-init`: every entry of `<legacy>/cont-init.d` run directly (its own
 * shebang; it must be executable), in order, all of them whatever the others did; then the
 * stage-2 policy.
 */
export async function contInit(ctx: LegacyContext): Promise<number> {
  const failures = await runAll(ctx, 'cont-init', path.join(ctx.dirs.legacy, 'cont-init.d'), 0);
  return stage2Policy(ctx, 'cont-init', failures);
}

/**
 * The down of `legacy-cont-init`: every entry of `<legacy>/cont-finish.d` in order, each
 * killed after S6_KILL_FINISH_MAXTIME ms when that is not 0. Failures change nothing: 0.
 */
export async function contFinish(ctx: LegacyContext): Promise<number> {
  await runAll(ctx, 'cont-finish', path.join(ctx.dirs.legacy, 'cont-finish.d'), ctx.settings.killFinishMaxTimeMs);
  return 0;
}
