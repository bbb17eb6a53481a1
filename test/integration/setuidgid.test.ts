/**
 * t6-setuidgid (issue 15: s6-setuidgid for images that lack s6): the account's ids, the fds
 * the program was meant to get kept (a run script's notification-fd), none of Node's own
 * leaked into it, and s6-setuidgid's exit codes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, tmpdir } from '../lib/harness.ts';

const SETUIDGID = path.join(BIN, 't6-setuidgid');
const root = process.getuid?.() === 0;

test('t6-setuidgid nobody: its uid and gid; fd 3 kept; none of Node\'s own fds in the program', { skip: root ? false : 'needs root' }, () => {
  const out = path.join(tmpdir('t6-setuidgid-'), 'fd3');
  const fd = fs.openSync(out, 'w');
  try {
    const r = spawnSync(SETUIDGID, ['nobody', 'sh', '-c', 'id -u; id -g; echo ready >&3; for f in /proc/self/fd/*; do readlink "$f"; done | tr "\\n" " "'], {
      stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const [uid, gid, fds] = r.stdout.split('\n');
    assert.equal(uid, '65534');
    assert.equal(gid, String(Number(fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'))!.split(':')[3])));
    // Whatever the test runner itself inherited may be there too; Node's own never are.
    assert.doesNotMatch(fds!, /anon_inode/, `open in the program: ${fds}`);
  } finally {
    fs.closeSync(fd);
  }
  assert.equal(fs.readFileSync(out, 'utf8'), 'ready\n');
});

test('t6-setuidgid: uid:gid in numbers; an empty account changes nothing; unknown is 1, no program is 100', { skip: root ? false : 'needs root' }, () => {
  const num = spawnSync(SETUIDGID, ['1234:5678', 'sh', '-c', 'echo $(id -u):$(id -g):$(id -G)'], { encoding: 'utf8' });
  assert.equal(num.stdout.trim(), '1234:5678:5678');
  const same = spawnSync(SETUIDGID, ['', 'id', '-u'], { encoding: 'utf8' });
  assert.equal(same.stdout.trim(), '0');
  const unknown = spawnSync(SETUIDGID, ['no-such-user-here', 'true'], { encoding: 'utf8' });
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /unknown account: no-such-user-here/);
  assert.equal(spawnSync(SETUIDGID, ['nobody'], { encoding: 'utf8' }).status, 100);
  const missing = spawnSync(SETUIDGID, ['nobody', '/nonexistent/prog'], { encoding: 'utf8' });
  assert.equal(missing.status, 111);
});
