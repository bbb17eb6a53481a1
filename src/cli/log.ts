/**
 * t6-log: s6-log as a standalone program (the script on the command line, lines on stdin),
 * plus `t6-log cat` and `t6-log tail` to read logdirs back.
 */
import fs from 'node:fs';
import net from 'node:net';
import { type CommandIo, UsageError, FatalError } from './_run.ts';
import { getopt, uintOption, type OptionSpec } from './_getopt.ts';
import { parseScript, ScriptError, type Script } from '../log/script.ts';
import { Logger, type LoggerHost } from '../log/engine.ts';
import { LogDriver } from '../log/driver.ts';
import { openInput } from '../log/input.ts';
import { LogdirError } from '../log/logdir.ts';
import { mergeByTime, formatHuman, formatJson, type LogLine } from '../log/reader.ts';
import { LogdirCursor } from '../log/cursor.ts';
import { tainNow } from '../s6/tai.ts';
import { Reaper } from '../sys/reaper.ts';
import { umask } from '../sys/system.ts';
import { EXIT } from '../s6/exit.ts';
import { strerror } from '../sys/errors.ts';

const USAGE = 't6-log [ -d notif ] [ -q | -v ] [ -b ] [ -p ] [ -l linelimit ] [ -t lastlinetimeout ] [ -- ] script...';
const HELP = `usage: ${USAGE}
       t6-log cat [ --json ] dir...
       t6-log tail [ -f ] [ -n lines ] [ --json ] dir...
Reads lines on stdin and runs the s6-log script on each (directives as s6-log's):
  selection  +regex -regex f      (POSIX extended regular expressions)
  control    nN sN SN lN rMS EN ^N pPREFIX p ?PROCESSOR ?    t (TAI64N) T (ISO 8601)
  actions    1 (stdout)  2 (alert on stderr)  =statusfile  /logdir or ./logdir
Options:
  -d notif  write a newline to fd notif once the logdirs are ready, then close it
  -q / -v   less / more verbose
  -b        wait while output cannot be written (t6-log always does: no unbounded buffer)
  -p        ignore SIGTERM (EOF or SIGHUP end it)
  -l n      cut lines longer than n bytes (default 8192; 0: no limit; at least 48)
  -t ms     on SIGTERM/SIGHUP, wait at most ms for the end of a partial line (default 2000; 0: no limit)
Signals: SIGTERM/SIGHUP end logging after the pending line; SIGALRM rotates every logdir.
At EOF a last line without a newline is logged with one (s6-log 2.11 drops it).
cat prints every line of the logdirs (archives, then current), stamps in local time,
several logdirs merged by time; tail prints the last lines (-n, default 10), -f follows.
--json prints one object per line: dir, file, time (UTC), tai, line.
`;

export async function main(args: string[], io: CommandIo): Promise<number> {
  if (args[0] === '--help' || args[0] === '-h') { io.out(HELP); return EXIT.ok; }
  if (args[0] === 'cat' || args[0] === 'tail') return read(args[0], args.slice(1), io);
  return log(args, io);
}

/** t6-log's command line, parsed. */
interface LogOptions {
  script: Script;
  verbosity: number;
  /** -p: SIGTERM is ignored. */
  protect: boolean;
  lineLimit: number;
  lastLineMs: number;
  notify: number | undefined;
}

function logOptions(args: string[]): LogOptions {
  const { options, rest } = getopt(args, { flags: 'qvbp', withArg: 'ldt' });
  let verbosity = 1;
  let protect = false;
  let lineLimit = 8192;
  let lastLineMs = 2000;
  let notify: number | undefined;
  for (const o of options) {
    if (o.name === 'q') verbosity = Math.max(0, verbosity - 1);
    else if (o.name === 'v') verbosity++;
    else if (o.name === 'p') protect = true;
    else if (o.name === 'l') lineLimit = uintOption('l', o.value);
    else if (o.name === 't') lastLineMs = uintOption('t', o.value);
    else if (o.name === 'd') {
      notify = uintOption('d', o.value);
      if (notify < 3) throw new FatalError('notification fd must be 3 or more', EXIT.usage);
      try { fs.fstatSync(notify); } catch { throw new FatalError('invalid notification fd', EXIT.usage); }
    }
  }
  if (rest.length === 0) throw new UsageError(USAGE);
  let script;
  try { script = parseScript(rest); } catch (err) {
    if (err instanceof ScriptError) throw new FatalError(err.message, EXIT.usage);
    throw err;
  }
  return { script, verbosity, protect, lineLimit, lastLineMs, notify };
}

async function log(args: string[], io: CommandIo): Promise<number> {
  const { script, verbosity, protect, lineLimit, lastLineMs, notify } = logOptions(args);
  const warn = (msg: string): void => { if (verbosity > 0) io.err(`${io.prog}: warning: ${msg}\n`); };
  if (script.ignoredTrailing) warn('ignoring extraneous non-action directives');

  const old = umask(0);
  umask(old);
  const children = new Reaper({ keepUnwatched: true });
  const onChild = (): void => children.reap();
  process.on('SIGCHLD', onChild);
  let logger!: Logger;
  const out = openStdout(script, () => logger, warn);
  const host: LoggerHost = {
    now: tainNow,
    setTimer: (ms, fn) => { const t = setTimeout(fn, ms); return () => clearTimeout(t); },
    waitPid: (pid) => children.waitPid(pid),
    warn,
    mask: 0o666 & ~old,
    stdout: (data) => out.write(data),
    alert: (data) => { try { fs.writeSync(2, data); } catch { /* stderr gone: nobody to tell */ } },
  };
  try {
    logger = Logger.open(script, host, { lineLimit, prog: io.prog });
  } catch (err) {
    process.off('SIGCHLD', onChild);
    if (err instanceof LogdirError) throw new FatalError(err.message, EXIT.system);
    throw err;
  }
  if (notify !== undefined) {
    try { fs.writeSync(notify, '\n'); } catch { /* the reader left */ }
    fs.closeSync(notify);
  }

  // stdin: a pipe is enlarged to 1 MB and read into one reused 1 MB buffer, so one wake-up takes more.
  const input = openInput(0, Buffer.allocUnsafe(1 << 20), { pipeSize: 1 << 20 });
  let finishing = false;
  let ended!: () => void;
  const done = new Promise<void>((resolve) => { ended = resolve; });
  // SIGTERM/SIGHUP: stop once the pending partial line (if any) is complete, or after
  // -t ms (0: wait for it forever), then process it with a newline added (s6-log ≥ 2.12).
  let ending = false;
  let lastLineTimer: NodeJS.Timeout | undefined;
  const driver = new LogDriver(input, { fed: () => { if (ending && !logger.hasPartial) finish(); }, ended: () => finish() });
  const finish = (): void => {
    if (finishing) return;
    finishing = true;
    void driver.end().then(ended);
  };
  const stop = (): void => {
    if (ending) return;
    ending = true;
    if (!logger.hasPartial) { finish(); return; }
    if (lastLineMs !== 0) lastLineTimer = setTimeout(finish, lastLineMs);
  };
  const onTerm = (): void => { if (!protect) stop(); };
  const onAlrm = (): void => logger.rotate();
  process.on('SIGTERM', onTerm); // with -p the listener ignores it (and keeps Node from dying of it)
  process.on('SIGHUP', stop);
  process.on('SIGALRM', onAlrm);
  // Nothing else keeps Node running while input waits for a processor (a child is no
  // handle of the event loop): without this, t6-log would end in the middle of a rotation.
  const keepAlive = setInterval(() => {}, 2 ** 31 - 1);
  driver.attach(logger);
  await done;
  clearInterval(keepAlive);
  clearTimeout(lastLineTimer);
  process.off('SIGCHLD', onChild);
  process.off('SIGTERM', onTerm);
  process.off('SIGHUP', stop);
  process.off('SIGALRM', onAlrm);
  await out.end();
  // Stopped by a signal while a terminal read waits in the thread pool: nothing else would
  // end the process (all output is written and every logdir finalised by now).
  if (driver.pending) process.exit(EXIT.ok);
  return EXIT.ok;
}

/** Where `1` actions write: t6-log's stdout. */
interface Stdout {
  /** False: full (the engine is told when it drains). */
  write(data: Buffer): boolean;
  /** Resolves once everything is written. */
  end(): Promise<void>;
}

/**
 * stdout for the engine: a pipe or socket is written through libuv (backpressure);
 * anything else synchronously. A write error closes the stream, as in s6-log.
 */
function openStdout(script: Script, logger: () => Logger, warn: (msg: string) => void): Stdout {
  let out: net.Socket | undefined;
  let outFailed = false;
  const failed = (): void => { outFailed = true; logger().stdoutClosed(); warn('unable to write to stdout, closing the stream'); };
  if (script.elements.some((el) => el.actions.some((a) => a.kind === 'stdout'))) {
    const st = fs.fstatSync(1);
    if (st.isFIFO() || st.isSocket()) {
      out = new net.Socket({ fd: 1, readable: false, writable: true });
      out.on('drain', () => logger().stdoutDrained());
      out.on('error', failed);
    }
  }
  return {
    write(data) {
      if (outFailed) return true;
      if (out !== undefined) return out.write(data);
      try { fs.writeSync(1, data); } catch { failed(); }
      return true;
    },
    end: () => (out === undefined ? Promise.resolve() : new Promise<void>((r) => out.end(r))),
  };
}

async function read(cmd: 'cat' | 'tail', args: string[], io: CommandIo): Promise<number> {
  const spec: OptionSpec = cmd === 'cat'
    ? { long: { json: 'flag' as const } }
    : { flags: 'f', withArg: 'n', long: { json: 'flag' as const, follow: 'flag' as const, lines: 'arg' as const } };
  const { options, rest } = getopt(args, spec);
  let json = false;
  let follow = false;
  let count = 10;
  for (const o of options) {
    if (o.name === 'json') json = true;
    else if (o.name === 'f' || o.name === 'follow') follow = true;
    else if (o.name === 'n' || o.name === 'lines') count = uintOption(o.name, o.value);
  }
  if (rest.length === 0) throw new UsageError(`t6-log ${cmd === 'cat' ? 'cat [ --json ]' : 'tail [ -f ] [ -n lines ] [ --json ]'} dir...`);
  const withDir = rest.length > 1;
  const show = (line: LogLine): string => (json ? formatJson(line) : formatHuman(line, withDir));
  // With -f, a last line without its newline waits to be whole; cat and tail show it as it is.
  const cursors = rest.map((dir) => new LogdirCursor(dir));
  const streams: LogLine[][] = [];
  for (const cursor of cursors) {
    try { streams.push(cursor.read(!follow)); } catch (err) {
      throw new FatalError(`unable to read ${cursor.dir}: ${strerror(err)}`);
    }
  }
  let lines = mergeByTime(streams);
  if (cmd === 'tail') lines = lines.slice(Math.max(0, lines.length - count));
  let text = '';
  for (const line of lines) {
    text += show(line);
    if (text.length > 65536) { io.out(text); text = ''; }
  }
  io.out(text);
  if (follow) await followDirs(cursors, (line) => io.out(show(line)));
  for (const cursor of cursors) cursor.close();
  return EXIT.ok;
}

/** Follows each logdir across rotations from where it was read (fs.watch on the directory; no polling); SIGINT/SIGTERM end it. */
function followDirs(cursors: LogdirCursor[], print: (line: LogLine) => void): Promise<void> {
  const check = (cursor: LogdirCursor): void => { for (const line of cursor.read()) print(line); };
  return new Promise<void>((resolve) => {
    const watchers = cursors.map((cursor) => fs.watch(cursor.dir, () => check(cursor)));
    const stop = (): void => { for (const w of watchers) w.close(); resolve(); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // What was written between the first read and the watch.
    for (const cursor of cursors) check(cursor);
  });
}
