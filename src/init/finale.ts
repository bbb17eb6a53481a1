/**
 * Stage 4, in pid 1 (linux-init.md §4 steps 7–9 and §4.1): once rc.shutdown has brought the
 * services down, let go of every supervisor, TERM every process, wait while any remain (at
 * most the grace time), KILL the rest, write out the logs, unmount every filesystem in
 * reverse order, run rc.shutdown.final, sync, and halt, power off or reboot.
 *
 * s6 sleeps the whole grace time; pid 1 knows when it has no child left (every process on
 * the machine is its descendant), so it goes on as soon as nothing is left.
 */
import fs from 'node:fs';
import { SIGNALS } from '../sys/signals.ts';
import { kill } from '../sys/spawn.ts';
import { RB, reboot, sync } from '../sys/system.ts';
import { parseMounts, planUnmounts, unmountAll } from './umountall.ts';
import { strerror, toError } from '../sys/errors.ts';

/** How long to wait for the kernel to deliver SIGKILL's deaths. */
const KILL_WAIT_MS = 5000;

/** What stage 4 needs from pid 1. */
export interface FinaleHost {
  /** Every supervisor told to bring its service down and let go. */
  unsuperviseAll(): void;
  /** Resolves once no child is left. */
  untilChildless(): Promise<void>;
  /** Writes out every log still in pid 1's hands. */
  flushLogs(): Promise<void>;
  /** Runs a script as a child and waits (undefined if it does not exist). */
  runScript(file: string): Promise<number | undefined>;
  /** A line for the console: stage 4 speaks to a person. */
  say(line: string): void;
}

/** How the machine ends. */
export type FinalAction = 'h' | 'p' | 'r';

/** The reboot(2) command for an action. */
export function rebootCommand(action: FinalAction): number {
  return action === 'h' ? RB.HALT_SYSTEM : action === 'p' ? RB.POWER_OFF : RB.AUTOBOOT;
}

/** Options of stage 4. */
export interface FinaleOptions {
  graceMs: number;
  /** The tmpfs dir, never unmounted (default /run). */
  tmpfsDir?: string;
  /** rc.shutdown.final, run after the unmounts if it exists. */
  finalScript?: string;
  /** Container: no unmounting, no sync unless asked; the caller ends the process. */
  container?: boolean;
  /** In a container, sync anyway (-S). */
  syncInContainer?: boolean;
  /** Where the mount table is read from. */
  mountsFile?: string;
}

function timeout(ms: number): Promise<'timeout'> {
  return new Promise((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
}

/**
 * Runs stage 4 up to the point of no return. On a real machine it calls reboot(2) and only
 * returns if that failed (with the error); in a container it returns for the caller to end.
 */
export async function runFinale(host: FinaleHost, action: FinalAction, opts: FinaleOptions): Promise<Error | undefined> {
  const container = opts.container === true;
  // A kill(-1) that fails (EPERM) must not stop stage 4: the machine still has to go down.
  const signalAll = (sig: number): void => {
    try { kill(-1, sig); } catch (err) { host.say(`warning: unable to signal every process: ${strerror(err)}`); }
  };
  const syncing = !container || opts.syncInContainer === true;
  host.unsuperviseAll();
  if (syncing) sync();
  host.say('sending all processes the TERM signal...');
  signalAll(SIGNALS.TERM);
  // An interactive shell ignores SIGTERM but not SIGHUP (a hang-up, as when its terminal
  // goes): without it, the login shell that typed `poweroff` would hold the grace time.
  signalAll(SIGNALS.HUP);
  signalAll(SIGNALS.CONT);
  const termDone = await Promise.race([host.untilChildless(), timeout(opts.graceMs)]);
  if (syncing) sync();
  if (termDone === 'timeout') {
    host.say('sending all processes the KILL signal...');
    signalAll(SIGNALS.KILL);
    if ((await Promise.race([host.untilChildless(), timeout(KILL_WAIT_MS)])) === 'timeout') {
      host.say('warning: some processes are still there after SIGKILL');
    }
  } else {
    host.say('all processes exited');
  }
  try {
    await host.flushLogs();
  } catch (err) {
    host.say(`warning: unable to write out the logs: ${strerror(err)}`);
  }
  if (!container) {
    let mounts: string | undefined;
    try {
      mounts = fs.readFileSync(opts.mountsFile ?? '/proc/mounts', 'utf8');
    } catch (err) {
      host.say(`warning: unable to read ${opts.mountsFile ?? '/proc/mounts'}: ${strerror(err)} - nothing unmounted`);
    }
    if (mounts !== undefined) {
      const results = unmountAll(planUnmounts(parseMounts(mounts), opts.tmpfsDir ?? '/run'));
      const failed = results.filter((r) => r.outcome === 'failed');
      for (const r of failed) host.say(`warning: unable to unmount ${r.target}: ${r.error ?? ''}`);
      const ro = results.filter((r) => r.outcome === 'remounted read-only').map((r) => r.target);
      const unmounted = results.filter((r) => r.outcome === 'unmounted').map((r) => r.target);
      host.say(`unmounted ${unmounted.length} filesystem${unmounted.length === 1 ? '' : 's'}${unmounted.length > 0 ? ` (${unmounted.join(' ')})` : ''}${ro.length > 0 ? `; remounted read-only: ${ro.join(' ')}` : ''}${failed.length > 0 ? `; ${failed.length} failed` : ''}`);
    }
  }
  if (opts.finalScript !== undefined) {
    try {
      await host.runScript(opts.finalScript);
    } catch (err) {
      host.say(`warning: ${opts.finalScript}: ${strerror(err)}`);
    }
  }
  if (syncing) sync();
  if (container) return undefined;
  try {
    reboot(rebootCommand(action));
  } catch (err) {
    return toError(err);
  }
  return undefined;
}
