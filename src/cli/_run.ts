import fs from 'node:fs';
import { strerror } from '../sys/errors.ts';
import { EXIT } from '../s6/exit.ts';
import { VERSION } from '../sys/version.ts';

/**
 * How every t6 command runs: `main(args, io)` returns an exit code; errors of the kind
 * `UsageError` print `prog: usage: …` and exit 100 (s6's convention); anything else
 * uncaught prints `prog: fatal: …` and exits 111.
 */

/** What a command's main gets. */
export interface CommandIo {
  /** The program name for messages (`t6-svc`). */
  prog: string;
  out(text: string): void;
  err(text: string): void;
}

/** A command's entry point. */
export type Main = (args: string[], io: CommandIo) => number | Promise<number>;

/** Thrown for a bad command line; the message is the usage text or the problem. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Thrown to end a command with a given exit code and a `fatal:` message. */
export class FatalError extends Error {
  override name = 'FatalError';
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.system) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** For 1 ms waits; made on first use (a startup snapshot cannot hold a SharedArrayBuffer). */
let pause: Int32Array | undefined;

/**
 * Writes all of `text` to fd with plain write(2). t6 never touches process.stdout/stderr:
 * Node would switch those fds to non-blocking mode, and the open file they share with
 * every service (the console, the catch-all log pipe) would change under the services' feet.
 * If someone else made the fd non-blocking, a full pipe is waited for (1 ms steps, up to 5 s).
 */
export function writeAll(fd: number, text: string): void {
  let buf = Buffer.from(text);
  for (let tries = 0; buf.length > 0 && tries < 5000;) {
    try {
      const n = fs.writeSync(fd, buf);
      buf = buf.subarray(n);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN') return; // closed or broken: nobody is listening, drop it
      tries++;
      Atomics.wait(pause ??= new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

function makeIo(prog: string): CommandIo {
  return {
    prog,
    out: (text) => writeAll(1, text),
    err: (text) => writeAll(2, text),
  };
}

/** Runs `main` as the process: sets the exit code and lets Node exit once output is flushed. */
export function runMain(prog: string, main: Main): void {
  const io = makeIo(prog);
  // `CMD --version` alone, as packaging and bug reports expect; never as pid 1, whose
  // arguments come from the kernel's command line and which must not exit.
  if (process.argv.length === 3 && process.argv[2] === '--version' && process.pid !== 1) {
    io.out(`${prog} ${VERSION}\n`);
    return;
  }
  Promise.resolve()
    .then(() => main(process.argv.slice(2), io))
    .then((code) => { process.exitCode = code; }, (err: unknown) => {
      // By name, not instanceof: a command in two bundles (t6-rc, scripts/build.mjs) throws
      // the second bundle's copies of these classes.
      const name = err instanceof Error ? err.name : undefined;
      if (name === 'UsageError') {
        io.err(`${prog}: usage: ${(err as Error).message}\n`);
        process.exitCode = EXIT.usage;
      } else if (name === 'FatalError') {
        io.err(`${prog}: fatal: ${(err as FatalError).message}\n`);
        process.exitCode = (err as FatalError).exitCode;
      } else {
        io.err(`${prog}: fatal: ${strerror(err)}\n`);
        process.exitCode = EXIT.system;
      }
    });
}

/** `t6 <tool> args…`: runs one tool of the suite, loading only that tool's code. */
export function runMulticall(tools: Record<string, () => Promise<{ main: Main }>>): void {
  const tool = process.argv[2];
  const names = Object.keys(tools).sort();
  if (tool === '--version') { writeAll(1, `t6 ${VERSION}\n`); return; }
  if (tool === undefined || tool === '--help' || tool === '-h' || !(tool in tools)) {
    const text = `usage: t6 <tool> [args…]\ntools: ${names.join(' ')}\nEach tool is also installed as t6-<tool>; 't6 <tool> --help' describes it.\n`;
    if (tool === '--help' || tool === '-h') { writeAll(1, text); return; }
    writeAll(2, tool === undefined ? text : `t6: unknown tool: ${tool}\n${text}`);
    process.exitCode = EXIT.usage;
    return;
  }
  process.argv.splice(2, 1); // so the tool sees its own arguments in process.argv too
  void tools[tool]!().then((mod) => runMain(`t6-${tool}`, mod.main));
}
