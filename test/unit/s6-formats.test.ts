/**
 * s6's byte formats, byte for byte: TAI64N, the 35-byte status file, the death tally, and
 * s6-svstat's output, checked against the examples verified on bookworm's s6 2.11.3.2 and
 * against a status file written by the real s6-supervise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  tainFormat, tainFromUnixMs, tainPack, tainParse, tainSecondsBetween, tainToUnixMs, tainUnpack, type Tain,
} from '../../src/s6/tai.ts';
import { STATUS_SIZE, type SupervisorStatus, decodeStatus, encodeStatus } from '../../src/s6/status.ts';
import { DEATH_RECORD_SIZE, deathFromWstat, decodeDeathTally, encodeDeathTally } from '../../src/s6/deathtally.ts';
import {
  FIELD_NAMES, FieldListError, formatFields, formatLegacy, parseFieldList, skalibsSignalName, type ServiceView,
} from '../../src/s6/svstat.ts';
import { EventLog, makeService, tmpdir, until } from '../lib/harness.ts';

const hasS6 = spawnSync('s6-supervise', ['-h']).error === undefined;

// --- TAI64N -----------------------------------------------------------------------------

test('TAI64N labels are 2^62 + unix + 37 (10 s + 27 leap seconds), big-endian', () => {
  const t = tainFromUnixMs(Date.UTC(2024, 0, 1) + 250);
  assert.equal(t.sec, (1n << 62n) + BigInt(Date.UTC(2024, 0, 1) / 1000) + 37n);
  assert.equal(t.nano, 250_000_000);
  const buf = Buffer.alloc(12);
  tainPack(t, buf);
  assert.equal(buf.toString('hex'), '40000000659200a50ee6b280');
  assert.deepEqual(tainUnpack(buf), t);
  assert.equal(tainToUnixMs(t), Date.UTC(2024, 0, 1) + 250);
});

test('the text form is @ and 24 lowercase hex digits, and parses back', () => {
  const text = '@400000006b06c71c0f186571';
  const t = tainParse(text)!;
  assert.equal(t.sec, 0x400000006b06c71cn);
  assert.equal(t.nano, 0x0f186571);
  assert.equal(tainFormat(t), text);
  assert.equal(tainParse('@400000006B06C71C0F186571')?.nano, 0x0f186571);
  assert.equal(tainParse('@4000'), undefined);
  assert.equal(tainParse('@400000006b06c71c0f18657g'), undefined);
});

test('whole seconds between two stamps borrow from the nanoseconds and clamp at 0', () => {
  const a: Tain = { sec: 100n, nano: 900_000_000 };
  assert.equal(tainSecondsBetween(a, { sec: 101n, nano: 899_999_999 }), 0);
  assert.equal(tainSecondsBetween(a, { sec: 101n, nano: 900_000_000 }), 1);
  assert.equal(tainSecondsBetween(a, { sec: 99n, nano: 0 }), 0);
});

// --- status -----------------------------------------------------------------------------

const STAMP = tainParse('@400000006b06c71c0f0bfc65')!;
const READY = tainParse('@400000006b06c71c2115df12')!;

function status(over: Partial<SupervisorStatus>): SupervisorStatus {
  return { stamp: STAMP, readyStamp: READY, pid: 0, wstat: 0, paused: false, finishing: false, wantUp: true, ready: false, ...over };
}

test('status is 35 bytes: stamp, readystamp, pid u64 BE, wstat u16 BE, flags', () => {
  const bytes = encodeStatus(status({ pid: 4979, wstat: 0x0f, ready: true, paused: true }));
  assert.equal(bytes.length, STATUS_SIZE);
  assert.equal(bytes.toString('hex'),
    '400000006b06c71c0f0bfc65' + '400000006b06c71c2115df12' + '0000000000001373' + '000f' + '0d');
  assert.deepEqual(decodeStatus(bytes), status({ pid: 4979, wstat: 0x0f, ready: true, paused: true }));
});

test('status flags: paused 1, finishing 2, wantup 4, ready 8 (verified examples)', () => {
  const flags = (s: Partial<SupervisorStatus>): number => encodeStatus(status(s))[34]!;
  assert.equal(flags({ pid: 9, wantUp: true }), 0x04); // just started, not ready
  assert.equal(flags({ wantUp: false, ready: true, wstat: 0x000f }), 0x08); // after s6-svc -d
  assert.equal(flags({ pid: 12, finishing: true, wantUp: true, wstat: 0x0200 }), 0x06); // finish running
  assert.equal(decodeStatus(Buffer.alloc(34)), undefined);
  assert.equal(decodeStatus(Buffer.concat([encodeStatus(status({})), Buffer.from('x')]))?.pid, 0);
});

// --- death tally ------------------------------------------------------------------------

test('death tally: 14-byte records of stamp, exit code (128+sig when killed), signal', () => {
  const records = [deathFromWstat(STAMP, 0x0300), deathFromWstat(READY, 0x000f)];
  assert.deepEqual(records.map((r) => [r.exitCode, r.signal]), [[3, 0], [143, 15]]);
  const bytes = encodeDeathTally(records);
  assert.equal(bytes.length, 2 * DEATH_RECORD_SIZE);
  assert.equal(bytes.toString('hex'), '400000006b06c71c0f0bfc65' + '0300' + '400000006b06c71c2115df12' + '8f0f');
  assert.deepEqual(decodeDeathTally(bytes), records);
  assert.deepEqual(decodeDeathTally(bytes.subarray(0, 20)), []);
});

// --- s6-svstat's output -----------------------------------------------------------------

/** A view `secs` seconds after STAMP (and `readySecs` after READY). */
function view(s: Partial<SupervisorStatus>, opts: { down?: boolean; secs?: number } = {}): ServiceView {
  const secs = opts.secs ?? 0;
  // READY is 0.3 s after STAMP in the same second; 0.6 s past the whole second keeps both counts equal.
  return { status: status(s), normallyUp: opts.down !== true, now: { sec: STAMP.sec + BigInt(secs), nano: 600_000_000 } };
}

test('legacy line: the verified bookworm outputs, byte for byte', () => {
  assert.equal(formatLegacy(view({ pid: 4978 }, { secs: 1 })), 'up (pid 4978) 1 seconds');
  assert.equal(formatLegacy(view({ pid: 4979, ready: true }, { secs: 1 })), 'up (pid 4979) 1 seconds, ready 1 seconds');
  assert.equal(formatLegacy(view({ wstat: 0x000f, wantUp: false, ready: true })), 'down (signal SIGTERM) 0 seconds, normally up, ready 0 seconds');
  assert.equal(formatLegacy(view({ pid: 9262, wantUp: false }, { down: true })), 'up (pid 9262) 0 seconds, normally down, want down');
  assert.equal(formatLegacy(view({ pid: 9300, finishing: true, wstat: 0x0200 })), 'down (exitcode 2) 0 seconds, normally up, want up');
  assert.equal(formatLegacy(view({ wstat: 0x0300, wantUp: false, ready: true }, { secs: 1 })), 'down (exitcode 3) 1 seconds, normally up, ready 1 seconds');
  assert.equal(formatLegacy(view({ wstat: 0x000f, wantUp: false, ready: true }, { down: true }), true), 'down (signal 15) 0 seconds, ready 0 seconds');
});

test('legacy line: paused, suffix order, unknown signals, SIGPOLL, future stamps', () => {
  assert.equal(formatLegacy(view({ pid: 7, paused: true, wantUp: false, ready: true }, { down: true, secs: 61 })),
    'up (pid 7) 61 seconds, normally down, paused, want down, ready 61 seconds');
  assert.equal(formatLegacy(view({ wstat: 0x0040 })), 'down (signal SIG???) 0 seconds, normally up, want up');
  assert.equal(formatLegacy(view({ wstat: 29 })), 'down (signal SIGPOLL) 0 seconds, normally up, want up');
  assert.equal(skalibsSignalName(9), 'SIGKILL');
  assert.equal(formatLegacy(view({ wstat: 0x008b }), true), 'down (signal 11) 0 seconds, normally up, want up'); // core dumped
  const future: ServiceView = { ...view({ pid: 5 }), now: { sec: STAMP.sec - 5n, nano: 0 } };
  assert.equal(formatLegacy(future), 'up (pid 5) 0 seconds');
  assert.equal(formatFields(future, ['updownsince']), tainFormat(future.now)); // s6 replaces the stamp by now
});

test('-o with every field: the verified bookworm line', () => {
  const line = formatFields(view({ pid: 4979, ready: true }, { secs: 1 }),
    parseFieldList('up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum,updownsince,readysince,updownfor,readyfor'));
  assert.equal(line, 'true true true true false 4979 -1 NA -1 @400000006b06c71c0f0bfc65 @400000006b06c71c2115df12 1 1');
});

test('-o fields of a down service, and pgid', () => {
  const killed = view({ wstat: 0x0009, wantUp: false, ready: true, paused: true }, { down: true, secs: 3 });
  assert.equal(formatFields(killed, ['up', 'wantedup', 'normallyup', 'ready', 'paused', 'pid', 'pgid', 'exitcode', 'signal', 'signum', 'updownfor']),
    'false false false false true -1 -1 -1 SIGKILL 9 3');
  const exited = view({ wstat: 0x0100 });
  assert.equal(formatFields(exited, ['exitcode', 'signal', 'signum', 'pgid']), '1 NA -1 -1');
  assert.equal(formatFields(view({ pid: 42 }), ['pgid', 'pid']), '42 42');
});

test('-o names match by prefix in bookworm table order; pgid comes after all of them', () => {
  assert.deepEqual(FIELD_NAMES.slice(0, 13), ['up', 'wantedup', 'normallyup', 'ready', 'paused', 'pid', 'exitcode', 'signal', 'signum', 'updownsince', 'readysince', 'updownfor', 'readyfor']);
  assert.deepEqual(parseFieldList('u'), ['up']);
  assert.deepEqual(parseFieldList('re,p,pi,pg,s,signu,updownf,readyf'), ['ready', 'paused', 'pid', 'pgid', 'signal', 'signum', 'updownfor', 'readyfor']);
  assert.deepEqual(parseFieldList('up,'), ['up']);
  assert.throws(() => parseFieldList('upx'), (e: Error) => e instanceof FieldListError && e.message === 'invalid option field: upx');
  assert.throws(() => parseFieldList(',up'), { message: 'invalid null option field' });
  assert.throws(() => parseFieldList('up,,pid'), { message: 'invalid null option field' });
});

// --- against the real s6-supervise ------------------------------------------------------

test('a status file written by the real s6-supervise decodes, and t6 formats it as s6-svstat does', { skip: !hasS6 && 's6 not installed' }, async () => {
  const base = tmpdir();
  const dir = makeService(path.join(base, 'svc'), { run: '#!/bin/sh\nexec sleep 1000\n' });
  fs.mkdirSync(path.join(dir, 'event'));
  const events = new EventLog(dir);
  const before = tainFromUnixMs(Date.now() - 1000);
  const supervise = spawn('s6-supervise', [dir], { stdio: 'ignore' });
  const exited = new Promise((resolve) => supervise.on('exit', resolve));
  try {
    await events.waitFor(/su/);
    const bytes = fs.readFileSync(path.join(dir, 'supervise', 'status'));
    assert.equal(bytes.length, 35);
    const s = decodeStatus(bytes)!;
    assert.ok(s.pid > 0);
    // u comes once run is spawned; it becomes sleep a moment later (the shell's exec).
    const cmdline = (): string => { try { return fs.readFileSync(`/proc/${s.pid}/cmdline`, 'latin1'); } catch { return ''; } };
    await until('run to exec sleep', () => /^sleep\0/.test(cmdline()));
    assert.match(cmdline(), /^sleep\0/);
    assert.equal(bytes[34], 0x04); // want up, not ready, not paused, not finishing
    assert.equal(s.wstat, 0);
    assert.ok(tainSecondsBetween(before, s.stamp) >= 0 && tainSecondsBetween(s.stamp, tainFromUnixMs(Date.now() + 1000)) >= 0,
      'stamp is now, in TAI64N (unix + 37)');
    assert.equal(encodeStatus(s).toString('hex'), bytes.toString('hex'));
    sameAsS6Svstat(dir, bytes);

    assert.equal(spawnSync('s6-svc', ['-d', dir]).status, 0);
    await events.waitFor(/sudD/);
    const down = fs.readFileSync(path.join(dir, 'supervise', 'status'));
    const d = decodeStatus(down)!;
    assert.equal(d.pid, 0);
    assert.equal(d.wstat, 0x000f);
    assert.equal(down[34], 0x08); // ready (down and finished), not want up
    sameAsS6Svstat(dir, down);
  } finally {
    spawnSync('s6-svc', ['-dx', dir]);
    await exited;
    events.close();
    fs.rmSync(base, { recursive: true, force: true });
  }
});

/** t6's formatting of `bytes` equals real s6-svstat's output for `dir` (seconds aside), in both modes. */
function sameAsS6Svstat(dir: string, bytes: Buffer): void {
  const v: ServiceView = { status: decodeStatus(bytes)!, normallyUp: !fs.existsSync(path.join(dir, 'down')), now: tainFromUnixMs(Date.now()) };
  const secs = (text: string): string => text.replace(/\d+ seconds/g, 'N seconds');
  const real = spawnSync('s6-svstat', [dir], { encoding: 'utf8' }).stdout;
  assert.equal(secs(`${formatLegacy(v)}\n`), secs(real));
  const fields = 'up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum,updownsince,readysince';
  const realFields = spawnSync('s6-svstat', ['-o', fields, dir], { encoding: 'utf8' }).stdout;
  assert.equal(`${formatFields(v, parseFieldList(fields))}\n`, realFields);
}
