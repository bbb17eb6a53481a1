/**
 * Stamps come from the real-time clock, read when each one is made; deadlines come from the
 * monotonic clock. A fake real-time clock is stepped both ways (hours forward, back to
 * 1970), as an NTP step or a board that boots in 1970 would: the status stamps, the death
 * tally, the logger's `t` stamps and archive names follow it at once, while the one-second
 * restart rule and timeout-kill keep their deadlines. Plus the real clock itself: tainNow
 * agrees with Date.now() and has nanoseconds.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Supervisor } from '../../src/supervise/supervisor.ts';
import { Logging } from '../../src/supervise/logging.ts';
import { Logger } from '../../src/log/engine.ts';
import { parseScript } from '../../src/log/script.ts';
import { decodeStatus, type SupervisorStatus } from '../../src/s6/status.ts';
import { decodeDeathTally } from '../../src/s6/deathtally.ts';
import { tainFromUnixMs, tainFormat, tainNow, tainToUnixMs, type Tain } from '../../src/s6/tai.ts';
import { realtimeNow } from '../../src/sys/clock.ts';
import { close, pipe } from '../../src/sys/fd.ts';
import { tmpdir, until } from '../lib/harness.ts';
import { FakeHost } from '../lib/supervisorhost.ts';
import { testHost } from '../lib/loghost.ts';

const HOUR = 3_600_000;
const EXIT = (code: number): number => code << 8;

const open: Supervisor[] = [];
afterEach(() => { for (const sup of open.splice(0)) sup.request('quit'); });

function supervise(files: Record<string, string>, host = new FakeHost()) {
  const dir = path.join(tmpdir(), 'svc');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'run'), '#!/bin/sh\n', { mode: 0o755 });
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  const sup = Supervisor.open('svc', dir, host);
  open.push(sup);
  const status = (): SupervisorStatus => decodeStatus(fs.readFileSync(path.join(dir, 'supervise/status')))!;
  return { dir, host, sup, status };
}

const unixMs = (t: Tain): number => tainToUnixMs(t);

test('status stamps follow real-time steps both ways; the one-second restart rule stays on the monotonic clock', () => {
  const { host, dir, status } = supervise({});
  assert.equal(host.spawned.length, 1);
  assert.equal(unixMs(status().stamp), host.realMs, 'up: stamped with the real-time clock');

  const start = host.realMs;
  host.setRealtime(start + 5 * HOUR); // an NTP step forward, the monotonic clock untouched
  host.last().onExit(EXIT(1));
  assert.equal(unixMs(status().stamp), start + 5 * HOUR, 'the death is stamped with the stepped clock');
  assert.equal(unixMs(decodeDeathTally(fs.readFileSync(path.join(dir, 'supervise/death_tally')))[0]!.stamp), start + 5 * HOUR);
  const [restart] = host.liveTimers();
  assert.equal(restart?.at, host.mono + 1000, 'restart one monotonic second after the death');

  host.setRealtime(0); // back to 1970: the restart deadline does not move
  assert.deepEqual(host.liveTimers().map((t) => t.at), [restart!.at]);
  host.advance(999);
  assert.equal(host.spawned.length, 1, 'not restarted before the monotonic second');
  host.advance(1);
  assert.equal(host.spawned.length, 2, 'restarted at the monotonic second');
  assert.equal(unixMs(status().stamp), 1000, 'the restart is stamped in 1970, one second after the step');
  assert.equal(tainFormat(status().stamp), '@400000000000002600000000', 'TAI64N of 1970-01-01 00:00:01 UTC');
});

test('ready for a monotonic second: a real-time jump of hours does not count as that second, a step back does not delay it', () => {
  const host = new FakeHost();
  host.files.fakeReadiness = true;
  host.keepChildFds = false; // the fake readiness pipe's fd is not a real one
  const { status } = supervise({ 'notification-fd': '3\n' }, host);
  host.files.signalReady();
  assert.equal(status().ready, true);
  assert.equal(unixMs(status().readyStamp), host.realMs, 'readiness stamped with the real-time clock');

  host.setRealtime(host.realMs + 10 * HOUR);
  host.last().onExit(EXIT(1));
  assert.equal(host.spawned.length, 1, 'ten hours of real time are not a monotonic second: no immediate restart');
  host.advance(1000);
  assert.equal(host.spawned.length, 2);
  host.files.signalReady();

  host.setRealtime(0);
  host.advance(1000);
  host.last().onExit(EXIT(1));
  assert.equal(host.spawned.length, 3, 'ready for a monotonic second: restarted at once, though the clock went back');
  assert.equal(unixMs(status().stamp), 1000);
});

test('timeout-kill fires on its monotonic deadline whatever the real-time clock does', () => {
  const { host, sup, status } = supervise({ 'timeout-kill': '3000\n' });
  sup.command('d');
  const downAt = host.realMs;
  assert.equal(unixMs(status().stamp), downAt - host.mono, 'the status write of d keeps the up stamp');
  host.setRealtime(downAt + 24 * HOUR);
  host.advance(2999);
  assert.ok(!host.kills.some(([, sig]) => sig === 9), 'no SIGKILL a day of real time later');
  host.setRealtime(0);
  host.advance(1);
  assert.ok(host.kills.some(([pid, sig]) => pid === 100 && sig === 9), 'SIGKILL at 3000 monotonic ms');
  host.last().onExit(9);
  assert.equal(unixMs(status().stamp), 1, 'the death is stamped in 1970 (1 ms after the step)');
});

test('a logger stamps each chunk with the real-time clock as it is then; archive names follow it too', async () => {
  const dir = path.join(tmpdir(), 'logdir');
  const host = testHost({ fixedMs: Date.UTC(2030, 0, 1) });
  const logger = Logger.open(parseScript(['t', '1', 's4096', 'n10', dir]), host);
  logger.feed(Buffer.from('before\n'));
  host.clock.tain = tainFromUnixMs(Date.UTC(2030, 0, 1) + 5 * HOUR);
  logger.feed(Buffer.from('forward\n'));
  host.clock.tain = tainFromUnixMs(0);
  logger.feed(Buffer.from('1970\n'));
  // Makes current due (size + l >= s): one rotation, named by the clock. (One more would
  // want the same name from this frozen clock, and wait until the clock moves, as s6-log's.)
  logger.feed(Buffer.from(`${'x'.repeat(2100)}\n`));
  await logger.end();
  host.dispose();
  const out = Buffer.concat(host.out).toString().split('\n');
  assert.deepEqual(out.slice(0, 3), [
    `${tainFormat(tainFromUnixMs(Date.UTC(2030, 0, 1)))} before`,
    `${tainFormat(tainFromUnixMs(Date.UTC(2030, 0, 1) + 5 * HOUR))} forward`,
    '@400000000000002500000000 1970',
  ]);
  const archives = fs.readdirSync(dir).filter((n) => n.startsWith('@'));
  assert.deepEqual(archives, ['@400000000000002500000000.s'], 'the archive is named in 1970, as the clock says');
});

test('in-process loggers take their stamps from the hub\'s real-time clock (LoggerEnv.now)', async (t) => {
  const scandir = tmpdir();
  let fake = tainFromUnixMs(Date.UTC(2031, 5, 6));
  const logging = new Logging({
    scandir,
    report: () => {},
    waitPid: () => new Promise<number>(() => {}),
    guard: (_what, fn) => fn(),
    monotonicMs: () => performance.now(),
    now: () => fake,
  });
  const dir = path.join(scandir, 'svc');
  fs.mkdirSync(path.join(dir, 'log'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'log', 't6-log'), 't\n./main\n');
  const [r, w] = pipe();
  t.after(() => { close(r); close(w); });
  logging.logger('svc', dir, r);
  const current = (): string => { try { return fs.readFileSync(path.join(dir, 'log', 'main', 'current'), 'utf8'); } catch { return ''; } };
  fs.writeSync(w, 'one\n');
  await until('the first line', () => current().includes('one\n'));
  fake = tainFromUnixMs(0);
  fs.writeSync(w, 'two\n');
  await until('the second line', () => current().includes('two\n'));
  assert.equal(current(), `${tainFormat(tainFromUnixMs(Date.UTC(2031, 5, 6)))} one\n@400000000000002500000000 two\n`);
  await logging.closeAll();
});

test('tainNow reads the real-time clock at each call, with nanoseconds, not the monotonic one', (t) => {
  // Were stamps still start time + monotonic clock, this would move them five hours ahead.
  const monotonic = performance.now.bind(performance);
  t.mock.method(performance, 'now', () => monotonic() + 5 * HOUR);
  const before = Date.now();
  const stamp = tainNow();
  const after = Date.now();
  const ms = tainToUnixMs(stamp);
  assert.ok(ms >= before - 1 && ms <= after + 1, `${ms} within [${before}, ${after}]`);
  // Nanoseconds, not milliseconds padded with zeros: of 50 readings, some are not whole microseconds.
  const nanos = Array.from({ length: 50 }, () => realtimeNow().nsec);
  assert.ok(nanos.some((n) => n % 1000 !== 0), `nanosecond readings: ${nanos.slice(0, 5).join(', ')}…`);
  assert.ok(nanos.every((n) => n >= 0 && n < 1e9));
});
