/**
 * t6-container's work before and around stage 1 (issue 15), after s6-overlay v3's /init:
 *
 *   preinit   /run made ready (a tmpfs if the root is read-only and /run is not writable),
 *             /var/run a link to /run, and a clean slate: /run/s6, /run/service…
 *   stage 0   the boot tree made in /run/s6/basedir (maker.ts, container mode, /run kept),
 *             its rc.init replaced by the CMD runner, the image's WORKDIR noted
 *   stage 1+  t6-linux-init's, in this same process (linux-init.ts), with the container's
 *             service manager (rc/container-rc.ts) and hooks for CMD
 *
 * The observable layout is s6-overlay's, so scripts written for it find what they look for:
 * /run/service, /run/s6/container_environment, /run/s6/basedir/bin/halt,
 * /run/s6-linux-init-container-results/exitcode, /run/s6-rc, /run/uncaught-logs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { prepareTmpfs, readEnvDir } from './stage1.ts';
import { shQuote, type MakerOptions } from './maker.ts';
import type { ContainerSettings } from './container-settings.ts';
import type { ContainerHooks } from './pid1.ts';
import type { LinuxInitOptions } from './linux-init.ts';
import type { ScannerSignal } from '../supervise/scanner.ts';
import { CATCHALL_LOGDIR, CONTAINER_RESULTS, TMPFS_DIR } from '../s6/initctl.ts';
import { parseSignal } from '../s6/signals.ts';
import { kill } from '../sys/spawn.ts';
import { fdsNeeded, servicesWithin } from '../supervise/fdlimit.ts';

/** s6-overlay's places, kept. */
export const CONTAINER = {
  basedir: '/run/s6/basedir',
  envDir: '/run/s6/container_environment',
  workdir: '/run/s6/workdir',
  cmdPid: '/run/s6/cmdpid',
  compiled: '/run/s6/db',
  live: '/run/s6-rc',
  ownSources: '/run/s6/t6-sources',
} as const;

/**
 * The signals CMD gets instead of pid 1 with S6_CMD_RECEIVE_SIGNALS: s6-overlay's seven, and
 * SIGHUP (t6's addition: `docker kill -s HUP` is how people ask an application to reload;
 * without a CMD running, it keeps its scanner meaning, a rescan).
 */
const CMD_SIGNALS: readonly ScannerSignal[] = ['SIGTERM', 'SIGQUIT', 'SIGINT', 'SIGUSR1', 'SIGUSR2', 'SIGPWR', 'SIGWINCH', 'SIGHUP'];

/**
 * The environment stage-2 settings are read from, as s6-overlay's printcontenv reads them:
 * the saved container environment (a hook may have changed it), or with S6_KEEP_ENV the
 * process's own; the process's own too where nothing was saved (a step run by hand).
 */
export function containerEnvironment(env: Readonly<Record<string, string | undefined>>, envDir: string = CONTAINER.envDir): Record<string, string | undefined> {
  if (/^[0-9]+$/.test(env.S6_KEEP_ENV ?? '') && Number(env.S6_KEEP_ENV) !== 0) return { ...env };
  if (!fs.existsSync(envDir)) return { ...env };
  const saved: Record<string, string | undefined> = {};
  for (const [name, value] of readEnvDir(envDir)) saved[name] = value;
  return saved;
}

/** PATH as s6-overlay's /init leaves it: /command, /usr/bin and /bin in front when missing; t6's bin/ at the end. */
export function containerPath(current: string | undefined, t6bin: string): string {
  let parts = (current ?? '').split(':').filter((p) => p !== '');
  if (parts.length === 0) parts = ['/bin'];
  for (const dir of ['/bin', '/usr/bin', '/command']) if (!parts.includes(dir)) parts.unshift(dir);
  if (!parts.includes(t6bin)) parts.push(t6bin);
  return parts.join(':');
}

/** preinit: /run ready, /var/run → /run, and s6-overlay's clean slate. Throws Error saying what could not be done. */
export function prepareRun(settings: ContainerSettings, warn: (line: string) => void): void {
  if (!fs.existsSync(TMPFS_DIR)) fs.mkdirSync(TMPFS_DIR, { mode: 0o755 });
  if (!writable(TMPFS_DIR)) {
    if (!settings.readOnlyRoot) throw new Error(`${TMPFS_DIR} is not writable (a read-only root needs S6_READ_ONLY_ROOT=1, or a tmpfs mounted on ${TMPFS_DIR})`);
    try {
      prepareTmpfs(TMPFS_DIR, 'mount');
    } catch (err) {
      throw new Error(`${TMPFS_DIR} is not writable and no tmpfs could be mounted there (${(err as Error).message}): give the container a tmpfs on ${TMPFS_DIR}`);
    }
  }
  let varRunOk = false;
  try { varRunOk = fs.realpathSync('/var/run') === TMPFS_DIR; } catch { /* missing */ }
  if (!varRunOk) {
    try {
      fs.rmSync('/var/run', { recursive: true, force: true });
      fs.mkdirSync('/var', { recursive: true });
      fs.symlinkSync(TMPFS_DIR, '/var/run');
    } catch (err) {
      warn(`unable to make /var/run a link to ${TMPFS_DIR}: ${(err as Error).message}`);
    }
  }
  for (const name of fs.readdirSync(TMPFS_DIR)) {
    if (name === 's6' || name === 'service' || name === path.basename(CATCHALL_LOGDIR) || name.startsWith('s6-rc') || name === path.basename(CONTAINER_RESULTS)) {
      fs.rmSync(path.join(TMPFS_DIR, name), { recursive: true, force: true });
    }
  }
  fs.mkdirSync(path.dirname(CONTAINER.basedir), { mode: 0o755 });
}

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    const probe = path.join(dir, `.t6-container-probe.${process.pid}`);
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
    return true;
  } catch {
    return false;
  }
}

/**
 * The maker's settings for a container's boot tree. With S6_KEEP_ENV the whole container
 * environment `env` goes into the tree's env/, so pid 1, every service and CMD get it.
 */
export function containerMakerOptions(s: ContainerSettings, t6bin: string, initialPath: string, env: Readonly<Record<string, string | undefined>> = {}): MakerOptions {
  const kept: Array<[string, string]> = s.keepEnv
    ? Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[0] !== 'PATH' && e[0] !== '' && !e[0].includes('/') && !e[0].startsWith('.') && !e[0].includes('='))
    : [];
  const style = s.loggingScript === undefined ? 0 : (s.loggingScript.includes('t') ? 1 : 0) | (s.loggingScript.includes('T') ? 2 : 0);
  return {
    basedir: CONTAINER.basedir, t6bin, compiled: CONTAINER.compiled, live: CONTAINER.live,
    logToConsole: s.logging === 1, initialPath, umask: 0o022, timestampStyle: style as 0 | 1 | 2 | 3,
    ...(s.keepEnv ? {} : { envStore: CONTAINER.envDir }),
    env: kept, graceMs: s.killGraceTimeMs, defaultRunlevel: 'top', runMode: 'keep', container: true,
    noLogger: s.logging === 0, syncInContainer: s.syncDisks, rcInProcess: true,
    ...(s.waitForClosingFd === undefined ? {} : { readyFd: s.waitForClosingFd }),
  };
}

/**
 * How many services pid 1 takes on: 1,000, or what the open-file limit holds when a
 * container cannot raise it (no CAP_SYS_RESOURCE: podman's and docker's default), so that
 * a container does not start with a warning about a limit it was given on purpose.
 */
export function containerMaxServices(hardFdLimit: number): number {
  return fdsNeeded(1000) <= hardFdLimit ? 1000 : Math.max(16, servicesWithin(hardFdLimit, false));
}

/** t6-linux-init's options for the tree containerMakerOptions describes. */
export function containerLinuxInitOptions(s: ContainerSettings, initialPath: string, maxServices = 1000): LinuxInitOptions {
  return {
    maxServices,
    basedir: CONTAINER.basedir, initialPath, umask: 0o022, envDump: s.keepEnv ? undefined : CONTAINER.envDir, slashdev: undefined,
    defaultRunlevel: 'top', graceMs: s.killGraceTimeMs, runMode: 'keep', container: true, noLogger: s.logging === 0,
    syncInContainer: s.syncDisks, busyboxSignals: false, consoleSink: s.logPrefix,
  };
}

/**
 * rc.init, the CMD runner: run by pid 1 once `top` is up, as `rc.init top CMD…`. From the
 * image's WORKDIR it runs S6_CMD_ARG0's words and CMD (in the background, its pid in
 * /run/s6/cmdpid, when it is to receive pid 1's signals), writes its exit code (128+N if a
 * signal N ended it) where the container's is read, and exits; pid 1 then halts.
 */
export function cmdRunnerScript(s: ContainerSettings): string {
  const q = shQuote;
  const prefix = s.cmdArg0.map(q).join(' ');
  const run = `${prefix === '' ? '' : `${prefix} `}"$@"`;
  const results = q(`${CONTAINER_RESULTS}/exitcode`);
  const body = s.cmdReceiveSignals
    ? [
      `${run} &`,
      'pid=$!',
      `echo "$pid" > ${q(CONTAINER.cmdPid)}`,
      // A trapped signal interrupts wait: wait again while CMD lives.
      'while :; do wait "$pid"; code=$?; kill -0 "$pid" 2>/dev/null || break; done',
      `rm -f ${q(CONTAINER.cmdPid)}`,
    ]
    : [`${run}`, 'code=$?'];
  // S6_CMD_USE_TERMINAL: with a catch-all logger, CMD's output goes to the terminal (its stdin) instead.
  const terminal = s.cmdUseTerminal && s.logging !== 0 ? ['if t=$(tty 2>/dev/null); then exec >"$t" 2>&1; fi'] : [];
  return [
    '#!/bin/sh',
    '# Generated by t6-container: stage 2\'s end, run by pid 1 once the services are up.',
    '# rc.init top CMD...: runs CMD; its exit code becomes the container\'s.',
    'trap : INT',
    'shift',
    '[ $# -gt 0 ] || exit 0',
    `dir=$(cat ${q(CONTAINER.workdir)} 2>/dev/null) && cd "$dir" 2>/dev/null || cd /`,
    ...terminal,
    ...body,
    `echo "$code" > ${results}`,
    'exit "$code"',
    '',
  ].join('\n');
}

/** pid 1's container hooks for `settings`, CMD given or not. */
export function containerHooks(s: ContainerSettings, hasCmd: boolean, say: (line: string) => void): ContainerHooks {
  return {
    stopOnStage2Failure: (code) => {
      if (s.behaviourIfStage2Fails >= 1) say(`warning: the services did not all come up (exit ${code}); see ${s.logging === 0 ? 'the messages above' : `${CATCHALL_LOGDIR}/current`}`);
      return s.behaviourIfStage2Fails >= 2;
    },
    haltAfterRcInit: hasCmd,
    divert: (signal) => {
      if (!s.cmdReceiveSignals || !CMD_SIGNALS.includes(signal)) return false;
      let pid = 0;
      try { pid = Number(fs.readFileSync(CONTAINER.cmdPid, 'utf8').trim()); } catch { return false; }
      if (!Number.isInteger(pid) || pid <= 1) return false;
      try {
        return kill(pid, parseSignal(signal) ?? 15);
      } catch {
        return false;
      }
    },
  };
}
