/** t6-svscan: the supervision tree's root — scanner, pid 1 and the supervisor of every service. */
import fs from 'node:fs';
import path from 'node:path';
import { type CommandIo, UsageError } from './_run.ts';
import { getopt, uintOption } from './_getopt.ts';
import { Scanner, ScannerSetupError, type ScannerOptions, type ScannerSignal, DIVERTIBLE_SIGNALS } from '../supervise/scanner.ts';
import { execve, setChildSubreaper, getpid, setProcessName, pageOutExecutable, markAllCloexec, getrlimit, RLIMIT, reserveFdsInBackground } from '../sys/index.ts';

const USAGE = 't6-svscan [ -1 ] [ -c max ] [ -t rescan ] [ -d notif ] [ -X consoleholder ] [ scandir ]';
const HELP = `${USAGE}
Supervises every service directory of scandir (default: the current directory), as
s6-svscan and s6-supervise do, in one process. As pid 1 it reaps every orphan; otherwise
it makes itself a child subreaper.
  -c max        at most max supervisors (a service and its logger count as two; default 1000)
  -t rescan     rescan scandir every rescan milliseconds (default: only when told)
  -d notif      write a newline to fd notif once the control FIFO listens, then close it
  -X fd         give fd (a console holder) to the catch-all logger s6-svscan-log as stderr
                (in-process catch-all: where its alerts go)
  -1            console sink (containers): every line of every service without a logger
                goes to stdout as "name: line", whole lines only (and to the catch-all)
Logging: a service's log/t6-log file (t6-log's arguments, one per line) runs its logger
inside t6-svscan; scandir/s6-svscan-log/t6-log makes an in-process catch-all log that
gets the output of every service without a logger, and t6-svscan's own messages.
Control: t6-svscanctl (or s6-svscanctl) on scandir; signals as s6-svscan, with
scandir/.s6-svscan/SIG<NAME> scripts replacing the built-in actions.
`;

export async function main(args: string[], io: CommandIo): Promise<number> {
  if (args.includes('--help')) { io.out(HELP); return 0; }
  const { options, rest } = getopt(args, { flags: '1', withArg: 'ctdX' });
  let rescanMs = 0;
  let maxServices = 1000;
  let notifyFd: number | undefined;
  let consoleFd: number | undefined;
  let consoleSink = false;
  for (const opt of options) {
    if (opt.name === '1') consoleSink = true;
    else if (opt.name === 'c') maxServices = Math.min(Math.max(uintOption('c', opt.value), 4), 160000);
    else if (opt.name === 't') rescanMs = uintOption('t', opt.value);
    else if (opt.name === 'd') notifyFd = uintOption('d', opt.value);
    else if (opt.name === 'X') consoleFd = uintOption('X', opt.value);
  }
  if (rest.length > 1) throw new UsageError(USAGE);
  for (const fd of [notifyFd, consoleFd]) {
    if (fd === undefined) continue;
    if (fd < 3) throw new UsageError(`${USAGE}\nfd ${fd} must be 3 or more`);
    try { fs.fstatSync(fd); } catch { throw new UsageError(`${USAGE}\nfd ${fd} is not open`); }
  }
  const scandir = path.resolve(rest[0] ?? '.');
  return serve({
    scandir, rescanMs, maxServices, consoleSink,
    ...(notifyFd === undefined ? {} : { notifyFd }),
    ...(consoleFd === undefined ? {} : { consoleFd }),
  }, io);
}

/** How t6-svscan (or t6-linux-init, carrying on as t6-svscan) runs the tree. */
export interface ServeConfig {
  scandir: string;
  rescanMs: number;
  maxServices: number;
  notifyFd?: number;
  consoleFd?: number;
  /** -1: every line of every service without a logger to stdout, prefixed with its name. */
  consoleSink?: boolean;
  /** Scan dir entries that are not services. */
  notServices?: ReadonlySet<string>;
  /** Built-in signal actions replacing s6-svscan's (when no `.s6-svscan/SIG<NAME>` exists). */
  signalActions?: ScannerOptions['signalActions'];
  /** Called once the first scan is done: t6-linux-init starts stage 2 here. */
  started?(scanner: Scanner): void;
}

/** Runs the supervision tree until the scanner is told to exit; then execs `.s6-svscan/finish`. */
export async function serve(cfg: ServeConfig, io: CommandIo): Promise<number> {
  const { scandir, notifyFd } = cfg;
  // Once the scanner is open, its messages go through scanner.log (into the catch-all log if
  // there is one); before, and for start-up failures, to stderr.
  let logTo: Scanner | undefined;
  const report = (level: string, message: string): void => {
    const line = `t6-svscan: ${level}: ${message}`;
    if (logTo !== undefined) logTo.log(line);
    else io.err(`${line}\n`);
  };

  // pid 1 must not die: anything that escapes a guard is reported, and life goes on.
  process.on('uncaughtException', (err) => report('error', `uncaught: ${err.stack ?? err.message}`));
  process.on('unhandledRejection', (err) => report('error', `unhandled rejection: ${String(err)}`));

  if (getpid() !== 1) {
    try { setChildSubreaper(); } catch (err) { report('warning', `unable to become a subreaper: ${String(err)}`); }
  }
  setProcessName('t6-svscan');
  // Whatever we inherited above fd 2 must not reach services (-d and -X fds are passed
  // explicitly where they belong); from here on every fd of ours is close-on-exec.
  markAllCloexec();
  // Room in the fd table for every supervisor's few fds, grown once and off the event loop
  // (see reserveFds): not one stall after another while the first thousand services start.
  try {
    const limit = Number(getrlimit(RLIMIT.NOFILE).soft);
    reserveFdsInBackground(Math.min(256 + 4 * cfg.maxServices, 65536, limit));
  } catch { /* an optimisation only */ }

  const notifyReady = (): void => {
    if (notifyFd === undefined) return;
    try { fs.writeSync(notifyFd, '\n'); } catch (err) { report('warning', `unable to write to fd ${notifyFd}: ${String(err)}`); }
    fs.closeSync(notifyFd);
  };
  // Handlers first: a signal that arrives while the scan dir is being taken is kept and
  // acted on right after (with no handler, SIGTERM would kill a t6-svscan that is not pid 1).
  let scanner: Scanner | undefined;
  const pending: ScannerSignal[] = [];
  const signals: ScannerSignal[] = [...DIVERTIBLE_SIGNALS, 'SIGALRM', 'SIGABRT'];
  for (const sig of signals) process.on(sig, () => { if (scanner === undefined) pending.push(sig); else scanner.signal(sig); });
  process.on('SIGCHLD', () => scanner?.reaper.reap());
  try {
    scanner = Scanner.open({
      scandir, rescanMs: cfg.rescanMs, maxServices: cfg.maxServices, report, allCloexec: true,
      consoleSink: cfg.consoleSink === true,
      ...(cfg.consoleFd === undefined ? {} : { consoleFd: cfg.consoleFd }),
      ...(cfg.notServices === undefined ? {} : { notServices: cfg.notServices }),
      ...(cfg.signalActions === undefined ? {} : { signalActions: cfg.signalActions }),
    }, (s) => { logTo = s; notifyReady(); });
  } catch (err) {
    if (err instanceof ScannerSetupError) {
      io.err(`t6-svscan: fatal: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
  scanner.reaper.reap();
  cfg.started?.(scanner);
  for (const sig of pending.splice(0)) scanner.signal(sig);

  // Start-up is over once the first scan's supervisors are running: give back the
  // executable pages only start-up needed (pid 1 lives for months; see pageOutExecutable).
  setTimeout(() => pageOutExecutable(), 1000).unref();

  const exit = await scanner.done;
  scanner.releaseLock();
  for (const sig of signals) process.removeAllListeners(sig);
  if (exit.finish !== undefined) {
    process.chdir(scandir);
    const err = execve(exit.finish, ['.s6-svscan/finish']);
    report('error', `unable to exec ${exit.finish}: ${err.message}`);
    return 111;
  }
  // No finish script: as s6-svscan, exit 0 (pid 1 exiting would panic the kernel; t6-linux-init always provides one).
  process.exit(0);
}
