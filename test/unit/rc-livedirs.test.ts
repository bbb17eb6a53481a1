/**
 * The live directories of t6-rc-update (src/rc/livedirs.ts): the carried-over servicedirs
 * moved and LIVE switched as one step that is undone on failure, scan dir links replaced
 * without a gap, and what old live directories leave behind removed once unused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { SwitchError, moveAndSwitch, removeOldLiveDirs, replaceLink } from '../../src/rc/livedirs.ts';
import { O_CREAT, O_RDWR, close, open, tryLock } from '../../src/sys/fd.ts';
import { tmpdir } from '../lib/harness.ts';

/** A servicedir with supervise/lock, held (as by a running supervisor) when `held`; returns the lock's fd or undefined. */
function servicedir(dir: string, held: boolean): number | undefined {
  fs.mkdirSync(path.join(dir, 'supervise'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'run'), '#!/bin/sh\n');
  const fd = open(path.join(dir, 'supervise', 'lock'), O_RDWR | O_CREAT, 0o644);
  if (held && tryLock(fd)) return fd;
  close(fd);
  return undefined;
}

/** Every path under `root`, relative, links not followed. */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      out.push(e.isSymbolicLink() ? `${r} -> ${fs.readlinkSync(path.join(root, r))}` : r);
      if (e.isDirectory()) walk(r);
    }
  };
  walk('');
  return out.sort();
}

test('old live directories: the replaced one and reduced ones go, but for servicedirs still supervised; live ones, ones being built and other LIVEs stay', async () => {
  const base = tmpdir('t6-livedirs-');
  const live = path.join(base, 'live');
  const dir = (name: string) => path.join(base, name);
  const current = dir('live:t6-rc-update:CURRNT');
  fs.mkdirSync(path.join(current, 'servicedirs'), { recursive: true });
  fs.symlinkSync('/nowhere', path.join(current, 'compiled'));
  fs.symlinkSync(path.basename(current), live);
  // The live dir this update replaced: a removed service still ending (a), one ended (b), a link left by an older t6 (c).
  const replaced = dir('live:t6-rc-update:REPLCD');
  for (const f of ['state', 'lock', 'prefix']) { fs.mkdirSync(replaced, { recursive: true }); fs.writeFileSync(path.join(replaced, f), ''); }
  fs.symlinkSync('/nowhere', path.join(replaced, 'compiled'));
  const lockA = servicedir(path.join(replaced, 'servicedirs', 'a'), true);
  assert.ok(lockA !== undefined);
  servicedir(path.join(replaced, 'servicedirs', 'b'), false);
  fs.symlinkSync(dir('live:t6-rc-init:OLDEST/servicedirs/c'), path.join(replaced, 'servicedirs', 'c'));
  // What an older t6 left: reduced to servicedirs/, nothing supervised.
  servicedir(path.join(dir('live:t6-rc-init:OLDEST'), 'servicedirs', 'x'), false);
  // Not ours to remove: a live dir being built (compiled comes first), a link, another LIVE's leftover.
  fs.mkdirSync(dir('live:t6-rc-init:BUILDN'));
  fs.symlinkSync('/nowhere', path.join(dir('live:t6-rc-init:BUILDN'), 'compiled'));
  fs.symlinkSync('live:t6-rc-update:CURRNT', dir('live:t6-rc-update:link'));
  servicedir(path.join(dir('live2:t6-rc-init:OTHERS'), 'servicedirs', 'y'), false);
  try {
    assert.deepEqual(await removeOldLiveDirs(live, current, replaced, true), []);
    const left = tree(base).filter((p) => !p.startsWith('live:t6-rc-update:CURRNT') && !p.startsWith('live2:'));
    assert.deepEqual(left.filter((p) => !p.includes('/servicedirs/a/')), [
      'live -> live:t6-rc-update:CURRNT',
      'live:t6-rc-init:BUILDN', 'live:t6-rc-init:BUILDN/compiled -> /nowhere',
      'live:t6-rc-update:REPLCD', 'live:t6-rc-update:REPLCD/servicedirs', 'live:t6-rc-update:REPLCD/servicedirs/a',
      'live:t6-rc-update:link -> live:t6-rc-update:CURRNT',
    ]);
    assert.ok(fs.existsSync(dir('live2:t6-rc-init:OTHERS/servicedirs/y')));
  } finally {
    close(lockA);
  }
  // Its supervisor gone, the next update removes what was left.
  assert.deepEqual(await removeOldLiveDirs(live, current, dir('live:t6-rc-update:NEXTUP'), true), []);
  assert.ok(!fs.existsSync(replaced));
  fs.rmSync(base, { recursive: true, force: true });
});

test('links left where moved servicedirs were stay while the scanner has not said its supervisors followed them', async () => {
  const base = tmpdir('t6-livedirs-');
  const live = path.join(base, 'live');
  const [replaced, current] = ['live:t6-rc-init:AAAAAA', 'live:t6-rc-update:BBBBBB'].map((n) => path.join(base, n));
  servicedir(path.join(current!, 'servicedirs', 'k'), false);
  fs.mkdirSync(path.join(replaced!, 'servicedirs'), { recursive: true });
  fs.writeFileSync(path.join(replaced!, 'state'), '');
  fs.symlinkSync(path.join(current!, 'servicedirs', 'k'), path.join(replaced!, 'servicedirs', 'k'));
  fs.symlinkSync(path.basename(current!), live);
  assert.deepEqual(await removeOldLiveDirs(live, current!, replaced!, false), []);
  assert.deepEqual(tree(replaced!), ['servicedirs', `servicedirs/k -> ${path.join(current!, 'servicedirs', 'k')}`]);
  assert.deepEqual(await removeOldLiveDirs(live, current!, path.join(base, 'live:t6-rc-update:CCCCCC'), true), []);
  assert.ok(!fs.existsSync(replaced!));
  fs.rmSync(base, { recursive: true, force: true });
});

test('moveAndSwitch renames the servicedirs and switches LIVE; a failure moves back what was moved and leaves LIVE alone', () => {
  const base = tmpdir('t6-livedirs-');
  const live = path.join(base, 'live');
  const [old, next] = ['live:t6-rc-init:AAAAAA', 'live:t6-rc-update:BBBBBB'].map((n) => path.join(base, n));
  for (const d of [old!, next!]) fs.mkdirSync(path.join(d, 'servicedirs'), { recursive: true });
  for (const n of ['a', 'b']) servicedir(path.join(old!, 'servicedirs', n), false);
  fs.symlinkSync(path.basename(old!), live);
  fs.symlinkSync('live:t6-rc-update:GONE', `${live}:t6-rc-update:link`); // left by an update that died: dangling
  const ino = fs.statSync(path.join(old!, 'servicedirs', 'a')).ino;
  // The second move cannot be made: its target's parent does not exist.
  const moves = [{ from: path.join(old!, 'servicedirs', 'a'), to: path.join(next!, 'servicedirs', 'a') }, { from: path.join(old!, 'servicedirs', 'b'), to: path.join(next!, 'nowhere', 'b') }];
  assert.throws(() => moveAndSwitch(live, next!, moves), (err) => err instanceof SwitchError && err.stuck.length === 0 && /no such file/i.test(err.message));
  assert.equal(fs.readlinkSync(live), path.basename(old!));
  assert.equal(fs.statSync(path.join(old!, 'servicedirs', 'a')).ino, ino, 'moved back');
  assert.deepEqual(fs.readdirSync(base).sort(), ['live', path.basename(old!), path.basename(next!)], 'no link left behind');
  moveAndSwitch(live, next!, [moves[0]!, { ...moves[1]!, to: path.join(next!, 'servicedirs', 'b') }]);
  assert.equal(fs.readlinkSync(live), path.basename(next!));
  assert.equal(fs.statSync(path.join(live, 'servicedirs', 'a')).ino, ino, 'the same directory, through LIVE');
  for (const n of ['a', 'b']) assert.equal(fs.readlinkSync(path.join(old!, 'servicedirs', n)), path.join(next!, 'servicedirs', n), 'a link where it was');
  fs.rmSync(base, { recursive: true, force: true });
});

test('replaceLink swaps a scan dir link in one rename, leaving a right one alone', () => {
  const scandir = tmpdir('t6-livedirs-');
  const at = path.join(scandir, 'svc');
  replaceLink('/live/servicedirs/svc', at);
  assert.equal(fs.readlinkSync(at), '/live/servicedirs/svc');
  const ino = fs.lstatSync(at).ino;
  replaceLink('/live/servicedirs/svc', at);
  assert.equal(fs.lstatSync(at).ino, ino, 'untouched');
  replaceLink('/live/servicedirs/other', at);
  assert.equal(fs.readlinkSync(at), '/live/servicedirs/other');
  assert.deepEqual(fs.readdirSync(scandir), ['svc'], 'no temporary link left');
  fs.rmSync(scandir, { recursive: true, force: true });
});
