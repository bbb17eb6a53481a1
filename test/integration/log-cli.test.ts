/** t6-log as a program: signals (SIGALRM rotates, SIGTERM/SIGHUP end, -p), -d readiness, tail -f across a rotation. */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { BIN, WAIT_MS, signalTaken, tmpdir, until } from '../lib/harness.ts';

const T6 = path.join(BIN, 't6-log');
const ARCHIVE = /^@[0-9a-f]{24}\.s$/;

/** Children a test started: a test that fails midway must not leave them running (the file would never end). */
const started = new Set<ChildProcess>();
afterEach(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  started.clear();
});

function start(args: string[], extraFds = 0): ChildProcess {
  const child = spawn(T6, args, { stdio: ['pipe', 'pipe', 'pipe', ...Array(extraFds).fill('pipe')] });
  started.add(child);
  return child;
}
const exited = (child: ChildProcess): Promise<number | null> => new Promise((r) => {
  if (child.exitCode !== null) r(child.exitCode); else child.on('exit', (code) => r(code));
});
/** The logdir's current, '' while it does not exist yet. */
const current = (dir: string): string => { try { return fs.readFileSync(path.join(dir, 'current'), 'utf8'); } catch { return ''; } };
const archives = (dir: string): string[] => fs.readdirSync(dir).filter((n) => ARCHIVE.test(n));

/**
 * Makes the logger hold a partial line, and proves it does: a whole line and the partial
 * one go in one write, which one read takes whole (a pipe write under PIPE_BUF is atomic),
 * so once the whole line is in current, the partial line sits in the logger.
 */
async function holdPartial(child: ChildProcess, dir: string, partial: string): Promise<void> {
  const whole = `whole line before ${partial}`;
  child.stdin!.write(`${whole}\n${partial}`);
  await until('the whole line logged', () => current(dir).includes(`${whole}\n`));
}

test('-d: a newline on the notification fd once the logdirs are ready; SIGALRM rotates; SIGTERM ends after the pending line', async () => {
  const base = tmpdir('t6-log-cli-');
  const dir = path.join(base, 'log');
  // -t 0: after SIGTERM, wait for the end of the partial line however long it takes.
  const child = start(['-d', '3', '-t', '0', 't', dir], 1);
  const ready = await new Promise<string>((r) => child.stdio[3]!.once('data', (d: Buffer) => r(d.toString())));
  assert.equal(ready, '\n');
  assert.ok(fs.existsSync(path.join(dir, 'lock')));
  child.stdin!.write('first\n');
  await until('first line written', () => current(dir).includes('first'));
  child.kill('SIGALRM');
  await until('rotated', () => archives(dir).length === 1);
  await holdPartial(child, dir, 'partial');
  await signalTaken(child.pid!, 'SIGTERM');
  // A SIGALRM sent after SIGTERM was taken is handled after it: its rotation shows that the
  // logger handled SIGTERM and lives on, waiting for the end of the partial line.
  child.kill('SIGALRM');
  await until('rotated after SIGTERM', () => archives(dir).length === 2);
  assert.equal(child.exitCode, null); // waiting for the end of the partial line
  child.stdin!.write(' line\n');
  assert.equal(await exited(child), 0);
  assert.match(current(dir), /^@[0-9a-f]{24} partial line\n$/);
  assert.equal(fs.statSync(path.join(dir, 'current')).mode & 0o100, 0o100);
  fs.rmSync(base, { recursive: true });
});

test('-t: after SIGTERM a partial line waits at most that long, then is logged with a newline', async () => {
  const base = tmpdir('t6-log-cli-');
  const dir = path.join(base, 'log');
  const child = start(['-t', '150', dir]);
  await holdPartial(child, dir, 'no end');
  const t0 = Date.now();
  child.kill('SIGTERM');
  assert.equal(await exited(child), 0);
  const took = Date.now() - t0;
  // Under 2000 ms, the default -t: the 150 given is what counted.
  assert.ok(took >= 140 && took < 2000, `${took} ms`);
  assert.equal(current(dir), 'whole line before no end\nno end\n');
  fs.rmSync(base, { recursive: true });
});

test('-p ignores SIGTERM; SIGHUP still ends', async () => {
  const base = tmpdir('t6-log-cli-');
  const dir = path.join(base, 'log');
  const child = start(['-p', dir]);
  child.stdin!.write('x\n');
  await until('written', () => current(dir) === 'x\n');
  await signalTaken(child.pid!, 'SIGTERM');
  // Handled after SIGTERM: the rotation shows the logger took SIGTERM and went on.
  child.kill('SIGALRM');
  await until('rotated after SIGTERM', () => archives(dir).length === 1);
  assert.equal(child.exitCode, null);
  child.kill('SIGHUP');
  assert.equal(await exited(child), 0);
  fs.rmSync(base, { recursive: true });
});

test('tail -f follows current across a rotation, stamps in local time', async () => {
  const base = tmpdir('t6-log-cli-');
  const dir = path.join(base, 'log');
  const logger = start(['t', 's4096', 'l0', dir]);
  logger.stdin!.write('before\n');
  await until('written', () => fs.existsSync(path.join(dir, 'current')) && fs.statSync(path.join(dir, 'current')).size > 0);
  const tail = spawn(T6, ['tail', '-f', '-n', '1', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  started.add(tail);
  let out = '';
  tail.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  await until('tail printed the last line', () => out.includes('before'));
  logger.stdin!.write(`${'y'.repeat(5000)}\nafter rotation\n`);
  await until('tail followed the rotation', () => out.includes('after rotation'));
  const lines = out.trim().split('\n');
  // The 5000-byte line does not fit in a file of s4096: it is cut in two stamped lines.
  assert.equal(lines.length, 4);
  for (const l of lines) assert.match(l, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} /);
  tail.kill('SIGTERM');
  await exited(tail);
  logger.stdin!.end();
  assert.equal(await exited(logger), 0);
  fs.rmSync(base, { recursive: true });
});

test('tail -f started while the logdir rotates many times: every line once, in order', async () => {
  const base = tmpdir('t6-log-cli-');
  const dir = path.join(base, 'log');
  const logger = start(['s4096', 'n1000', dir]);
  const line = (i: number): string => `line ${String(i).padStart(5, '0')} ${'r'.repeat(80)}`;
  const total = 20000;
  let written = 0;
  const writeSome = (n: number): void => { for (const end = Math.min(total, written + n); written < end; written++) logger.stdin!.write(`${line(written)}\n`); };
  writeSome(200);
  await until('the first lines logged', () => fs.existsSync(path.join(dir, 'current')));
  const tail = spawn(T6, ['tail', '-f', '-n', String(total), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  started.add(tail);
  let out = '';
  tail.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  // Keep writing (and rotating, every ~40 lines) while tail starts, reads the logdir and
  // begins to follow: until its first output, then the rest.
  while (out === '' && written < total - 100) {
    writeSome(5);
    await new Promise((r) => setImmediate(r));
  }
  while (written < total) {
    writeSome(20);
    await new Promise((r) => setImmediate(r));
  }
  // 20,000 lines through some 500 rotations: on a machine running two suites at once this
  // took longer than the usual bound (a bound only: the wait ends at the last line).
  await until('tail printed the last line', () => out.includes(line(total - 1)), 3 * WAIT_MS);
  const got = out.trim().split('\n');
  const want = Array.from({ length: total }, (_, i) => line(i));
  assert.equal(got.length, total, 'no line twice, none missing');
  assert.deepEqual(got, want);
  tail.kill('SIGTERM');
  await exited(tail);
  logger.stdin!.end();
  assert.equal(await exited(logger), 0);
  fs.rmSync(base, { recursive: true });
});

test('--help, usage and script errors', () => {
  const help = spawnSync(T6, ['--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /t6-log tail/);
  const usage = spawnSync(T6, [], { encoding: 'utf8' });
  assert.equal(usage.status, 100);
  assert.match(usage.stderr, /^t6-log: usage: /);
  const bad = spawnSync(T6, ['--', '+a(', '1'], { encoding: 'utf8', input: '' });
  assert.equal(bad.status, 100);
  assert.equal(bad.stderr, 't6-log: fatal: unrecognized directive: +a( (unmatched ()\n');
});

test('disk full: the writer blocks on the pipe (nothing dropped, memory flat), logging resumes when space returns', async (t) => {
  if (process.getuid?.() !== 0) { t.skip('needs root to mount a tmpfs'); return; }
  const base = tmpdir('t6-log-cli-');
  const mnt = path.join(base, 'mnt');
  fs.mkdirSync(mnt);
  // 4 MB: more than the logger's 1 MB pipe plus what it holds, so freeing the filler is enough
  spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
  try {
    const dir = path.join(mnt, 'log');
    const child = start(['-d', '3', 's4096', 'n1000', 'r50', dir], 1);
    await new Promise((r) => child.stdio[3]!.once('data', r));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    try { fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(4 << 20)); } catch { /* full */ }
    // write until the pipe pushes back (the logger stopped reading)
    let sent = 0;
    const line = (i: number): string => `line ${String(i).padStart(7, '0')} ${'z'.repeat(90)}\n`;
    let blocked = false;
    for (; sent < 200000 && !blocked; sent++) blocked = !child.stdin!.write(line(sent));
    assert.equal(blocked, true);
    await until('the logger said so', () => /No space left on device/.test(stderr));
    const rss = Number(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)![1]);
    assert.ok(rss < 200 * 1024, `RSS ${rss} kB`);
    fs.rmSync(path.join(mnt, 'filler'));
    child.stdin!.end();
    // A bound on the wait for the end, not a pause: killed if it has not ended by then.
    const bound = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
    const code = await exited(child);
    clearTimeout(bound);
    assert.equal(code, 0);
    assert.match(stderr, /writing to .* again/);
    const names = fs.readdirSync(dir).filter((n) => /^@/.test(n)).sort();
    const text = [...names, 'current'].map((n) => fs.readFileSync(path.join(dir, n), 'latin1')).join('');
    let want = '';
    for (let i = 0; i < sent; i++) want += line(i);
    assert.equal(text, want);
  } finally {
    spawnSync('umount', [mnt]);
    fs.rmSync(base, { recursive: true });
  }
});

test('a processor slower than the input: t6-log waits for it (input paused meanwhile) and logs every line, then ends at EOF', async () => {
  const base = tmpdir('t6-log-cli-');
  const dir = path.join(base, 'log');
  // Each rotation's processor takes 0.3 s, and the next rotation is due before it ends.
  const child = start(['s4096', 'n100', '?sleep 0.3; cat', dir]);
  let text = '';
  for (let i = 1; text.length < 64 * 1024; i++) text += `line ${i} ${'x'.repeat(60)}\n`;
  child.stdin!.end(text);
  assert.equal(await exited(child), 0);
  const names = archives(dir).sort();
  assert.ok(names.length >= 2, `${names.length} archives`);
  assert.equal([...names, 'current'].map((n) => fs.readFileSync(path.join(dir, n), 'utf8')).join(''), text);
  // Every rotation ended: nothing left half-done, current finalised (u+x).
  for (const name of ['previous', 'processed', 'newstate']) assert.equal(fs.existsSync(path.join(dir, name)), false, name);
  assert.equal(fs.statSync(path.join(dir, 'current')).mode & 0o100, 0o100);
});
