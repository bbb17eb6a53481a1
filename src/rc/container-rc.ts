/**
 * t6-container's service manager (issue 15), run inside pid 1 as t6-linux-init -r runs
 * t6-rc: at boot, S6_STAGE2_HOOK, then the image's definitions compiled (container-sources.ts)
 * into a fresh database, t6-rc-init, and `top` brought up within
 * S6_CMD_WAIT_FOR_SERVICES_MAXTIME; at shutdown, everything down in reverse order. Messages
 * are whole lines for pid 1's log.
 */
import fs from 'node:fs';
import { check } from './compile.ts';
import { containerSources, readContainerSources, type OverlayDirs } from './container-sources.ts';
import { runOneshot, runnerSocket } from './oneshot.ts';
import { pid1ServiceManager } from './run.ts';
import type { LocalRunner } from '../supervise/scanner-host.ts';
import { CompileWriteError, writeCompiled } from './write-compiled.ts';
import { strerror } from '../sys/errors.ts';
import { EXIT } from '../s6/exit.ts';

/** Where things are and how verbose to be. */
export interface ContainerRcOptions {
  where: OverlayDirs;
  /** Where t6 writes the definitions an image lacks (under /run). */
  ownSources: string;
  /** The t6-container command the system oneshots run (absolute). */
  t6Container: string;
  /** s6-overlay's own system definitions in the image (default: its usual place). */
  imageSystem?: string;
  /** Where the legacy layouts are (/etc, or the profile's): steps with nothing there run no process. */
  legacyDir?: string;
  compiled: string;
  live: string;
  scandir: string;
  /** S6_CMD_WAIT_FOR_SERVICES_MAXTIME: the bound on bringing `top` up; 0 none. */
  bootTimeoutMs: number;
  /** S6_VERBOSITY: t6-rc's (the compiler's is one less). */
  verbosity: number;
  /** S6_STAGE2_HOOK's words, run before compiling (never through a shell). */
  hook?: readonly string[];
  /** S6_BEHAVIOUR_IF_STAGE2_FAILS ≥ 2: a failing hook stops the boot (its code is the container's). */
  stopOnHookFailure: boolean;
}

/** The service manager pid 1 runs in a container (pid1.ts's ServiceManager). */
export function containerServiceManager(o: ContainerRcOptions): ReturnType<typeof pid1ServiceManager> {
  const inner = pid1ServiceManager({ compiled: o.compiled, live: o.live, scandir: o.scandir, bootTimeoutMs: o.bootTimeoutMs, verbosity: o.verbosity });
  return {
    boot: async (runlevel, log, local, timings) => {
      if (o.hook !== undefined) {
        const code = await runHere(o.hook, o.scandir, local);
        if (code !== 0) {
          log(`t6-container: ${o.stopOnHookFailure ? 'fatal' : 'warning'}: S6_STAGE2_HOOK ${o.hook.join(' ')} ${code < 0 ? 'could not be run' : `exited ${code}`}`);
          if (o.stopOnHookFailure) return code < 0 ? EXIT.system : code;
        } else if (o.verbosity >= 2) {
          log(`t6-container: info: S6_STAGE2_HOOK ${o.hook.join(' ')} exited 0`);
        }
      }
      const compiled = await compile(o, log);
      if (compiled !== 0) return compiled;
      return inner.boot(runlevel, log, local, timings);
    },
    // Nothing was compiled (a hook that failed): nothing to bring down.
    shutdown: (log, local) => (fs.existsSync(o.compiled) ? inner.shutdown(log, local) : Promise.resolve(0)),
  };
}

/**
 * Runs `argv` as pid 1's oneshot runner runs a oneshot (pid 1 reaps every process, so the
 * runner is how its own code waits for one): its exit code, 128+N for a signal, -1 if it
 * could not be run.
 */
function runHere(argv: readonly string[], scandir: string, local: LocalRunner | undefined): Promise<number> {
  const req = { argv: [...argv], cwd: '/', env: null, timeoutMs: 0 };
  const code = (wstat: number): number => ((wstat & 0x7f) === 0 ? (wstat >> 8) & 0xff : 128 + (wstat & 0x7f));
  const ask = local?.request;
  if (ask === undefined) return runOneshot(runnerSocket(scandir), req).then((r) => (r.kind === 'exited' ? code(r.wstat) : -1));
  return new Promise((resolve) => {
    ask(JSON.stringify(req), (obj, last) => {
      const m = obj as { wstat?: unknown; error?: unknown };
      if (typeof m.wstat === 'number') resolve(code(m.wstat));
      else if (typeof m.error === 'string' || last) resolve(-1);
    });
  });
}

/** The image's definitions and the system ones into `o.compiled`: 0, or 1 with every problem logged. */
async function compile(o: ContainerRcOptions, log: (line: string) => void): Promise<number> {
  const prog = 't6-rc-compile';
  const verbosity = Math.max(o.verbosity - 1, 0);
  try {
    const sources = containerSources(o.where, o.ownSources, o.t6Container, o.imageSystem, o.legacyDir);
    if (verbosity >= 1) for (const note of sources.notes) log(`${prog}: warning: ${note}`);
    const set = readContainerSources(sources);
    const result = check(set.services, set.problems, set.warnings);
    for (const w of result.warnings) if (verbosity >= (w.verbosity ?? 1)) log(`${prog}: warning: ${w.file}: ${w.message}`);
    if (!result.ok) {
      for (const p of result.problems) log(`${prog}: fatal: ${p.file}: ${p.message}`);
      return EXIT.failed;
    }
    await writeCompiled(o.compiled, result.db, result.sources);
    if (verbosity >= 2) log(`${prog}: info: compiled ${result.db.services.length} services from ${sources.dirs.join(' ')} into ${o.compiled}`);
    return 0;
  } catch (err) {
    log(`${prog}: fatal: ${err instanceof CompileWriteError ? err.message : strerror(err)}`);
    return EXIT.system;
  }
}
