/** LogdirCursor: a logdir read from the start, then followed across rotations, nothing twice, nothing skipped. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { LogdirCursor } from '../../src/log/cursor.ts';
import { tmpdir } from '../lib/harness.ts';

const texts = (lines: { text: string }[]): string[] => lines.map((l) => l.text);
const archive = (n: number): string => `@4000000068000000${String(n).padStart(8, '0')}.s`;

test('archives oldest first, then current; a later read gives only what is new', () => {
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, archive(2)), 'b\n');
  fs.writeFileSync(path.join(dir, archive(1)), 'a\n');
  fs.writeFileSync(path.join(dir, 'current'), 'c\n');
  const cursor = new LogdirCursor(dir);
  assert.deepEqual(texts(cursor.read()), ['a', 'b', 'c']);
  assert.deepEqual(texts(cursor.read()), []);
  fs.appendFileSync(path.join(dir, 'current'), 'd\ne\n');
  assert.deepEqual(texts(cursor.read()), ['d', 'e']);
  cursor.close();
});

test('rotations between two reads: the rest of the held file, every archive made since, then the new current', () => {
  const dir = tmpdir();
  const current = path.join(dir, 'current');
  fs.writeFileSync(path.join(dir, archive(1)), 'old\n');
  fs.writeFileSync(current, 'one\n');
  const cursor = new LogdirCursor(dir);
  assert.deepEqual(texts(cursor.read()), ['old', 'one']);
  // What s6-log does: more lines, rotate (current becomes an archive), again, and write on.
  fs.appendFileSync(current, 'two\n');
  fs.renameSync(current, path.join(dir, archive(2)));
  fs.writeFileSync(current, 'three\n');
  fs.renameSync(current, path.join(dir, archive(3)));
  fs.writeFileSync(current, 'four\n');
  assert.deepEqual(texts(cursor.read()), ['two', 'three', 'four']);
  assert.deepEqual(texts(cursor.read()), []);
  cursor.close();
});

test('the held file archived and already trimmed away: what it had was read, later archives are read', () => {
  const dir = tmpdir();
  const current = path.join(dir, 'current');
  fs.writeFileSync(current, 'one\n');
  const cursor = new LogdirCursor(dir);
  assert.deepEqual(texts(cursor.read()), ['one']);
  fs.appendFileSync(current, 'two\n');
  fs.renameSync(current, path.join(dir, archive(5)));
  fs.writeFileSync(current, 'three\n');
  fs.renameSync(current, path.join(dir, archive(6)));
  fs.rmSync(path.join(dir, archive(5)));
  fs.writeFileSync(current, 'four\n');
  assert.deepEqual(texts(cursor.read()), ['two', 'three', 'four'], 'the held fd still has the trimmed file');
  cursor.close();
});

test('a last line without its newline waits to be whole, unless asked for', () => {
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, 'current'), 'whole\nhal');
  const cursor = new LogdirCursor(dir);
  assert.deepEqual(texts(cursor.read()), ['whole']);
  fs.appendFileSync(path.join(dir, 'current'), 'f\n');
  assert.deepEqual(texts(cursor.read()), ['half']);
  fs.appendFileSync(path.join(dir, 'current'), 'tail');
  assert.deepEqual(texts(cursor.read(true)), ['tail']);
  cursor.close();
});

test('a logdir without current yet is read once current appears, its archives once', () => {
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, archive(1)), 'archived\n');
  const cursor = new LogdirCursor(dir);
  assert.deepEqual(texts(cursor.read()), ['archived']);
  assert.deepEqual(texts(cursor.read()), []);
  fs.writeFileSync(path.join(dir, 'current'), 'first\n');
  assert.deepEqual(texts(cursor.read()), ['first']);
  cursor.close();
});

test('previous (a rotation under way) is read before current, and not again once archived', () => {
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, archive(1)), 'a\n');
  fs.writeFileSync(path.join(dir, 'previous'), 'b\n');
  fs.writeFileSync(path.join(dir, 'current'), 'c\n');
  const cursor = new LogdirCursor(dir);
  assert.deepEqual(texts(cursor.read()), ['a', 'b', 'c']);
  // The rotation ends (previous archived), and another one begins and ends.
  fs.linkSync(path.join(dir, 'previous'), path.join(dir, archive(2)));
  fs.unlinkSync(path.join(dir, 'previous'));
  fs.appendFileSync(path.join(dir, 'current'), 'd\n');
  fs.renameSync(path.join(dir, 'current'), path.join(dir, 'previous'));
  fs.writeFileSync(path.join(dir, 'current'), 'e\n');
  assert.deepEqual(texts(cursor.read()), ['d', 'e']);
  cursor.close();
});
