/**
 * Where a oneshot's program is found: the PATH of the oneshot's own environment, searched as
 * execvp would (sys/spawn.ts findInPath), with Debian's execline directory first in it when
 * the oneshot gets t6-svscan's environment (supervise/oneshot-env.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { findInPath, spawn } from '../../src/sys/spawn.ts';
import { withExeclinePath } from '../../src/supervise/oneshot-env.ts';
import { errorCode } from '../../src/sys/errors.ts';
import { Reaper } from '../../src/sys/reaper.ts';
import { tmpdir } from '../lib/harness.ts';

function dirWith(files: Record<string, number>): string {
  const dir = tmpdir('t6-path-');
  for (const [name, mode] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), '#!/bin/sh\nexit 7\n', { mode });
  return dir;
}

test('findInPath: the first executable file in PATH order; EACCES when only a non-executable one; ENOENT when none', () => {
  const a = dirWith({ prog: 0o644, other: 0o755 });
  const b = dirWith({ prog: 0o755 });
  fs.mkdirSync(path.join(a, 'sub'));
  assert.equal(findInPath('prog', [`PATH=${a}:${b}`]), path.join(b, 'prog'), 'a non-executable file is passed over');
  assert.equal(findInPath('other', [`PATH=${a}/:${b}`]), path.join(a, 'other'), 'a trailing slash in an entry');
  assert.throws(() => findInPath('prog', [`PATH=${a}`]), (err) => errorCode(err) === 'EACCES');
  assert.throws(() => findInPath('sub', [`PATH=${a}`]), (err) => errorCode(err) === 'ENOENT', 'a directory is not a program');
  assert.throws(() => findInPath('nothing', [`PATH=${a}:${b}`]), (err) => errorCode(err) === 'ENOENT');
  assert.equal(findInPath('./x/y', ['PATH=/nowhere']), './x/y', 'a name with a slash is not searched');
  assert.equal(findInPath('sh', ['HOME=/']), '/bin/sh', "PATH unset: glibc's default, /bin:/usr/bin");
});

test("spawn with searchPath finds the program in the child's PATH, not in this process's", async () => {
  const dir = dirWith({ 't6-only-here': 0o755 });
  assert.throws(() => findInPath('t6-only-here', [`PATH=${process.env['PATH'] ?? ''}`]), 'not in our own PATH');
  const reaper = new Reaper({ keepUnwatched: true });
  const onChild = (): void => reaper.reap();
  process.on('SIGCHLD', onChild);
  try {
    const pid = spawn({ path: 't6-only-here', argv: ['t6-only-here'], env: [`PATH=/usr/bin:/bin:${dir}`], searchPath: true });
    reaper.reap();
    assert.equal((await reaper.waitPid(pid)) >> 8, 7, 'it ran: exit 7');
  } finally {
    process.off('SIGCHLD', onChild);
  }
  assert.throws(() => spawn({ path: 't6-only-here', argv: ['x'], env: ['PATH=/usr/bin:/bin'], searchPath: true }), (err) => errorCode(err) === 'ENOENT');
});

test("withExeclinePath: the directory first in PATH, once, and only if it exists", () => {
  const dir = tmpdir('t6-execline-');
  assert.deepEqual(withExeclinePath(['A=1', 'PATH=/usr/bin:/bin'], dir), ['A=1', `PATH=${dir}:/usr/bin:/bin`]);
  assert.deepEqual(withExeclinePath([`PATH=/usr/bin:${dir}`], dir), [`PATH=/usr/bin:${dir}`], 'already there');
  assert.deepEqual(withExeclinePath(['A=1'], dir), ['A=1', `PATH=${dir}:/bin:/usr/bin`], 'PATH unset');
  assert.deepEqual(withExeclinePath(['PATH=/usr/bin'], path.join(dir, 'missing')), ['PATH=/usr/bin'], 'no such directory');
});
