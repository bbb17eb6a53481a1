/** strerror: s6's message shape needs glibc's words, whatever libuv calls the errno. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { SysError, strerror, toError } from '../../src/sys/errors.ts';
import { c } from '../../src/sys/libc.ts';

test('every errno strerror knows is worded as glibc words it', () => {
  const errnos = os.constants.errno as Record<string, number>;
  let checked = 0;
  for (const [name, num] of Object.entries(errnos)) {
    const text = strerror(Object.assign(new Error('x'), { code: name, errno: -num }));
    if (text === name) continue; // unknown to both tables: the code itself
    assert.equal(text, c.strerror(num), name);
    checked++;
  }
  assert.ok(checked > 50, `checked ${checked}`);
});

test('fs errors, SysErrors and other errors: the reason alone, never the path again', () => {
  let fsErr: unknown;
  try { fs.unlinkSync('/'); } catch (err) { fsErr = err; }
  assert.equal(strerror(fsErr), 'Is a directory');
  assert.equal(strerror(new SysError('open', 13, '/etc/shadow')), 'Permission denied');
  assert.equal(strerror(new Error('exists and is not a FIFO')), 'exists and is not a FIFO');
  assert.equal(strerror('plain'), 'plain');
  assert.equal(toError('plain').message, 'plain');
  const e = new Error('kept');
  assert.equal(toError(e), e);
});
