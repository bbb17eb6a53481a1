/**
 * The event/ fifodir notifier keeps its contract, "never throws", whatever it finds: an
 * unreadable directory, entries that only look like listeners, listener FIFOs that cannot
 * be removed (a read-only filesystem, simulated by making fs.rmSync fail).
 */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { listenFifodir, makeFifodir, notifyFifodir } from '../../src/s6/fifodir.ts';
import { mkfifo } from '../../src/sys/fd.ts';
import { tmpdir } from '../lib/harness.ts';

/** A name of the listener shape: `ftrig1:@` + 24 hex digits + `:` + 6 characters (39 bytes). */
function listenerName(suffix: string): string {
  return `ftrig1:@${'4'.padEnd(24, '0')}:${suffix}`;
}

function erofs(file: unknown): Error {
  return Object.assign(new Error(`EROFS: read-only file system, rm '${String(file)}'`), { code: 'EROFS', errno: -30 });
}

test('a listener FIFO nobody reads is removed; one that cannot be removed stays, and nothing throws', (t) => {
  const dir = path.join(tmpdir(), 'event');
  makeFifodir(dir);
  const stale = path.join(dir, listenerName('aaaaaa'));
  mkfifo(stale, 0o600);
  const rm = mock.method(fs, 'rmSync', (file: fs.PathLike) => { throw erofs(file); });
  t.after(() => rm.mock.restore());
  assert.equal(notifyFifodir(dir, 'd'), 0);
  assert.ok(fs.existsSync(stale), 'left in place');
  rm.mock.restore();
  assert.equal(notifyFifodir(dir, 'd'), 0);
  assert.ok(!fs.existsSync(stale), 'removed once the filesystem allows');
});

test('a reader that goes away between open and write (EPIPE) with a failing removal throws nothing', (t) => {
  const dir = path.join(tmpdir(), 'event');
  const received: string[] = [];
  const listener = listenFifodir(dir, (b) => received.push(b));
  t.after(() => listener.close());
  const write = mock.method(fs, 'writeSync', () => { throw Object.assign(new Error('EPIPE: broken pipe, write'), { code: 'EPIPE', errno: -32 }); });
  const rm = mock.method(fs, 'rmSync', (file: fs.PathLike) => { throw erofs(file); });
  try {
    assert.equal(notifyFifodir(dir, 'u'), 0);
    assert.equal(rm.mock.callCount(), 1, 'the removal was tried');
  } finally {
    write.mock.restore();
    rm.mock.restore();
  }
});

test('an unreadable event directory, and entries that only look like listeners, throw nothing', (t) => {
  const dir = path.join(tmpdir(), 'event');
  makeFifodir(dir);
  fs.mkdirSync(path.join(dir, listenerName('dirdir')));
  fs.symlinkSync('/nonexistent/target', path.join(dir, listenerName('dangle')));
  fs.writeFileSync(path.join(dir, 'ftrig1:short'), '');
  assert.equal(notifyFifodir(dir, 'x'), 0);
  assert.equal(notifyFifodir(path.join(dir, 'missing'), 'x'), 0);
  const readdir = mock.method(fs, 'readdirSync', () => { throw Object.assign(new Error('EIO: i/o error, scandir'), { code: 'EIO', errno: -5 }); });
  t.after(() => readdir.mock.restore());
  assert.equal(notifyFifodir(dir, 'x'), 0);
});

test('entries in event/ that are not FIFOs, or are links, get no byte: a root notifier writes into listener FIFOs only', () => {
  const base = tmpdir();
  const dir = path.join(base, 'event');
  makeFifodir(dir);
  const target = path.join(base, 'root-file');
  fs.writeFileSync(target, 'untouched\n', { mode: 0o600 });
  const targetFifo = path.join(base, 'root-fifo');
  mkfifo(targetFifo, 0o600);
  const reader = fs.openSync(targetFifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    fs.symlinkSync(target, path.join(dir, listenerName('tofile')));
    fs.symlinkSync(targetFifo, path.join(dir, listenerName('tofifo')));
    fs.writeFileSync(path.join(dir, listenerName('plain1')), 'plain\n');
    const received: string[] = [];
    const listener = listenFifodir(dir, (b) => received.push(b));
    try {
      assert.equal(notifyFifodir(dir, 'u'), 1, 'only the real listener');
    } finally {
      listener.close();
    }
    assert.equal(fs.readFileSync(target, 'utf8'), 'untouched\n');
    assert.equal(fs.readFileSync(path.join(dir, listenerName('plain1')), 'utf8'), 'plain\n');
    const got = Buffer.alloc(16);
    // No writer: EOF (0) or EAGAIN; a byte would mean it was written through the link.
    const n = ((): number => { try { return fs.readSync(reader, got); } catch { return 0; } })();
    assert.equal(n, 0, 'nothing went into the FIFO behind the link');
  } finally {
    fs.closeSync(reader);
  }
});
