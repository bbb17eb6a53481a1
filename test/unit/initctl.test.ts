/**
 * The shutdown daemon's wire format (linux-init.md §3.1): 17-byte requests, the cancel
 * byte, the server-side decoder that survives split requests and garbage, and pid 1's
 * shutdown daemon, which reports garbage without flooding the log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_SHUTDOWND_FIFO, SHUTDOWN_REQUEST_SIZE, ShutdownRequestDecoder, type ShutdownItem,
  effectiveGraceMs, encodeCancel, encodeShutdownRequest, shutdowndFifo,
} from '../../src/s6/initctl.ts';
import { seededRandom } from '../lib/random.ts';
import fs from 'node:fs';
import path from 'node:path';
import { Shutdownd } from '../../src/init/shutdownd.ts';
import { tmpdir, until } from '../lib/harness.ts';

test('the default FIFO is /run/service/s6-linux-init-shutdownd/fifo', () => {
  assert.equal(DEFAULT_SHUTDOWND_FIFO, '/run/service/s6-linux-init-shutdownd/fifo');
  assert.equal(shutdowndFifo('/tmp/sd'), '/tmp/sd/s6-linux-init-shutdownd/fifo');
});

test('a shutdown request is the command byte, the relative TAIN (BE seconds, BE nanoseconds) and the BE grace in ms', () => {
  const buf = encodeShutdownRequest('p', 61_500.25, 5000);
  assert.equal(buf.length, 17);
  assert.equal(buf.toString('hex'), [
    '70', // 'p'
    '000000000000003d', // 61 s
    '1dd13590', // 500,250,000 ns
    '00001388', // 5000 ms
  ].join(''));
  assert.equal(encodeShutdownRequest('S', 0, 0).toString('hex'), `53${'00'.repeat(16)}`);
  assert.equal(encodeShutdownRequest('r', 0, 0)[0], 0x72);
  assert.equal(encodeShutdownRequest('h', 0, 0)[0], 0x68);
});

test('nanoseconds that round up to a whole second carry into the seconds', () => {
  const buf = encodeShutdownRequest('h', 999.9999999, 0);
  assert.equal(buf.readBigUInt64BE(1), 1n);
  assert.equal(buf.readUInt32BE(9), 0);
});

test('the encoder refuses a negative delay, a bad grace or a bad action', () => {
  assert.throws(() => encodeShutdownRequest('p', -1, 0), RangeError);
  assert.throws(() => encodeShutdownRequest('p', Number.NaN, 0), RangeError);
  assert.throws(() => encodeShutdownRequest('p', 0, -1), RangeError);
  assert.throws(() => encodeShutdownRequest('p', 0, 2 ** 32), RangeError);
  assert.throws(() => encodeShutdownRequest('x' as 'p', 0, 0), RangeError);
});

test('cancel is the single byte c', () => {
  assert.deepEqual([...encodeCancel()], [0x63]);
});

test('the decoder reads back what the encoder wrote, several in one chunk', () => {
  const d = new ShutdownRequestDecoder();
  const items = d.push(Buffer.concat([encodeShutdownRequest('r', 60_000, 0), encodeCancel(), encodeShutdownRequest('S', 1.5, 300_000)]));
  assert.deepEqual(items, [
    { kind: 'shutdown', action: 'r', delayMs: 60_000, graceMs: 0 },
    { kind: 'cancel' },
    { kind: 'shutdown', action: 'S', delayMs: 1.5, graceMs: 300_000 },
  ]);
  assert.equal(d.pending, 0);
});

test('a request split across reads is waited for, byte by byte', () => {
  const d = new ShutdownRequestDecoder();
  const req = encodeShutdownRequest('h', 3_600_000, 7000);
  for (let i = 0; i < req.length - 1; i++) {
    assert.deepEqual(d.push(req.subarray(i, i + 1)), []);
    assert.equal(d.pending, i + 1);
  }
  assert.deepEqual(d.push(req.subarray(req.length - 1)), [{ kind: 'shutdown', action: 'h', delayMs: 3_600_000, graceMs: 7000 }]);
  assert.equal(d.pending, 0);
});

test('every split point of two requests gives the same two items', () => {
  const stream = Buffer.concat([encodeShutdownRequest('p', 1000, 1), encodeCancel(), encodeShutdownRequest('r', 2000, 2)]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const d = new ShutdownRequestDecoder();
    const chunk = Buffer.from(stream.subarray(0, cut));
    const items = [...d.push(chunk), ...d.push(stream.subarray(cut))];
    chunk.fill(0); // the decoder must not keep a view of the caller's buffer
    assert.deepEqual(items.map((i) => i.kind), ['shutdown', 'cancel', 'shutdown'], `cut at ${cut}`);
    assert.equal(d.pending, 0);
  }
});

test('the decoder keeps its own copy of a held-back partial request', () => {
  const d = new ShutdownRequestDecoder();
  const req = encodeShutdownRequest('p', 5000, 0);
  const first = Buffer.from(req.subarray(0, 10));
  d.push(first);
  first.fill(0x41);
  assert.deepEqual(d.push(req.subarray(10)), [{ kind: 'shutdown', action: 'p', delayMs: 5000, graceMs: 0 }]);
});

test('an unknown byte is an error naming it, and decoding goes on after it', () => {
  const d = new ShutdownRequestDecoder();
  const items = d.push(Buffer.concat([Buffer.from('A\n'), encodeCancel()]));
  assert.equal(items.length, 3);
  assert.deepEqual(items[0], { kind: 'error', message: "unknown command byte 0x41 ('A') on the shutdown FIFO" });
  assert.deepEqual(items[1], { kind: 'error', message: 'unknown command byte 0x0a on the shutdown FIFO' });
  assert.deepEqual(items[2], { kind: 'cancel' });
});

test('a request whose nanoseconds field is out of range is an error, and the next one still decodes', () => {
  const bad = encodeShutdownRequest('p', 0, 0);
  bad.writeUInt32BE(1_000_000_000, 9);
  const items = new ShutdownRequestDecoder().push(Buffer.concat([bad, encodeShutdownRequest('h', 0, 0)]));
  assert.equal(items[0]!.kind, 'error');
  assert.match((items[0] as { message: string }).message, /nanoseconds/);
  assert.deepEqual(items[1], { kind: 'shutdown', action: 'h', delayMs: 0, graceMs: 0 });
});

test('reset drops a held-back partial request', () => {
  const d = new ShutdownRequestDecoder();
  d.push(Buffer.from('p\0\0'));
  d.reset();
  assert.equal(d.pending, 0);
  assert.deepEqual(d.push(encodeCancel()), [{ kind: 'cancel' }]);
});

test('grace: 0 or more than 300,000 ms keep the current value', () => {
  assert.equal(effectiveGraceMs(0, 3000), 3000);
  assert.equal(effectiveGraceMs(300_001, 3000), 3000);
  assert.equal(effectiveGraceMs(300_000, 3000), 300_000);
  assert.equal(effectiveGraceMs(1, 3000), 1);
});

test('fuzz: random bytes in random chunks never throw, hold back at most 16 bytes, and yield only legal items', (t) => {
  const rand = seededRandom(t).int;
  const legal = (i: ShutdownItem): boolean =>
    (i.kind === 'shutdown' && 'Shpr'.includes(i.action) && Number.isFinite(i.delayMs) && i.delayMs >= 0 && Number.isInteger(i.graceMs))
    || i.kind === 'cancel' || (i.kind === 'error' && typeof i.message === 'string');
  for (let round = 0; round < 200; round++) {
    const d = new ShutdownRequestDecoder();
    // Bias towards command bytes so that whole requests occur, not only errors.
    const alphabet = [0x53, 0x68, 0x70, 0x72, 0x63];
    for (let k = 0; k < 50; k++) {
      const chunk = Buffer.alloc(rand(40));
      for (let j = 0; j < chunk.length; j++) chunk[j] = rand(4) === 0 ? alphabet[rand(alphabet.length)]! : rand(256);
      const items = d.push(chunk);
      for (const item of items) assert.ok(legal(item), JSON.stringify(item));
      assert.ok(d.pending < SHUTDOWN_REQUEST_SIZE);
    }
  }
});

test('1 MB of random bytes in one push: no throw, and every byte is accounted for', (t) => {
  const buf = seededRandom(t).bytes(1 << 20);
  const d = new ShutdownRequestDecoder();
  const items = d.push(buf);
  const consumed = items.reduce((n, i) => n + (i.kind === 'shutdown' ? 17 : 1), 0);
  // Out-of-range nanoseconds errors consume 17 bytes too; count those from their messages.
  const badNano = items.filter((i) => i.kind === 'error' && i.message.includes('nanoseconds')).length;
  assert.equal(consumed + badNano * 16 + d.pending, buf.length);
});

test('the shutdown daemon reports three bad bytes of a read, counts the rest in one line, and takes the request after them', async () => {
  const reports: string[] = [];
  let cancelled = false;
  const d = new Shutdownd({ runRcShutdown: () => Promise.resolve(0), finale: () => {}, report: (level, m) => { reports.push(`${level}: ${m}`); if (m.includes('cancelled')) cancelled = true; } });
  const fifo = path.join(tmpdir('t6-shutdownd-'), 'fifo');
  d.listen(fifo);
  d.request('p', 3_600_000);
  const w = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  fs.writeSync(w, Buffer.concat([Buffer.alloc(1000, 'A'), encodeCancel()]));
  fs.closeSync(w);
  await until('the cancel after the garbage', () => cancelled);
  const bad = reports.filter((r) => r.includes(fifo));
  assert.deepEqual(bad, [
    ...Array.from({ length: 3 }, () => `warning: ${fifo}: unknown command byte 0x41 ('A') on the shutdown FIFO`),
    `warning: ${fifo}: 997 more unknown bytes skipped`,
  ]);
  d.close();
});
