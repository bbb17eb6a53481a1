/**
 * t6-rc-init's options (s6-rc.md §6.1): -p prefix, -d (dereference the database), -b (the
 * database's lock), -t (bounded wait), and how it learns that the supervisors run: from
 * t6-svscan, one scan request on its runner socket; from a scanner without that socket
 * (Debian's real s6-svscan), the event FIFOs of svscan.md §8.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, Tree, WAIT_MS, readStatus, run, tmpdir, until } from '../lib/harness.ts';
import { type TestService, writeDb } from '../lib/rcdb.ts';
import { O_RDWR, close, open, tryLock } from '../../src/sys/fd.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const sh = (script: string): string => `#!/bin/sh\n${script}\n`;
const SERVICES: TestService[] = [
  { name: 'l1', type: 'longrun', run: sh('exec sleep 1000') },
  { name: 'l2', type: 'longrun', run: sh('exec sleep 1000'), deps: ['o'] },
  { name: 'o', type: 'oneshot', up: ['true'] },
];

async function setUp(services: TestService[], treeOpts: { command?: string[]; args?: string[] } = {}): Promise<{ base: string; scandir: string; compiled: string; live: string; tree: Tree }> {
  const base = tmpdir('t6-rc-init-');
  const scandir = path.join(base, 'service');
  fs.mkdirSync(scandir);
  const compiled = writeDb(path.join(base, 'compiled-1'), services);
  const tree = await Tree.start(scandir, treeOpts);
  cleanups.push(async () => { await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  return { base, scandir, compiled, live: path.join(base, 'live'), tree };
}

function init(args: string[], cwd?: string): { status: number | null; stderr: string } {
  const p = spawnSync(path.join(BIN, 't6-rc-init'), args, { encoding: 'utf8', ...(cwd === undefined ? {} : { cwd }) });
  return { status: p.status, stderr: p.stderr };
}

test('-p prefix links each longrun as PREFIXNAME, supervised and down; t6-rc drives them', async () => {
  const r = await setUp(SERVICES);
  assert.equal(init(['-c', r.compiled, '-l', r.live, '-p', 'pfx-', r.scandir]).status, 0);
  assert.deepEqual(fs.readdirSync(r.scandir).filter((n) => !n.startsWith('.')).sort(), ['pfx-l1', 'pfx-l2']);
  assert.equal(fs.readFileSync(path.join(r.live, 'prefix'), 'utf8'), 'pfx-');
  for (const name of ['l1', 'l2']) {
    const sd = path.join(r.scandir, `pfx-${name}`);
    assert.equal(fs.realpathSync(sd), fs.realpathSync(path.join(r.live, 'servicedirs', name)));
    assert.equal(run(path.join(BIN, 't6-svok'), [sd]).status, 0, `${sd} is supervised when t6-rc-init returns`);
    assert.equal(readStatus(sd)?.pid, 0);
  }
  const up = spawnSync(path.join(BIN, 't6-rc'), ['-l', r.live, '-u', 'change', 'l2'], { encoding: 'utf8' });
  assert.equal(up.status, 0, up.stderr);
  assert.notEqual(readStatus(path.join(r.scandir, 'pfx-l2'))?.pid, 0);
  assert.equal(readStatus(path.join(r.scandir, 'pfx-l1'))?.pid, 0);
  for (const bad of ['a/b', 'a\nb']) {
    const p = init(['-c', r.compiled, '-l', path.join(r.base, 'live2'), '-p', bad, r.scandir]);
    assert.equal(p.status, 100);
    assert.match(p.stderr, /prefix may not contain/);
  }
});

test('-d: a relative compiled path is accepted and LIVE/compiled points at its real path; without -d it must be absolute', async () => {
  const r = await setUp(SERVICES);
  fs.symlinkSync('compiled-1', path.join(r.base, 'current'));
  const relative = init(['-c', 'current', '-l', r.live, r.scandir], r.base);
  assert.equal(relative.status, 100);
  assert.match(relative.stderr, /compiled must be an absolute path/);
  // Without -d the link is kept as given (a `current` symlink can be swapped later)…
  assert.equal(init(['-c', path.join(r.base, 'current'), '-l', r.live, r.scandir]).status, 0);
  assert.equal(fs.readlinkSync(path.join(r.live, 'compiled')), path.join(r.base, 'current'));
  // …with -d it is resolved once.
  assert.equal(init(['-d', '-c', 'current', '-l', r.live, r.scandir], r.base).status, 0);
  assert.equal(fs.readlinkSync(path.join(r.live, 'compiled')), fs.realpathSync(r.compiled));
});

test('-b: the database lock held by a compiler makes t6-rc-init fail (111), or with -b wait in the kernel until it is free', async () => {
  const r = await setUp(SERVICES);
  const lockFile = path.join(r.compiled, 'lock');
  const fd = open(lockFile, O_RDWR);
  try {
    assert.ok(tryLock(fd));
    const busy = init(['-c', r.compiled, '-l', r.live, r.scandir]);
    assert.equal(busy.status, 111);
    assert.match(busy.stderr, /unable to take lock on .*compiled-1\/lock: Resource busy/);
    assert.equal(fs.existsSync(r.live), false, 'nothing made');
    const p = spawn(path.join(BIN, 't6-rc-init'), ['-b', '-c', r.compiled, '-l', r.live, r.scandir], { stdio: 'ignore' });
    const code = new Promise<number | null>((resolve) => p.on('exit', (c) => resolve(c)));
    const inode = fs.statSync(lockFile).ino;
    await until('t6-rc-init -b blocked on the lock', () => fs.readFileSync('/proc/locks', 'utf8').split('\n').some((l) => l.includes(`:${inode} `) && l.includes('->')));
    assert.equal(p.exitCode, null);
    close(fd);
    assert.equal(await code, 0);
  } finally {
    close(fd);
  }
  assert.equal(run(path.join(BIN, 't6-svok'), [path.join(r.scandir, 'l1')]).status, 0);
});

test('-t: services t6-svscan will not supervise (its -c limit) end the wait with exit 111, naming them', async () => {
  // -c 4: four supervisors at most; six longruns.
  const six: TestService[] = Array.from({ length: 6 }, (_, i) => ({ name: `l${i}`, type: 'longrun' as const, run: sh('exec sleep 1000') }));
  const r = await setUp(six, { args: ['-c', '4'] });
  const t0 = performance.now();
  const p = init(['-t', '400', '-c', r.compiled, '-l', r.live, r.scandir]);
  assert.equal(p.status, 111);
  assert.match(p.stderr, /timed out waiting for t6-svscan on .* to supervise l\d, l\d/);
  assert.ok(performance.now() - t0 >= 400);
});

test('under real s6-svscan (no runner socket) t6-rc-init uses the event FIFOs and returns once every s6-supervise runs', async () => {
  const r = await setUp(SERVICES, { command: ['s6-svscan', '-d', '3'] });
  assert.equal(init(['-t', String(WAIT_MS), '-c', r.compiled, '-l', r.live, r.scandir]).status, 0);
  for (const name of ['l1', 'l2']) {
    const sd = path.join(r.scandir, name);
    assert.equal(run('s6-svok', [sd]).status, 0, `${sd} is supervised by s6-supervise when t6-rc-init returns`);
    assert.match(run('s6-svstat', [sd]).stdout, /^down /);
  }
});
