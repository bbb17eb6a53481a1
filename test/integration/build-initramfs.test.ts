/**
 * scripts/vm/build-initramfs.mjs and the binaries it copies: Debian's `busybox` package
 * (dynamically linked) replaces busybox-static, and an image holding it without its
 * libraries panics the kernel at boot ("/bin/sh: error while loading shared libraries",
 * then "Attempted to kill init!"). The build copies a dynamic busybox's libraries, refuses
 * one whose libraries it cannot find, and checks every binary of the image before packing.
 * Needs a build (dist/, bin/); a build takes about 2 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, tmpdir } from '../lib/harness.ts';

const TRUE = ['/usr/bin/true', '/bin/true'].find((p) => fs.existsSync(p))!;

function build(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [path.join(ROOT, 'scripts/vm/build-initramfs.mjs'), '--no-strip', ...args], { encoding: 'utf8' });
}

/** A copy of `true` that needs `libt6x.so` (not on any machine) instead of libc.so.6. */
function brokenDynamicBinary(file: string): string {
  const bytes = fs.readFileSync(TRUE);
  const at = bytes.indexOf(Buffer.from('\0libc.so.6\0'));
  assert.ok(at >= 0, `${TRUE} names libc.so.6`);
  Buffer.from('\0libt6x.so\0').copy(bytes, at);
  fs.writeFileSync(file, bytes, { mode: 0o755 });
  return file;
}

/** A C compiler, to make a dynamically linked stand-in for Debian's busybox. */
const cc = ['/usr/bin/cc', '/usr/bin/gcc'].find((p) => fs.existsSync(p));

test('a dynamically linked busybox gets its libraries into the image (libresolv, as Debian\'s busybox)', { skip: cc === undefined && 'no C compiler to build a dynamic busybox stand-in' }, () => {
  const dir = tmpdir('t6-initramfs-');
  // Answers `--list-full` as busybox does, and needs libresolv (which node does not).
  fs.writeFileSync(path.join(dir, 'bb.c'), '#include <resolv.h>\n#include <stdio.h>\nint main(void) { if (0) res_init(); puts("bin/sh"); return 0; }\n');
  const cr = spawnSync(cc!, ['-o', path.join(dir, 'busybox'), path.join(dir, 'bb.c'), '-Wl,--no-as-needed', '-lresolv'], { encoding: 'utf8' });
  assert.equal(cr.status, 0, cr.stderr);
  const r = build(['--busybox', path.join(dir, 'busybox'), '--out', path.join(dir, 'out/initramfs.img')]);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { libraries: string[]; busyboxLinked: string };
  assert.equal(summary.busyboxLinked, 'dynamic');
  const resolv = summary.libraries.find((l) => l.endsWith('/libresolv.so.2'));
  assert.ok(resolv !== undefined, summary.libraries.join(' '));
  assert.ok(fs.statSync(path.join(dir, 'out/rootfs', resolv)).isFile());
});

test('a busybox whose libraries cannot be found is refused, naming busybox-static', () => {
  const dir = tmpdir('t6-initramfs-');
  const r = build(['--busybox', brokenDynamicBinary(path.join(dir, 'busybox')), '--out', path.join(dir, 'out/initramfs.img')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^build-initramfs: \S+\/busybox cannot run in the image: it needs libt6x\.so \(not found on this machine\); install a static busybox \(apt-get install busybox-static\)/);
  assert.equal(fs.existsSync(path.join(dir, 'out/initramfs.img')), false);
});

test('an overlay binary that cannot run in the image stops the build before packing', () => {
  const dir = tmpdir('t6-initramfs-');
  fs.mkdirSync(path.join(dir, 'overlay/usr/bin'), { recursive: true });
  brokenDynamicBinary(path.join(dir, 'overlay/usr/bin/broken'));
  const r = build(['--overlay', path.join(dir, 'overlay'), '--out', path.join(dir, 'out/initramfs.img')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot run in the image[^\n]*\n {2}\/usr\/bin\/broken: needs libt6x\.so \(not found on this machine\)\n$/);
  assert.equal(fs.existsSync(path.join(dir, 'out/initramfs.img')), false);
});
