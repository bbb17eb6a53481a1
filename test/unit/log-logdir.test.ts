/** Logdirs: rotation by size, archive count and total size, processors, start-up recovery, full disks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseScript } from '../../src/log/script.ts';
import { Logger } from '../../src/log/engine.ts';
import { Logdir, LogdirError } from '../../src/log/logdir.ts';
import { testHost } from '../lib/loghost.ts';
import { until } from '../lib/harness.ts';

const ARCHIVE = /^@[0-9a-f]{24}\.[su]$/;
const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 't6logdir-'));
const archives = (dir: string): string[] => fs.readdirSync(dir).filter((n) => ARCHIVE.test(n)).sort();
const all = (dir: string): string => [...archives(dir), 'current'].map((n) => fs.readFileSync(path.join(dir, n), 'latin1')).join('');
const lines = (from: number, to: number): string => { let s = ''; for (let i = from; i < to; i++) s += `line ${String(i).padStart(6, '0')} ${'x'.repeat(80)}\n`; return s; };

async function feedAll(words: string[], text: string, chunk = 4096): Promise<void> {
  const host = testHost();
  const logger = Logger.open(parseScript(words), host);
  for (let i = 0; i < text.length; i += chunk) {
    if (!logger.feed(Buffer.from(text.slice(i, i + chunk)))) await new Promise<void>((r) => { logger.onDrain = r; });
  }
  await logger.end();
  host.dispose();
}

test('rotation by size: archives end on a newline, each at least s-l bytes, nothing lost; current is u+x after exit', async () => {
  const root = tmp();
  const dir = path.join(root, 'log');
  const text = lines(0, 2000);
  await feedAll(['s4096', 'l1000', 'n100', dir], text);
  const names = archives(dir);
  assert.ok(names.length > 20, `${names.length} archives`);
  for (const n of names) {
    const data = fs.readFileSync(path.join(dir, n), 'latin1');
    assert.ok(data.endsWith('\n'));
    assert.ok(data.length >= 4096 - 1000, `${n}: ${data.length}`);
    // rotation at the first line that reaches s-l; never past s, even while the previous
    // rotation's fsync still runs
    assert.ok(data.length <= 4096, `${n}: ${data.length}`);
    assert.equal(fs.statSync(path.join(dir, n)).mode & 0o777, 0o744);
  }
  assert.equal(all(dir), text);
  assert.equal(fs.statSync(path.join(dir, 'current')).mode & 0o777, 0o744);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.ok(fs.existsSync(path.join(dir, 'lock')));
  assert.ok(fs.existsSync(path.join(dir, 'state')));
  fs.rmSync(root, { recursive: true });
});

test('n keeps that many archives (the newest); S caps their total size', async () => {
  const root = tmp();
  const text = lines(0, 2000);
  await feedAll(['s4096', 'l0', 'n3', path.join(root, 'a')], text);
  const kept = archives(path.join(root, 'a'));
  assert.equal(kept.length, 3);
  const tailText = kept.map((n) => fs.readFileSync(path.join(root, 'a', n), 'latin1')).join('') + fs.readFileSync(path.join(root, 'a/current'), 'latin1');
  assert.ok(text.endsWith(tailText));
  await feedAll(['s4096', 'l0', 'n100', 'S10000', path.join(root, 'b')], text);
  const sizes = archives(path.join(root, 'b')).map((n) => fs.statSync(path.join(root, 'b', n)).size);
  assert.ok(sizes.reduce((a, b) => a + b, 0) <= 10000);
  assert.ok(sizes.length >= 1 && sizes.length <= 3);
  fs.rmSync(root, { recursive: true });
});

test('the logdir lock is an fcntl lock: a second logger (t6 or s6-log) is refused while the first holds it', async () => {
  const root = tmp();
  const dir = path.join(root, 'log');
  const host = testHost();
  const spec = parseScript([dir]).logdirs[0]!;
  const ld = Logdir.open(spec, host);
  assert.throws(() => Logdir.open(spec, host), (e: unknown) => e instanceof LogdirError && /unable to lock .*lock: Device or resource busy/.test(e.message));
  if (fs.existsSync('/usr/bin/s6-log')) {
    let status = 0;
    try { execFileSync('/usr/bin/s6-log', [dir], { input: '', stdio: ['pipe', 'ignore', 'pipe'] }); } catch (e) { status = (e as { status: number }).status; }
    assert.equal(status, 111);
  }
  await ld.close();
  assert.doesNotThrow(() => execFileSync('/usr/bin/s6-log', [dir], { input: 'after\n' }));
  host.dispose();
  fs.rmSync(root, { recursive: true });
});

test('a processor (?) filters each rotated file: processed output archived as .s, state carried over', async () => {
  const root = tmp();
  const dir = path.join(root, 'log');
  // gzip the file, and count rotations in the state file (fd 4 in, fd 5 out)
  const proc = '?gzip -c && n=$(cat <&4); echo $((${n:-0}+1)) >&5';
  const text = lines(0, 300);
  await feedAll(['s4096', 'l0', 'n100', proc, dir], text, 1000);
  const names = archives(dir);
  assert.ok(names.length >= 5);
  let plain = '';
  for (const n of names) plain += execFileSync('gunzip', ['-c'], { input: fs.readFileSync(path.join(dir, n)) }).toString('latin1');
  plain += fs.readFileSync(path.join(dir, 'current'), 'latin1');
  assert.equal(plain, text);
  assert.equal(fs.readFileSync(path.join(dir, 'state'), 'utf8').trim(), String(names.length));
  for (const f of ['previous', 'processed', 'newstate']) assert.equal(fs.existsSync(path.join(dir, f)), false, f);
  fs.rmSync(root, { recursive: true });
});

test('a failing processor is retried after r ms; input waits once the next rotation is due', async () => {
  const root = tmp();
  const dir = path.join(root, 'log');
  const flag = path.join(root, 'ok');
  const host = testHost();
  const logger = Logger.open(parseScript(['s4096', 'l0', 'r30', `?test -e ${flag} && cat`, dir]), host);
  // the first rotation's processor fails; input goes on into the new current until the
  // next rotation is due, then waits
  let n = 0;
  while (n < 1000 && logger.feed(Buffer.from(lines(n, n + 10)))) n += 10;
  n += 10;
  assert.ok(n < 1000 && n >= 80, `refused after ${n} lines`);
  let drained = false;
  logger.onDrain = () => { drained = true; };
  // The processor fails, and fails again when retried r ms later: input still waits.
  const failures = (): number => host.warnings.filter((w) => /processor .* exited 1/.test(w)).length;
  await until('the processor to fail, and fail again on its retry', () => failures() >= 2);
  assert.equal(drained, false);
  assert.ok(host.warnings.some((w) => /processor .* exited 1/.test(w)), host.warnings.join('\n'));
  fs.writeFileSync(flag, '');
  await until('input to be taken again', () => drained);
  assert.equal(drained, true);
  await logger.end();
  host.dispose();
  assert.equal(all(dir), lines(0, n));
  fs.rmSync(root, { recursive: true });
});

test('start-up recovery: unfinished current and previous become .u; processed with u+x becomes .s', async () => {
  const root = tmp();
  const dir = path.join(root, 'log');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'current'), 'cur\n', { mode: 0o644 });
  fs.writeFileSync(path.join(dir, 'previous'), 'prev\n', { mode: 0o744 });
  fs.writeFileSync(path.join(dir, 'state'), 'old');
  fs.writeFileSync(path.join(dir, 'newstate'), 'new');
  await feedAll([dir], 'next\n');
  const names = archives(dir);
  assert.deepEqual(names.map((n) => n.slice(-1)), ['u', 'u']);
  assert.deepEqual(names.map((n) => fs.readFileSync(path.join(dir, n), 'utf8')), ['prev\n', 'cur\n']);
  assert.equal(fs.readFileSync(path.join(dir, 'state'), 'utf8'), '');
  assert.equal(fs.existsSync(path.join(dir, 'newstate')), false);
  assert.equal(fs.readFileSync(path.join(dir, 'current'), 'utf8'), 'next\n');
  // a finished current (u+x) is appended to
  await feedAll([dir], 'more\n');
  assert.equal(fs.readFileSync(path.join(dir, 'current'), 'utf8'), 'next\nmore\n');
  assert.equal(archives(dir).length, 2);
  // processed with u+x: previous is dropped, processed archived as .s
  fs.chmodSync(path.join(dir, 'current'), 0o644);
  fs.writeFileSync(path.join(dir, 'previous'), 'raw\n');
  fs.writeFileSync(path.join(dir, 'processed'), 'done\n', { mode: 0o744 });
  await feedAll([dir], 'x\n');
  const after = archives(dir);
  const contents = after.map((n) => `${n.slice(-1)}:${fs.readFileSync(path.join(dir, n), 'utf8')}`);
  assert.deepEqual(contents.slice(2), ['s:done\n', 'u:next\nmore\n']);
  assert.equal(fs.existsSync(path.join(dir, 'previous')), false);
  fs.rmSync(root, { recursive: true });
});

test('an archive that cannot be removed is reported and kept; trimming stops at the end of the list (S still exceeded)', async () => {
  const root = tmp();
  const dir = path.join(root, 'log');
  fs.mkdirSync(dir);
  // A directory with an archive's name: unlink(2) fails (EISDIR), and its size keeps the total over S.
  const stuck = path.join(dir, '@400000000000000000000000.s');
  fs.mkdirSync(stuck);
  fs.writeFileSync(path.join(dir, 'current'), 'cur\n', { mode: 0o644 }); // unfinished: archived as .u at start-up
  const host = testHost();
  const ld = Logdir.open(parseScript(['S1', dir]).logdirs[0]!, host);
  await ld.close();
  host.dispose();
  assert.ok(fs.statSync(stuck).isDirectory());
  assert.deepEqual(archives(dir), ['@400000000000000000000000.s'], 'the new .u archive was trimmed');
  assert.ok(host.warnings.some((w) => w.startsWith(`unable to unlink ${stuck}: Is a directory`)), host.warnings.join('\n'));
  fs.rmSync(root, { recursive: true });
});

test('a full disk: writes wait (feed says stop), nothing is dropped, logging resumes by itself when space returns', async (t) => {
  if (process.getuid?.() !== 0) { t.skip('needs root to mount a tmpfs'); return; }
  const root = tmp();
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
  const host = testHost();
  try {
    const dir = path.join(mnt, 'log');
    const logger = Logger.open(parseScript(['s4096', 'l0', 'n1000', 'r20', dir]), host);
    // fill what is left
    const filler = path.join(mnt, 'filler');
    try { fs.writeFileSync(filler, Buffer.alloc(256 * 1024)); } catch { /* ENOSPC: full now */ }
    let i = 0;
    let refused = false;
    for (; i < 1000 && !refused; i += 10) refused = !logger.feed(Buffer.from(lines(i, i + 10)));
    assert.equal(refused, true);
    assert.ok(host.warnings.some((w) => /No space left on device/.test(w)), host.warnings.join('\n'));
    let drained = false;
    logger.onDrain = () => { drained = true; };
    // Two retries of the write (r20) ran and failed on the full disk: input still waits.
    const retries = host.timersRun;
    await until('two retries of the write', () => host.timersRun >= retries + 2);
    assert.equal(drained, false);
    fs.rmSync(filler);
    await until('input to be taken again', () => drained);
    assert.equal(drained, true);
    assert.ok(logger.feed(Buffer.from(lines(i, i + 10))));
    await logger.end();
    assert.equal(all(dir), lines(0, i + 10));
    assert.ok(host.warnings.some((w) => /writing to .* again/.test(w)));
  } finally {
    host.dispose();
    execFileSync('umount', [mnt]);
    fs.rmSync(root, { recursive: true });
  }
});
