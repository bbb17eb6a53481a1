/**
 * t6-rc-init and t6-rc against t6-svscan as pid 1 of a pid namespace: the article's demo,
 * order from the supervisors' events and the oneshots' side effects, failure paths.
 *
 * To see the order of t6-rc's messages and the services' output exactly, t6-svscan (and so
 * every oneshot and longrun, which write to its stdout) and t6-rc's stderr append to one
 * file: a line written after another is after it in the file.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, EventLog, Tree, WAIT_MS, readStatus, tmpdir, until } from '../lib/harness.ts';
import { type TestService, writeArticleSource, writeDb } from '../lib/rcdb.ts';
import type { ServiceJson } from '../../src/s6/servicejson.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

interface Rig {
  base: string;
  scandir: string;
  live: string;
  compiled: string;
  /** The shared output file. */
  log: string;
  tree: Tree;
}

/** A scandir with t6-svscan writing to `log`, a compiled db of `services`, and t6-rc-init done. */
async function rig(services: TestService[] | ((compiled: string, base: string) => void), env?: Record<string, string>): Promise<Rig> {
  const base = tmpdir('t6-rc-');
  const scandir = path.join(base, 'service');
  const compiled = path.join(base, 'compiled');
  const live = path.join(base, 'live');
  const log = path.join(base, 'out.log');
  fs.mkdirSync(scandir);
  fs.writeFileSync(log, '');
  if (typeof services === 'function') services(compiled, base);
  else writeDb(compiled, services);
  const tree = await Tree.start(scandir, { command: ['sh', '-c', `exec "$0" -d 3 "$1" >> '${log}' 2>&1`, path.join(BIN, 't6-svscan')], ...(env === undefined ? {} : { env }) });
  cleanups.push(async () => { await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  const init = spawnSync(path.join(BIN, 't6-rc-init'), ['-c', compiled, '-l', live, scandir], { encoding: 'utf8' });
  assert.equal(init.status, 0, `t6-rc-init: ${init.stderr}`);
  return { base, scandir, live, compiled, log, tree };
}

/** Runs t6-rc with its stderr appended to the rig's log; returns status and stdout. */
function rc(r: Rig, args: string[]): { status: number | null; stdout: string } {
  const fd = fs.openSync(r.log, 'a');
  try {
    const p = spawnSync(path.join(BIN, 't6-rc'), ['-l', r.live, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', fd] });
    return { status: p.status, stdout: p.stdout };
  } finally {
    fs.closeSync(fd);
  }
}

/** t6-rc run without blocking this process (so event listeners here see events as they come). */
function rcAsync(r: Rig, args: string[]): Promise<number | null> {
  const fd = fs.openSync(r.log, 'a');
  const p = spawn(path.join(BIN, 't6-rc'), ['-l', r.live, ...args], { stdio: ['ignore', 'ignore', fd] });
  fs.closeSync(fd);
  return new Promise((resolve) => p.on('exit', (c) => resolve(c)));
}

/** t6-rc with stderr captured on its own. */
function rcErr(r: Rig, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const p = spawnSync(path.join(BIN, 't6-rc'), ['-l', r.live, ...args], { encoding: 'utf8' });
  return { status: p.status, stdout: p.stdout, stderr: p.stderr };
}

function lines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
}

const sh = (script: string): string => `#!/bin/sh\n${script}\n`;


test("execline oneshots under a t6-svscan with the maker's small PATH: Debian's execline directory comes first in theirs, as its execlineb gives s6-rc's runner", { skip: !fs.existsSync('/usr/lib/execline/bin/if') && 'no Debian execline' }, async () => {
  const r = await rig((compiled, base) => {
    const src = path.join(base, 'source');
    fs.mkdirSync(path.join(src, 'el-oneshot'), { recursive: true });
    fs.writeFileSync(path.join(src, 'el-oneshot/type'), 'oneshot\n');
    // The programs s6 users' oneshots are made of, none of them in /usr/bin or /bin on Debian.
    fs.writeFileSync(path.join(src, 'el-oneshot/up'), 'if { true }\nforeground { echo el-oneshot up }\nfdmove -c 2 1\nimportas -i path PATH\necho el-oneshot PATH=${path}\n');
    const p = spawnSync(path.join(BIN, 't6-rc-compile'), [compiled, src], { encoding: 'utf8' });
    assert.equal(p.status, 0, `t6-rc-compile: ${p.stderr}`);
  }, { PATH: '/usr/bin:/bin' });
  assert.equal(rc(r, ['-u', 'change', 'el-oneshot']).status, 0, fs.readFileSync(r.log, 'utf8'));
  assert.ok(lines(r.log).includes('el-oneshot up'), fs.readFileSync(r.log, 'utf8'));
  assert.ok(lines(r.log).includes('el-oneshot PATH=/usr/lib/execline/bin:/usr/bin:/bin'), fs.readFileSync(r.log, 'utf8'));
});

test('the article demo: t6-rc-compile, rc-init, -v2 -u change default, -v2 -bDa change print the article lines in order', async () => {
  const r = await rig((compiled, base) => {
    // As the article: compile into a versioned directory, point `compiled` at it.
    writeArticleSource(path.join(base, 'source'));
    const p = spawnSync(path.join(BIN, 't6-rc-compile'), [`${compiled}-1`, path.join(base, 'source')], { encoding: 'utf8' });
    assert.equal(p.status, 0, `t6-rc-compile: ${p.stderr}`);
    fs.symlinkSync(`${path.basename(compiled)}-1`, compiled);
  });
  // After t6-rc-init: linked, supervised, down.
  const sd = path.join(r.scandir, 'demo-longrun-1');
  assert.equal(fs.realpathSync(sd), fs.realpathSync(path.join(r.live, 'servicedirs', 'demo-longrun-1')));
  assert.ok(fs.existsSync(path.join(sd, 'down')));
  assert.equal(readStatus(sd)?.pid, 0);
  assert.deepEqual([...fs.readFileSync(path.join(r.live, 'state'))], [0, 0]);

  assert.equal(rc(r, ['-v2', '-u', 'change', 'default']).status, 0);
  await until('the longrun first line', () => lines(r.log).includes('demo-longrun-1 is running'));
  const up = lines(r.log).filter((l) => !l.startsWith('t6-svscan:'));
  // The article, with t6-rc for s6-rc. s6-rc's first two lines (s6rc-oneshot-runner
  // starting / successfully started) have no counterpart: t6's runner is part of t6-svscan.
  // The longrun's first line races with the supervisor's up event (in s6 too), so it is
  // only required to come after "starting".
  const article = [
    't6-rc: info: service demo-oneshot-1: starting',
    'demo-oneshot-1 is up',
    't6-rc: info: service demo-oneshot-1 successfully started',
    't6-rc: info: service demo-longrun-1: starting',
    't6-rc: info: service demo-longrun-1 successfully started',
  ];
  assert.deepEqual(up.filter((l) => l !== 'demo-longrun-1 is running'), article);
  assert.ok(up.indexOf('demo-longrun-1 is running') > up.indexOf('t6-rc: info: service demo-longrun-1: starting'));
  assert.equal(readStatus(sd)?.pid !== 0, true);
  assert.ok(!fs.existsSync(path.join(sd, 'down')));
  assert.equal(rc(r, ['-a', 'list']).stdout, 'demo-longrun-1\ndemo-oneshot-1\n');

  const mark = lines(r.log).length;
  assert.equal(rc(r, ['-v2', '-bDa', 'change']).status, 0);
  const down = lines(r.log).slice(mark).filter((l) => !l.startsWith('t6-svscan:') && l !== 'demo-longrun-1 is running');
  assert.deepEqual(down, [
    't6-rc: info: service demo-longrun-1: stopping',
    't6-rc: info: service demo-longrun-1 successfully stopped',
    't6-rc: info: service demo-oneshot-1: stopping',
    'demo-oneshot-1 is down',
    't6-rc: info: service demo-oneshot-1 successfully stopped',
  ]);
  assert.equal(readStatus(sd)?.pid, 0);
  assert.ok(fs.existsSync(path.join(sd, 'down')));
  assert.equal(rc(r, ['-a', 'list']).stdout, '');
  assert.deepEqual([...fs.readFileSync(path.join(r.live, 'state'))], [0, 0]);
});

test('t6-rc-init without t6-svscan on the scandir: clear error, exit 100', () => {
  const base = tmpdir('t6-rc-');
  cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
  fs.mkdirSync(path.join(base, 'service'));
  writeDb(path.join(base, 'compiled'), [{ name: 'l', type: 'longrun', run: sh('exec sleep 100') }]);
  const p = spawnSync(path.join(BIN, 't6-rc-init'), ['-c', path.join(base, 'compiled'), '-l', path.join(base, 'live'), path.join(base, 'service')], { encoding: 'utf8' });
  assert.equal(p.status, 100);
  assert.match(p.stderr, /^t6-rc-init: fatal: t6-svscan not running on .*service\n$/);
});

/**
 * A service that appends "NAME EVENT" to the shared trace file. A longrun is ready 0.2 s
 * after it starts (so that a dependent started too early would show in the trace), or,
 * given `waitFor`, once those services have started too (so that both must start before
 * either is ready: proof of a parallel start, whatever the machine's load).
 */
function tracer(trace: string) {
  const w = (what: string): string => `echo "${what}" >> '${trace}'`;
  const started = (names: string[]): string => names.map((n) => `grep -qx '${n} started' '${trace}'`).join(' && ');
  return {
    oneshot: (name: string, deps: string[] = []): TestService => ({
      name, type: 'oneshot', deps, up: ['sh', '-c', w(`${name} up`)], down: ['sh', '-c', w(`${name} down`)],
    }),
    // Writes "started", then "ready" just before notifying.
    longrun: (name: string, deps: string[] = [], waitFor: string[] = []): TestService => ({
      name, type: 'longrun', deps, notificationFd: 3,
      run: sh(`${w(`${name} started`)}\n${waitFor.length === 0 ? 'sleep 0.2' : `until ${started(waitFor)}; do sleep 0.01; done`}\n${w(`${name} ready`)}\necho >&3\nexec sleep 3600`),
      finish: sh(w(`${name} finished`)),
    }),
  };
}

test('order from events: a diamond starts each service after its dependencies are ready and stops it after its dependents are down', { timeout: 120_000 }, async () => {
  let trace = '';
  let events: Record<string, EventLog> = {};
  const r = await rig((compiled, base) => {
    trace = path.join(base, 'trace');
    fs.writeFileSync(trace, '');
    const t = tracer(trace);
    writeDb(compiled, [t.oneshot('base'), t.longrun('left', ['base'], ['right']), t.longrun('right', ['base'], ['left']), t.oneshot('top', ['left', 'right'])]);
  });
  events = Object.fromEntries(['left', 'right'].map((n) => [n, new EventLog(path.join(r.live, 'servicedirs', n))]));
  cleanups.push(() => { for (const e of Object.values(events)) e.close(); });
  assert.equal(await rcAsync(r, ['-u', 'change', 'top']), 0);
  const t = lines(trace);
  const at = (l: string): number => { const i = t.indexOf(l); assert.ok(i >= 0, `${l} in ${t.join('|')}`); return i; };
  assert.equal(at('base up'), 0);
  for (const side of ['left', 'right']) {
    assert.ok(at(`${side} started`) > at('base up'));
    assert.ok(at(`${side} ready`) < at('top up'));
    await events[side]!.waitFor(/^uU$/);
  }
  // Parallel: both sides started before either was ready.
  assert.ok(Math.max(at('left started'), at('right started')) < Math.min(at('left ready'), at('right ready')));
  // The event streams agree: both U events came before top ran (top up is the last line).
  assert.equal(at('top up'), t.length - 1);

  const mark = t.length;
  assert.equal(await rcAsync(r, ['-d', 'change', 'base']), 0);
  const d = lines(trace).slice(mark);
  const dat = (l: string): number => { const i = d.indexOf(l); assert.ok(i >= 0, `${l} in ${d.join('|')}`); return i; };
  assert.equal(dat('top down'), 0);
  for (const side of ['left', 'right']) {
    assert.ok(dat(`${side} finished`) < dat('base down'));
    await events[side]!.waitFor(/^uUdD$/);
  }
  assert.equal(dat('base down'), d.length - 1);
  // D of both longruns strictly before base's down script: the script's line is written
  // after both finish lines, which the supervisors write before sending D.
});

test('order from events: a 10-deep chain of oneshots and longruns goes up and down strictly in order', async () => {
  let trace = '';
  const names = Array.from({ length: 10 }, (_, i) => `c${i}`);
  const r = await rig((compiled, base) => {
    trace = path.join(base, 'trace');
    fs.writeFileSync(trace, '');
    const t = tracer(trace);
    writeDb(compiled, names.map((n, i) => (i % 2 === 0 ? t.oneshot : t.longrun)(n, i === 0 ? [] : [names[i - 1]!])));
  });
  const logs = names.filter((_, i) => i % 2 === 1).map((n) => [n, new EventLog(path.join(r.live, 'servicedirs', n))] as const);
  cleanups.push(() => { for (const [, e] of logs) e.close(); });
  assert.equal(await rcAsync(r, ['change', 'c9']), 0);
  assert.deepEqual(lines(trace), names.flatMap((n, i) => (i % 2 === 0 ? [`${n} up`] : [`${n} started`, `${n} ready`])));
  for (const [, e] of logs) await e.waitFor(/^uU$/);
  // Each longrun's U came before the next longrun's u (event timestamps).
  for (let k = 1; k < logs.length; k++) {
    const prevU = logs[k - 1]![1].events.find((e) => e.byte === 'U')!.at;
    const nextU = logs[k]![1].events.find((e) => e.byte === 'u')!.at;
    assert.ok(prevU < nextU, `${logs[k - 1]![0]} ready before ${logs[k]![0]} starts`);
  }
  const mark = lines(trace).length;
  assert.equal(await rcAsync(r, ['-d', 'change', 'c0']), 0);
  assert.deepEqual(lines(trace).slice(mark), [...names].reverse().map((n, j) => (j % 2 === 0 ? `${n} finished` : `${n} down`)));
  for (const [, e] of logs) await e.waitFor(/^uUdD$/);
  for (let k = logs.length - 1; k > 0; k--) {
    const laterD = logs[k]![1].events.find((e) => e.byte === 'D')!.at;
    const earlierd = logs[k - 1]![1].events.find((e) => e.byte === 'd')!.at;
    assert.ok(laterD < earlierd, `${logs[k]![0]} down before ${logs[k - 1]![0]} stops`);
  }
  assert.equal(rc(r, ['-a', 'list']).stdout, '');
});

test('a failing oneshot: dependents are not started, independent ones are, exit 1, state true', async () => {
  let trace = '';
  const r = await rig((compiled, base) => {
    trace = path.join(base, 'trace');
    fs.writeFileSync(trace, '');
    const t = tracer(trace);
    writeDb(compiled, [
      { name: 'bad', type: 'oneshot', up: ['sh', '-c', 'exit 3'] },
      t.longrun('needs-bad', ['bad']),
      t.oneshot('indep'),
      { name: 'all', type: 'bundle', contents: ['needs-bad', 'indep'] },
    ]);
  });
  const p = rcErr(r, ['change', 'all']);
  assert.equal(p.status, 1);
  assert.equal(p.stderr, 't6-rc: warning: unable to start service bad: command exited 3\n');
  assert.deepEqual(lines(trace), ['indep up']);
  assert.equal(readStatus(path.join(r.scandir, 'needs-bad'))?.pid, 0);
  assert.equal(rc(r, ['-a', 'list']).stdout, 'indep\n');
  const dr = rcErr(r, ['diff']);
  assert.deepEqual([dr.status, dr.stdout], [0, '']);
});

test("a longrun never ready within timeout-up fails (saying so, where s6-rc says \"command exited 99\"), is sent down, and is not counted up", async () => {
  const r = await rig([
    { name: 'mute', type: 'longrun', notificationFd: 3, run: sh('exec sleep 3600'), timeoutUp: 400 },
    { name: 'after', type: 'oneshot', up: ['true'], deps: ['mute'] },
  ]);
  const t0 = performance.now();
  const p = rcErr(r, ['-v2', 'change', 'after']);
  assert.equal(p.status, 1);
  assert.ok(performance.now() - t0 < 20_000); // not hung: ended by the 400 ms timeout, with room for a loaded machine
  assert.equal(p.stderr, 't6-rc: info: service mute: starting\nt6-rc: warning: unable to start service mute: timed out after 400 ms waiting for readiness - not starting: after\n');
  const sd = path.join(r.scandir, 'mute');
  await until('mute to be down', () => readStatus(sd)?.pid === 0 && readStatus(sd)?.wantUp === false);
  assert.ok(fs.existsSync(path.join(sd, 'down')));
  assert.equal(rc(r, ['-a', 'list']).stdout, '');
  // The global -t is shorter than any service timeout: exit 2.
  const q = rcErr(r, ['-t', '300', 'change', 'after']);
  assert.equal(q.status, 2);
  assert.match(q.stderr, /t6-rc: fatal: timed out\n$/);
});

test('SIGINT during a change: no new transition, the running oneshot finishes, list says exactly what runs', async () => {
  let trace = '';
  const r = await rig((compiled, base) => {
    trace = path.join(base, 'trace');
    fs.writeFileSync(trace, '');
    writeDb(compiled, [
      { name: 'quick', type: 'longrun', run: sh('exec sleep 3600') },
      // Ends only when told to: after t6-rc has said it received SIGINT.
      { name: 'slow', type: 'oneshot', up: ['sh', '-c', `while [ ! -e '${base}/go' ]; do sleep 0.01; done; echo "slow up" >> '${trace}'`], deps: ['quick'] },
      { name: 'next', type: 'oneshot', up: ['sh', '-c', `echo "next up" >> '${trace}'`], deps: ['slow'] },
    ]);
  });
  const proc = spawn(path.join(BIN, 't6-rc'), ['-l', r.live, '-v2', 'change', 'next'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
  await until('slow to start', () => err.includes('service slow: starting'), WAIT_MS, 5);
  proc.kill('SIGINT');
  await until('t6-rc to take SIGINT', () => err.includes('received INT'));
  fs.writeFileSync(path.join(r.base, 'go'), '');
  assert.equal(await exited, 1);
  assert.match(err, /t6-rc: warning: received INT, launching no more transitions/);
  assert.match(err, /service slow successfully started/);
  assert.doesNotMatch(err, /service next: starting/);
  assert.deepEqual(lines(trace), ['slow up']);
  assert.equal(rc(r, ['-a', 'list']).stdout, 'quick\nslow\n');
  assert.ok(readStatus(path.join(r.scandir, 'quick'))!.pid > 0);
});

test('list, listall, diff (also --json), -n dry run, unknown names', async () => {
  const r = await rig([
    { name: 'l1', type: 'longrun', run: sh('exec sleep 3600') },
    { name: 'o1', type: 'oneshot', up: ['true'], deps: ['l1'] },
    { name: 'o2', type: 'oneshot', up: ['true'], deps: ['o1'] },
    { name: 'b', type: 'bundle', contents: ['o2'] },
  ]);
  assert.equal(rc(r, ['listall', 'b']).stdout, 'l1\no1\no2\n');
  assert.equal(rc(r, ['-d', 'listall', 'l1']).stdout, 'l1\no1\no2\n');
  assert.equal(rc(r, ['list', 'b']).stdout, 'o2\n');
  assert.equal(rc(r, ['-d', 'list', 'b']).stdout, 'l1\no1\n');
  const dry = rcErr(r, ['-n', 'change', 'b']);
  assert.equal(dry.status, 0);
  assert.equal(dry.stderr, ['l1', 'o1', 'o2'].map((n) => `t6-rc: info: dry run: service ${n}: starting\nt6-rc: info: dry run: service ${n} successfully started\n`).join(''));
  assert.equal(rc(r, ['-a', 'list']).stdout, '');
  assert.equal(rc(r, ['start', 'l1']).status, 0);
  const listed = JSON.parse(rc(r, ['--json', '-a', 'list']).stdout) as ServiceJson[];
  assert.deepEqual(listed.map((o) => [o.name, o.type, o.rc, o.want, o.state]), [['l1', 'longrun', 'up', 'up', 'up']]);
  assert.equal(listed[0]!.pid, readStatus(path.join(r.scandir, 'l1'))!.pid);
  // Someone else stops l1 behind t6-rc's back: diff sees it.
  spawnSync(path.join(BIN, 't6-svc'), ['-d', path.join(r.scandir, 'l1')]);
  const d = rcErr(r, ['diff']);
  assert.deepEqual([d.status, d.stdout], [1, '-l1\n']);
  const differing = JSON.parse(rcErr(r, ['--json', 'diff']).stdout) as ServiceJson[];
  assert.deepEqual(differing.map((o) => [o.name, o.rc, o.want]), [['l1', 'up', 'down']]);
  const oneshots = JSON.parse(rc(r, ['--json', '-d', 'list', 'l1']).stdout) as ServiceJson[];
  assert.deepEqual(oneshots.map((o) => [o.name, o.type, o.rc, o.state, o.pid]), [['o1', 'oneshot', 'down', 'down', null], ['o2', 'oneshot', 'down', 'down', null]]);
  const u = rcErr(r, ['change', 'nosuch']);
  assert.equal(u.status, 3);
  assert.match(u.stderr, /nosuch is not a recognized identifier/);
  assert.equal(rcErr(r, ['frobnicate']).status, 100);
});

test('LIVE/lock: change takes it exclusively, list/listall/diff shared; busy is exit 111, -b waits for it', async () => {
  const r = await rig([{ name: 'o', type: 'oneshot', up: ['true'] }]);
  const { O_RDONLY, O_RDWR, open, close, tryLock, tryLockShared } = await import('../../src/sys/fd.ts');
  const lockFile = path.join(r.live, 'lock');
  // A holder of the exclusive lock (another change) keeps out changes and readers alike.
  // A writer marks the file while it holds the lock (its pid): readers take the lock only
  // then, so this one plays a t6 writer, mark included.
  const fd = open(lockFile, O_RDWR);
  assert.ok(tryLock(fd));
  fs.writeFileSync(lockFile, '12345\n');
  for (const args of [['change', 'o'], ['list', 'o'], ['listall', 'o'], ['diff']]) {
    const busy = rcErr(r, args);
    assert.equal(busy.status, 111, args.join(' '));
    assert.match(busy.stderr, /unable to take lock on .*lock: Resource busy/);
  }
  // -b waits, for a reader and for a change, until the holder lets go. Nothing polls: both
  // are blocked in the kernel (their requests show in /proc/locks), and both finish once
  // the lock is free.
  const exits = (args: string[]): Promise<number | null> => {
    const p = spawn(path.join(BIN, 't6-rc'), ['-l', r.live, ...args], { stdio: 'ignore' });
    return new Promise((resolve) => p.on('exit', (c) => resolve(c)));
  };
  const change = exits(['-b', 'change', 'o']);
  const reader = exits(['-b', 'list', 'o']);
  let settled = false;
  void Promise.race([change, reader]).then(() => { settled = true; });
  const inode = fs.statSync(lockFile).ino;
  const blocked = (): number => fs.readFileSync('/proc/locks', 'utf8').split('\n').filter((l) => l.includes(`:${inode} `) && l.includes('->')).length;
  await until('both t6-rc blocked on LIVE/lock', () => blocked() >= 2);
  assert.equal(settled, false);
  close(fd);
  assert.deepEqual(await Promise.all([change, reader]), [0, 0]);
  assert.equal(rc(r, ['-a', 'list']).stdout, 'o\n');
  // The change that ran after the holder left no mark behind: readers go by the shortcut again.
  assert.equal(fs.readFileSync(lockFile, 'utf8'), '');
  // Readers share: a reader runs beside another shared holder; a change does not.
  const s1 = open(lockFile, O_RDONLY);
  assert.ok(tryLockShared(s1));
  assert.equal(rcErr(r, ['list', 'o']).status, 0);
  assert.equal(rcErr(r, ['change', 'o']).status, 111);
  close(s1);
  // The database's lock is taken shared by a change, so a holder of it keeps the change
  // out. Readers do not test it: no t6 tool changes a database in use (t6-rc-compile writes
  // a new directory), and a reader checks that `compiled` did not move under it.
  const dbLock = open(path.join(r.compiled, 'lock'), O_RDWR);
  assert.ok(tryLock(dbLock));
  assert.match(rcErr(r, ['-d', 'change', 'o']).stderr, /unable to take lock on .*compiled\/lock: Resource busy/);
  assert.equal(rcErr(r, ['list']).status, 0);
  close(dbLock);
});

test('LIVE/lock: a writer that died holding it leaves its mark; readers then take the lock, and the next change clears it', async () => {
  const r = await rig([{ name: 'o', type: 'oneshot', up: ['true'] }]);
  const lockFile = path.join(r.live, 'lock');
  assert.equal(rc(r, ['change', 'o']).status, 0);
  assert.equal(fs.readFileSync(lockFile, 'utf8'), '', 'a change that ended leaves no mark');
  fs.writeFileSync(lockFile, '99999\n'); // the mark of a writer killed with SIGKILL
  assert.equal(rc(r, ['-a', 'list']).stdout, 'o\n');
  assert.equal(rc(r, ['-d', 'change', 'o']).status, 0);
  assert.equal(fs.readFileSync(lockFile, 'utf8'), '');
  assert.equal(rc(r, ['-a', 'list']).stdout, '');
});
