/**
 * t6-rc-compile: compiles s6-rc source directories into a t6 compiled database
 * (s6-rc-compile). Every problem in the sources is printed, one line each:
 * `t6-rc-compile: fatal: FILE: MESSAGE`; then nothing is written.
 * Exit 0 compiled; 1 invalid source; 100 usage; 111 system error (including an existing target).
 */
import { StatusLine, stepProgress } from './_progress.ts';
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { getopt, uintOption } from './_getopt.ts';
import { check } from '../rc/compile.ts';
import { CompileWriteError, FSYNC_PARALLEL, writeCompiled } from '../rc/write-compiled.ts';
import { readSources } from '../rc/source.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-rc-compile [ -v verbosity ] [ -h fdholder_user ] [ -b ] compiled-dir source-dir...';
const HELP = `usage: ${USAGE}
Reads every service definition in the source directories (s6-rc's format), checks them all,
and writes the compiled database to compiled-dir, which must not exist yet.
  -v N   0 quiet, 1 warnings (default), 2 also a summary of what was compiled, 3 also timings
  -h, -b accepted for s6-rc-compile compatibility and ignored (t6-svscan holds the pipes
         and runs the oneshots itself)
Exit: 0 compiled; 1 problems in the sources (each printed as FILE: MESSAGE); 100 usage; 111 system error.
`;

export async function main(args: string[], io: CommandIo): Promise<number> {
  if (args[0] === '--help') { io.out(HELP); return EXIT.ok; }
  // -h user and -b are s6-rc-compile's options for its fd holder and oneshot runner; t6 has
  // both inside t6-svscan, so they are accepted (scripts written for s6 keep working) and ignored.
  const { options, rest } = getopt(args, { flags: 'b', withArg: 'vh', long: { help: 'flag' } });
  let verbosity = 1;
  for (const o of options) {
    if (o.name === 'help') { io.out(HELP); return EXIT.ok; }
    if (o.name === 'v') verbosity = uintOption('v', o.value);
  }
  const [target, ...sources] = rest;
  if (target === undefined || sources.length === 0) throw new UsageError(USAGE);

  // On a terminal, the step under way on a status line (messages come after it is cleared).
  const status = new StatusLine();
  const steps = stepProgress(status, io.prog, ['reading the source directories', 'checking the services', 'writing']);
  const t0 = performance.now();
  steps.step(0);
  const set = readSources(sources);
  const t1 = performance.now();
  steps.step(1, `(${set.services.length})`);
  const result = check(set.services, set.problems, set.warnings);
  const t2 = performance.now();
  steps.done(); // the warnings and problems print on a clean line
  for (const w of result.warnings) if (verbosity >= (w.verbosity ?? 1)) io.err(`${io.prog}: warning: ${oneLine(w.file)}: ${oneLine(w.message)}\n`);
  if (!result.ok) {
    io.err(result.problems.map((p) => `${io.prog}: fatal: ${oneLine(p.file)}: ${oneLine(p.message)}\n`).join(''));
    if (verbosity >= 1) io.err(`${io.prog}: ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'} found; nothing written\n`);
    return EXIT.failed;
  }
  steps.step(2, `${result.db.longruns} servicedirs and the database into ${target}`);
  // The fsyncs run in parallel on libuv's pool (see writeCompiled); size it before its first use.
  process.env.UV_THREADPOOL_SIZE ??= String(FSYNC_PARALLEL);
  try {
    await writeCompiled(target, result.db, result.sources);
  } catch (err) {
    if (err instanceof CompileWriteError) throw new FatalError(err.message, EXIT.system);
    throw err;
  } finally {
    steps.done();
  }
  if (verbosity >= 2) {
    const db = result.db;
    io.err(`${io.prog}: info: compiled ${db.longruns} longruns, ${db.oneshots} oneshots, ${db.services.length - db.longruns - db.oneshots} bundles into ${target}\n`);
  }
  if (verbosity >= 3) {
    const ms = (a: number, b: number): string => (b - a).toFixed(1);
    io.err(`${io.prog}: debug: started at ${t0.toFixed(1)} ms, read ${ms(t0, t1)} ms, checked ${ms(t1, t2)} ms, written ${ms(t2, performance.now())} ms\n`);
  }
  return EXIT.ok;
}

/** Keeps one problem on one line even if a name holds a newline. */
function oneLine(text: string): string {
  return text.replace(/\n/g, '\\n');
}
