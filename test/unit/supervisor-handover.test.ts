/**
 * Supervisor.handOver and Supervisor.resume on the fake host: what one image hands over,
 * the next carries on with — state, status, pids, the timer as a deadline that the time
 * the exec took is taken from, the control FIFO (bytes written meanwhile are served), and
 * an adopted process whose exit status cannot be known.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Supervisor, UNKNOWN_WSTAT } from '../../src/supervise/supervisor.ts';
import { decodeStatus } from '../../src/s6/status.ts';
import { tmpdir } from '../lib/harness.ts';
import { FakeHost } from '../lib/supervisorhost.ts';

const open: Supervisor[] = [];
afterEach(() => { for (const sup of open.splice(0)) sup.request('quit'); });

function service(): string {
  const dir = path.join(tmpdir(), 'svc');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'run'), '#!/bin/sh\n', { mode: 0o755 });
  return dir;
}

test('a running service: the next image has the same state, status and pid, and serves control bytes written during the exec', async () => {
  const dir = service();
  const host = new FakeHost();
  const sup = Supervisor.open('svc', dir, host);
  const pid = host.spawned[0]!.pid;
  const before = fs.readFileSync(path.join(dir, 'supervise/status'));
  const snap = JSON.parse(JSON.stringify(sup.handOver())) as ReturnType<Supervisor['handOver']>;
  assert.equal(sup.state, 'gone');
  assert.equal(snap.state, 'up');
  assert.equal(snap.runPid, pid);
  assert.ok(snap.held !== undefined, 'the lock and control FIFO are handed over');
  // A client writes while no image reads: the byte waits in the FIFO.
  const fd = fs.openSync(path.join(dir, 'supervise/control'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  fs.writeSync(fd, 'd');
  fs.closeSync(fd);
  const next = new FakeHost();
  const resumed = Supervisor.resume(snap, next, {}, 5, false);
  open.push(resumed);
  assert.equal(resumed.state, 'up');
  assert.equal(resumed.runPid, pid);
  assert.deepEqual(fs.readFileSync(path.join(dir, 'supervise/status')), before, 'status untouched by the hand-over');
  assert.ok(next.watched.has(pid), 'the child is watched by the next image');
  // Acted on at once, not on the event loop's first poll, whose first event might be a
  // command that re-executes again (reexec.test.ts under load: such bytes waited image after image).
  assert.deepEqual(next.kills, [], 'nothing done before the scanner asks');
  resumed.takeWaitingControl();
  assert.deepEqual(next.kills[0], [pid, 15], 'the byte written during the exec is served at once: SIGTERM');
  assert.equal(decodeStatus(fs.readFileSync(path.join(dir, 'supervise/status')))!.wantUp, false, 'and published: want down');
  const kills = next.kills.length;
  resumed.takeWaitingControl();
  assert.equal(next.kills.length, kills, 'nothing more was waiting');
  assert.equal(host.spawned.length + next.spawned.length, 1, 'nothing restarted');
});

test('a supervisor moved to a renamed directory hands over the new path; the next image carries on there', () => {
  const dir = service();
  const host = new FakeHost();
  const sup = Supervisor.open('svc', dir, host);
  const moved = `${dir}-moved`;
  fs.renameSync(dir, moved);
  sup.moveTo(moved);
  const snap = sup.handOver();
  assert.equal(snap.dir, moved);
  const next = new FakeHost();
  const resumed = Supervisor.resume(snap, next, {}, 5, false);
  open.push(resumed);
  assert.equal(resumed.dir, moved);
  resumed.command('d');
  assert.equal(decodeStatus(fs.readFileSync(path.join(moved, 'supervise/status')))!.wantUp, false);
});

test('a crash-looping service: its restart deadline moves by the time the exec took, never resets', () => {
  const dir = service();
  const host = new FakeHost();
  const sup = Supervisor.open('svc', dir, host);
  host.spawned[0]!.onExit(1 << 8); // died at once: restart due in 1 s
  host.advance(300);
  const snap = sup.handOver();
  assert.equal(snap.state, 'down');
  assert.ok(Math.abs(snap.timerInMs! - 700) < 1, `due in ${snap.timerInMs}`);
  const next = new FakeHost();
  const resumed = Supervisor.resume(snap, next, {}, 200, false);
  open.push(resumed);
  next.advance(499);
  assert.equal(next.spawned.length, 0, 'not before the deadline');
  next.advance(1);
  assert.equal(next.spawned.length, 1, 'restarted at the deadline: 700 ms less the 200 ms of the exec');
});

test('an adopted process gone before it could be watched is a death with an unknown status', () => {
  const dir = service();
  const host = new FakeHost();
  const sup = Supervisor.open('svc', dir, host);
  const snap = sup.handOver();
  // A predecessor killed: nothing of its fds is left (the lock is free).
  for (const fd of [snap.held!.lockFd!, snap.held!.controlFd]) fs.closeSync(fd);
  const next = new FakeHost();
  next.gonePids.add(snap.runPid);
  const resumed = Supervisor.resume({ ...snap, held: undefined }, next, {}, 0, true);
  open.push(resumed);
  const status = decodeStatus(fs.readFileSync(path.join(dir, 'supervise/status')))!;
  assert.equal(status.pid, 0);
  assert.equal(status.wstat, UNKNOWN_WSTAT);
  assert.equal(resumed.state, 'down');
});
