/** The line engine: selection, stamps, prefixes, line limit, alerts, status files, stdout. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseScript } from '../../src/log/script.ts';
import { Logger, formatLocalIso } from '../../src/log/engine.ts';
import { tainFromUnixMs, tainFormat } from '../../src/s6/tai.ts';
import { testHost } from '../lib/loghost.ts';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

async function run(words: string[], input: string | Buffer[], opts: { lineLimit?: number } = {}) {
  const host = testHost({ fixedMs: T0 });
  const logger = Logger.open(parseScript(words), host, opts);
  for (const chunk of typeof input === 'string' ? [Buffer.from(input)] : input) logger.feed(chunk);
  await logger.end();
  host.dispose();
  return { out: Buffer.concat(host.out).toString(), alerts: host.alerts, warnings: host.warnings };
}

test('every line starts selected; + selects, - deselects, in order', async () => {
  const { out } = await run(['-^b', '+bar', '1'], 'apple\nbanana\nbar\ncherry\n');
  assert.equal(out, 'apple\nbar\ncherry\n');
});

test('f selects exactly the lines no earlier element acted on', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't6log-'));
  const { out } = await run(['-.*', '+^err', `=${dir}/st`, 'f', '1'], 'error one\nok two\nerr three\nfine\n');
  assert.equal(out, 'ok two\nfine\n');
  fs.rmSync(dir, { recursive: true });
});

test('a partial last line waits for its newline across chunks; end() adds one', async () => {
  const { out } = await run(['1'], [Buffer.from('ab'), Buffer.from('c\nde'), Buffer.from('f\ng')]);
  assert.equal(out, 'abc\ndef\ng\n');
});

test('-l cuts long lines into pieces of exactly the limit; below 48 means 48', async () => {
  const long = 'x'.repeat(100);
  const { out } = await run(['1'], `${long}\nshort\n`, { lineLimit: 10 });
  assert.deepEqual(out.split('\n').slice(0, -1).map((l) => l.length), [48, 48, 4, 5]);
  // the same across chunk boundaries, and a line of exactly the limit is not cut
  const r = await run(['1'], [Buffer.from('y'.repeat(30)), Buffer.from('y'.repeat(30)), Buffer.from(`\n${'z'.repeat(48)}\n`)], { lineLimit: 48 });
  assert.deepEqual(r.out.split('\n').slice(0, -1).map((l) => l.length), [48, 12, 48]);
  const u = await run(['1'], `${'w'.repeat(10000)}\n`, { lineLimit: 0 });
  assert.equal(u.out.length, 10001);
});

test('t then T, once per line, then the prefix and a space', async () => {
  const { out } = await run(['t', 'T', 'pPFX', '1', '1'], 'hello\n');
  const tai = tainFormat(tainFromUnixMs(T0));
  const iso = formatLocalIso(tainFromUnixMs(T0));
  assert.equal(out, `${tai} ${iso}  PFX hello\nPFX hello\n`);
  assert.match(iso, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.678000000$/);
  const d = new Date(T0);
  assert.equal(iso.slice(0, 19), `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')} ${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}:${String(d.getSeconds()).padStart(2, '0')}`);
});

test('2 alerts with the program name; E cuts lines longer than E+3 at E bytes with ...', async () => {
  const { alerts } = await run(['E5', '2', 'E0', '2'], 'abcdefghij\nabcdefgh\n');
  assert.deepEqual(alerts, ['t6-log: alert: abcde...\n', 't6-log: alert: abcdefghij\n', 't6-log: alert: abcdefgh\n', 't6-log: alert: abcdefgh\n']);
});

test('a status file holds the last line, padded with newlines to ^ bytes (or cut); ^0 unpadded', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't6log-'));
  await run(['^20', `=${dir}/a`, '^0', `=${dir}/b`, '^4', `=${dir}/c`], 'first\nsecond line\n');
  assert.equal(fs.readFileSync(`${dir}/a`, 'utf8'), `second line${'\n'.repeat(9)}`);
  assert.equal(fs.readFileSync(`${dir}/a`).length, 20);
  assert.equal(fs.readFileSync(`${dir}/b`, 'utf8'), 'second line\n');
  assert.equal(fs.readFileSync(`${dir}/c`, 'utf8'), 'seco');
  assert.equal(fs.existsSync(`${dir}/a.new`), false);
  fs.rmSync(dir, { recursive: true });
});

test('a NUL byte ends a line as a newline does (s6-log\'s getchunk): regular expressions and outputs never see one', async () => {
  const { out } = await run(['-b$', '1'], [Buffer.from('a\0b\nab\n')]);
  assert.equal(out, 'a\n', '"a", then "b" and "ab" deselected by b$');
  // Across chunks, in a partial line, in pairs, and at the end of the input.
  const split = await run(['1'], [Buffer.from('par'), Buffer.from('tial\0next'), Buffer.from('\0\0'), Buffer.from('last\0')]);
  assert.equal(split.out, 'partial\nnext\n\nlast\n');
  // The line limit counts up to the NUL, as up to a newline.
  const cut = await run(['1'], `${'x'.repeat(50)}\0${'y'.repeat(48)}\0z\n`, { lineLimit: 48 });
  assert.deepEqual(cut.out.split('\n').slice(0, -1).map((l) => l.length), [48, 2, 48, 1]);
});

test('stdout backpressure: feed says stop and onDrain says go', async () => {
  const host = testHost({ fixedMs: T0 });
  let full = true;
  host.stdout = () => !full;
  const logger = Logger.open(parseScript(['1']), host);
  assert.equal(logger.feed(Buffer.from('a\n')), false);
  let drained = 0;
  logger.onDrain = () => { drained++; };
  full = false;
  logger.stdoutDrained();
  assert.equal(drained, 1);
  assert.equal(logger.feed(Buffer.from('b\n')), true);
  await logger.end();
  host.dispose();
});
