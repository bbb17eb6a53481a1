/**
 * pid 1 after stage 1, for the machine's whole life: t6-svscan on /run/service with what
 * s6-linux-init runs as helper daemons built in (linux-init.md §3–§4):
 *
 * - stage 2: the service manager's boot change (`-r`, given by the caller: init/ does not
 *   know t6-rc), then `scripts/rc.init RUNLEVEL ARGS…`, its output in the catch-all log;
 * - the shutdown daemon (shutdownd.ts) on its FIFO, and the signals that ask for a halt,
 *   poweroff or reboot (s6's, or busybox's with -U);
 * - stage 3 (`rc.shutdown`, then the service manager's shutdown change) and stage 4
 *   (finale.ts); in a container, a halt ends pid 1 with the code the container left.
 */
import fs from 'node:fs';
import path from 'node:path';
import { close } from '../sys/fd.ts';
import { spawn } from '../sys/spawn.ts';
import { reboot, RB } from '../sys/system.ts';
import { describeWaitStatus } from '../sys/wait.ts';
import {
  CATCHALL_LOGDIR, CONTAINER_RESULTS, DEFAULT_SCANDIR, RUNLEVELD_SERVICE, SCRIPTS_DIR, SHUTDOWND_SERVICE, STAGE2, STAGE3, STAGE4, TMPFS_DIR, shutdowndFifo,
} from '../s6/initctl.ts';
import type { Scanner, ScannerSignal } from '../supervise/scanner.ts';
import { BUILTIN_SIGNAL_COMMANDS } from '../supervise/scandir-control.ts';
import type { LocalRunner } from '../supervise/scanner-host.ts';
import { serveScandir, type SvscanEnd } from '../supervise/svscan.ts';
import { EventLog } from '../supervise/events.ts';
import { monotonicNowMs } from '../supervise/handover.ts';
import { Shutdownd } from './shutdownd.ts';
import { rebootCommand, runFinale, type FinalAction, type FinaleHost } from './finale.ts';
import type { BootStep, LinuxInitOptions } from './linux-init.ts';
import { monotonicMs } from '../sys/clock.ts';
import { strerror, toError } from '../sys/errors.ts';
import { recordBootInWtmp } from './utmp.ts';
import { EXIT } from '../s6/exit.ts';

/** pid 1's use of the service manager (t6-linux-init -r): messages go to `log`, whole lines; each resolves with an exit code. */
export interface ServiceManager {
  /**
   * At boot, before rc.init: set up and bring `runlevel` up. `timings`: the boot's steps so
   * far, and whether the kernel's log is this machine's (not a container's host), for boot
   * analysis.
   */
  boot(runlevel: string, log: (line: string) => void, local?: LocalRunner, timings?: { stages: readonly BootStep[]; kernel: boolean }): Promise<number>;
  /** At shutdown, after rc.shutdown: bring everything down. */
  shutdown(log: (line: string) => void, local?: LocalRunner): Promise<number>;
}

/** A container /init's say in pid 1 (t6-container, s6-overlay's behaviour). */
export interface ContainerHooks {
  /** The service manager's boot change failed with `code`: true if the container stops (its exit code is then `code`). */
  stopOnStage2Failure(code: number): boolean;
  /** rc.init runs CMD: when it ends, the container halts (rc.init wrote the exit code). */
  haltAfterRcInit: boolean;
  /** A signal pid 1 would act on: true if it went to CMD instead (S6_CMD_RECEIVE_SIGNALS). */
  divert(signal: ScannerSignal): boolean;
}

/** What stage 1 and the caller hand to pid 1. */
export interface Pid1Context {
  runlevel: string;
  stage2Stdin: number;
  kernelArgs: readonly string[];
  /** `t6-linux-init: line` on the console. */
  say(line: string): void;
  /** A raw line on the console. */
  console(line: string): void;
  serviceManager: ServiceManager | undefined;
  /** Stage 1's steps, for boot analysis. */
  steps: readonly BootStep[];
  /** t6-container's hooks (a container's /init); undefined for t6-linux-init. */
  container?: ContainerHooks;
}

/** pid 1 for the machine's life. */
export class Pid1 {
  readonly #o: LinuxInitOptions;
  readonly #ctx: Pid1Context;
  readonly #shutdownd: Shutdownd;
  #scanner: Scanner | undefined;
  /** Stage 2 (the service manager's boot change, rc.init) is under way: no re-exec then. */
  #stage2Running = false;
  /** The tree's event stream: the scanner's records, and the shutdown's stages. */
  readonly #events = new EventLog(monotonicNowMs);
  #end!: (end: SvscanEnd) => void;
  readonly #interrupt = new Promise<SvscanEnd>((resolve) => { this.#end = resolve; });
  /** The boot's steps before stage 2, for boot analysis. */
  readonly #steps: BootStep[];

  constructor(o: LinuxInitOptions, ctx: Pid1Context) {
    this.#o = o;
    this.#ctx = ctx;
    this.#steps = [...ctx.steps];
    this.#shutdownd = new Shutdownd({
      runRcShutdown: () => this.#stage3(),
      report: (level, message) => this.#log(`t6-linux-init: ${level}: ${message}`),
      finale: (action, graceMs) => void this.#stage4(action, graceMs),
    }, o.graceMs);
  }

  /** Runs the supervision tree until pid 1 must end (see serveScandir). */
  serve(): Promise<SvscanEnd> {
    return serveScandir({
      scandir: DEFAULT_SCANDIR, rescanMs: 0, maxServices: this.#o.maxServices ?? 1000, consoleSink: this.#o.consoleSink === true,
      notServices: new Set([SHUTDOWND_SERVICE, RUNLEVELD_SERVICE]),
      signalActions: this.#signalActions(),
      started: (scanner, resumed) => this.#started(scanner, resumed),
      reexecRefusal: () => {
        if (this.#stage2Running) return 'stage 2 is still running';
        if (this.#shutdownd.inProgress) return 'the machine is shutting down';
        if (this.#shutdownd.scheduled) return 'a shutdown is scheduled (cancel it first)';
        return undefined;
      },
      interrupt: this.#interrupt,
      early: (line) => this.#ctx.console(line),
      events: this.#events,
    });
  }

  /** Signals that ask for a shutdown, as s6-linux-init's (or, with -U, busybox's). */
  #signalActions(): Partial<Record<ScannerSignal, () => void>> {
    const o = this.#o;
    const divert = this.#ctx.container?.divert;
    const request = (action: FinalAction) => (): void => {
      if (o.container && action !== 'h') {
        try { fs.writeFileSync(path.join(CONTAINER_RESULTS, 'haltcode'), `${action}\n`); } catch { /* best effort */ }
      }
      this.#shutdownd.request(action, 0);
    };
    const nothing = (): void => {};
    const actions: Partial<Record<ScannerSignal, () => void>> = {
      SIGINT: request('r'), SIGPWR: request('p'),
      SIGUSR1: request(o.busyboxSignals ? 'h' : 'p'), SIGUSR2: request(o.busyboxSignals ? 'p' : 'h'),
      // busybox's reboot applet sends SIGTERM; s6's machine ignores it, a container halts.
      SIGTERM: o.container ? request('h') : o.busyboxSignals ? request('r') : nothing,
      SIGQUIT: nothing, SIGWINCH: nothing,
    };
    if (divert === undefined) return actions;
    // SIGHUP's own action stays the scanner's (rescan), unless CMD takes it.
    actions.SIGHUP = () => this.#scanner?.command(BUILTIN_SIGNAL_COMMANDS.SIGHUP);
    // While CMD runs, these go to it instead (t6-container with S6_CMD_RECEIVE_SIGNALS).
    for (const [signal, act] of Object.entries(actions) as [ScannerSignal, () => void][]) {
      actions[signal] = () => { if (!divert(signal)) act(); };
    }
    return actions;
  }

  /** The first scan is done: the shutdown FIFO listens, and stage 2 starts (not after a re-exec: it ran). */
  #started(scanner: Scanner, resumed: boolean): void {
    this.#scanner = scanner;
    const fifo = shutdowndFifo(DEFAULT_SCANDIR);
    try {
      this.#shutdownd.listen(fifo);
    } catch (err) {
      this.#log(`t6-linux-init: warning: unable to listen on ${fifo}: ${strerror(err)} - shutdown works through signals only`);
    }
    if (resumed) return;
    const stage1End = this.#ctx.steps.at(-1)?.end;
    if (stage1End !== undefined) this.#steps.push({ name: 'scanner start', start: stage1End, end: monotonicMs() });
    // A mark on the kernel clock, for boot analysis (dmesg shows where stage 1 ended).
    if (!this.#o.container) {
      try { fs.writeFileSync('/dev/kmsg', '<6>t6-linux-init: stage 1 done, starting rc.init\n'); } catch { /* no /dev/kmsg */ }
    }
    this.#stage2Running = true;
    void this.#stage2().finally(() => { this.#stage2Running = false; });
  }

  /** The service manager's boot change (-r), then rc.init (optional with -r: pid 1 did the work). */
  async #stage2(): Promise<void> {
    const { runlevel, kernelArgs, stage2Stdin, serviceManager } = this.#ctx;
    const rcInit = this.#script(STAGE2);
    try {
      if (serviceManager !== undefined) {
        const code = await this.#guarded('t6-rc', () => serviceManager.boot(runlevel, (line) => this.#log(line), this.#scanner?.local(), { stages: this.#steps, kernel: !this.#o.container }));
        if (code !== 0 && this.#ctx.container?.stopOnStage2Failure(code) === true) return this.#haltWith(code, `the services could not be brought up (exit ${code})`);
        if (code !== 0) this.#ctx.say(`warning: the service manager could not bring ${runlevel} up (exit ${code}); see ${CATCHALL_LOGDIR}`);
        if (!fs.existsSync(rcInit)) return;
      }
      // A container without a catch-all logger: CMD's stdout is the container's stdout.
      const out = this.#o.noLogger ? (this.#o.container ? 1 : 2) : this.#catchAll();
      const wstat = await this.#runChild(rcInit, [runlevel, ...kernelArgs], out, stage2Stdin, this.#o.noLogger ? 2 : out);
      if (this.#ctx.container?.haltAfterRcInit === true) return this.#shutdownd.request('h', 0);
      if (wstat === undefined) this.#ctx.say(`warning: ${rcInit} does not exist`);
      else if (wstat !== 0) this.#ctx.say(`warning: ${rcInit} ${describeWaitStatus(wstat)}; the services it did not start stay down - log in on the console and see ${CATCHALL_LOGDIR}`);
    } catch (err) {
      this.#ctx.say(`warning: unable to run ${rcInit}: ${strerror(err)}`);
    } finally {
      close(stage2Stdin);
      // Stage 2 has made the root writable, if anything does: the boot goes into wtmp now.
      if (!this.#o.container) {
        try { recordBootInWtmp(Date.now() - monotonicMs()); } catch (err) { this.#ctx.say(`warning: unable to record the boot in wtmp: ${strerror(err)}`); }
      }
    }
  }

  /** The container stops with `code`, for `why` (a stage-2 failure under S6_BEHAVIOUR_IF_STAGE2_FAILS=2). */
  #haltWith(code: number, why: string): void {
    this.#ctx.say(`fatal: ${why} - stopping the container`);
    try { fs.writeFileSync(path.join(CONTAINER_RESULTS, 'exitcode'), `${code}\n`); } catch { /* the halt still comes */ }
    this.#shutdownd.request('h', 0);
  }

  /** rc.shutdown, then the service manager's shutdown change (-r): the wait status shutdownd reports. */
  async #stage3(): Promise<number | undefined> {
    this.#events.publish({ kind: 'shutdown', phase: 'stage 3: rc.shutdown' });
    const script = await this.#runChild(this.#script(STAGE3), [], this.#catchAll());
    const serviceManager = this.#ctx.serviceManager;
    if (serviceManager === undefined) return script;
    this.#events.publish({ kind: 'shutdown', phase: 'stage 3: services down' });
    const code = await this.#guarded('t6-rc', () => serviceManager.shutdown((line) => this.#log(line), this.#scanner?.local()));
    return code === 0 ? script : code << 8;
  }

  /** Stage 4, then the end: reboot(2) on a machine; in a container, pid 1's exit. */
  async #stage4(action: FinalAction, graceMs: number): Promise<void> {
    const { say } = this.#ctx;
    const o = this.#o;
    const name = action === 'h' ? 'halt' : action === 'p' ? 'poweroff' : 'reboot';
    say(`${name}: stage 4`);
    this.#events.publish({ kind: 'shutdown', phase: `stage 4: ${name}` });
    let err: Error | undefined;
    try {
      err = await runFinale(this.#finaleHost(), action, {
        graceMs, container: o.container, syncInContainer: o.syncInContainer,
        tmpfsDir: TMPFS_DIR, finalScript: this.#script(STAGE4),
      });
    } catch (e) {
      // Whatever went wrong on the way, the machine was asked to go down: it still goes.
      say(`warning: stage 4 failed: ${strerror(e)} - going down anyway`);
      if (!o.container) {
        try { reboot(rebootCommand(action)); } catch (e2) { err = toError(e2); }
      }
    }
    if (o.container) {
      if (action === 'h') {
        let code = 0;
        try { code = Number(fs.readFileSync(path.join(CONTAINER_RESULTS, 'exitcode'), 'utf8').trim()) || 0; } catch { /* 0 */ }
        this.#end({ kind: 'exit', code });
        return;
      }
      // In a pid namespace, reboot(2) ends pid 1 (SIGINT: power off or halt, SIGHUP: restart).
      try { reboot(action === 'p' ? RB.POWER_OFF : RB.AUTOBOOT); } catch (e) { say(`unable to ${name}: ${strerror(e)}`); }
      this.#end({ kind: 'exit', code: 0 });
      return;
    }
    // A real machine: reboot(2) failed. pid 1 stays, and says so.
    say(`fatal: unable to ${name}: ${err === undefined ? 'reboot(2) returned' : strerror(err)} - the machine stays up; try ${name} -f`);
  }

  #finaleHost(): FinaleHost {
    return {
      unsuperviseAll: () => this.#scanner?.unsuperviseAll(),
      untilChildless: () => this.#scanner?.reaper.untilChildless() ?? Promise.resolve(),
      flushLogs: async () => { await this.#scanner?.flushLogs(); },
      runScript: (file) => this.#runChild(file, [], 2),
      say: this.#ctx.say,
    };
  }

  /** A line of pid 1's into the catch-all log (the console before the scanner runs). */
  #log(line: string): void {
    if (this.#scanner === undefined) this.#ctx.say(line);
    else this.#scanner.log(line);
  }

  /** The service manager's work: what it throws is logged and becomes exit 111. */
  async #guarded(prog: string, work: () => Promise<number>): Promise<number> {
    try {
      return await work();
    } catch (err) {
      this.#log(`${prog}: fatal: ${strerror(err)}`);
      return EXIT.system;
    }
  }

  #script(name: string): string {
    return path.join(this.#o.basedir, SCRIPTS_DIR, name);
  }

  #catchAll(): number {
    return this.#scanner?.catchAllFd ?? 2;
  }

  /** Runs a script as pid 1's child, output to `out` (errors to `err`); its wait status, or undefined if it does not exist. */
  #runChild(file: string, argv: string[], out: number, stdin: number | 'null' = 'null', err = out): Promise<number | undefined> {
    if (!fs.existsSync(file)) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      try {
        const pid = spawn({ path: file, argv: [file, ...argv], cwd: '/', fds: new Map([[0, stdin], [1, out], [2, err]]), allCloexec: true });
        this.#scanner!.reaper.watch(pid, resolve);
      } catch (err) {
        reject(err);
      }
    });
  }
}
