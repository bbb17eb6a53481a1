/**
 * t6-rc's settle rule (src/rc/settle.ts, issue 14): when a longrun started with a settle
 * time counts as up, and when it died first. The rule alone, byte by byte; then
 * startSettled against a servicedir whose "supervisor" is this test (a control FIFO it
 * reads, a status file and event bytes it writes), so no process is involved.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SettleRule, startSettled } from '../../src/rc/settle.ts';
import { encodeStatus } from '../../src/s6/status.ts';
import { makeFifodir, notifyFifodir } from '../../src/s6/fifodir.ts';
import { tainNow } from '../../src/s6/tai.ts';
import { O_NONBLOCK, O_RDONLY, mkfifo, open } from '../../src/sys/fd.ts';
import { tmpdir } from '../lib/harness.ts';

const down = { up: false, ready: false };

test('without readiness: the settle timer starts at u, a d before it fires is a death; settle 0 is s6-rc (up at u)', () => {
  const r = new SettleRule(false, 500);
  assert.equal(r.start(down), 'wait');
  assert.equal(r.event('s'), 'wait');
  assert.equal(r.event('u'), 'arm');
  assert.equal(r.event('d'), 'died');
  assert.equal(new SettleRule(false, 0).event('u'), 'up');
  assert.equal(new SettleRule(false, 500).start({ up: true, ready: false }), 'arm', 'already up: the timer starts now');
});

test('with readiness: up at U, whatever the settle time; a d before U is a death; U without its u still counts', () => {
  const r = new SettleRule(true, 500);
  assert.equal(r.start(down), 'wait');
  assert.equal(r.event('u'), 'wait');
  assert.equal(r.event('d'), 'died');
  const s = new SettleRule(true, 0);
  s.start(down);
  assert.equal(s.event('u'), 'wait');
  assert.equal(s.event('U'), 'up');
  assert.equal(new SettleRule(true, 0).event('U'), 'up');
  assert.equal(new SettleRule(true, 9).start({ up: true, ready: true }), 'up');
  assert.equal(new SettleRule(true, 9).start({ up: true, ready: false }), 'wait');
});

test("a d or D while down (a previous run's finish ending) is not a death of this start; x and O fail it", () => {
  const r = new SettleRule(false, 500);
  r.start(down);
  assert.equal(r.event('d'), 'wait');
  assert.equal(r.event('D'), 'wait');
  assert.equal(r.event('u'), 'arm');
  assert.equal(r.up, true);
  assert.equal(new SettleRule(false, 5).event('x'), 'failed');
  assert.equal(new SettleRule(true, 5).event('O'), 'failed');
});

/** A servicedir played by the test: it reads control bytes and answers with status and events. */
function fakeService(onControl: (byte: string, sd: FakeService) => void): FakeService {
  const dir = tmpdir('t6-settle-');
  fs.mkdirSync(path.join(dir, 'supervise'));
  makeFifodir(path.join(dir, 'event'));
  mkfifo(path.join(dir, 'supervise/control'), 0o600);
  const sd: FakeService = {
    dir,
    status(pid, wstat = 0, ready = false) {
      const now = tainNow();
      fs.writeFileSync(path.join(dir, 'supervise/status'), encodeStatus({ stamp: now, readyStamp: now, pid, wstat, paused: false, finishing: false, wantUp: true, ready }));
    },
    event(bytes) { notifyFifodir(path.join(dir, 'event'), bytes); },
    close() { control.destroy(); fs.rmSync(dir, { recursive: true, force: true }); },
  };
  sd.status(0);
  const control = new net.Socket({ fd: open(path.join(dir, 'supervise/control'), O_RDONLY | O_NONBLOCK), readable: true, writable: false });
  control.on('data', (chunk: Buffer) => { for (const b of chunk.toString('latin1')) onControl(b, sd); });
  return sd;
}

interface FakeService {
  dir: string;
  status(pid: number, wstat?: number, ready?: boolean): void;
  event(bytes: string): void;
  close(): void;
}

test('startSettled: run exits 127 just after u: the start fails at once with the exit code, not at the timeout', async () => {
  const sd = fakeService((b, s) => {
    if (b !== 'u') return;
    s.status(4242);
    s.event('u');
    s.status(0, 127 << 8);
    s.event('d');
  });
  try {
    const t0 = performance.now();
    const f = await startSettled(sd.dir, { readiness: false, settleMs: 60_000, timeoutMs: 0 });
    assert.equal(f?.kind, 'died');
    assert.equal(f.kind === 'died' && f.wstat, 127 << 8);
    assert.ok(performance.now() - t0 < 30_000);
  } finally {
    sd.close();
  }
});

test('startSettled: a service that stays up counts as up once the settle time passed', async () => {
  let upAt = 0;
  const sd = fakeService((b, s) => { if (b === 'u') { s.status(4242); upAt = performance.now(); s.event('u'); } });
  try {
    assert.equal(await startSettled(sd.dir, { readiness: false, settleMs: 50, timeoutMs: 0 }), undefined);
    assert.ok(performance.now() - upAt >= 49, 'not before the settle time');
  } finally {
    sd.close();
  }
});

test('startSettled: a readiness service is up at U; never ready, it times out waiting for readiness', async () => {
  const ready = fakeService((b, s) => { if (b === 'u') { s.status(4242); s.event('u'); s.status(4242, 0, true); s.event('U'); } });
  const mute = fakeService((b, s) => { if (b === 'u') { s.status(4242); s.event('u'); } });
  try {
    assert.equal(await startSettled(ready.dir, { readiness: true, settleMs: 60_000, timeoutMs: 0 }), undefined);
    assert.deepEqual(await startSettled(mute.dir, { readiness: true, settleMs: 0, timeoutMs: 30 }), { kind: 'timed-out', ms: 30, waiting: 'readiness', settleMs: 0 });
  } finally {
    ready.close();
    mute.close();
  }
});

test('startSettled: no supervisor reading the control FIFO is not-supervised; a missing directory a system failure', async () => {
  const dir = tmpdir('t6-settle-');
  fs.mkdirSync(path.join(dir, 'supervise'));
  mkfifo(path.join(dir, 'supervise/control'), 0o600);
  fs.writeFileSync(path.join(dir, 'supervise/status'), encodeStatus({ stamp: tainNow(), readyStamp: tainNow(), pid: 0, wstat: 0, paused: false, finishing: false, wantUp: false, ready: false }));
  try {
    assert.equal((await startSettled(dir, { readiness: false, settleMs: 10, timeoutMs: 0 }))?.kind, 'not-supervised');
    assert.equal((await startSettled(path.join(dir, 'nope'), { readiness: false, settleMs: 10, timeoutMs: 0 }))?.kind, 'system');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
