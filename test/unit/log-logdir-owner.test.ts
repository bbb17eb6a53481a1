/**
 * Logdirs and their owner (src/log/logdir-files.ts): a logdir not owned by root is used
 * with its owner's rights, and no file of any logdir is reached through a link. The owner's
 * tricks — `current`, `lock`, `previous`, `state`… swapped for links to root-only files,
 * for a FIFO or a directory — leave every root-only file as it was; the logdir reports
 * the problem and goes on once the trick is undone. Needs root (the owner is `nobody`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseScript } from '../../src/log/script.ts';
import { Logger } from '../../src/log/engine.ts';
import { Logdir, LogdirError } from '../../src/log/logdir.ts';
import { LogdirFiles } from '../../src/log/logdir-files.ts';
import { mkfifo } from '../../src/sys/fd.ts';
import { testHost, type TestHost } from '../lib/loghost.ts';
import { until } from '../lib/harness.ts';

const NOBODY = 65534;
const skip = process.geteuid?.() !== 0 ? 'needs root' : false;
const ARCHIVE = /^@[0-9a-f]{24}\.[su]$/;

/** A scratch tree: `secrets/` (root, 0700) holding a root-only file, and `logs/` that nobody may enter. */
function setUp(): { root: string; secret: string; secrets: string; logs: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 't6-owner-'));
  fs.chmodSync(root, 0o755);
  const secrets = path.join(root, 'secrets');
  fs.mkdirSync(secrets, { mode: 0o700 });
  const secret = path.join(secrets, 'shadow');
  fs.writeFileSync(secret, 'root:secret\n', { mode: 0o600 });
  const logs = path.join(root, 'logs');
  fs.mkdirSync(logs, { mode: 0o755 });
  return { root, secret, secrets, logs };
}

/** A logdir owned by nobody (as `t6-linux-init-maker -u` leaves /run/uncaught-logs). */
function nobodysLogdir(logs: string, name = 'log'): string {
  const dir = path.join(logs, name);
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.chownSync(dir, NOBODY, NOBODY);
  return dir;
}

/** Everything about a file that an attack could change. */
function fingerprint(file: string): string {
  const st = fs.statSync(file);
  const hash = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  return JSON.stringify({ hash, mode: st.mode, size: st.size, mtime: st.mtimeMs, uid: st.uid, nlink: st.nlink });
}

/** Every name under `dir`, recursively, with its owner: what exists, and whose. */
function tree(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = path.join(e.parentPath, e.name);
    out.push(`${path.relative(dir, p)}:${fs.lstatSync(p).uid}`);
  }
  return out.sort();
}

function lines(from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += `line ${String(i).padStart(6, '0')} ${'x'.repeat(40)}\n`;
  return s;
}

/** Every line logged in a logdir, archives in order then current. */
function logged(dir: string): string {
  const names = [...fs.readdirSync(dir).filter((n) => ARCHIVE.test(n)).sort(), 'current'];
  return names.map((n) => fs.readFileSync(path.join(dir, n), 'latin1')).join('');
}

/** Feeds `text` in pieces, waiting whenever the logger says stop. */
async function feed(logger: Logger, text: string, chunk = 1000): Promise<void> {
  for (let i = 0; i < text.length; i += chunk) {
    if (!logger.feed(Buffer.from(text.slice(i, i + chunk)))) await new Promise<void>((r) => { logger.onDrain = r; });
  }
}

function warned(host: TestHost, re: RegExp): boolean {
  return host.warnings.some((w) => re.test(w));
}

test('a logdir owned by nobody: its files are nobody\'s, and its processor runs as nobody with no groups', { skip }, async () => {
  const { root, logs } = setUp();
  try {
    const dir = nobodysLogdir(logs);
    const host = testHost();
    const logger = Logger.open(parseScript(['s2000', 'l0', '?cat; id -u >&5; id -G >&5', dir]), host);
    await feed(logger, lines(0, 100));
    await logger.end();
    host.dispose();
    for (const name of fs.readdirSync(dir)) {
      const st = fs.statSync(path.join(dir, name));
      assert.deepEqual([name, st.uid, st.gid], [name, NOBODY, NOBODY]);
    }
    assert.equal(fs.readFileSync(path.join(dir, 'state'), 'utf8'), `${NOBODY}\n${NOBODY}\n`);
    assert.equal(logged(dir), lines(0, 100));
    assert.deepEqual(host.warnings, []);
  } finally {
    fs.rmSync(root, { recursive: true });
  }
});

test('current swapped for a link to a root-only file, then a rotation: the file keeps its mode and content; logging goes on', { skip }, async () => {
  const { root, secret, logs } = setUp();
  try {
    const dir = nobodysLogdir(logs);
    const before = fingerprint(secret);
    const host = testHost();
    const logger = Logger.open(parseScript(['s100000', dir]), host);
    await feed(logger, lines(0, 10));
    // The owner's move: current becomes a link to /etc/shadow (here: a root-only file).
    fs.renameSync(path.join(dir, 'current'), path.join(dir, 'kept'));
    fs.symlinkSync(secret, path.join(dir, 'current'));
    await feed(logger, lines(10, 20));
    logger.rotate();
    await until('the rotation', () => warned(host, /previous is not a regular file: removing it/));
    await feed(logger, lines(20, 30));
    await logger.end();
    host.dispose();
    assert.equal(fingerprint(secret), before);
    // Lines written before the rotation stayed in the file that was current (now `kept`).
    assert.equal(fs.readFileSync(path.join(dir, 'kept'), 'latin1'), lines(0, 20));
    assert.equal(fs.readFileSync(path.join(dir, 'current'), 'latin1'), lines(20, 30));
    assert.equal(fs.lstatSync(path.join(dir, 'current')).isFile(), true);
  } finally {
    fs.rmSync(root, { recursive: true });
  }
});

test('with a processor, the same swap: the processor reads what was logged (through the logger\'s fd), not the link', { skip }, async () => {
  const { root, secret, logs } = setUp();
  try {
    const dir = nobodysLogdir(logs);
    const before = fingerprint(secret);
    const host = testHost();
    const logger = Logger.open(parseScript(['s100000', '?cat', dir]), host);
    await feed(logger, lines(0, 10));
    fs.renameSync(path.join(dir, 'current'), path.join(dir, 'kept'));
    fs.symlinkSync(secret, path.join(dir, 'current'));
    logger.rotate();
    await feed(logger, lines(10, 20));
    await logger.end();
    host.dispose();
    assert.equal(fingerprint(secret), before);
    const archived = fs.readdirSync(dir).filter((n) => ARCHIVE.test(n));
    assert.equal(archived.length, 1);
    assert.equal(fs.readFileSync(path.join(dir, archived[0]!), 'latin1'), lines(0, 10));
    assert.equal(fs.readFileSync(path.join(dir, 'current'), 'latin1'), lines(10, 20));
    assert.equal(fs.existsSync(path.join(dir, 'previous')), false, 'the link was removed');
    assert.deepEqual(host.warnings, []);
  } finally {
    fs.rmSync(root, { recursive: true });
  }
});

test('lock or current a link, a FIFO or a directory at start-up: refused or removed, never followed, nothing made outside', { skip }, async () => {
  const { root, secret, secrets, logs } = setUp();
  try {
    const dir = nobodysLogdir(logs);
    const before = fingerprint(secret);
    const outside = tree(secrets);
    const spec = parseScript([dir]).logdirs[0]!;
    const host = testHost();
    const open = (): string => { try { void Logdir.open(spec, host).close(); return 'opened'; } catch (err) { return err instanceof LogdirError ? err.message : String(err); } };
    for (const target of [secret, path.join(secrets, 'new-file'), secrets]) {
      fs.symlinkSync(target, path.join(dir, 'lock'));
      assert.equal(open(), `unable to open ${dir}/lock: Too many levels of symbolic links`);
      fs.unlinkSync(path.join(dir, 'lock'));
    }
    // The owner's FIFO (opened by nobody's rights, so it must be nobody's to get that far).
    mkfifo(path.join(dir, 'lock'), 0o600);
    fs.chownSync(path.join(dir, 'lock'), NOBODY, NOBODY);
    assert.equal(open(), `unable to open ${dir}/lock: No such device or address`);
    fs.unlinkSync(path.join(dir, 'lock'));
    fs.mkdirSync(path.join(dir, 'lock'));
    assert.equal(open(), `unable to open ${dir}/lock: Is a directory`);
    fs.rmdirSync(path.join(dir, 'lock'));
    // An unfinished current is archived at start-up; a link or a FIFO in its place is removed, with a warning.
    fs.symlinkSync(secret, path.join(dir, 'current'));
    assert.equal(open(), 'opened');
    assert.ok(warned(host, /current is not a regular file: removing it/), host.warnings.join('\n'));
    fs.chmodSync(path.join(dir, 'current'), 0o644);
    fs.unlinkSync(path.join(dir, 'current'));
    mkfifo(path.join(dir, 'current'), 0o600);
    assert.equal(open(), 'opened');
    assert.equal(fs.lstatSync(path.join(dir, 'current')).isFile(), true);
    host.dispose();
    assert.equal(fingerprint(secret), before);
    assert.deepEqual(tree(secrets), outside);
  } finally {
    fs.rmSync(root, { recursive: true });
  }
});

test('a rotation step that meets a trick is reported, retried, and ends once the trick is undone: nothing lost', { skip }, async () => {
  const { root, secret, logs } = setUp();
  try {
    const dir = nobodysLogdir(logs);
    const before = fingerprint(secret);
    const host = testHost();
    const logger = Logger.open(parseScript(['s2000', 'l0', 'r20', '?cat', dir]), host);
    // `previous` a directory (rename fails), then `processed` and `newstate` links (the processor cannot start).
    fs.mkdirSync(path.join(dir, 'previous'));
    fs.writeFileSync(path.join(dir, 'previous', 'x'), '');
    fs.chownSync(path.join(dir, 'previous'), NOBODY, NOBODY);
    fs.symlinkSync(secret, path.join(dir, 'processed'));
    fs.symlinkSync(secret, path.join(dir, 'newstate'));
    let stopped = false;
    const text = lines(0, 200);
    const done = feed(logger, text, 500).then(() => { stopped = true; });
    await until('the rename to be refused', () => warned(host, new RegExp(`unable to rename ${dir}/current to ${dir}/previous: (Is a directory|Directory not empty)`)));
    fs.rmSync(path.join(dir, 'previous'), { recursive: true });
    await until('the processor to be refused', () => warned(host, new RegExp(`unable to open ${dir}/processed: Too many levels of symbolic links`)));
    assert.equal(stopped, false, 'input waits meanwhile');
    fs.unlinkSync(path.join(dir, 'processed'));
    fs.unlinkSync(path.join(dir, 'newstate'));
    await done;
    await logger.end();
    host.dispose();
    assert.equal(logged(dir), text);
    assert.equal(fingerprint(secret), before);
  } finally {
    fs.rmSync(root, { recursive: true });
  }
});

test('names removed by the owner (current, state, and processed and newstate while the processor runs): rotations go on', { skip }, async () => {
  const { root, logs } = setUp();
  try {
    const dir = nobodysLogdir(logs);
    const host = testHost();
    const flag = path.join(root, 'go');
    // The processor waits for the flag, so that the test can remove its files while it runs.
    const logger = Logger.open(parseScript(['s100000', `?while [ ! -e ${flag} ]; do sleep 0.01; done; cat; echo 1 >&5`, dir]), host);
    await feed(logger, lines(0, 10));
    fs.unlinkSync(path.join(dir, 'current'));
    fs.unlinkSync(path.join(dir, 'state'));
    logger.rotate();
    await until('the processor to start', () => fs.existsSync(path.join(dir, 'newstate')));
    fs.unlinkSync(path.join(dir, 'processed'));
    fs.unlinkSync(path.join(dir, 'newstate'));
    fs.writeFileSync(flag, '');
    await feed(logger, lines(10, 20));
    await logger.end();
    host.dispose();
    assert.ok(warned(host, new RegExp(`unable to rename ${dir}/current to ${dir}/previous: No such file or directory - going on`)), host.warnings.join('\n'));
    assert.ok(warned(host, new RegExp(`unable to rename ${dir}/newstate to ${dir}/state: No such file or directory - going on`)), host.warnings.join('\n'));
    assert.equal(fs.readFileSync(path.join(dir, 'current'), 'latin1'), lines(10, 20));
    assert.equal(fs.existsSync(path.join(dir, 'previous')), false);
  } finally {
    fs.rmSync(root, { recursive: true });
  }
});

test('a new current is made with O_EXCL: a link put in its way during the rotation is removed (reported), never followed', { skip }, () => {
  const { root, secret, logs } = setUp();
  try {
    const dir = nobodysLogdir(logs);
    const before = fingerprint(secret);
    const files = LogdirFiles.open(dir);
    fs.symlinkSync(secret, path.join(dir, 'current'));
    let told = 0;
    const fd = files.create('current', fs.constants.O_RDWR | fs.constants.O_APPEND, 0o644, () => { told++; });
    fs.writeSync(fd, 'fresh\n');
    fs.closeSync(fd);
    assert.equal(told, 1);
    assert.equal(fs.readFileSync(path.join(dir, 'current'), 'utf8'), 'fresh\n');
    assert.equal(fs.statSync(path.join(dir, 'current')).uid, NOBODY);
    files.close();
    assert.equal(fingerprint(secret), before);
  } finally {
    fs.rmSync(root, { recursive: true });
  }
});

test('root\'s own logdir: a file with a second hard link is refused (it could be any file)', { skip }, async () => {
  const { root, secret, logs } = setUp();
  try {
    const dir = path.join(logs, 'rootlog');
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'current'), 'old\n', { mode: 0o744 });
    fs.linkSync(path.join(dir, 'current'), path.join(root, 'second-name'));
    const before = fingerprint(secret);
    const host = testHost();
    assert.throws(() => Logdir.open(parseScript([dir]).logdirs[0]!, host), (e: unknown) => e instanceof LogdirError && e.message === `unable to open ${dir}/current: Has 2 hard links (refusing to write through a link)`);
    host.dispose();
    assert.equal(fs.readFileSync(path.join(dir, 'current'), 'utf8'), 'old\n');
    assert.equal(fingerprint(secret), before);
  } finally {
    fs.rmSync(root, { recursive: true });
  }
});

test('a status file (=file) in nobody\'s directory: written as nobody, never through a link', { skip }, async () => {
  const { root, secret, logs } = setUp();
  try {
    const dir = nobodysLogdir(logs, 'status');
    const file = path.join(dir, 'last');
    const before = fingerprint(secret);
    fs.symlinkSync(secret, `${file}.new`);
    const host = testHost();
    const logger = Logger.open(parseScript(['^0', `=${file}`]), host);
    await feed(logger, 'one\n');
    assert.ok(warned(host, new RegExp(`unable to write status file ${file}: Too many levels of symbolic links`)), host.warnings.join('\n'));
    fs.unlinkSync(`${file}.new`);
    await feed(logger, 'two\n');
    await logger.end();
    host.dispose();
    assert.equal(fs.readFileSync(file, 'utf8'), 'two\n');
    assert.equal(fs.statSync(file).uid, NOBODY);
    assert.equal(fingerprint(secret), before);
  } finally {
    fs.rmSync(root, { recursive: true });
  }
});
