/**
 * The client library against a fake supervisor made of the same files: a control FIFO the
 * test reads, a status file the test writes, events the test sends with the fifodir
 * notifier, a lock the test holds. No process is started.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  ClientError, probeService, readStatus, scanServices, svOk, svcSend, svscanctlSend, waitFor, type WaitResult,
} from '../../src/s6/client.ts';
import { encodeStatus, type SupervisorStatus } from '../../src/s6/status.ts';
import { makeFifodir, notifyFifodir } from '../../src/s6/fifodir.ts';
import { O_NONBLOCK, O_RDONLY, O_RDWR, O_CREAT, close, mkfifo, open, readNonblocking, tryLock } from '../../src/sys/fd.ts';
import { tainFromUnixMs } from '../../src/s6/tai.ts';
import { tmpdir } from '../lib/harness.ts';

/** A service directory with supervise/ and event/ but no supervisor. */
function fakeService(base: string, name: string, s: Partial<SupervisorStatus> = {}): string {
  const dir = path.join(base, name);
  fs.mkdirSync(path.join(dir, 'supervise'), { recursive: true });
  makeFifodir(path.join(dir, 'event'));
  writeStatus(dir, s);
  return dir;
}

function writeStatus(dir: string, s: Partial<SupervisorStatus>): void {
  const now = tainFromUnixMs(Date.now());
  fs.writeFileSync(path.join(dir, 'supervise', 'status'), encodeStatus({
    stamp: now, readyStamp: now, pid: 0, wstat: 0, paused: false, finishing: false, wantUp: true, ready: false, ...s,
  }));
}

/** Listener FIFOs left in DIR/event. */
function listeners(dir: string): string[] {
  return fs.readdirSync(path.join(dir, 'event')).filter((n) => n.includes('ftrig1'));
}

/** Runs `waitFor` and checks that it leaves no listener FIFO and no timer or handle behind. */
async function wait(dirs: string[], ...rest: Parameters<typeof waitFor> extends [unknown, ...infer R] ? R : never): Promise<WaitResult> {
  const before = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length;
  const r = await waitFor(dirs, ...rest);
  for (const d of dirs) assert.deepEqual(listeners(d), [], 'listener FIFOs removed');
  // Destroyed sockets close their handles on a later turn of the loop.
  const count = (): number => process.getActiveResourcesInfo().filter((x) => x !== 'TTYWrap' && x !== 'Immediate').length;
  for (let i = 0; i < 20 && count() > before; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(count() <= before, `no handle or timer left behind (${process.getActiveResourcesInfo().join(',')})`);
  return r;
}

/** An action that sends `events` to `dir` as the supervisor would (status first, then event). */
function emit(dir: string, steps: [Partial<SupervisorStatus> | undefined, string][]): () => void {
  return () => {
    for (const [s, ev] of steps) {
      if (s !== undefined) writeStatus(dir, s);
      notifyFifodir(path.join(dir, 'event'), ev);
    }
  };
}

test('svcSend writes all command bytes in one write to supervise/control', async () => {
  const base = tmpdir();
  const dir = fakeService(base, 'svc');
  const fifo = path.join(dir, 'supervise', 'control');
  mkfifo(fifo, 0o600);
  const reader = open(fifo, O_RDONLY | O_NONBLOCK);
  try {
    await svcSend(dir, 'dx');
    await svcSend(dir, 'u');
    assert.equal(readNonblocking(reader)?.toString(), 'dxu');
    await svscanctlSend(dir, '').then(() => assert.fail('no .s6-svscan'), (e: ClientError) => assert.equal(e.code, 'not-supervised'));
  } finally {
    close(reader);
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('svcSend failures: no reader, no supervise/, no control FIFO, no directory', async () => {
  const base = tmpdir();
  const dir = fakeService(base, 'svc');
  const fails = async (d: string): Promise<ClientError> => {
    try { await svcSend(d, 'u'); } catch (e) { assert.ok(e instanceof ClientError); return e; }
    throw new Error('svcSend succeeded');
  };
  try {
    let e = await fails(dir); // supervise/ exists but control does not
    assert.equal(e.code, 'broken-supervise-dir');
    assert.equal(e.message, `something is wrong with the ${dir}/supervise directory: No such file or directory`);
    mkfifo(path.join(dir, 'supervise', 'control'), 0o600);
    e = await fails(dir); // nobody reads the FIFO: ENXIO
    assert.equal(e.code, 'not-supervised');
    assert.equal(e.message, `unable to control ${dir}: supervisor not listening`);
    const bare = path.join(base, 'bare');
    fs.mkdirSync(bare);
    assert.equal((await fails(bare)).code, 'not-supervised');
    e = await fails(path.join(base, 'absent'));
    assert.equal(e.code, 'system');
    assert.equal(e.errno, 'ENOENT');
    fs.writeFileSync(path.join(base, 'file'), '');
    assert.equal((await fails(path.join(base, 'file'))).code, 'system');
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('svOk sees a lock held on supervise/lock; probeService then reads status and down', async () => {
  const base = tmpdir();
  const dir = fakeService(base, 'svc', { pid: 42 });
  try {
    assert.equal(await svOk(dir), false);
    assert.deepEqual(await probeService(dir), { supervised: false });
    const fd = open(path.join(dir, 'supervise', 'lock'), O_RDWR | O_CREAT);
    assert.equal(await svOk(dir), false, 'an unlocked lock file is not a supervisor');
    assert.ok(tryLock(fd));
    assert.equal(await svOk(dir), true);
    const p = await probeService(dir);
    assert.ok(p.supervised);
    assert.equal(p.status.pid, 42);
    assert.equal(p.normallyUp, true);
    fs.writeFileSync(path.join(dir, 'down'), '');
    assert.equal(readStatus(dir).normallyUp, false);
    close(fd);
    assert.equal(await svOk(dir), false);
    fs.writeFileSync(path.join(dir, 'supervise', 'status'), Buffer.alloc(20));
    assert.throws(() => readStatus(dir), { message: `unable to read status for ${dir}: Broken pipe` });
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('probeService takes a reader on supervise/control as a live supervisor, without the lock', async () => {
  const base = tmpdir();
  const dir = fakeService(base, 'svc', { pid: 43 });
  const fifo = path.join(dir, 'supervise', 'control');
  mkfifo(fifo, 0o600);
  try {
    assert.deepEqual(await probeService(dir), { supervised: false }, 'a FIFO nobody reads proves nothing');
    const reader = open(fifo, O_RDONLY | O_NONBLOCK);
    const p = await probeService(dir);
    close(reader);
    assert.ok(p.supervised && p.status.pid === 43);
    assert.equal(await svOk(dir), false, 't6-svok asks the lock only, as s6-svok');
    // a regular file in place of the FIFO is not a reader
    fs.rmSync(fifo);
    fs.writeFileSync(fifo, '');
    assert.deepEqual(await probeService(dir), { supervised: false });
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('scanServices lists non-dot directories and symlinks, with log/, in name order', async () => {
  const base = tmpdir();
  const scan = path.join(base, 'scan');
  fs.mkdirSync(scan);
  try {
    fakeService(scan, 'b', { pid: 7 });
    fakeService(path.join(scan, 'b'), 'log');
    fakeService(base, 'elsewhere');
    fs.symlinkSync(path.join(base, 'elsewhere'), path.join(scan, 'a'));
    fs.mkdirSync(path.join(scan, '.s6-svscan'));
    fs.writeFileSync(path.join(scan, 'notadir'), '');
    const fd = open(path.join(scan, 'b', 'supervise', 'lock'), O_RDWR | O_CREAT);
    assert.ok(tryLock(fd));
    let entries = await scanServices(scan);
    assert.deepEqual(entries.map((e) => [e.name, e.supervised]), [['a', false], ['b', true], ['b/log', false]]);
    const fifo = path.join(base, 'elsewhere', 'supervise', 'control');
    mkfifo(fifo, 0o600);
    const reader = open(fifo, O_RDONLY | O_NONBLOCK);
    entries = await scanServices(scan);
    close(reader);
    close(fd);
    assert.deepEqual(entries.map((e) => [e.name, e.supervised]), [['a', true], ['b', true], ['b/log', false]]);
    await assert.rejects(scanServices(path.join(base, 'nope')), { code: 'system' });
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('waitFor: already in the wanted state returns at once', async () => {
  const base = tmpdir();
  const up = fakeService(base, 'up', { pid: 5 });
  const down = fakeService(base, 'down', { pid: 0, ready: true });
  try {
    assert.deepEqual(await wait([up], 'u', 'all', 1000), { reached: true, failures: 0, timedOut: false });
    assert.deepEqual(await wait([down], 'd', 'all', 1000), { reached: true, failures: 0, timedOut: false });
    assert.deepEqual(await wait([down], 'D', 'all', 1000), { reached: true, failures: 0, timedOut: false });
    // finishing counts as down, and its pid is the finish script's
    const finishing = fakeService(base, 'finishing', { pid: 9, finishing: true });
    assert.equal((await wait([finishing], 'd', 'all', 1000)).reached, true);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('waitFor: events sent by the action after subscribing are seen (u, U, d, D)', async () => {
  const base = tmpdir();
  const dir = fakeService(base, 'svc', { pid: 0 });
  try {
    let r = await wait([dir], 'u', 'all', 5000, emit(dir, [[{ pid: 10 }, 'u']]));
    assert.deepEqual(r, { reached: true, failures: 0, timedOut: false });
    r = await wait([dir], 'U', 'all', 5000, emit(dir, [[{ pid: 10, ready: true }, 'U']]));
    assert.equal(r.reached, true);
    r = await wait([dir], 'D', 'all', 5000, emit(dir, [[{ pid: 0 }, 'd'], [{ pid: 0, ready: true }, 'D']]));
    assert.equal(r.reached, true);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('waitFor: -t expires with timedOut and releases everything', async () => {
  const base = tmpdir();
  const dir = fakeService(base, 'svc', { pid: 0 });
  try {
    const t0 = Date.now();
    assert.deepEqual(await wait([dir], 'u', 'all', 100), { reached: false, failures: 0, timedOut: true });
    assert.ok(Date.now() - t0 >= 95);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('waitFor: all vs any', async () => {
  const base = tmpdir();
  const a = fakeService(base, 'a', { pid: 0 });
  const b = fakeService(base, 'b', { pid: 0 });
  try {
    assert.equal((await wait([a, b], 'u', 'any', 5000, emit(b, [[{ pid: 3 }, 'u']]))).reached, true);
    writeStatus(b, { pid: 0 });
    assert.equal((await wait([a, b], 'u', 'all', 150, emit(b, [[{ pid: 3 }, 'u']]))).timedOut, true);
    assert.equal((await wait([a, b], 'u', 'all', 5000, emit(a, [[{ pid: 4 }, 'u']]))).reached, true);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('waitFor: O while waiting for up is a permanent failure; x short of the goal too', async () => {
  const base = tmpdir();
  const dir = fakeService(base, 'svc', { pid: 0 });
  try {
    let r = await wait([dir], 'U', 'all', 5000, emit(dir, [[{ pid: 8 }, 'u'], [{ pid: 0 }, 'd'], [{ pid: 0, ready: true }, 'OD']]));
    assert.deepEqual(r, { reached: true, failures: 1, timedOut: false });
    // O does not matter when waiting for down
    r = await wait([dir], 'd', 'all', 5000, emit(dir, [[undefined, 'O']]));
    assert.deepEqual(r, { reached: true, failures: 0, timedOut: false });
    r = await wait([dir], 'u', 'all', 5000, emit(dir, [[undefined, 'x']]));
    assert.deepEqual(r, { reached: true, failures: 1, timedOut: false });
    r = await wait([dir], 'd', 'all', 5000, emit(dir, [[undefined, 'x']]));
    assert.deepEqual(r, { reached: true, failures: 0, timedOut: false }, 'x when already down is no failure');
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('waitFor: restart waits for down first, then up; a burst dDu counts', async () => {
  const base = tmpdir();
  const dir = fakeService(base, 'svc', { pid: 20 });
  try {
    // Only "up" again is not a restart
    assert.equal((await wait([dir], 'r', 'all', 150, emit(dir, [[undefined, 'u']]))).timedOut, true);
    let r = await wait([dir], 'r', 'all', 5000, emit(dir, [[{ pid: 0 }, 'd'], [{ pid: 0, ready: true }, 'D'], [{ pid: 21 }, 'u']]));
    assert.equal(r.reached, true);
    // the whole restart in one write (s6 would drop the tail of the burst)
    r = await wait([dir], 'r', 'all', 5000, emit(dir, [[{ pid: 22 }, 'dDu']]));
    assert.equal(r.reached, true);
    // with restartVia D (s6-svlisten), d alone does not end the first phase
    assert.equal((await wait([dir], 'r', 'all', 150, emit(dir, [[undefined, 'du']]), { restartVia: 'D' })).timedOut, true);
    assert.equal((await wait([dir], 'R', 'all', 5000, emit(dir, [[undefined, 'dDuU']]), { restartVia: 'D' })).reached, true);
    // a supervisor that exits during the first phase ends the wait with a failure
    r = await wait([dir], 'r', 'all', 5000, emit(dir, [[undefined, 'x']]));
    assert.deepEqual(r, { reached: false, failures: 1, timedOut: false });
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('waitFor: a missing status file is a system error, and nothing is left behind', async () => {
  const base = tmpdir();
  const dir = path.join(base, 'svc');
  fs.mkdirSync(dir);
  try {
    await assert.rejects(waitFor([dir], 'u', 'all', 1000), (e: ClientError) => e.code === 'system' && /unable to read status for/.test(e.message));
    assert.deepEqual(listeners(dir), []);
    // an action that throws is rethrown after cleanup
    const ok = fakeService(base, 'ok', { pid: 0 });
    await assert.rejects(waitFor([ok], 'u', 'all', 1000, () => { throw new Error('boom'); }), /boom/);
    assert.deepEqual(listeners(ok), []);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});
