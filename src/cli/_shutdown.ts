/**
 * What t6-shutdown and t6-hpr share: where the shutdown FIFO is, the probe every client makes
 * first, the one-write send, the hostname confirmation of `-i`, and the test/alternate-root
 * overrides read from the environment:
 *
 *   T6_SHUTDOWND_FIFO   the shutdown FIFO (default /run/service/s6-linux-init-shutdownd/fifo;
 *                       `--fifo PATH` wins over it)
 *   T6_UTMP             utmp for wall and -a (default /var/run/utmp)
 *   T6_WTMP             wtmp for halt/poweroff/reboot's record (default /var/log/wtmp)
 *   T6_SHUTDOWN_ALLOW   the access file of `shutdown -a` (default /etc/shutdown.allow)
 */
import fs from 'node:fs';
import os from 'node:os';
import { type CommandIo, FatalError } from './_run.ts';
import { DEFAULT_SHUTDOWND_FIFO, encodeShutdownRequest } from '../s6/initctl.ts';
import { DEFAULT_UTMP, DEFAULT_WTMP, appendWtmp, encodeRunLevelRecord, wall } from '../init/utmp.ts';
import { WALL_NOW } from '../init/shutdown-time.ts';
import { DEFAULT_SHUTDOWN_ALLOW } from '../init/shutdown-allow.ts';
import { strerror } from '../sys/errors.ts';
import { EXIT } from '../s6/exit.ts';

/** The paths a shutdown client uses, after --fifo and the environment. */
export interface ShutdownPaths {
  fifo: string;
  utmp: string;
  wtmp: string;
  allow: string;
}

/** Resolves the paths: `fifoOption` (from --fifo) first, then T6_* variables, then defaults. */
export function shutdownPaths(fifoOption: string | undefined, env: NodeJS.ProcessEnv = process.env): ShutdownPaths {
  const pick = (v: string | undefined, d: string): string => (v === undefined || v === '' ? d : v);
  return {
    fifo: fifoOption ?? pick(env.T6_SHUTDOWND_FIFO, DEFAULT_SHUTDOWND_FIFO),
    utmp: pick(env.T6_UTMP, DEFAULT_UTMP),
    wtmp: pick(env.T6_WTMP, DEFAULT_WTMP),
    allow: pick(env.T6_SHUTDOWN_ALLOW, DEFAULT_SHUTDOWN_ALLOW),
  };
}

const WRITE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_NONBLOCK;

/** Why opening the FIFO failed, in words. */
function openFailure(fifo: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENXIO') return `${fifo}: nobody is reading it (is the shutdown daemon of t6-svscan running?)`;
  return `open ${fifo}: ${strerror(err)}`;
}

/**
 * Opens the FIFO for writing and closes it: fails unless someone reads it and we may write
 * (s6's zero-byte probe). Throws FatalError with `exitCode` (hpr 100, shutdown 111).
 */
export function probeShutdownd(fifo: string, exitCode: number): void {
  let fd: number;
  try {
    fd = fs.openSync(fifo, WRITE_FLAGS);
  } catch (err) {
    throw new FatalError(`unable to talk to shutdownd: ${openFailure(fifo, err)}`, exitCode);
  }
  fs.closeSync(fd);
}

/** Writes one request in one write (≤ PIPE_BUF, so it arrives whole). Throws FatalError 111. */
export function sendToShutdownd(fifo: string, request: Buffer): void {
  let fd: number;
  try {
    fd = fs.openSync(fifo, WRITE_FLAGS);
  } catch (err) {
    throw new FatalError(`unable to write to shutdownd: ${openFailure(fifo, err)}`, EXIT.system);
  }
  try {
    const n = fs.writeSync(fd, request);
    if (n !== request.length) throw new FatalError(`unable to write to ${fifo}: short write (${n} of ${request.length} bytes)`, EXIT.system);
  } catch (err) {
    if (err instanceof FatalError) throw err;
    throw new FatalError(`unable to write to ${fifo}: ${strerror(err)}`, EXIT.system);
  } finally {
    fs.closeSync(fd);
  }
}

/** The host name up to its first dot. */
function shortName(name: string): string {
  const dot = name.indexOf('.');
  return dot < 0 ? name : name.slice(0, dot);
}

/**
 * `-i`: asks for the machine's host name on the terminal and refuses (exit 1) on a
 * mismatch, so that a shutdown meant for another machine's session does not happen here.
 */
export function confirmHostname(io: CommandIo): void {
  // node:tty (with node:net and the streams) only here: every other shutdown request goes without it.
  const tty = process.getBuiltinModule('node:tty');
  if (!tty.isatty(0) || !tty.isatty(1)) throw new FatalError('unable to ask hostname confirmation: stdin or stdout is not a tty', EXIT.usage);
  const expected = shortName(os.hostname());
  io.out("Please enter the machine's hostname: ");
  const buf = Buffer.alloc(256);
  let n: number;
  try {
    n = fs.readSync(0, buf, 0, buf.length, null);
  } catch (err) {
    throw new FatalError(`unable to read from stdin: ${strerror(err)}`, EXIT.system);
  }
  if (n === 0) throw new FatalError('unable to read from stdin: end of file', EXIT.system);
  const line = buf.subarray(0, n).toString('utf8').split('\n')[0]!.trim();
  if (shortName(line).toLowerCase() !== expected.toLowerCase()) throw new FatalError(`hostname mismatch: expecting ${expected}`, EXIT.failed);
}

/**
 * What `t6-hpr -h|-p|-r` does without -f (and `t6-telinit 0|6` after the runlevel script):
 * check that the shutdown daemon listens (exit 100 if not), write the wtmp record unless
 * `wtmp` is 'no', warn logged-in users, then ask for the shutdown now (not with 'only').
 */
export function requestShutdownNow(what: 'h' | 'p' | 'r', opts: { fifo: string | undefined; wtmp: 'no' | 'yes' | 'only'; wall: boolean }, io: CommandIo): void {
  const paths = shutdownPaths(opts.fifo);
  probeShutdownd(paths.fifo, EXIT.usage);
  if (opts.wtmp !== 'no') {
    try {
      appendWtmp(encodeRunLevelRecord(what === 'r' ? 'reboot' : 'shutdown', Date.now()), paths.wtmp);
    } catch (err) {
      io.err(`${io.prog}: warning: unable to append to ${paths.wtmp}: ${strerror(err)}\n`);
    }
  }
  if (opts.wall) wall(WALL_NOW, { utmpPath: paths.utmp });
  if (opts.wtmp !== 'only') sendToShutdownd(paths.fifo, encodeShutdownRequest(what, 0, 0));
}
