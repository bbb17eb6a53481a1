/**
 * The Scanner with a fake host: no process starts, supervisors are fakes that end when told,
 * the clock and timers are simulated; the scan directory is real (a temp dir), so each rule
 * of s6-spec/svscan.md — one supervisor per service directory, restarts a second apart, the
 * -c limit, prune, terminate, the control lock — is checked in milliseconds.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Scanner, SCAN_RETRY_MS, SUPERVISOR_RETRY_MS, type ScannerExit } from '../../src/supervise/scanner.ts';
import { CONTROL_RETRY_MS } from '../../src/supervise/scandir-control.ts';
import { systemScannerFiles, type ScannerFiles, type ScannerHost } from '../../src/supervise/scanner-host.ts';
import type { SupervisorSnapshot } from '../../src/supervise/handover.ts';
import { Reaper } from '../../src/sys/reaper.ts';
import { FsSupervisorFiles } from '../../src/supervise/servicefiles.ts';
import { SupervisorSetupError, type Supervisor, type SupervisorHost, type SupervisorStdio } from '../../src/supervise/supervisor.ts';
import { tainFromUnixMs } from '../../src/s6/tai.ts';
import { pipe as sysPipe, close as sysClose } from '../../src/sys/fd.ts';
import { makeService, tmpdir } from '../lib/harness.ts';

/** A supervisor that does nothing until told: it records requests and ends when the test says. */
class FakeSupervisor {
  state: 'up' | 'down' | 'gone' = 'up';
  requests: string[] = [];
  commands = '';
  stdio: SupervisorStdio;
  readonly status = { stamp: tainFromUnixMs(0), readyStamp: tainFromUnixMs(0), pid: 1, wstat: 0, paused: false, finishing: false, wantUp: true, ready: true };
  readonly name: string;
  dir: string;
  /** The directories moveTo was given, in order. */
  moves: string[] = [];
  readonly host: SupervisorHost;
  constructor(name: string, dir: string, host: SupervisorHost, stdio: SupervisorStdio) {
    this.name = name;
    this.dir = dir;
    this.host = host;
    this.stdio = stdio;
  }
  request(kind: string): void { this.requests.push(kind); }
  command(bytes: string): void { this.commands += bytes; }
  setStdio(stdio: SupervisorStdio): void { this.stdio = stdio; }
  moveTo(dir: string): void { this.dir = dir; this.moves.push(dir); }
  takeWaitingControl(): void { this.requests.push('take waiting control'); }
  /** The supervisor ends (s6-supervise exits). */
  end(): void {
    this.state = 'gone';
    this.host.exited(this as unknown as Supervisor);
  }
}

/** A fake world: time moves when told; supervisors and spawns are recorded; files are real unless overridden. */
class FakeScannerHost implements ScannerHost {
  mono = 10_000;
  timers: { at: number; fn: () => void; live: boolean }[] = [];
  supervisors: FakeSupervisor[] = [];
  spawned: { path: string; argv: readonly string[] }[] = [];
  failOpen: string | undefined;
  readonly reaper = new Reaper();
  readonly supervisorFiles = new FsSupervisorFiles();
  readonly files: ScannerFiles;
  readonly now = () => tainFromUnixMs(1_700_000_000_000 + this.mono);
  constructor(files: Partial<ScannerFiles> = {}) {
    this.files = { ...systemScannerFiles, reserveFds: () => {}, ...files };
  }
  monotonicMs(): number { return this.mono; }
  setTimer(ms: number, fn: () => void) {
    const t = { at: this.mono + ms, fn, live: true };
    this.timers.push(t);
    return { cancel: () => { t.live = false; } };
  }
  spawn(opts: { path: string; argv: readonly string[] }): number {
    if (!fs.existsSync(opts.path)) throw Object.assign(new Error(`${opts.path}: ENOENT`), { code: 'ENOENT' });
    this.spawned.push({ path: opts.path, argv: opts.argv });
    return 4242;
  }
  spawnAsync(): Promise<number> { return Promise.reject(new Error('no oneshots here')); }
  kill(): void {}
  openSupervisor(name: string, dir: string, host: SupervisorHost, stdio: SupervisorStdio): Supervisor {
    if (this.failOpen !== undefined) throw new SupervisorSetupError(this.failOpen);
    const sup = new FakeSupervisor(name, dir, host, stdio);
    this.supervisors.push(sup);
    return sup as unknown as Supervisor;
  }
  resumeSupervisor(snap: SupervisorSnapshot, host: SupervisorHost, stdio: SupervisorStdio): Supervisor {
    const sup = new FakeSupervisor(snap.name, snap.dir, host, stdio);
    this.supervisors.push(sup);
    return sup as unknown as Supervisor;
  }
  watch(): boolean { return true; }
  listenRunner() { return { close: () => {} }; }
  /** Moves the clock forward, firing due timers in order. */
  advance(ms: number): void {
    const end = this.mono + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      due.live = false;
      this.mono = Math.max(this.mono, due.at);
      due.fn();
    }
    this.mono = end;
  }
  live(name: string): FakeSupervisor[] { return this.supervisors.filter((s) => s.name === name && s.state !== 'gone'); }
  one(name: string): FakeSupervisor {
    const live = this.live(name);
    assert.equal(live.length, 1, `one live supervisor for ${name}, got ${live.length}`);
    return live[0]!;
  }
}

const scanners: Scanner[] = [];
afterEach(() => {
  // Abort ends at once, closing the control FIFO (the test process can then exit), then let go of the lock.
  for (const s of scanners.splice(0)) { s.command('b'); s.releaseLock(); }
});

function start(opts: { host?: FakeScannerHost; maxServices?: number; rescanMs?: number; notServices?: string[]; signalActions?: Record<string, () => void> } = {}) {
  const scandir = tmpdir();
  const host = opts.host ?? new FakeScannerHost();
  const reports: string[] = [];
  const open = () => {
    const scanner = Scanner.open({
      scandir, host, report: (level, message) => reports.push(`${level}: ${message}`),
      ...(opts.maxServices === undefined ? {} : { maxServices: opts.maxServices }),
      ...(opts.rescanMs === undefined ? {} : { rescanMs: opts.rescanMs }),
      ...(opts.notServices === undefined ? {} : { notServices: new Set(opts.notServices) }),
      ...(opts.signalActions === undefined ? {} : { signalActions: opts.signalActions }),
    });
    scanners.push(scanner);
    return scanner;
  };
  return { scandir, host, reports, open };
}

const SLEEP = '#!/bin/sh\nexec sleep 3600\n';

test('a scan gives every service directory one supervisor; dot-names, plain files and notServices are not services', () => {
  const { scandir, host, open } = start({ notServices: ['fifo-holder'] });
  makeService(path.join(scandir, 'a'), { run: SLEEP });
  makeService(path.join(scandir, '.hidden'), { run: SLEEP });
  makeService(path.join(scandir, 'fifo-holder'), { run: SLEEP });
  fs.writeFileSync(path.join(scandir, 'file'), '');
  fs.symlinkSync(makeService(path.join(tmpdir(), 'b-real'), { run: SLEEP }), path.join(scandir, 'b'));
  const scanner = open();
  assert.deepEqual(host.supervisors.map((s) => s.name).sort(), ['a', 'b']);
  // A link's supervisor works in the real directory, as s6-supervise chdir()s into it.
  assert.equal(host.one('b').dir, fs.realpathSync(path.join(scandir, 'b')));
  scanner.scan();
  assert.equal(host.supervisors.length, 2, 'a rescan starts nothing twice');
});

test('a service directory renamed in the scan dir keeps its supervisor, which follows it there (and its log/ supervisor too)', () => {
  const { scandir, host, open } = start();
  makeService(path.join(scandir, 'a'), { run: SLEEP, log: { run: '#!/bin/sh\nexec cat\n' } });
  const scanner = open();
  const [sup, log] = [host.one('a'), host.one('a/log')];
  scanner.scan();
  assert.deepEqual([sup.moves, log.moves], [[], []], 'nothing moved: nothing to follow');
  fs.renameSync(path.join(scandir, 'a'), path.join(scandir, 'b'));
  scanner.scan();
  assert.equal(host.supervisors.length, 2, 'the same supervisors: the same directory');
  assert.deepEqual(sup.moves, [fs.realpathSync(path.join(scandir, 'b'))]);
  assert.deepEqual(log.moves, [fs.realpathSync(path.join(scandir, 'b', 'log'))]);
  // Started again later (it ended), the supervisor is started where the directory is now.
  host.advance(5000);
  sup.end();
  assert.equal(host.one('a').dir, fs.realpathSync(path.join(scandir, 'b')));
});

test('a servicedir moved to another live directory, its link going through a re-pointed LIVE symlink, keeps its supervisor there', () => {
  const { scandir, host, open } = start();
  const base = tmpdir();
  const [old, next] = ['live:1', 'live:2'].map((d) => path.join(base, d, 'servicedirs'));
  makeService(path.join(old!, 'svc'), { run: SLEEP });
  fs.mkdirSync(next!, { recursive: true });
  fs.symlinkSync('live:1', path.join(base, 'live'));
  fs.symlinkSync(path.join(base, 'live', 'servicedirs', 'svc'), path.join(scandir, 'svc'));
  const scanner = open();
  const sup = host.one('svc');
  assert.equal(sup.dir, fs.realpathSync(path.join(old!, 'svc')));
  // t6-rc-update's way: rename the servicedir into the new live dir, leave a link where it
  // was (the old path still works until the scan), switch LIVE, scan.
  fs.renameSync(path.join(old!, 'svc'), path.join(next!, 'svc'));
  fs.symlinkSync(path.join(next!, 'svc'), path.join(old!, 'svc'));
  fs.symlinkSync('live:2', path.join(base, 'live.new'));
  fs.renameSync(path.join(base, 'live.new'), path.join(base, 'live'));
  scanner.scan();
  assert.equal(host.one('svc'), sup);
  assert.deepEqual(sup.moves, [fs.realpathSync(path.join(next!, 'svc'))], 'where the directory really is, not the link');
  fs.unlinkSync(path.join(old!, 'svc'));
  scanner.scan();
  assert.equal(sup.moves.length, 1, 'once');
});

test('a moved directory that cannot be followed is reported; its supervisor stays where it was and the scan is retried', () => {
  let fail = false;
  const host = new FakeScannerHost({
    realServicedir: (scandir, name, cache) => {
      if (fail) throw Object.assign(new Error('EIO'), { code: 'EIO' });
      return systemScannerFiles.realServicedir(scandir, name, cache);
    },
  });
  const { scandir, reports, open } = start({ host });
  makeService(path.join(scandir, 'a'), { run: SLEEP });
  const scanner = open();
  const sup = host.one('a');
  const before = sup.dir;
  fs.renameSync(path.join(scandir, 'a'), path.join(scandir, 'b'));
  fail = true;
  scanner.scan();
  assert.equal(host.one('a'), sup, 'the supervisor goes on');
  assert.equal(sup.dir, before);
  assert.ok(reports.some((r) => r.startsWith(`warning: unable to follow ${before} to ${path.join(scandir, 'b')}: `) && r.endsWith('supervising it where it was; retrying at the next scan')), reports.join('\n'));
  fail = false;
  host.advance(SCAN_RETRY_MS);
  assert.deepEqual(sup.moves, [fs.realpathSync(path.join(scandir, 'b'))], 'followed by the retry');
});

test('a service with log/run gets a logger supervisor, joined by one pipe the scanner holds', () => {
  const { scandir, host, open } = start();
  makeService(path.join(scandir, 'svc'), { run: SLEEP, log: { run: '#!/bin/sh\nexec cat\n' } });
  open();
  const svc = host.one('svc');
  const log = host.one('svc/log');
  assert.equal(typeof svc.stdio.stdout, 'number');
  assert.equal(typeof log.stdio.stdin, 'number');
  const st = (fd: number) => fs.fstatSync(fd);
  assert.equal(st(svc.stdio.stdout as number).ino, st(log.stdio.stdin as number).ino, 'the same pipe');
});

test('a supervisor that ends while its service is active is started again, never twice within a second', () => {
  const { scandir, host, open } = start();
  makeService(path.join(scandir, 'svc'), { run: SLEEP });
  open();
  host.advance(5000);
  host.one('svc').end();
  assert.equal(host.live('svc').length, 1, 'restarted at once: the previous start was 5 s ago');
  host.advance(200);
  host.one('svc').end();
  assert.equal(host.live('svc').length, 0, 'not yet: the previous start was 200 ms ago');
  host.advance(799);
  assert.equal(host.live('svc').length, 0);
  host.advance(1);
  assert.equal(host.live('svc').length, 1, 'one second after the previous start');
});

test('a service directory that cannot be supervised is named in a warning and tried again 10 seconds later', () => {
  const { scandir, host, reports, open } = start();
  makeService(path.join(scandir, 'svc'), { run: SLEEP });
  host.failOpen = 'unable to create /x/supervise: Read-only file system';
  open();
  assert.equal(host.supervisors.length, 0);
  assert.ok(reports.some((r) => r.startsWith(`warning: unable to supervise ${path.join(scandir, 'svc')}: unable to create /x/supervise`) && r.endsWith(`retrying in ${SUPERVISOR_RETRY_MS / 1000} seconds`)), reports.join('\n'));
  host.failOpen = undefined;
  host.advance(SUPERVISOR_RETRY_MS - 1);
  assert.equal(host.supervisors.length, 0);
  host.advance(1);
  assert.equal(host.live('svc').length, 1);
});

test('idle: with every service supervised no timer is armed; a restart or a scan retry arms one only until it is due', () => {
  const { scandir, host, open } = start();
  const armed = (): number => host.timers.filter((t) => t.live).length;
  for (const name of ['a', 'b']) makeService(path.join(scandir, name), { run: SLEEP, log: { run: SLEEP } });
  const scanner = open();
  assert.equal(armed(), 0, 'after the first scan');
  host.advance(200);
  host.one('a').end();
  assert.equal(armed(), 1, 'a restart a second after the previous start');
  host.advance(800);
  assert.equal(host.live('a').length, 1);
  fs.symlinkSync(path.join(scandir, 'nowhere'), path.join(scandir, 'dangling'));
  scanner.command('a');
  assert.equal(armed(), 1, 'a scan retry');
  fs.unlinkSync(path.join(scandir, 'dangling'));
  host.advance(SCAN_RETRY_MS);
  assert.equal(armed(), 0, 'after the restart and the retry');
});

test('-c: past the limit, the services left out are named in one warning per scan', () => {
  const { scandir, host, reports, open } = start({ maxServices: 4 });
  for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) makeService(path.join(scandir, name), { run: SLEEP });
  open();
  assert.equal(host.supervisors.length, 4);
  const warnings = reports.filter((r) => r.includes('too many services'));
  assert.equal(warnings.length, 1, reports.join('\n'));
  assert.match(warnings[0]!, /not supervising 2 service directories .*the limit is 4.*: [a-f], [a-f]$/);
});

test('a vanished directory turns inactive; a prune (h) stops its supervisor for good and forgets it', () => {
  const { scandir, host, open } = start();
  makeService(path.join(scandir, 'gone'), { run: SLEEP });
  makeService(path.join(scandir, 'stays'), { run: SLEEP });
  const scanner = open();
  fs.rmSync(path.join(scandir, 'gone'), { recursive: true });
  scanner.command('h');
  const gone = host.one('gone');
  assert.deepEqual(gone.requests, ['term']);
  assert.deepEqual(host.one('stays').requests, []);
  gone.end();
  host.advance(10_000);
  assert.equal(host.live('gone').length, 0, 'not restarted');
  // Forgotten: the same name, back as a new directory, is a new service.
  makeService(path.join(scandir, 'gone'), { run: SLEEP });
  scanner.scan();
  assert.equal(host.live('gone').length, 1);
});

test('an entry that cannot be statted (a dangling link) is named once and the scan is retried', () => {
  const { scandir, host, reports, open } = start();
  fs.symlinkSync(path.join(scandir, 'nowhere'), path.join(scandir, 'dangling'));
  open();
  assert.ok(reports.some((r) => r.includes('unable to stat 1 entry') && r.includes('dangling (dangling symbolic link)')), reports.join('\n'));
  makeService(path.join(scandir, 'nowhere'), { run: SLEEP });
  host.advance(SCAN_RETRY_MS);
  assert.equal(host.live('dangling').length, 1, 'the retry scan found it');
});

test('terminate: every service gets term and every logger hup; done resolves once the last supervisor has ended, with finish', async () => {
  const { scandir, host, open } = start();
  makeService(path.join(scandir, 'svc'), { run: SLEEP, log: { run: SLEEP } });
  makeService(path.join(scandir, 'other'), { run: SLEEP });
  const scanner = open();
  fs.writeFileSync(path.join(scandir, '.s6-svscan', 'finish'), '#!/bin/sh\n', { mode: 0o755 });
  let exit: ScannerExit | undefined;
  void scanner.done.then((e) => { exit = e; });
  scanner.command('t');
  assert.deepEqual(host.one('svc').requests, ['term']);
  assert.deepEqual(host.one('svc/log').requests, ['hup']);
  host.one('svc').end();
  host.one('other').end();
  await Promise.resolve();
  assert.equal(exit, undefined, 'the logger still runs');
  host.one('svc/log').end();
  const done = await scanner.done;
  assert.deepEqual(done, { reason: 'terminate', finish: path.join(scandir, '.s6-svscan', 'finish') });
  assert.equal(host.supervisors.filter((s) => s.state !== 'gone').length, 0);
});

test('abort (b) ends at once and leaves the services running', async () => {
  const { scandir, host, open } = start();
  makeService(path.join(scandir, 'svc'), { run: SLEEP });
  const scanner = open();
  scanner.command('b');
  assert.deepEqual(await scanner.done, { reason: 'abort', finish: undefined });
  assert.deepEqual(host.one('svc').requests, []);
});

test('unknown control bytes are counted and named in one warning; known ones still act', () => {
  const { scandir, host, reports, open } = start();
  const scanner = open();
  makeService(path.join(scandir, 'late'), { run: SLEEP });
  scanner.command('X?a!');
  assert.equal(host.live('late').length, 1, 'a rescanned');
  assert.deepEqual(reports.filter((r) => r.includes('unknown control')), [`warning: ${path.join(scandir, '.s6-svscan/control')}: ignored 3 unknown control bytes (first: "X")`]);
});

test('signals: a .s6-svscan/SIG<NAME> script wins over the built-in action and the configured one', () => {
  let configured = 0;
  const { scandir, host, open } = start({ signalActions: { SIGUSR1: () => { configured++; } } });
  const scanner = open();
  scanner.signal('SIGUSR1');
  assert.equal(configured, 1);
  fs.writeFileSync(path.join(scandir, '.s6-svscan', 'SIGUSR1'), '#!/bin/sh\n', { mode: 0o755 });
  scanner.signal('SIGUSR1');
  assert.equal(configured, 1);
  assert.deepEqual(host.spawned.map((s) => s.argv), [['.s6-svscan/SIGUSR1']]);
  // SIGHUP's built-in action is h: rescan and prune.
  makeService(path.join(scandir, 'new'), { run: SLEEP });
  scanner.signal('SIGHUP');
  assert.equal(host.live('new').length, 1);
});

test('-t: the scan directory is rescanned every so often', () => {
  const { scandir, host, open } = start({ rescanMs: 5000 });
  open();
  makeService(path.join(scandir, 'late'), { run: SLEEP });
  host.advance(4999);
  assert.equal(host.live('late').length, 0);
  host.advance(1);
  assert.equal(host.live('late').length, 1);
  makeService(path.join(scandir, 'later'), { run: SLEEP });
  host.advance(5000);
  assert.equal(host.live('later').length, 1, 'and again');
});

test('producer-for: one pipe from the producer to its consumer, held by the scanner', () => {
  const { scandir, host, open } = start();
  makeService(path.join(scandir, 'producer'), { run: SLEEP, files: { 'producer-for': 'consumer\n' } });
  makeService(path.join(scandir, 'consumer'), { run: SLEEP });
  open();
  const out = host.one('producer').stdio.stdout as number;
  const input = host.one('consumer').stdio.stdin as number;
  assert.equal(fs.fstatSync(out).ino, fs.fstatSync(input).ino);
});

// ---- defects found while reading (issue 9) --------------------------------------------------

test('a lock that cannot even be tried is not held: the control FIFO waits until the lock is', () => {
  let failures = 1;
  const opened: number[] = [];
  const closed: number[] = [];
  const host = new FakeScannerHost({
    openLockFile: (p) => { const fd = systemScannerFiles.openLockFile(p); opened.push(fd); return fd; },
    tryLock: (fd, p) => {
      if (failures-- > 0) throw Object.assign(new Error(`fcntl ${p}: ENOLCK`), { code: 'ENOLCK' });
      return systemScannerFiles.tryLock(fd, p);
    },
    close: (fd) => { closed.push(fd); systemScannerFiles.close(fd); },
  });
  const { scandir, reports, open } = start({ host });
  makeService(path.join(scandir, 'svc'), { run: SLEEP });
  open();
  assert.equal(host.live('svc').length, 1, 'services are supervised meanwhile');
  assert.ok(reports.some((r) => r.includes(`unable to lock ${path.join(scandir, '.s6-svscan/lock')}`)), reports.join('\n'));
  assert.deepEqual(closed, opened, 'the fd of the lock not taken is closed');
  assert.equal(fs.existsSync(path.join(scandir, '.s6-svscan/control')), false, 'no control FIFO without the lock');
  host.advance(CONTROL_RETRY_MS);
  assert.equal(opened.length, 2, 'the retry opens and locks again');
  assert.ok(fs.statSync(path.join(scandir, '.s6-svscan/control')).isFIFO());
  assert.ok(reports.some((r) => r === `info: ${path.join(scandir, '.s6-svscan/control')} is listening`));
});

test('a logger pipe that could not be set up is closed, not leaked, and the next scan makes one', () => {
  const made: number[][] = [];
  const closed = new Set<number>();
  let bogus = 1;
  const host = new FakeScannerHost({
    // The first pipe has fds nobody can use: the in-process logger's set-up fails on them.
    pipe: () => {
      const fds: [number, number] = bogus-- > 0 ? [1_000_000, 1_000_001] : sysPipe();
      made.push(fds);
      return fds;
    },
    close: (fd) => { closed.add(fd); if (fd < 1_000_000) sysClose(fd); },
  });
  const { scandir, reports, open } = start({ host });
  makeService(path.join(scandir, 'svc'), { run: SLEEP, log: { files: { 't6-log': `${path.join(tmpdir(), 'logdir')}\n` } } });
  open();
  assert.ok(reports.some((r) => r.startsWith(`warning: unable to create the logger pipe for ${path.join(scandir, 'svc')}`)), reports.join('\n'));
  assert.equal(host.live('svc').length, 0, 'the service waits for its logger');
  assert.ok(closed.has(1_000_000) && closed.has(1_000_001), 'the failed pipe is closed');
  host.advance(SCAN_RETRY_MS);
  assert.equal(made.length, 2);
  assert.equal(host.live('svc').length, 1, 'the retry scan set the logger up');
  assert.ok(!closed.has(made[1]![0]!) && !closed.has(made[1]![1]!), 'the pipe in use stays open');
});
