/**
 * shutdown's time syntax and warning text (linux-init.md §3.2), the utmp/wtmp records and
 * wall, and /etc/shutdown.allow. Times are local: the file runs in Europe/Paris so that a
 * daylight-saving change can be tested.
 */
process.env.TZ = 'Europe/Paris';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ShutdownTimeError, WALL_NOW, describeDelay, parseShutdownTime, shutdownWarning, wallMessage } from '../../src/init/shutdown-time.ts';
import { UTMP_RECORD_SIZE, UT_TYPE, appendWtmp, decodeUtmp, encodeRunLevelRecord, loggedInUsers, recordBootInWtmp, startUtmp, wall } from '../../src/init/utmp.ts';
import { checkShutdownAllowed, parseShutdownAllow } from '../../src/init/shutdown-allow.ts';
import { tmpdir } from '../lib/harness.ts';

const at = (h: number, m: number, s = 0, ms = 0): Date => new Date(2024, 5, 15, h, m, s, ms);

test('now is 0; +M and M are M minutes', () => {
  const now = at(10, 0, 12, 345);
  assert.equal(parseShutdownTime('now', now), 0);
  assert.equal(parseShutdownTime('+0', now), 0);
  assert.equal(parseShutdownTime('+1', now), 60_000);
  assert.equal(parseShutdownTime('5', now), 300_000);
  assert.equal(parseShutdownTime('+0005', now), 300_000);
});

test('hh:mm is the next time the local clock shows it: later today, or tomorrow', () => {
  const now = at(10, 15, 30);
  assert.equal(parseShutdownTime('10:30', now), 14 * 60_000 + 30_000);
  assert.equal(parseShutdownTime('9:05', now), (22 * 60 + 50) * 60_000 - 30_000);
  assert.equal(parseShutdownTime('0:00', now), (13 * 60 + 45) * 60_000 - 30_000);
  assert.equal(parseShutdownTime('23:59', now), (13 * 60 + 44) * 60_000 - 30_000);
  assert.equal(parseShutdownTime('10:15', now), 24 * 3_600_000 - 30_000, 'the current minute, 30 s in, is past');
  assert.equal(parseShutdownTime('10:15', at(10, 15, 0, 400)), 0, 'within the same second it is now');
});

test('hh:mm across a daylight-saving change counts real time (Paris, 31 March 2024: a 23-hour day)', () => {
  const now = new Date(2024, 2, 30, 12, 0, 0);
  assert.equal(parseShutdownTime('11:00', now), 22 * 3_600_000);
  assert.equal(parseShutdownTime('13:00', now), 3_600_000);
});

test('anything else is "invalid time format"', () => {
  const now = at(10, 0);
  for (const bad of ['', 'later', '+', '+-1', '-5', '1.5', '24:00', '12:60', '123:00', '1:5', '1:005', ':30', '12:', 'now ', '+5m', '1e3', '9999999999']) {
    assert.throws(() => parseShutdownTime(bad, now), (e: unknown) => e instanceof ShutdownTimeError && e.message === 'invalid time format', bad);
  }
});

test('the warning says NOW, or the days, hours, minutes and seconds left, zero parts left out', () => {
  assert.equal(WALL_NOW, '\n\n*** WARNING ***\nThe system is going down NOW!\n');
  assert.equal(shutdownWarning(999), WALL_NOW);
  assert.equal(describeDelay(60_000), 'in 1 minutes');
  assert.equal(describeDelay(((24 + 2) * 3600 + 3 * 60 + 4) * 1000 + 900), 'in 1 days 2 hours 3 minutes 4 seconds');
  assert.equal(describeDelay(2 * 86_400_000 + 5000), 'in 2 days 5 seconds');
  assert.equal(shutdownWarning(3_600_000), '\n\n*** WARNING ***\nThe system is going down in 1 hours!\n');
  assert.equal(wallMessage(60_000, 'bye'), 'bye\n');
  assert.equal(wallMessage(0), WALL_NOW);
});

// --- utmp, wtmp, wall -------------------------------------------------------------------

/** A utmp record as glibc lays it out. */
function utmpRecord(type: number, line: string, user: string, pid = 42): Buffer {
  const b = Buffer.alloc(UTMP_RECORD_SIZE);
  b.writeInt16LE(type, 0);
  b.writeInt32LE(pid, 4);
  b.write(line, 8);
  b.write(user, 44);
  b.write('host.example', 76);
  return b;
}

test('utmp records decode at glibc x86_64 offsets; only USER_PROCESS entries are logged-in users', () => {
  const dir = tmpdir();
  const file = path.join(dir, 'utmp');
  fs.writeFileSync(file, Buffer.concat([
    utmpRecord(2, '~', 'reboot'), // BOOT_TIME
    utmpRecord(UT_TYPE.USER_PROCESS, 'tty1', 'root', 100),
    utmpRecord(6, 'tty2', 'LOGIN'), // LOGIN_PROCESS
    utmpRecord(UT_TYPE.USER_PROCESS, 'pts/3', 'alice'.padEnd(32, 'x')),
    Buffer.alloc(100), // a torn last record is ignored
  ]));
  const all = decodeUtmp(fs.readFileSync(file));
  assert.equal(all.length, 4);
  assert.deepEqual(all[1], { type: 7, pid: 100, line: 'tty1', id: '', user: 'root', host: 'host.example' });
  assert.deepEqual(loggedInUsers(file).map((e) => [e.line, e.user]), [['tty1', 'root'], ['pts/3', 'alice'.padEnd(32, 'x')]]);
  assert.deepEqual(loggedInUsers(path.join(dir, 'missing')), []);
});

test('wall writes to each logged-in terminal once, and skips lines that leave the device directory', () => {
  const dir = tmpdir();
  const dev = path.join(dir, 'dev');
  fs.mkdirSync(path.join(dev, 'pts'), { recursive: true });
  fs.writeFileSync(path.join(dev, 'tty1'), '');
  fs.writeFileSync(path.join(dev, 'pts', '3'), '');
  fs.writeFileSync(path.join(dir, 'secret'), '');
  const utmp = path.join(dir, 'utmp');
  fs.writeFileSync(utmp, Buffer.concat([
    utmpRecord(7, 'tty1', 'root'), utmpRecord(7, 'tty1', 'root'), utmpRecord(7, 'pts/3', 'bob'),
    utmpRecord(7, '../secret', 'eve'), utmpRecord(7, 'tty9', 'gone'), utmpRecord(8, 'pts/3', 'dead'),
  ]));
  assert.equal(wall('hello\n', { utmpPath: utmp, devDir: dev }), 2);
  assert.equal(fs.readFileSync(path.join(dev, 'tty1'), 'utf8'), 'hello\n');
  assert.equal(fs.readFileSync(path.join(dev, 'pts', '3'), 'utf8'), 'hello\n');
  assert.equal(fs.readFileSync(path.join(dir, 'secret'), 'utf8'), '');
  assert.equal(wall('x', { utmpPath: path.join(dir, 'none'), devDir: dev }), 0);
});

test('the wtmp record: RUN_LVL, line ~, user reboot/shutdown, the host; appended only to an existing wtmp', () => {
  const dir = tmpdir();
  const rec = encodeRunLevelRecord('reboot', 1_700_000_000_250, 1234, 'box');
  assert.equal(rec.length, 384);
  assert.deepEqual(decodeUtmp(rec)[0], { type: UT_TYPE.RUN_LVL, pid: 1234, line: '~', id: '', user: 'reboot', host: 'box' });
  assert.equal(rec.readInt32LE(340), 1_700_000_000);
  assert.equal(rec.readInt32LE(344), 250_000);
  const wtmp = path.join(dir, 'wtmp');
  assert.equal(appendWtmp(rec, wtmp), false);
  assert.equal(fs.existsSync(wtmp), false);
  fs.writeFileSync(wtmp, utmpRecord(2, '~', 'reboot'));
  assert.equal(appendWtmp(encodeRunLevelRecord('shutdown', Date.now()), wtmp), true);
  assert.deepEqual(decodeUtmp(fs.readFileSync(wtmp)).map((e) => e.user), ['reboot', 'shutdown']);
});

test('wtmp and utmp are never opened through a link, and a FIFO in their place is refused at once, never waited on', () => {
  const dir = tmpdir();
  const target = path.join(dir, 'precious');
  fs.writeFileSync(target, 'keep me\n');
  const link = path.join(dir, 'wtmp');
  fs.symlinkSync(target, link);
  assert.throws(() => appendWtmp(encodeRunLevelRecord('shutdown', Date.now()), link), { code: 'ELOOP' });
  assert.throws(() => recordBootInWtmp(Date.now(), link), { code: 'ELOOP' });
  assert.throws(() => startUtmp(Date.now(), { utmpPath: link }), { code: 'ELOOP' });
  assert.equal(fs.readFileSync(target, 'utf8'), 'keep me\n', 'the link\'s target untouched');
  const fifo = path.join(dir, 'fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  // No reader: a blocking open would hang here (and pid 1 with it).
  assert.throws(() => appendWtmp(encodeRunLevelRecord('shutdown', Date.now()), fifo), { code: 'ENXIO' });
  assert.throws(() => startUtmp(Date.now(), { utmpPath: fifo }), { code: 'ENXIO' });
  const dirInstead = path.join(dir, 'a-directory');
  fs.mkdirSync(dirInstead);
  assert.throws(() => appendWtmp(encodeRunLevelRecord('shutdown', Date.now()), dirInstead), { code: 'EISDIR' });
});

// --- /etc/shutdown.allow ----------------------------------------------------------------

test('utmp at boot: a fresh file, 0664 and group utmp, with the boot record at the boot time; none without its folder', () => {
  const dir = tmpdir();
  const file = path.join(dir, 'utmp');
  fs.writeFileSync(file, utmpRecord(UT_TYPE.USER_PROCESS, 'tty1', 'ghost')); // left from before: gone
  fs.writeFileSync(path.join(dir, 'group'), 'root:x:0:\nutmp:x:43:\n');
  const bootMs = Date.UTC(2026, 11, 7, 2, 0, 0, 250);
  assert.equal(startUtmp(bootMs, { utmpPath: file, groupPath: path.join(dir, 'group') }), true);
  const buf = fs.readFileSync(file);
  assert.equal(buf.length, UTMP_RECORD_SIZE);
  const [boot] = decodeUtmp(buf);
  assert.deepEqual([boot!.type, boot!.line, boot!.user], [UT_TYPE.BOOT_TIME, '~', 'reboot']);
  assert.equal(buf.readInt32LE(340), bootMs / 1000 - 0.25);
  assert.equal(buf.readInt32LE(344), 250_000);
  assert.deepEqual(loggedInUsers(file), []);
  const st = fs.statSync(file);
  assert.equal(st.mode & 0o777, 0o664);
  if (process.getuid?.() === 0) assert.equal(st.gid, 43);
  assert.equal(startUtmp(bootMs, { utmpPath: path.join(dir, 'no-var-run', 'utmp') }), false);
});

test('the boot in wtmp: a BOOT_TIME record (reboot, ~) appended once the file exists; nothing without it', () => {
  const dir = tmpdir();
  const wtmp = path.join(dir, 'wtmp');
  assert.equal(recordBootInWtmp(1_800_000_000_000, wtmp), false);
  assert.equal(fs.existsSync(wtmp), false, 'never created');
  fs.writeFileSync(wtmp, encodeRunLevelRecord('shutdown', 1_700_000_000_000));
  assert.equal(recordBootInWtmp(1_800_000_000_000, wtmp), true);
  const records = decodeUtmp(fs.readFileSync(wtmp));
  assert.deepEqual(records.map((r) => [r.type, r.line, r.user]), [[UT_TYPE.RUN_LVL, '~', 'shutdown'], [UT_TYPE.BOOT_TIME, '~', 'reboot']]);
  assert.equal(fs.readFileSync(wtmp).readInt32LE(UTMP_RECORD_SIZE + 340), 1_800_000_000);
});

test('shutdown.allow: one name a line, # comments, blank lines, at most 64 names', () => {
  assert.deepEqual(parseShutdownAllow('# admins\nroot\n\n  alice  \n#bob\n'), { users: ['root', 'alice'], truncated: false });
  const many = Array.from({ length: 70 }, (_, i) => `u${i}`).join('\n');
  const r = parseShutdownAllow(many);
  assert.equal(r.users.length, 64);
  assert.equal(r.truncated, true);
});

test('shutdown.allow: no file allows; a listed user logged in allows; otherwise refused', () => {
  const dir = tmpdir();
  const allow = path.join(dir, 'shutdown.allow');
  const utmp = path.join(dir, 'utmp');
  fs.writeFileSync(utmp, Buffer.concat([utmpRecord(7, 'tty1', 'bob'), utmpRecord(6, 'tty2', 'alice')]));
  assert.deepEqual(checkShutdownAllowed(allow, utmp), { allowed: true, user: undefined, warnings: [] });
  fs.writeFileSync(allow, 'alice\n');
  assert.deepEqual(checkShutdownAllowed(allow, utmp), { allowed: false, reason: 'no authorized users logged in', warnings: [] });
  fs.writeFileSync(allow, 'alice\nbob\n');
  assert.deepEqual(checkShutdownAllowed(allow, utmp), { allowed: true, user: 'bob', warnings: [] });
  assert.equal(checkShutdownAllowed(allow, path.join(dir, 'no-utmp')).allowed, false);
  fs.writeFileSync(allow, `bob\n${'#'.repeat(4095)}`);
  const big = checkShutdownAllowed(allow, utmp);
  assert.equal(big.allowed, false);
  assert.match((big as { reason: string }).reason, /too big/);
});
