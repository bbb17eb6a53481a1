/**
 * sys/dirfd.ts: files through a held directory fd, never through a link. A link, a FIFO, a
 * directory or a hard-linked file in a file's place is refused and its target left as it
 * was; a configured path follows links only inside root's own directories.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  haveOpenat2, useOpenat2, openAt, openFileAt, statAt, mkdirAt, unlinkAt, renameAt, linkAt, listAt, readlinkAt,
  openDirectory, UnsafeFileError,
} from '../../src/sys/dirfd.ts';
import { O_WRONLY, O_RDONLY, O_CREAT, O_NONBLOCK, close, mkfifo } from '../../src/sys/fd.ts';
import { strerror } from '../../src/sys/errors.ts';

const isRoot = process.geteuid?.() === 0;

function scratch(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't6-dirfd-'));
  fs.chmodSync(dir, 0o755);
  return dir;
}

/** Everything that says a file was not touched: content, mode, size, mtime. */
function fingerprint(file: string): string {
  const st = fs.statSync(file);
  return JSON.stringify([fs.readFileSync(file, 'latin1'), st.mode, st.size, st.mtimeMs, st.nlink]);
}

/** The reason an `unable to …` line would give for what `fn` throws. */
function reason(fn: () => unknown): string {
  try { fn(); } catch (err) { return strerror(err); }
  return 'no error';
}

test('the kernel here has openat2 (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)', () => {
  const [major, minor] = os.release().split('.').map(Number);
  if (major! > 5 || (major === 5 && minor! >= 6)) assert.equal(haveOpenat2(), true);
});

for (const withOpenat2 of [true, false]) {
  test(`openAt and openFileAt (${withOpenat2 ? 'openat2' : 'openat with O_NOFOLLOW'}): a link, a FIFO, a directory or a second hard link is refused; the target is untouched`, () => {
    useOpenat2(withOpenat2);
    try {
      refusals();
    } finally {
      useOpenat2(true);
    }
  });
}

function refusals(): void {
  const root = scratch();
  try {
    const secret = path.join(root, 'secret');
    fs.writeFileSync(secret, 'root only\n', { mode: 0o600 });
    const d = path.join(root, 'd');
    fs.mkdirSync(d);
    fs.symlinkSync(secret, path.join(d, 'link'));
    fs.symlinkSync(path.join(root, 'absent'), path.join(d, 'dangling'));
    fs.symlinkSync(root, path.join(d, 'dirlink'));
    fs.mkdirSync(path.join(d, 'sub'));
    fs.writeFileSync(path.join(d, 'one'), 'one\n');
    fs.linkSync(secret, path.join(d, 'hard'));
    const fifo = path.join(d, 'fifo');
    mkfifo(fifo, 0o600);
    const before = fingerprint(secret);
    const dfd = openDirectory(d);
    try {
      const opts = { singleLink: true, dirPath: d };
      assert.equal(reason(() => openAt(dfd, 'link', O_WRONLY)), 'Too many levels of symbolic links');
      assert.equal(reason(() => openFileAt(dfd, 'link', O_WRONLY | O_CREAT, 0o644, opts)), 'Too many levels of symbolic links');
      assert.equal(reason(() => openFileAt(dfd, 'dangling', O_WRONLY | O_CREAT, 0o644, opts)), 'Too many levels of symbolic links');
      assert.equal(reason(() => openFileAt(dfd, 'dirlink', O_RDONLY, 0, opts)), 'Too many levels of symbolic links');
      assert.equal(fs.existsSync(path.join(root, 'absent')), false, 'a dangling link made nothing');
      assert.equal(reason(() => openFileAt(dfd, 'sub', O_WRONLY, 0, opts)), 'Is a directory');
      assert.equal(reason(() => openFileAt(dfd, 'sub', O_RDONLY, 0, opts)), 'Not a regular file (a directory)');
      // A FIFO without a reader: the non-blocking open fails at once; with one, fstat refuses it.
      assert.equal(reason(() => openFileAt(dfd, 'fifo', O_WRONLY, 0, opts)), 'No such device or address');
      const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      try {
        const err = (() => { try { openFileAt(dfd, 'fifo', O_WRONLY, 0, opts); } catch (e) { return e; } return undefined; })();
        assert.ok(err instanceof UnsafeFileError && err.reason === 'not-regular', String(err));
        assert.equal(strerror(err), 'Not a regular file (a FIFO)');
      } finally {
        fs.closeSync(reader);
      }
      assert.equal(reason(() => openFileAt(dfd, 'hard', O_WRONLY, 0, opts)), 'Has 2 hard links (refusing to write through a link)');
      close(openFileAt(dfd, 'hard', O_RDONLY, 0, { singleLink: false }));
      assert.equal(fingerprint(secret), before);
      const fd = openFileAt(dfd, 'one', O_WRONLY | fs.constants.O_APPEND, 0, opts);
      try {
        assert.equal(fcntlFlags(fd) & O_NONBLOCK, 0, 'O_NONBLOCK was for the open only');
        fs.writeSync(fd, 'two\n');
      } finally {
        close(fd);
      }
      assert.equal(fs.readFileSync(path.join(d, 'one'), 'utf8'), 'one\ntwo\n');
    } finally {
      close(dfd);
    }
  } finally {
    fs.rmSync(root, { recursive: true });
  }
}

test('statAt describes a link (lstat), mkdirAt/linkAt/renameAt/unlinkAt work on names, listAt lists thousands', () => {
  const root = scratch();
  try {
    const dfd = openDirectory(root);
    try {
      fs.symlinkSync('/etc/passwd', path.join(root, 'link'));
      assert.equal(statAt(dfd, 'link')?.isSymbolicLink(), true);
      assert.equal(readlinkAt(dfd, 'link'), '/etc/passwd');
      assert.equal(statAt(dfd, 'missing'), undefined);
      assert.equal(mkdirAt(dfd, 'sub', 0o700), true);
      assert.equal(mkdirAt(dfd, 'sub', 0o700), false);
      fs.writeFileSync(path.join(root, 'a'), 'a');
      linkAt(dfd, 'a', 'b');
      assert.equal(fs.statSync(path.join(root, 'a')).nlink, 2);
      // linkat does not follow a link: the new name is a second name of the link itself.
      linkAt(dfd, 'link', 'link2');
      assert.equal(fs.lstatSync(path.join(root, 'link2')).isSymbolicLink(), true);
      renameAt(dfd, 'b', 'c');
      unlinkAt(dfd, 'link2');
      unlinkAt(dfd, 'link');
      assert.equal(fs.readFileSync('/etc/passwd').length > 0, true, 'unlink of a link leaves its target');
      assert.equal(reason(() => unlinkAt(dfd, 'sub')), 'Is a directory');
      assert.equal(reason(() => unlinkAt(dfd, 'missing')), 'No such file or directory');
      for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(root, `@${String(i).padStart(24, '0')}.s`), '');
      const names = listAt(dfd).sort();
      assert.deepEqual(names, fs.readdirSync(root).sort());
      assert.equal(names.length, 3003);
    } finally {
      close(dfd);
    }
  } finally {
    fs.rmSync(root, { recursive: true });
  }
});

test('openDirectory: makes the last component; follows links only in root-only directories; a renamed directory keeps its fd', (t) => {
  const root = scratch();
  try {
    const real = path.join(root, 'real');
    fs.mkdirSync(real);
    const made = openDirectory(path.join(real, 'new'), 0o700);
    assert.ok(fs.fstatSync(made).isDirectory());
    assert.equal(fs.statSync(path.join(real, 'new')).mode & 0o777, 0o700 & ~currentUmask());
    // Renamed while held: the fd still names the same directory.
    fs.renameSync(path.join(real, 'new'), path.join(real, 'moved'));
    fs.writeFileSync(path.join(real, 'moved', 'x'), '');
    assert.deepEqual(listAt(made), ['x']);
    close(made);
    // A relative path, and `..`.
    const rel = openDirectory(path.relative(process.cwd(), path.join(real, 'moved', '..')));
    assert.ok(listAt(rel).includes('moved'));
    close(rel);
    fs.symlinkSync('real', path.join(root, 'link'));
    if (!isRoot) { t.diagnostic('not root: the root-only rule is not checked'); return; }
    // root, 0755: only root can have put the link there, so it is followed.
    const followed = openDirectory(path.join(root, 'link', 'moved'));
    assert.deepEqual(listAt(followed), ['x']);
    close(followed);
    // Writable by others (a sticky /tmp, a 0777 directory) or someone else's: refused.
    fs.chmodSync(root, 0o1777);
    assert.equal(reason(() => openDirectory(path.join(root, 'link', 'moved'))), 'Too many levels of symbolic links');
    fs.chmodSync(root, 0o755);
    fs.chownSync(root, 65534, 65534);
    assert.equal(reason(() => openDirectory(path.join(root, 'link', 'moved'))), 'Too many levels of symbolic links');
    assert.equal(reason(() => openDirectory(path.join(root, 'link', 'new'), 0o700)), 'Too many levels of symbolic links');
    assert.equal(fs.existsSync(path.join(real, 'new')), false, 'nothing made through a refused link');
    fs.chownSync(root, 0, 0);
    // A loop ends in ELOOP, not a hang.
    fs.symlinkSync('loop', path.join(root, 'loop'));
    assert.equal(reason(() => openDirectory(path.join(root, 'loop'))), 'Too many levels of symbolic links');
    assert.equal(reason(() => openDirectory(path.join(root, 'missing', 'x'), 0o700)), 'No such file or directory');
  } finally {
    fs.rmSync(root, { recursive: true });
  }
});

function currentUmask(): number {
  const m = process.umask(0);
  process.umask(m);
  return m;
}

function fcntlFlags(fd: number): number {
  // Node has no fcntl; /proc/self/fdinfo shows the flags in octal.
  const text = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  return parseInt(/^flags:\s*([0-7]+)$/m.exec(text)![1]!, 8);
}

