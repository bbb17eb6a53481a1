/**
 * The tunables of a container's /init (issue 15), read from its environment by the rules
 * of s6-overlay v3, so an image built for s6-overlay means the same with t6-container:
 * a number is all digits or it is not taken (its default stands); a switch is on when it is
 * a number other than 0 (`S6_LOGGING=yes` is no number, so off: s6-overlay's `test "0$X"
 * -ne 0` fails the same way). Unlike s6-overlay, t6 says which values it did not take.
 */

/** Every S6_* variable t6-container honours, with its meaning in s6-overlay v3. */
export interface ContainerSettings {
  /** S6_KEEP_ENV: services and CMD get the whole container environment; no dump, `with-contenv` changes nothing. */
  keepEnv: boolean;
  /** S6_LOGGING: 0 no catch-all logger (output to the container's stdout), 1 logger and a copy to stdout, 2 logger only. */
  logging: 0 | 1 | 2;
  /** S6_LOGGING_SCRIPT: the catch-all logger's directives, split on blanks (undefined: unset). */
  loggingScript: string[] | undefined;
  /** S6_CATCHALL_USER: the account the catch-all logger runs as. */
  catchallUser: string | undefined;
  /** S6_BEHAVIOUR_IF_STAGE2_FAILS: 0 go on silently, 1 go on with a warning, 2 stop the container. */
  behaviourIfStage2Fails: number;
  /** S6_VERBOSITY: 0 errors, 1 warnings, 2 start and stop lines (default), up to 5. */
  verbosity: number;
  /** S6_STAGE2_HOOK: a command run before the services are compiled, split on blanks (never a shell). */
  stage2Hook: string[] | undefined;
  /** S6_RUNTIME_PROFILE: read /etc/cont-profile.d/NAME/… instead of /etc/… */
  runtimeProfile: string | undefined;
  /** S6_RUNTIME_BUNDLEDIR: where the `user` and `user2` bundles are (default PROFILE/user-bundles.d). */
  runtimeBundleDir: string | undefined;
  /** S6_CMD_ARG0: words put before CMD (an old ENTRYPOINT, `with-contenv`). */
  cmdArg0: string[];
  /** S6_CMD_USE_TERMINAL: CMD's output to the terminal, not the catch-all logger, when stdin is one. */
  cmdUseTerminal: boolean;
  /** S6_CMD_RECEIVE_SIGNALS: TERM QUIT INT USR1 USR2 PWR WINCH to pid 1 go to CMD while it runs. */
  cmdReceiveSignals: boolean;
  /** S6_CMD_WAIT_FOR_SERVICES: /etc/services.d services must be up (ready, with notification-fd) before CMD. */
  cmdWaitForServices: boolean;
  /** S6_CMD_WAIT_FOR_SERVICES_MAXTIME (ms): the bound on bringing the services up; 0 = none. */
  cmdWaitForServicesMaxTimeMs: number;
  /** S6_SERVICES_READYTIME (ms): a pause before looking at the legacy services' state. */
  servicesReadyTimeMs: number;
  /** S6_SERVICES_GRACETIME (ms): how long /etc/services.d services get to go down at shutdown. */
  servicesGraceTimeMs: number;
  /** S6_KILL_FINISH_MAXTIME (ms): each cont-finish.d script is SIGKILLed after this; 0 = never. */
  killFinishMaxTimeMs: number;
  /** S6_KILL_GRACETIME (ms): between the last SIGTERM to every process and SIGKILL (at most 300000). */
  killGraceTimeMs: number;
  /** S6_SYNC_DISKS: sync before a reboot or poweroff. */
  syncDisks: boolean;
  /** S6_FIX_ATTRS_HIDDEN: fix-attrs.d recursion also visits names starting with a dot. */
  fixAttrsHidden: boolean;
  /** S6_READ_ONLY_ROOT: the root may be read-only; /run must then be writable, or a tmpfs is mounted there. */
  readOnlyRoot: boolean;
  /** S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES: a non-root container accepts a root-owned /run writable by all. */
  worldWritableRun: boolean;
  /** S6_WAIT_FOR_CLOSING_FD: an fd (3 or more) read until a byte or its end before anything starts. */
  waitForClosingFd: number | undefined;
  /** T6_LOG_PREFIX (t6's own), with S6_LOGGING=0 only: every service without a logger gets its own pipe, its lines on the container's stdout as `name: line`. */
  logPrefix: boolean;
}

/** What was read, and a sentence for each value that was not taken. */
export interface ReadSettings {
  settings: ContainerSettings;
  warnings: string[];
}

/** Where a shutdown's final grace time is capped (s6-linux-init's own bound). */
export const MAX_KILL_GRACETIME_MS = 300_000;

/** Reads the S6_* variables of `env` (s6-overlay v3's names, defaults and rules). */
export function readContainerSettings(env: Readonly<Record<string, string | undefined>>): ReadSettings {
  const warnings: string[] = [];
  const set = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  /** All digits, else the default (and a warning). */
  const int = (name: string, fallback: number): number => {
    const v = set(name);
    if (v === undefined) return fallback;
    if (/^[0-9]+$/.test(v)) return Number(v);
    warnings.push(`${name}=${JSON.stringify(v)} is not a number of digits: using ${fallback}`);
    return fallback;
  };
  const on = (name: string): boolean => int(name, 0) !== 0;
  const words = (name: string): string[] | undefined => {
    const v = set(name);
    if (v === undefined) return undefined;
    const split = v.split(/[ \t\n]+/).filter((w) => w !== '');
    return split.length === 0 ? undefined : split;
  };
  const logging = int('S6_LOGGING', 0);
  const graceMs = int('S6_KILL_GRACETIME', 3000);
  if (graceMs > MAX_KILL_GRACETIME_MS) warnings.push(`S6_KILL_GRACETIME=${graceMs} is over ${MAX_KILL_GRACETIME_MS}: using ${MAX_KILL_GRACETIME_MS}`);
  const closingFd = int('S6_WAIT_FOR_CLOSING_FD', 0);
  if (closingFd > 0 && closingFd < 3) warnings.push(`S6_WAIT_FOR_CLOSING_FD=${closingFd} is not an fd above 2: ignored`);
  // With a catch-all logger, the sink would write each line to stdout and into the logger (which may copy it to stdout again).
  const logPrefix = on('T6_LOG_PREFIX');
  if (logPrefix && logging !== 0) warnings.push(`T6_LOG_PREFIX is for S6_LOGGING=0 (services on the container's stdout): ignored with S6_LOGGING=${logging}`);
  return {
    warnings,
    settings: {
      keepEnv: on('S6_KEEP_ENV'),
      logging: logging === 0 ? 0 : logging === 1 ? 1 : 2,
      loggingScript: words('S6_LOGGING_SCRIPT'),
      catchallUser: set('S6_CATCHALL_USER'),
      behaviourIfStage2Fails: int('S6_BEHAVIOUR_IF_STAGE2_FAILS', 0),
      verbosity: int('S6_VERBOSITY', 2),
      stage2Hook: words('S6_STAGE2_HOOK'),
      runtimeProfile: set('S6_RUNTIME_PROFILE'),
      runtimeBundleDir: set('S6_RUNTIME_BUNDLEDIR'),
      cmdArg0: words('S6_CMD_ARG0') ?? [],
      cmdUseTerminal: on('S6_CMD_USE_TERMINAL'),
      cmdReceiveSignals: on('S6_CMD_RECEIVE_SIGNALS'),
      cmdWaitForServices: on('S6_CMD_WAIT_FOR_SERVICES'),
      cmdWaitForServicesMaxTimeMs: int('S6_CMD_WAIT_FOR_SERVICES_MAXTIME', 0),
      servicesReadyTimeMs: int('S6_SERVICES_READYTIME', 50),
      servicesGraceTimeMs: int('S6_SERVICES_GRACETIME', 3000),
      killFinishMaxTimeMs: int('S6_KILL_FINISH_MAXTIME', 0),
      killGraceTimeMs: Math.min(graceMs, MAX_KILL_GRACETIME_MS),
      syncDisks: on('S6_SYNC_DISKS'),
      fixAttrsHidden: on('S6_FIX_ATTRS_HIDDEN'),
      readOnlyRoot: on('S6_READ_ONLY_ROOT'),
      worldWritableRun: on('S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES'),
      waitForClosingFd: closingFd >= 3 ? closingFd : undefined,
      logPrefix: logPrefix && logging === 0,
    },
  };
}

/** The profile's directories: s6-overlay's own (s6-rc.d, user-bundles.d) and the legacy ones (cont-init.d…). */
export function profileDirs(s: Pick<ContainerSettings, 'runtimeProfile' | 'runtimeBundleDir'>): {
  overlay: string;
  bundles: string;
  legacy: string;
} {
  const base = s.runtimeProfile === undefined ? '/etc' : `/etc/cont-profile.d/${s.runtimeProfile}`;
  const overlay = s.runtimeProfile === undefined ? '/etc/s6-overlay' : `${base}/s6-overlay`;
  return { overlay, bundles: s.runtimeBundleDir ?? `${overlay}/user-bundles.d`, legacy: base };
}
