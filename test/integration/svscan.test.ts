/**
 * t6-svscan as pid 1 of a pid namespace: reaping, signals, the 1-second rule, finish,
 * timeouts, readiness, removal. Every wait is on an event, a status change or an output
 * line; timing assertions use generous bounds on measured intervals (an event byte reaches
 * this process some milliseconds after it was sent, more on a loaded machine), and lower
 * bounds are measured from before the request, so that a late event only adds to them.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tainToUnixMs } from '../../src/s6/tai.ts';
import { EventLog, ROOT, Tree, WAIT_MS, makeService, readStatus, tmpdir, until, run, childrenOf } from '../lib/harness.ts';

const NODE = path.join(ROOT, 'node_modules/.bin/node');
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

async function tree(scandir: string, args: string[] = []): Promise<Tree> {
  const t = await Tree.start(scandir, { args });
  cleanups.push(() => t.stop());
  return t;
}

const children = childrenOf;

function processState(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0];
  } catch {
    return undefined;
  }
}

test('as pid 1 it reaps 10,000 orphans', { timeout: 300_000 }, async () => {
  const sd = tmpdir();
  const marker = path.join(sd, '..', `${path.basename(sd)}-orphans-done`);
  makeService(path.join(sd, 'orphans'), {
    run: `#!/bin/sh\n"${NODE}" "${ROOT}/test/fixtures/orphans.ts" 10000 > "${marker}"\nexec sleep 3600\n`,
  });
  const t = await tree(sd);
  await until('the orphan maker to finish', () => fs.existsSync(marker) && fs.readFileSync(marker, 'utf8').includes('spawned 10000'), 240_000, 50);
  const pid1 = t.pid1;
  // Only the supervised service itself may remain a child of pid 1; no zombie is left.
  const left = await until('every orphan to be reaped', () => {
    const kids = children(pid1);
    return kids.length <= 1 ? kids : undefined;
  }, 60_000, 20);
  assert.ok(left.every((pid) => processState(pid) !== 'Z'));
  fs.rmSync(marker, { force: true });
});

test('a crash loop is throttled to one start a second', async () => {
  const sd = tmpdir();
  const dir = makeService(path.join(sd, 'crashy'), { run: '#!/bin/sh\nexit 1\n' });
  fs.mkdirSync(path.join(dir, 'event'));
  const events = new EventLog(dir);
  cleanups.push(() => events.close());
  const startedAt = Date.now();
  await tree(sd);
  await events.waitFor(/(u[^u]*){4}/);
  // The stamps come from the real-time clock (Date.now()'s), read when each status is written.
  const stamp = tainToUnixMs(readStatus(dir)!.stamp);
  assert.ok(stamp >= startedAt - 1 && stamp <= Date.now() + 1, `status stamp ${stamp} between ${startedAt} and now`);
  const starts = events.events.filter((e) => e.byte === 'u').map((e) => e.at);
  for (let i = 1; i < starts.length; i++) {
    const gap = starts[i]! - starts[i - 1]!;
    assert.ok(gap >= 900 && gap < 2000, `start ${i} came ${gap.toFixed(0)} ms after the previous one`);
  }
  assert.match(events.text, /^s(udD)+u/);
});

test('finish gets exit code, signal, name and pid; 125 means permanent failure', async () => {
  const sd = tmpdir();
  const out = path.join(sd, '..', `${path.basename(sd)}-finish`);
  const dir = makeService(path.join(sd, 'fin'), {
    run: '#!/bin/sh\n[ -e ./first ] && { rm ./first; exit 3; }\nexec sleep 3600\n',
    finish: `#!/bin/sh\necho "$@" >> "${out}"\n[ "$1" = 256 ] && exit 125\nexit 0\n`,
  });
  fs.writeFileSync(path.join(dir, 'first'), '');
  fs.mkdirSync(path.join(dir, 'event'));
  const events = new EventLog(dir);
  cleanups.push(() => { events.close(); fs.rmSync(out, { force: true }); });
  const t = await tree(sd);
  await events.waitFor(/udD/);
  const first = fs.readFileSync(out, 'utf8').trim().split('\n')[0]!.split(' ');
  assert.deepEqual(first.slice(0, 3), ['3', '0', 'fin']);
  assert.match(first[3]!, /^\d+$/);
  // Now kill it with SIGTERM: finish sees 256 15 and exits 125 ⇒ O then D, and no restart.
  await events.waitFor(/udDu/);
  t.signalNs(readStatus(dir)!.pid, 'SIGTERM');
  await events.waitFor(/udDudOD$/);
  assert.deepEqual(fs.readFileSync(out, 'utf8').trim().split('\n')[1]!.split(' ').slice(0, 3), ['256', '15', 'fin']);
  const st = readStatus(dir)!;
  assert.equal(st.wantUp, false);
  assert.equal(st.pid, 0);
  assert.equal(run('s6-svstat', [dir]).stdout.replace(/\d+ seconds/g, 'N seconds'), 'down (signal SIGTERM) N seconds, normally up, ready N seconds\n');
});

test('timeout-kill sends SIGKILL to a service that ignores its down signal', async () => {
  const sd = tmpdir();
  const dir = makeService(path.join(sd, 'stubborn'), {
    run: '#!/bin/sh\ntrap "" TERM\necho >&3\nwhile :; do sleep 0.1; done\n',
    files: { 'timeout-kill': '300\n', 'notification-fd': '3\n' },
  });
  fs.mkdirSync(path.join(dir, 'event'));
  const events = new EventLog(dir);
  cleanups.push(() => events.close());
  await tree(sd);
  await events.waitFor(/uU/);
  const t0 = performance.now();
  assert.equal(run('s6-svc', ['-d', dir]).status, 0);
  await events.waitFor(/uUdD$/);
  const elapsed = performance.now() - t0;
  assert.ok(elapsed >= 280, `killed after ${elapsed} ms`);
  assert.equal(readStatus(dir)!.wstat & 0x7f, 9, 'killed by SIGKILL');
});

test('timeout-finish kills a finish script that runs too long', async () => {
  const sd = tmpdir();
  const dir = makeService(path.join(sd, 'slowfinish'), {
    run: '#!/bin/sh\nexec sleep 3600\n',
    finish: '#!/bin/sh\nexec sleep 3600\n',
    files: { 'timeout-finish': '300\n' },
  });
  fs.mkdirSync(path.join(dir, 'event'));
  const events = new EventLog(dir);
  cleanups.push(() => events.close());
  const t = await tree(sd);
  await events.waitFor(/u/);
  // Measured from before the request: finish starts after it, so D comes 300 ms later at least.
  const t0 = performance.now();
  run('s6-svc', ['-d', dir]);
  await events.waitFor(/udD$/);
  assert.ok(performance.now() - t0 >= 250);
  await t.output.waitFor(/slowfinish: finish script lifetime reached maximum value/);
});

test('readiness: U after the newline on notification-fd; restart is immediate a second after readiness', async () => {
  const sd = tmpdir();
  const dir = makeService(path.join(sd, 'ready'), {
    run: '#!/bin/sh\necho >&3\nexec sleep 3600\n',
    files: { 'notification-fd': '3\n' },
  });
  fs.mkdirSync(path.join(dir, 'event'));
  const events = new EventLog(dir);
  cleanups.push(() => events.close());
  const t = await tree(sd);
  await events.waitFor(/uU/);
  assert.equal(readStatus(dir)!.ready, true);
  assert.equal(run('s6-svstat', ['-o', 'up,ready', dir]).stdout, 'true true\n');
  // Ready for more than a second, then killed: back at once (no 1-second wait).
  const readyAt = events.events.find((e) => e.byte === 'U')!.at;
  // (A wait on the clock itself: the rule is about readiness a second old.)
  await until('readiness to be a second old', () => performance.now() - readyAt > 1100, WAIT_MS, 50);
  const pid = t.hostPid(readStatus(dir)!.pid);
  const t0 = performance.now();
  process.kill(pid, 'SIGKILL');
  await events.waitFor(/uUdDu/);
  const restarted = events.events.filter((e) => e.byte === 'u')[1]!.at - t0;
  assert.ok(restarted < 900, `restarted after ${restarted.toFixed(1)} ms (not a second later)`);
});

test('a service sees only fds 0, 1, 2 and its notification fd, with default signal dispositions', async () => {
  const sd = tmpdir();
  const dir = makeService(path.join(sd, 'fds'), { run: '#!/bin/sh\nexec sleep 3600\n', files: { 'notification-fd': '5\n' } });
  const t = await tree(sd);
  const nsPid = await until('fds to be up', () => { const p = readStatus(dir)?.pid ?? 0; return p > 0 ? p : undefined; });
  // Once sleep has replaced the shell, what it holds is exactly what the supervisor gave.
  const pid = await until('run to exec sleep', () => {
    const p = t.hostPid(nsPid);
    return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'sleep' ? p : undefined;
  });
  // And once sleep is asleep: right after exec, the dynamic loader briefly holds the
  // libraries it maps open (as fd 3), which is sleep's own doing, not the supervisor's.
  await until('sleep to be in nanosleep', () => /^(35|230) /.test(fs.readFileSync(`/proc/${pid}/syscall`, 'utf8')));
  const fds = fs.readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b);
  const what = fds.map((fd) => { try { return `${fd} -> ${fs.readlinkSync(`/proc/${pid}/fd/${fd}`)}`; } catch { return `${fd} (gone)`; } }).join(', ');
  assert.deepEqual(fds, [0, 1, 2, 5], what);
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  assert.equal(BigInt(`0x${status.match(/SigBlk:\s*(\w+)/)![1]}`), 0n, 'no blocked signals');
  assert.equal((BigInt(`0x${status.match(/SigIgn:\s*(\w+)/)![1]}`) >> 12n) & 1n, 0n, 'SIGPIPE not ignored');
  assert.equal(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[3], String(pid), 'session leader (sid = pid)');
});

test('a service removed from the scan dir is stopped on SIGHUP, others keep running', async () => {
  const sd = tmpdir();
  const store = tmpdir();
  const gone = makeService(path.join(store, 'gone'), { run: '#!/bin/sh\nexec sleep 3600\n' });
  const stays = makeService(path.join(store, 'stays'), { run: '#!/bin/sh\nexec sleep 3600\n' });
  fs.symlinkSync(gone, path.join(sd, 'gone'));
  fs.symlinkSync(stays, path.join(sd, 'stays'));
  fs.mkdirSync(path.join(gone, 'event'));
  const events = new EventLog(gone);
  cleanups.push(() => events.close());
  const t = await tree(sd);
  await events.waitFor(/u/);
  await until('stays to be up', () => (readStatus(stays)?.pid ?? 0) > 0);
  const stayPid = readStatus(stays)!.pid;
  const gonePid = t.hostPid(readStatus(gone)!.pid);
  fs.unlinkSync(path.join(sd, 'gone'));
  t.signal('SIGHUP');
  await events.waitFor(/udDx$/);
  assert.equal(processState(gonePid), undefined, 'the removed service was stopped');
  assert.equal(readStatus(stays)!.pid, stayPid, 'the other service was not touched');
  assert.equal(run('s6-svok', [gone]).status, 1, 'no longer supervised');
  assert.equal(run('s6-svok', [stays]).status, 0);
});

test('signals: a .s6-svscan/SIGxxx script replaces the built-in action; SIGTERM without one terminates', async () => {
  const sd = tmpdir();
  const marker = `${sd}-sig`;
  makeService(path.join(sd, 'svc'), { run: '#!/bin/sh\nexec sleep 3600\n' });
  fs.mkdirSync(path.join(sd, '.s6-svscan'), { recursive: true });
  for (const sig of ['SIGTERM', 'SIGUSR1', 'SIGPWR']) {
    fs.writeFileSync(path.join(sd, '.s6-svscan', sig), `#!/bin/sh\necho ${sig} >> "${marker}"\n`, { mode: 0o755 });
  }
  fs.writeFileSync(path.join(sd, '.s6-svscan', 'finish'), `#!/bin/sh\necho finish "$@" >> "${marker}"\necho "finish says goodbye on stdout"\n`, { mode: 0o755 });
  cleanups.push(() => fs.rmSync(marker, { force: true }));
  const t = await tree(sd);
  await until('svc up', () => (readStatus(path.join(sd, 'svc'))?.pid ?? 0) > 0);
  for (const sig of ['SIGTERM', 'SIGUSR1', 'SIGPWR'] as const) {
    t.signal(sig);
    await until(`${sig} script`, () => fs.existsSync(marker) && fs.readFileSync(marker, 'utf8').includes(sig));
  }
  assert.ok(readStatus(path.join(sd, 'svc'))!.pid > 0, 'still supervising after the diverted SIGTERM');
  fs.rmSync(path.join(sd, '.s6-svscan', 'SIGTERM'));
  t.signal('SIGTERM');
  assert.equal(await t.exited, 0);
  assert.match(fs.readFileSync(marker, 'utf8'), /finish/);
  assert.match(t.output.text, /finish says goodbye on stdout/, 'finish inherits t6-svscan\'s stdout');
  assert.equal(readStatus(path.join(sd, 'svc'))!.pid, 0, 'the service was brought down before finish');
});

test('soak: 300 start/stop cycles with readiness leave t6-svscan with the same fds, and no FIFO behind', { timeout: 300_000 }, async () => {
  const sd = tmpdir();
  const dir = makeService(path.join(sd, 'churn'), {
    run: '#!/bin/sh\necho >&3\nexec sleep 3600\n',
    files: { 'notification-fd': '3\n' },
    down: true,
  });
  const logged = makeService(path.join(sd, 'logged'), { run: '#!/bin/sh\nexec sleep 3600\n', log: { run: '#!/bin/sh\nexec cat > /dev/null\n' } });
  fs.mkdirSync(path.join(dir, 'event'));
  const events = new EventLog(dir);
  cleanups.push(() => events.close());
  const t = await tree(sd);
  await until('logged up', () => (readStatus(logged)?.pid ?? 0) > 0);
  await events.waitFor(/^s$/);
  // An fd on a listener FIFO is t6 in the middle of notifying us (we wake on the byte before
  // its close returns): transient by design, so not counted.
  const fdList = (): string[] => fs.readdirSync(`/proc/${t.pid1}/fd`)
    .map((fd) => { try { return `${fd}:${fs.readlinkSync(`/proc/${t.pid1}/fd/${fd}`)}`; } catch { return `${fd}:?`; } })
    .filter((entry) => !entry.includes('/event/ftrig1:'));
  const fds = (): number => fdList().length;
  const control = path.join(dir, 'supervise/control');
  const send = (bytes: string): void => {
    const fd = fs.openSync(control, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    try { fs.writeSync(fd, bytes); } finally { fs.closeSync(fd); }
  };
  // One warm-up cycle, then the baseline.
  send('u'); await events.waitFor(/suU$/); send('d'); await events.waitFor(/suUdD$/);
  const beforeList = fdList();
  const before = beforeList.length;
  for (let i = 1; i <= 300; i++) {
    send('u');
    await events.waitFor(new RegExp(`^s(uUdD){${i}}uU$`));
    send('d');
    await events.waitFor(new RegExp(`^s(uUdD){${i + 1}}$`));
  }
  // A leaked fd stays; one in use for a moment (the last event on its way) goes: compare
  // once the count is back, or after a bound.
  const settled = (): Promise<unknown> => until('t6-svscan\'s fds back to the baseline', () => fds() === before).catch(() => undefined);
  await settled();
  assert.equal(fds(), before, `no fd leaked by 300 starts, readiness pipes and stops: before ${beforeList.join(' ')} after ${fdList().join(' ')}`);
  // A few hundred client waits: each listener FIFO is removed by its client.
  for (let i = 0; i < 50; i++) assert.equal(run(path.join(ROOT, 'bin/t6-svc'), ['-wU', '-T', String(WAIT_MS), '-u', dir]).status, 0), assert.equal(run(path.join(ROOT, 'bin/t6-svc'), ['-wD', '-T', String(WAIT_MS), '-d', dir]).status, 0);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'event')).filter((n) => n.startsWith('ftrig1') && n !== path.basename(events.fifoPath)), []);
  await settled();
  assert.equal(fds(), before, `before ${beforeList.join(' ')} after ${fdList().join(' ')}`);
});

test('flag-newpidns: run is pid 1 of a new pid namespace, and services started after it are born in t6-svscan\'s', async () => {
  const sd = tmpdir();
  const out = `${sd}-newpidns`;
  fs.mkdirSync(out);
  cleanups.push(() => fs.rmSync(out, { recursive: true, force: true }));
  // Each run says its pid and pid namespace as it sees them, then waits for SIGTERM (a
  // namespace's pid 1 gets only the signals it has a handler for).
  const reporter = (name: string): string =>
    `#!/bin/sh\ntrap 'exit 0' TERM\necho "$$ $(readlink /proc/self/ns/pid)" > "${out}/${name}.new"\nmv "${out}/${name}.new" "${out}/${name}"\nsleep 3600 & wait\n`;
  const isolated = makeService(path.join(sd, 'isolated'), { run: reporter('isolated'), files: { 'flag-newpidns': '' } });
  const plain = makeService(path.join(sd, 'plain'), { run: reporter('plain'), down: true });
  fs.mkdirSync(path.join(isolated, 'event'));
  const events = new EventLog(isolated);
  cleanups.push(() => events.close());
  const t = await tree(sd);
  const said = (name: string): Promise<string[]> => until(`${name} to say where it runs`, () => {
    try { return fs.readFileSync(path.join(out, name), 'utf8').trim().split(' '); } catch { return undefined; }
  });
  const [isolatedPid, isolatedNs] = await said('isolated');
  const ownNs = fs.readlinkSync(`/proc/${t.pid1}/ns/pid`);
  assert.equal(isolatedPid, '1', 'pid 1 in its namespace');
  assert.notEqual(isolatedNs, ownNs);
  assert.ok(readStatus(isolated)!.pid > 1, 'supervise/status holds its pid as t6-svscan sees it');
  assert.equal(run('s6-svc', ['-u', plain]).status, 0);
  const [plainPid, plainNs] = await said('plain');
  assert.equal(plainNs, ownNs, 'the next child is born in t6-svscan\'s namespace again');
  assert.notEqual(plainPid, '1');
  assert.equal(run('s6-svc', ['-d', isolated]).status, 0);
  await events.waitFor(/udD$/);
});
