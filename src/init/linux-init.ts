/**
 * t6-linux-init as a library: stage 1 of the machine in s6-linux-init's order
 * (linux-init.md §2), then — in the same process, with no second Node start — pid 1 for the
 * machine's life (pid1.ts), as t6-svscan on /run/service.
 *
 * Stage 1: chdir /, umask, `-d` devtmpfs with fds 0–2 on its console, a tmpfs on /run, the
 * run-image copied into it, the environment rebuilt from PATH plus the env directory, the
 * runlevel from the kernel command line, stdin kept for stage 2 and pid 1's own pointed at
 * /dev/null, a new session, ctrl-alt-del and kbrequest trapped. A step that fails throws
 * Stage1Error naming it; what then happens (a container's exit, a real machine's emergency
 * shell) is the caller's to decide.
 */
import fs from 'node:fs';
import path from 'node:path';
import { O_RDWR, close, dup2, dupCloexec, isOpen, open } from '../sys/fd.ts';
import { acceptKeyboardRequests, mount, MS, reboot, RB, setsid, umask } from '../sys/system.ts';
import { SIGNALS } from '../sys/signals.ts';
import { ENV_DIR, RUN_IMAGE, TMPFS_DIR } from '../s6/initctl.ts';
import type { SvscanEnd } from '../supervise/svscan.ts';
import { HANDOVER_ENV } from '../supervise/handover.ts';
import { buildEnvironment, copyTree, dumpEnvironment, isMountPoint, pickRunlevel, prepareTmpfs, readEnvDir, type RunMode } from './stage1.ts';
import { Pid1, type ContainerHooks, type ServiceManager } from './pid1.ts';
import { strerror } from '../sys/errors.ts';
import { monotonicMs } from '../sys/clock.ts';
import { startUtmp } from './utmp.ts';

/** t6-linux-init's options (the maker writes them into basedir/bin/init). */
export interface LinuxInitOptions {
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
  /** How many services pid 1 supervises at most (default 1,000; a container sizes it to its open-file limit). */
  maxServices?: number;
  /** t6-container with T6_LOG_PREFIX: every service without a logger to pid 1's stdout as `name: line` (t6-svscan -1). */
  consoleSink?: boolean;
}

/** A stage-1 step failed: `step` says which, `cause` why. */
export class Stage1Error extends Error {
  override name = 'Stage1Error';
  constructor(step: string, cause: unknown) {
    super(`${step}: ${strerror(cause)}`);
  }
}

/** What pid 1 gets from its caller. */
export interface LinuxInitHooks {
  /** A line for the console (stage 1 and stage 4 speak to a person). */
  console(line: string): void;
  /** -r: the service manager pid 1 runs at boot and at shutdown. */
  serviceManager?: ServiceManager;
  /** t6-container: a container /init's hooks. */
  container?: ContainerHooks;
}

/** A step of the boot, for boot analysis: CLOCK_MONOTONIC ms (sys/clock.ts). */
export interface BootStep {
  name: string;
  start: number;
  end: number;
}

/** What stage 1 leaves for the rest of pid 1's life. */
export interface Stage1Result {
  runlevel: string;
  /** The console (the container's tty), kept for stage 2's stdin. */
  stage2Stdin: number;
  /** When Node started, then each step of stage 1 (none after a re-exec). */
  steps: BootStep[];
}

/** Stage 1; throws Stage1Error. */
export function runStage1(o: LinuxInitOptions, kernelArgs: readonly string[], say: (line: string) => void): Stage1Result {
  // Node's own start, from its time origin (the process's start) to here.
  const steps: BootStep[] = [{ name: 'node start', start: monotonicMs() - performance.now(), end: monotonicMs() }];
  const timed = <T>(name: string, fn: () => T): T => {
    const start = monotonicMs();
    try {
      return fn();
    } finally {
      steps.push({ name, start, end: monotonicMs() });
    }
  };
  const step = <T>(what: string, fn: () => T, name?: string): T => {
    try {
      return name === undefined ? fn() : timed(name, fn);
    } catch (err) {
      throw new Stage1Error(what, err);
    }
  };
  process.chdir('/');
  umask(o.umask);
  if (o.slashdev !== undefined) {
    const dev = o.slashdev;
    // Kept as it is when an initramfs handed one over (switch_root after moving its /dev).
    step(`unable to mount a devtmpfs on ${dev}`, () => { if (!isMountPoint(dev)) mount('dev', dev, 'devtmpfs', MS.NOSUID | MS.NOEXEC, 'mode=0755'); }, `mount ${dev}`);
    if (!reopenStdio(path.join(dev, 'console'))) reopenStdio('/dev/null');
  }
  if (!isOpen(1)) reopenStdio('/dev/null');
  step(`unable to prepare the tmpfs on ${TMPFS_DIR}`, () => prepareTmpfs(TMPFS_DIR, o.runMode), `tmpfs ${TMPFS_DIR}`);
  const runImage = path.join(o.basedir, RUN_IMAGE);
  step(`unable to copy ${runImage} into ${TMPFS_DIR}`, () => {
    for (const name of fs.readdirSync(runImage)) copyTree(path.join(runImage, name), path.join(TMPFS_DIR, name));
  }, 'copy run-image');
  if (!o.container && o.runMode === 'mount') {
    // utmp lives on /run (/var/run/utmp), fresh here: started before anyone can log in.
    // Not on a /run kept (-n, -N): the utmp there is someone else's.
    try { startUtmp(Date.now() - monotonicMs()); } catch (err) { say(`warning: unable to start utmp: ${strerror(err)}`); }
  }
  const envChanges = step('unable to read the env directory', () => readEnvDir(path.join(o.basedir, ENV_DIR)), 'environment');
  if (o.envDump !== undefined) {
    try {
      dumpEnvironment(o.envDump, process.env);
    } catch (err) {
      say(`warning: unable to dump the environment into ${o.envDump}: ${strerror(err)}`);
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
    try { reboot(RB.DISABLE_CAD); } catch (err) { say(`warning: unable to trap ctrl-alt-del: ${strerror(err)}`); }
    // kbrequest becomes SIGWINCH; a machine without a virtual console (serial only) has none.
    try { acceptKeyboardRequests(SIGNALS.WINCH); } catch { /* no /dev/tty0 */ }
  }
  return { runlevel, stage2Stdin, steps };
}

/**
 * Stage 1, then pid 1 until the machine goes down: resolves only when the process must end
 * (a container's halt, or the scanner's own end). Throws Stage1Error.
 */
export function runLinuxInit(o: LinuxInitOptions, kernelArgs: readonly string[], hooks: LinuxInitHooks): Promise<SvscanEnd> {
  const say = (line: string): void => hooks.console(`t6-linux-init: ${line}`);
  // A re-exec of pid 1 (t6-svscanctl -R /run/service): stage 1 was done by the first image.
  const stage1 = isReexec() ? resumedStage1() : runStage1(o, kernelArgs, say);
  return new Pid1(o, { ...stage1, kernelArgs, say, console: hooks.console, serviceManager: hooks.serviceManager, ...(hooks.container === undefined ? {} : { container: hooks.container }) }).serve();
}

/** Whether this image is a re-exec of pid 1, carrying on from a hand-over. */
export function isReexec(): boolean {
  return process.env[HANDOVER_ENV] !== undefined;
}

/** What stage 1 left, for an image that did not run it: stage 2 is not run again. */
function resumedStage1(): Stage1Result {
  process.chdir('/');
  return { runlevel: '', stage2Stdin: -1, steps: [] };
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
