/**
 * bin/init and pid 1's startup snapshot (issue 12): the maker's script starts Node from the
 * blob only when it is there, checked by the build (its stamp) and not changed since; else
 * from the bundle, with the reason for t6-linux-init to print. Run here against a fake t6
 * tree whose "node" prints what it was given, under sh (dash) and busybox ash when present.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { tmpdir } from '../lib/harness.ts';
import { describeTree, type MakerOptions } from '../../src/init/maker.ts';
import { snapshotBlobPath, snapshotStampPath, withoutSnapshotFlags } from '../../src/sys/snapshot.ts';

function fakeTree(): { t6: string; init: string; blob: string; stamp: string } {
  const t6 = tmpdir('t6-snapshot-');
  fs.mkdirSync(path.join(t6, 'bin'));
  fs.mkdirSync(path.join(t6, 'dist'));
  fs.mkdirSync(path.join(t6, 'node_modules/node/bin'), { recursive: true });
  fs.writeFileSync(path.join(t6, 'node_modules/node/bin/node'), '#!/bin/sh\necho "args: $*"\necho "why: ${T6_SNAPSHOT_FALLBACK-unset}"\n', { mode: 0o755 });
  const o: MakerOptions = {
    basedir: '/etc/t6-linux-init/current', t6bin: path.join(t6, 'bin'), compiled: '/etc/t6-rc/compiled', live: '/run/t6-rc', logToConsole: false,
    initialPath: '/usr/bin:/bin', umask: 0o022, timestampStyle: 1, env: [], graceMs: 3000, defaultRunlevel: 'default',
    runMode: 'mount', skeleton: undefined, container: false, noLogger: false, syncInContainer: false,
  };
  const init = path.join(t6, 'init');
  fs.writeFileSync(init, describeTree(o).files.find(([f]) => f === 'bin/init')![1], { mode: 0o755 });
  const bundle = path.join(t6, 'dist/t6-linux-init.cjs');
  return { t6, init, blob: snapshotBlobPath(bundle), stamp: snapshotStampPath(bundle) };
}

const shells = ['/bin/sh', '/bin/busybox'].filter((s) => fs.existsSync(s));

function run(shell: string, init: string): { args: string; why: string } {
  const argv = shell.endsWith('busybox') ? ['ash', init, 'single'] : [init, 'single'];
  const r = spawnSync(shell, argv, { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
  assert.equal(r.status, 0, r.stderr);
  return { args: /^args: (.*)$/m.exec(r.stdout)![1]!, why: /^why: (.*)$/m.exec(r.stdout)![1]! };
}

test('bin/init: the snapshot when sound; the bundle and the reason when it is missing, unchecked or changed since its check', () => {
  for (const shell of shells) {
    const { init, blob, stamp } = fakeTree();
    const old = new Date(Date.now() - 60_000);
    const missing = run(shell, init);
    assert.equal(missing.why, `${blob} is missing`, shell);
    assert.doesNotMatch(missing.args, /--snapshot-blob/);
    assert.match(missing.args, / --no-memory-reducer \S+\/dist\/t6-linux-init\.cjs -c \/etc\/t6-linux-init\/current .* -- single$/);

    fs.writeFileSync(blob, 'blob');
    assert.equal(run(shell, init).why, `${blob} was never checked (no ${stamp})`, shell);

    fs.writeFileSync(stamp, 'v24 4\n');
    fs.utimesSync(blob, old, old);
    const sound = run(shell, init);
    assert.equal(sound.why, 'unset', shell);
    assert.match(sound.args, new RegExp(` --no-memory-reducer --snapshot-blob ${blob.replaceAll('.', '\\.')} \\S+/dist/t6-linux-init\\.cjs -c /etc/t6-linux-init/current .* -- single$`));

    // Written after the check (a damaged copy, a half-done upgrade): not trusted.
    fs.utimesSync(stamp, old, old);
    fs.utimesSync(blob, new Date(), new Date());
    assert.equal(run(shell, init).why, `${blob} has changed since it was checked`, shell);
  }
});

test('maker -Z: bin/init never uses the snapshot; a re-exec drops --snapshot-blob', () => {
  const o = {
    basedir: '/b', t6bin: '/opt/t6/bin', compiled: '/c', live: '/l', logToConsole: false, initialPath: '/bin', umask: 0o022, timestampStyle: 1,
    env: [], graceMs: 3000, defaultRunlevel: 'default', runMode: 'mount', skeleton: undefined, container: false, noLogger: false, syncInContainer: false, noSnapshot: true,
  } satisfies MakerOptions;
  const init = describeTree(o).files.find(([f]) => f === 'bin/init')![1];
  assert.doesNotMatch(init, /snapshot/i);
  assert.match(init, /^exec \/opt\/t6\/node_modules\/node\/bin\/node .* \/opt\/t6\/dist\/t6-linux-init\.cjs -c \/b /m);
  assert.deepEqual(withoutSnapshotFlags(['--max-semi-space-size=1', '--snapshot-blob', '/x.blob', '--no-memory-reducer', '--snapshot-blob=/y']), ['--max-semi-space-size=1', '--no-memory-reducer']);
});

test('the build left a snapshot of t6-linux-init that starts, with its stamp written after it', () => {
  const bundle = path.join(import.meta.dirname, '../../dist/t6-linux-init.cjs');
  const blob = snapshotBlobPath(bundle);
  assert.ok(fs.statSync(snapshotStampPath(bundle)).mtimeMs >= fs.statSync(blob).mtimeMs);
  const node = path.join(import.meta.dirname, '../../node_modules/node/bin/node');
  const r = spawnSync(node, ['--snapshot-blob', blob, bundle, '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^t6-linux-init \[ -c basedir \]/);
});
