/**
 * sys/identity.ts: file operations with another user's rights on this thread only, put back
 * afterwards whatever happens; a program started as another user (uid, gid, no groups,
 * default signal dispositions). Needs root; skipped otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withFileRights } from '../../src/sys/identity.ts';
import { spawn, pipe, close, readNonblocking } from '../../src/sys/index.ts';
import { Reaper } from '../../src/sys/reaper.ts';
import { strerror } from '../../src/sys/errors.ts';
import { c } from '../../src/sys/libc.ts';
import { until } from '../lib/harness.ts';

const NOBODY = { uid: 65534, gid: 65534 };
const skip = process.geteuid?.() !== 0 ? 'needs root' : false;

/** This thread's ids as the kernel shows them: Uid/Gid lines (real, effective, saved, fs) and Groups. */
function threadIds(): string {
  const status = fs.readFileSync('/proc/thread-self/status', 'utf8');
  return status.split('\n').filter((l) => /^(Uid|Gid|Groups):/.test(l)).join('\n');
}

function scratch(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't6-identity-'));
  fs.chmodSync(dir, 0o755);
  return dir;
}

test('withFileRights: as nobody, a root-only file cannot be read or written and new files are nobody\'s; root\'s ids come back', { skip }, () => {
  const root = scratch();
  try {
    const secret = path.join(root, 'secret');
    fs.writeFileSync(secret, 'root only\n', { mode: 0o600 });
    const theirs = path.join(root, 'theirs');
    fs.mkdirSync(theirs);
    fs.chownSync(theirs, NOBODY.uid, NOBODY.gid);
    const before = threadIds();
    const seen = withFileRights(NOBODY, () => {
      const ids = threadIds();
      const read = (() => { try { return fs.readFileSync(secret, 'utf8'); } catch (err) { return strerror(err); } })();
      const write = (() => { try { fs.appendFileSync(secret, 'x'); return 'written'; } catch (err) { return strerror(err); } })();
      fs.writeFileSync(path.join(theirs, 'made'), 'by nobody\n');
      return { ids, read, write };
    });
    assert.equal(seen.read, 'Permission denied');
    assert.equal(seen.write, 'Permission denied');
    // fsuid and fsgid (the 4th number) are nobody's, real/effective/saved stay root's, no groups.
    assert.match(seen.ids, /^Uid:\t0\t0\t0\t65534$/m);
    assert.match(seen.ids, /^Gid:\t0\t0\t0\t65534$/m);
    assert.match(seen.ids, /^Groups:\t?\s*$/m);
    const made = fs.statSync(path.join(theirs, 'made'));
    assert.deepEqual([made.uid, made.gid], [NOBODY.uid, NOBODY.gid]);
    assert.equal(threadIds(), before);
    assert.equal(fs.readFileSync(secret, 'utf8'), 'root only\n');
  } finally {
    fs.rmSync(root, { recursive: true });
  }
});

/** prctl(PR_GET_DUMPABLE): a change of filesystem ids resets it; withFileRights puts it back. */
function dumpable(): number {
  return c.prctl(3, 'unsigned long', 0, 'unsigned long', 0, 'unsigned long', 0, 'unsigned long', 0);
}

test('withFileRights: a throw inside puts root\'s ids (and the dumpable flag) back; the same identity nests, another one is refused', { skip }, () => {
  const before = threadIds();
  const wasDumpable = dumpable();
  const reset = Number(fs.readFileSync('/proc/sys/fs/suid_dumpable', 'utf8'));
  assert.equal(withFileRights(NOBODY, dumpable), reset, 'the kernel resets it while the ids are changed');
  assert.equal(dumpable(), wasDumpable);
  assert.throws(() => withFileRights(NOBODY, () => { throw new Error('inside'); }), /inside/);
  assert.equal(threadIds(), before);
  assert.equal(withFileRights(NOBODY, () => withFileRights(NOBODY, () => 7)), 7);
  assert.throws(() => withFileRights(NOBODY, () => withFileRights({ uid: 1, gid: 1 }, () => 0)), /asked inside/);
  assert.equal(threadIds(), before);
  assert.equal(withFileRights(undefined, () => threadIds()), before);
});

test('spawn with user: the program runs as that uid and gid with no groups, default signal dispositions, in the cwd fd, with its fds above 2', { skip }, async () => {
  const root = scratch();
  const children = new Reaper({ keepUnwatched: true });
  const onChild = (): void => children.reap();
  process.on('SIGCHLD', onChild);
  const [r, w] = pipe(true);
  try {
    const cwd = fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    fs.writeFileSync(path.join(root, 'four'), 'from fd 4\n');
    const four = fs.openSync(path.join(root, 'four'), 'r');
    const pid = spawn({
      path: '/bin/sh',
      argv: ['/bin/sh', '-c', 'grep -E "^(Uid|Gid|Groups|SigIgn):" /proc/self/status; pwd; cat <&4'],
      fds: new Map([[1, w], [4, four]]),
      cwdFd: cwd,
      user: NOBODY,
    });
    fs.closeSync(cwd);
    fs.closeSync(four);
    close(w);
    assert.equal(await children.waitPid(pid), 0);
    let out = '';
    await until('the output', () => { const b = readNonblocking(r); if (b !== null) out += b.toString(); return b !== null && b.length === 0; });
    assert.match(out, /^Uid:\t65534\t65534\t65534\t65534$/m);
    assert.match(out, /^Gid:\t65534\t65534\t65534\t65534$/m);
    assert.match(out, /^Groups:\t?\s*$/m);
    // SIGPIPE (13) and SIGXFSZ (25), which Node ignores, are back to their defaults.
    const ignored = BigInt(`0x${/^SigIgn:\s*([0-9a-f]+)$/m.exec(out)![1]}`);
    assert.equal(ignored & ((1n << 12n) | (1n << 24n)), 0n);
    assert.match(out, new RegExp(`^${root}$`, 'm'));
    assert.match(out, /^from fd 4$/m);
  } finally {
    close(r);
    process.off('SIGCHLD', onChild);
    fs.rmSync(root, { recursive: true });
  }
});
