/**
 * Running out of fds (EMFILE, ENFILE): the writes that must not fail — supervise/status,
 * the events, the death tally — get a spare fd's slot (sys/fdreserve.ts); events that still
 * cannot go out are owed to each listener and sent in order by a retry (s6/fifodir.ts); a
 * Supervisor whose supervise/ could not be set up for lack of fds retries every half
 * second, so its status is right well within 2 s of fds coming back. Faults are injected
 * through fake fd calls, and once for real, with this process's own fd limit lowered.
 */
import { test, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FdReserve, isFdShortage } from '../../src/sys/fdreserve.ts';
import { SysError } from '../../src/sys/errors.ts';
import { O_RDONLY, close, open, mkfifo } from '../../src/sys/fd.ts';
import { RLIMIT, getrlimit, setrlimit } from '../../src/sys/system.ts';
import { OwedEvents, listenFifodir, makeFifodir, notifyFifodir, type NotifyCalls } from '../../src/s6/fifodir.ts';
import { decodeStatus } from '../../src/s6/status.ts';
import { tainFromUnixMs } from '../../src/s6/tai.ts';
import { FsSupervisorFiles, SYSTEM_FD_CALLS } from '../../src/supervise/servicefiles.ts';
import { Supervisor } from '../../src/supervise/supervisor.ts';
import { tmpdir, until } from '../lib/harness.ts';
import { FakeFiles, FakeHost } from '../lib/supervisorhost.ts';

const EMFILE = 24;
const ENFILE = 23;
const shortage = (call: string, file?: string, errno = EMFILE): SysError => new SysError(call, errno, file);

const open_: Supervisor[] = [];
afterEach(() => { for (const sup of open_.splice(0)) sup.request('quit'); });

/** Fd calls that fail with EMFILE on the paths `failing` says, while `full` is set. */
function fullTable(failing: (file: string) => boolean) {
  const state = { full: true, refused: 0 };
  const calls: NotifyCalls = {
    open: (file, flags, mode) => {
      if (state.full && failing(file)) { state.refused++; throw shortage('open', file); }
      return open(file, flags, mode);
    },
    close,
  };
  return { state, calls };
}

test('isFdShortage: EMFILE and ENFILE, from libc or from Node, and nothing else', () => {
  assert.equal(isFdShortage(shortage('open')), true);
  assert.equal(isFdShortage(shortage('open', undefined, ENFILE)), true);
  assert.equal(isFdShortage(Object.assign(new Error('EMFILE: too many open files, open'), { code: 'EMFILE' })), true);
  assert.equal(isFdShortage(new SysError('open', 2)), false);
  assert.equal(isFdShortage(new Error('EMFILE')), false, 'the code is read, never the message');
});

test('FdReserve: a write that ran out of fds runs again in the spare\'s slot, and the spare is taken back', () => {
  const log: string[] = [];
  let nextFd = 50;
  const reserve = new FdReserve({ openSpare: () => { log.push('open spare'); return nextFd++; }, close: (fd) => { log.push(`close ${fd}`); } });
  assert.equal(reserve.held, true);
  let tries = 0;
  const result = reserve.run(() => { tries++; if (tries === 1) throw shortage('open'); return 'written'; });
  assert.equal(result, 'written');
  assert.deepEqual(log, ['open spare', 'close 50', 'open spare']);
  assert.equal(reserve.run(() => 'plain'), 'plain', 'no shortage: the spare is not touched');
  assert.equal(log.length, 3);
  assert.throws(() => reserve.run(() => { throw new SysError('open', 13); }), /open/, 'other failures are not retried');
  assert.equal(log.length, 3);
});

test('FdReserve: a spare that cannot be taken back is tried again at the next spend', () => {
  let full = false;
  const reserve = new FdReserve({ openSpare: () => { if (full) throw shortage('open', '/dev/null'); return 7; }, close: () => {} });
  full = true;
  reserve.spend(() => {});
  assert.equal(reserve.held, false, 'lost while the table is full');
  assert.throws(() => reserve.run(() => { throw shortage('open'); }), /EMFILE/, 'no spare: the shortage is the caller\'s to retry');
  full = false;
  reserve.spend(() => {});
  assert.equal(reserve.held, true, 'back once fds are');
});

test('with this process\'s fd table really full, status and death tally are written through the spare; without it they fail', (t) => {
  const dir = path.join(tmpdir(), 'svc');
  fs.mkdirSync(path.join(dir, 'supervise'), { recursive: true });
  const reserve = new FdReserve();
  t.after(() => reserve.close());
  const withSpare = new FsSupervisorFiles(SYSTEM_FD_CALLS, reserve);
  const without = new FsSupervisorFiles();
  const status = { stamp: tainFromUnixMs(Date.now()), readyStamp: tainFromUnixMs(Date.now()), pid: 42, wstat: 0, paused: false, finishing: false, wantUp: true, ready: false };

  const { soft, hard } = getrlimit(RLIMIT.NOFILE);
  const fillers: number[] = [];
  t.after(() => { for (const fd of fillers) close(fd); setrlimit(RLIMIT.NOFILE, soft, hard); });
  const inUse = fs.readdirSync('/proc/self/fd').length;
  setrlimit(RLIMIT.NOFILE, BigInt(inUse + 8), hard);
  for (;;) {
    try { fillers.push(open('/dev/null', O_RDONLY)); } catch (err) { assert.ok(isFdShortage(err)); break; }
  }
  assert.throws(() => without.writeStatus(dir, status), (err) => isFdShortage(err), 'no spare: EMFILE');
  withSpare.writeStatus(dir, status);
  withSpare.recordDeath(dir, { stamp: status.stamp, exitCode: 1, signal: 0 }, 10);
  withSpare.writeStatus(dir, { ...status, pid: 43 });
  assert.equal(reserve.held, true, 'the spare is taken back after each write');
  for (const fd of fillers.splice(0)) close(fd); // this test's own reads need fds again
  assert.equal(decodeStatus(fs.readFileSync(path.join(dir, 'supervise/status')))!.pid, 43);
  assert.equal(fs.readFileSync(path.join(dir, 'supervise/death_tally')).length, 14);
});

test('events that find no fd are owed to each listener, and go out in order with the next ones once fds are back', async (t) => {
  const dir = path.join(tmpdir(), 'event');
  const got: Record<string, string> = { a: '', b: '' };
  const a = listenFifodir(dir, (byte) => { got.a += byte; });
  const b = listenFifodir(dir, (byte) => { got.b += byte; });
  t.after(() => { a.close(); b.close(); });
  const { state, calls } = fullTable((file) => file === b.fifoPath);
  const owed = new OwedEvents();
  assert.equal(notifyFifodir(dir, 'u', owed, calls), 1, 'a got it, b is owed it');
  assert.equal(notifyFifodir(dir, 'd', owed, calls), 1);
  assert.deepEqual([...owed.byListener.values()], ['ud']);
  assert.ok(isFdShortage(owed.lastError));
  state.full = false;
  assert.equal(notifyFifodir(dir, 'D', owed, calls), 2);
  assert.equal(owed.empty, true);
  await until('both listeners to read', () => got.a === 'udD' && got.b === 'udD');
});

test('an event directory that cannot be listed for lack of fds: its events go to whoever listens at the retry', async (t) => {
  const dir = path.join(tmpdir(), 'event');
  let got = '';
  const listener = listenFifodir(dir, (byte) => { got += byte; });
  t.after(() => listener.close());
  const owed = new OwedEvents();
  const readdir = mock.method(fs, 'readdirSync', () => { throw Object.assign(new Error('EMFILE: too many open files, scandir'), { code: 'EMFILE' }); });
  assert.equal(notifyFifodir(dir, 'd', owed), 0);
  assert.equal(notifyFifodir(dir, 'D', owed), 0);
  readdir.mock.restore();
  assert.equal(owed.toAll, 'dD');
  assert.equal(notifyFifodir(dir, '', owed), 1, 'the retry carries no new event');
  assert.equal(owed.empty, true);
  await until('the owed events', () => got === 'dD');
});

test('owed events are bounded per listener (the newest kept), and the debt of a listener that left is dropped', () => {
  const dir = path.join(tmpdir(), 'event');
  makeFifodir(dir);
  const name = `ftrig1:@${'4'.padEnd(24, '0')}:abcdef`;
  mkfifo(path.join(dir, name), 0o600);
  const { calls } = fullTable(() => true);
  const owed = new OwedEvents();
  for (let i = 0; i < 5000; i++) notifyFifodir(dir, i % 2 === 0 ? 'u' : 'd', owed, calls);
  assert.equal(owed.byListener.get(name)!.length, 4096);
  assert.ok(owed.byListener.get(name)!.endsWith('ud'), 'the newest kept');
  fs.rmSync(path.join(dir, name));
  notifyFifodir(dir, '', owed, calls);
  assert.equal(owed.empty, true);
});

test('a Supervisor out of fds: status retried, events owed and sent after their status, all right within 2 s of fds returning', async () => {
  const { state, calls } = fullTable((file) => file.includes('ftrig1'));
  state.full = false;
  const files = new FakeFiles({ open: calls.open });
  const host = new FakeHost(files);
  const dir = path.join(tmpdir(), 'svc');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'run'), '#!/bin/sh\n', { mode: 0o755 });
  const sup = Supervisor.open('svc', dir, host);
  open_.push(sup);
  let got = '';
  const listener = listenFifodir(path.join(dir, 'event'), (byte) => { got += byte; });
  try {
    // The table fills: status writes and event opens fail.
    files.failStatus = shortage('open', path.join(dir, 'supervise/status.new'));
    state.full = true;
    host.last().onExit(1 << 8);
    host.advance(1000);
    host.last().onExit(2 << 8);
    assert.ok(state.refused > 0, 'the events found no fd');
    assert.match(host.reports.join('\n'), /unable to write .*supervise\/status: Too many open files/);
    assert.match(host.reports.join('\n'), /unable to notify every listener of .*event: Too many open files - retrying every 0.2 seconds/);
    host.advance(5000); // still full (and restarted meanwhile): nothing goes out, nothing is lost
    assert.equal(got, '');

    // fds come back: within 2 s, the status is the last one, and the events went out in order, after it.
    files.failStatus = undefined;
    state.full = false;
    const journalFrom = files.journal.length;
    host.advance(2000);
    const st = decodeStatus(fs.readFileSync(path.join(dir, 'supervise/status')))!;
    assert.deepEqual({ pid: st.pid, wstat: st.wstat }, { pid: sup.runPid, wstat: 2 << 8 }, 'the status is the latest: up again after the second death');
    assert.equal(files.journal[journalFrom]?.kind, 'status', 'the pending status is written before the owed events');
    await until('the owed events', () => got === 'dDudDu');
    assert.match(host.reports.join('\n'), /every listener has its events again/);
  } finally {
    listener.close();
  }
});

test('a Supervisor whose supervise/ cannot be set up for lack of fds retries every half second and writes its status as soon as it can', () => {
  let full = true;
  const files = new FakeFiles({
    open: (file, flags, mode) => { if (full && file.endsWith('/lock')) throw shortage('open', file); return open(file, flags, mode); },
  });
  const host = new FakeHost(files);
  const dir = path.join(tmpdir(), 'svc');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'run'), '#!/bin/sh\n', { mode: 0o755 });
  const sup = Supervisor.open('svc', dir, host);
  open_.push(sup);
  assert.equal(sup.state, 'up', 'the service runs without its control files');
  assert.match(host.reports.join('\n'), /unable to open .*supervise\/lock: Too many open files - running svc without its control files; retrying every 0.5 seconds/);
  assert.equal(fs.existsSync(path.join(dir, 'supervise/status')), false);
  host.advance(3000);
  full = false;
  host.advance(500);
  const st = decodeStatus(fs.readFileSync(path.join(dir, 'supervise/status')))!;
  assert.equal(st.pid, sup.runPid, 'up, with its pid, half a second after fds came back');
});
