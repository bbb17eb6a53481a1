/**
 * Issue 16: the Debian package installs, and uninstalls, cleanly on a fresh Debian tree:
 * `dpkg -i` then `dpkg -r` inside the debootstrapped bookworm tree of the Debian image's
 * first layer (scripts/debian/build.mjs, cached in .cache/debian; the boot test builds it
 * first in CI), chrooted. In between, the commands run from /usr/bin. Needs root and the
 * layer (or debootstrap and Debian's mirror to make it); skipped without, except in CI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, buildDebianImage } from '../lib/vm.ts';
import { tmpdir } from '../lib/harness.ts';

const inCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
const CACHE = path.join(ROOT, '.cache/debian');

/** The newest base layer tarball, made if it is not there (CI), or undefined. */
function baseTarball(): string | undefined {
  const find = (): string | undefined => (fs.existsSync(CACHE) ? fs.readdirSync(CACHE) : [])
    .filter((f) => /^base-[0-9a-f]+\.tar$/.test(f)).map((f) => path.join(CACHE, f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
  if (find() === undefined && (inCi || spawnSync('sh', ['-c', 'command -v debootstrap']).status === 0)) buildDebianImage();
  return find();
}

const skip = process.getuid?.() !== 0 && !inCi ? 'needs root (chroot, dpkg in a tree owned by root)' : false;

test('the .deb installs into a fresh debootstrapped Debian tree, its commands run from /usr/bin, and it uninstalls leaving nothing', { skip, timeout: 900_000 }, (t) => {
  const tar = baseTarball();
  if (tar === undefined) {
    assert.ok(!inCi, 'CI must be able to build the Debian base layer');
    return t.skip('no Debian base layer and no debootstrap to make one');
  }
  const work = tmpdir('t6-deb-in-debian-');
  const tree = path.join(work, 'root');
  fs.mkdirSync(tree);
  const sh = (cmd: string, args: string[]): string => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  sh('tar', ['-C', tree, '--numeric-owner', '-xpf', tar]);
  // The base layer has no t6; the package is made afresh (gzip -1: the test's speed, same contents).
  assert.equal(fs.existsSync(path.join(tree, 'usr/lib/t6')), false);
  const out = path.join(work, 'pkg');
  sh(process.execPath, [path.join(ROOT, 'scripts/package.mjs'), '--deb-only', '--fast', out]);
  const deb = fs.readdirSync(out).find((f) => f.endsWith('.deb'))!;
  fs.copyFileSync(path.join(out, deb), path.join(tree, 'tmp', deb));
  const chroot = (...args: string[]): string => sh('chroot', [tree, ...args]);

  chroot('dpkg', '-i', `/tmp/${deb}`);
  assert.match(chroot('dpkg-query', '-W', '-f', '${Status} ${Version}', 't6'), /^install ok installed \S+$/);
  const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;
  assert.equal(chroot('/usr/bin/t6', '--version'), `t6 ${version}\n`);
  assert.equal(chroot('/usr/bin/t6-svstat', '--version'), `t6-svstat ${version}\n`);
  // A real command through its /usr/bin link: t6-svok on a directory no one supervises says so by its exit code.
  assert.equal(spawnSync('chroot', [tree, '/usr/bin/t6-svok', '/tmp']).status, 1);
  // /sbin/init left alone (minbase has none at all: it stays so).
  assert.equal(fs.existsSync(path.join(tree, 'sbin/init')) || fs.existsSync(path.join(tree, 'usr/sbin/init')), false, '/sbin/init left alone');

  chroot('dpkg', '-r', 't6');
  assert.doesNotMatch(spawnSync('chroot', [tree, 'dpkg-query', '-W', '-f', '${Status}', 't6'], { encoding: 'utf8' }).stdout, /installed/);
  assert.equal(fs.existsSync(path.join(tree, 'usr/lib/t6')), false, '/usr/lib/t6 removed');
  assert.deepEqual(fs.readdirSync(path.join(tree, 'usr/bin')).filter((f) => f.startsWith('t6')), [], 'no /usr/bin/t6* left');
  assert.deepEqual(fs.readdirSync(path.join(tree, 'usr/share/man/man8')).filter((f) => f.startsWith('t6')), [], 'no manual page left');
  fs.rmSync(work, { recursive: true, force: true });
});
