/** sys/stat.ts: isDirectory follows links and says false for anything it cannot see as a directory; it loads no libc. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDirectory } from '../../src/sys/stat.ts';

test('isDirectory: directories and links to them; not files, missing paths, dangling links or paths through a file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't6-stat-'));
  try {
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'file'), '');
    fs.symlinkSync('sub', path.join(dir, 'link'));
    fs.symlinkSync('nowhere', path.join(dir, 'dangling'));
    assert.equal(isDirectory(dir), true);
    assert.equal(isDirectory(path.join(dir, 'sub')), true);
    assert.equal(isDirectory(path.join(dir, 'link')), true);
    assert.equal(isDirectory(path.join(dir, 'file')), false);
    assert.equal(isDirectory(path.join(dir, 'missing')), false);
    assert.equal(isDirectory(path.join(dir, 'dangling')), false);
    assert.equal(isDirectory(path.join(dir, 'file', 'x')), false, 'ENOTDIR');
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('sys/stat.ts imports nothing (no libc, no koffi)', () => {
  const source = fs.readFileSync(new URL('../../src/sys/stat.ts', import.meta.url), 'utf8');
  assert.doesNotMatch(source, /^\s*import\b/m);
});
