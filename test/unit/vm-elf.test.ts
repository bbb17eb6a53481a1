/**
 * scripts/vm/elf.ts: which binaries can run in the initramfs. Checked on binaries of this
 * machine: a static busybox (busybox-static) or ldconfig, the pinned Node (dynamic),
 * koffi.node (a library), and a copy of a dynamic program whose libc entry is renamed so
 * that the loader cannot find it (what a dynamically linked busybox without its libraries
 * is in the image).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { busyboxLibraries, elfLinkage, existsInImage, isElf, missingInImage, sharedLibraries } from '../../scripts/vm/elf.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const KOFFI = path.join(ROOT, 'node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node');
const TRUE = ['/usr/bin/true', '/bin/true'].find((p) => fs.existsSync(p))!;

function scratch(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't6-elf-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A static executable of this machine, if there is one. */
function staticBinary(): string | undefined {
  return ['/bin/busybox', '/usr/bin/busybox', '/sbin/ldconfig', '/usr/sbin/ldconfig']
    .find((p) => fs.existsSync(p) && !elfLinkage(p).dynamic);
}

/** A copy of `true` that needs `libt6x.so` (not on any machine) instead of libc.so.6. */
function brokenDynamicBinary(dir: string): string {
  const bytes = fs.readFileSync(TRUE);
  const from = Buffer.from('\0libc.so.6\0');
  const at = bytes.indexOf(from);
  assert.ok(at >= 0, `${TRUE} names libc.so.6`);
  Buffer.from('\0libt6x.so\0').copy(bytes, at);
  const file = path.join(dir, 'broken');
  fs.writeFileSync(file, bytes, { mode: 0o755 });
  return file;
}

test('a static executable (busybox-static, ldconfig) needs nothing in the image', (t) => {
  const file = staticBinary();
  if (file === undefined) { t.skip('no static executable on this machine (apt-get install busybox-static)'); return; }
  assert.equal(isElf(file), true);
  assert.equal(elfLinkage(file).interpreter, undefined);
  assert.deepEqual(sharedLibraries(file), []);
  assert.deepEqual(busyboxLibraries(file), []);
});

test('a dynamic executable names its interpreter, and needs it and libc', () => {
  const { interpreter, dynamic } = elfLinkage(TRUE);
  assert.equal(dynamic, true);
  assert.match(interpreter ?? '', /^\/lib.*\/ld-linux.*\.so\.\d$/);
  const libs = sharedLibraries(TRUE);
  assert.ok(libs.includes(interpreter!), libs.join(' '));
  assert.ok(libs.some((l) => l.endsWith('/libc.so.6')), libs.join(' '));
  assert.ok(libs.every((l) => l.startsWith('/')));
  // The pinned Node too, as build-initramfs copies it.
  assert.ok(sharedLibraries(process.execPath).some((l) => /libstdc\+\+\.so\.6$/.test(l)));
});

test('a shared library has no interpreter but still has its libraries', () => {
  const { interpreter, dynamic } = elfLinkage(KOFFI);
  assert.equal(interpreter, undefined);
  assert.equal(dynamic, true);
  assert.ok(sharedLibraries(KOFFI).some((l) => l.endsWith('/libc.so.6')));
});

test('a script is not ELF', () => {
  const file = path.join(scratch(), 'script');
  fs.writeFileSync(file, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  assert.equal(isElf(file), false);
  assert.throws(() => elfLinkage(file), /is not an ELF file/);
});

test('a library the loader cannot find is named, and a busybox that needs one is refused naming busybox-static', () => {
  const file = brokenDynamicBinary(scratch());
  assert.throws(() => sharedLibraries(file), /^Error: needs libt6x\.so \(not found on this machine\)$/);
  assert.throws(() => busyboxLibraries(file), (err: Error) => {
    assert.match(err.message, /broken cannot run in the image: it needs libt6x\.so/);
    assert.match(err.message, /apt-get install busybox-static/);
    return true;
  });
});

test('existsInImage follows symbolic links inside the image, never on this machine', () => {
  const stage = scratch();
  fs.mkdirSync(path.join(stage, 'usr/lib64'), { recursive: true });
  fs.symlinkSync('/usr/lib64', path.join(stage, 'lib64')); // absolute, as on a merged-/usr system
  assert.equal(existsInImage(stage, '/lib64/ld-linux-x86-64.so.2'), false, 'the host has one; the image does not');
  fs.writeFileSync(path.join(stage, 'usr/lib64/ld-linux-x86-64.so.2'), '');
  assert.equal(existsInImage(stage, '/lib64/ld-linux-x86-64.so.2'), true);
  fs.symlinkSync('loop', path.join(stage, 'loop'));
  assert.equal(existsInImage(stage, '/loop/x'), false);
});

test('missingInImage lists what each binary of the image lacks, until it is there', () => {
  const stage = scratch();
  fs.mkdirSync(path.join(stage, 'bin'));
  fs.copyFileSync(TRUE, path.join(stage, 'bin/true'));
  fs.writeFileSync(path.join(stage, 'bin/script'), '#!/bin/sh\n');
  const needs = sharedLibraries(TRUE);
  assert.deepEqual(missingInImage(stage).sort(), needs.map((l) => `/bin/true: needs ${l}`).sort());
  for (const lib of needs) {
    fs.mkdirSync(path.join(stage, path.dirname(lib)), { recursive: true });
    fs.copyFileSync(lib, path.join(stage, lib));
  }
  assert.deepEqual(missingInImage(stage), []);
  fs.copyFileSync(brokenDynamicBinary(scratch()), path.join(stage, 'bin/broken'));
  assert.deepEqual(missingInImage(stage), ['/bin/broken: needs libt6x.so (not found on this machine)']);
});
