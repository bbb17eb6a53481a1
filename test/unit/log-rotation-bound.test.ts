/**
 * `s` is a promise about disk use: no archive and no `current` ever holds more than s bytes,
 * whatever the input's speed or chunking; a line never spans two files (one longer than s
 * is cut into lines, as the line limit cuts). Random chunk sizes (1 byte to 1 MB), line lengths
 * (1 byte to past the line limit) and s (4096 to 1 MB), through the logging engine that both
 * t6-log and the in-process logger run; nothing may be lost, doubled or reordered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseScript } from '../../src/log/script.ts';
import { Logger } from '../../src/log/engine.ts';
import { testHost } from '../lib/loghost.ts';
import { seededRandom, type Random } from '../lib/random.ts';

const ARCHIVE = /^@[0-9a-f]{24}\.[su]$/;
const MB = 1 << 20;

/** An integer from lo to hi, spread evenly over orders of magnitude (small values are as likely as large ones). */
const logUniform = (random: Random, lo: number, hi: number): number => Math.min(hi, Math.floor(lo * Math.exp(random.next() * Math.log((hi + 1) / lo))));

/** The files of a logdir in the order they were written: archives by name, then current. */
function files(dir: string): string[] {
  return [...fs.readdirSync(dir).filter((n) => ARCHIVE.test(n)).sort(), 'current'].map((n) => path.join(dir, n));
}

/**
 * Random printable lines, some longer than the limit; and what the logger writes for them:
 * long lines cut into pieces of the line limit, and those into pieces that fit in a file
 * (s - 1 bytes and a newline).
 */
function input(random: Random, total: number, lineLimit: number, maxSize: number): { text: Buffer; expected: Buffer } {
  const lines: Buffer[] = [];
  const pieces: Buffer[] = [];
  let size = 0;
  while (size < total) {
    const len = random.int(10) === 0 ? lineLimit + random.int(2 * lineLimit) : logUniform(random, 1, lineLimit);
    const line = random.bytes(len);
    for (let i = 0; i < len; i++) line[i] = 0x20 + (line[i]! % 95); // printable: no newline, no NUL
    lines.push(line, Buffer.from('\n'));
    for (let at = 0; at < len; at += lineLimit) {
      const cut = line.subarray(at, Math.min(len, at + lineLimit));
      for (let from = 0; from < cut.length; from += maxSize - 1) pieces.push(cut.subarray(from, from + maxSize - 1), Buffer.from('\n'));
    }
    size += len + 1;
  }
  return { text: Buffer.concat(lines), expected: Buffer.concat(pieces) };
}

test('random chunks, lines and s: every archive and current at most s bytes; every line kept, once, in order', { timeout: 600_000 }, async (t) => {
  const random = seededRandom(t);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 't6-rotation-'));
  try {
    for (let trial = 0; trial < 8; trial++) {
      const maxSize = logUniform(random, 4096, MB);
      const tolerance = random.int(2) === 0 ? 0 : random.int((maxSize >> 1) + 1);
      const lineLimit = logUniform(random, 48, 2 * maxSize);
      // Enough for a few hundred rotations of a small s, or a few of a large one.
      const { text, expected } = input(random, Math.min(3 * MB, 300 * maxSize), lineLimit, maxSize);
      const dir = path.join(root, `trial${trial}`);
      const what = `trial ${trial}: s${maxSize} l${tolerance}, line limit ${lineLimit}, ${text.length} bytes`;
      const host = testHost();
      const logger = Logger.open(parseScript([`n1000000`, `s${maxSize}`, `l${tolerance}`, dir]), host, { lineLimit });
      for (let at = 0; at < text.length;) {
        const chunk = text.subarray(at, Math.min(text.length, at + logUniform(random, 1, MB)));
        at += chunk.length;
        if (!logger.feed(chunk)) await new Promise<void>((resolve) => { logger.onDrain = resolve; });
        const current = fs.statSync(path.join(dir, 'current')).size;
        assert.ok(current <= maxSize, `${what}: current holds ${current} bytes after a chunk`);
      }
      await logger.end();
      host.dispose();
      assert.deepEqual(host.warnings, [], what);
      const written = files(dir);
      for (const file of written) {
        const size = fs.statSync(file).size;
        assert.ok(size <= maxSize, `${what}: ${path.basename(file)} holds ${size} bytes`);
        if (size > 0) assert.equal(fs.readFileSync(file).at(-1), 10, `${what}: ${path.basename(file)} ends inside a line`);
      }
      const all = Buffer.concat(written.map((file) => fs.readFileSync(file)));
      assert.ok(all.equals(expected), `${what}: the files together are not the lines given (${all.length} bytes for ${expected.length})`);
      t.diagnostic(`${what}: ${written.length} files`);
      fs.rmSync(dir, { recursive: true });
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("the issue's case through t6-log: 30,000 lines of 100 bytes with s100000 leave files of at most 100,000 bytes", (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 't6-rotation-'));
  try {
    const text = Buffer.from(`${'x'.repeat(99)}\n`.repeat(30_000));
    const sizes = (prog: string[]): number[] => {
      const dir = path.join(root, path.basename(prog[0]!));
      execFileSync(prog[0]!, [...prog.slice(1), 'n3', 's100000', dir], { input: text });
      return files(dir).map((f) => fs.statSync(f).size);
    };
    const t6 = sizes([path.resolve('bin/t6-log')]);
    for (const size of t6) assert.ok(size <= 100_000, `t6-log: ${t6.join(', ')}`);
    assert.equal(t6.length, 4, 'three archives and current');
    // Side by side only: Debian's s6-log 2.11.3.2 does not keep the bound exactly either here
    // (archives of 105,200 bytes seen), so it is shown, not asserted.
    t.diagnostic(`archive and current sizes: t6-log ${t6.join(', ')}; s6-log ${sizes(['s6-log']).join(', ')}`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
