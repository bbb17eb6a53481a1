/**
 * scripts/package-opt.mjs: the self-contained t6 folder runs from wherever it is copied,
 * on its own Node, bundles and koffi (never falling back to the tree it was built in).
 * That it needs nothing of the repository at all is shown in a container
 * (container-podman.test.ts), where the repository does not exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { packageOpt, ROOT } from '../../scripts/package-opt.mjs';
import { tmpdir } from '../lib/harness.ts';

test('package-opt: a copy in another directory runs its own wrappers, Node and koffi; no source maps, koffi trimmed', () => {
  const built = path.join(tmpdir('t6-opt-'), 'opt');
  // Not stripped here: the copy is what is tested, and strip costs a second.
  const r = packageOpt(built, { strip: false });
  assert.ok(r.parts.node > 50e6 && r.parts.koffi < 2e6, JSON.stringify(r));
  assert.deepEqual(fs.readdirSync(path.join(built, 'dist')).filter((f) => f.endsWith('.map')), []);
  const elsewhere = path.join(tmpdir('t6-opt-moved-'), 'somewhere', 't6');
  fs.mkdirSync(path.dirname(elsewhere), { recursive: true });
  assert.equal(spawnSync('cp', ['-a', built, elsewhere]).status, 0);
  const link = path.join(path.dirname(elsewhere), 't6-svok');
  fs.symlinkSync(path.join(elsewhere, 'bin/t6-svok'), link);
  for (const [argv0, args, want] of [
    [path.join(elsewhere, 'bin/t6-svscan'), ['--help'], /^t6-svscan /],
    [path.join(elsewhere, 'bin/t6'), ['svstat', '--help'], /^usage: t6-svstat /],
    [link, ['--help'], /^usage: t6-svok /],
  ] as const) {
    // sh -x shows the exec line: it must name the copy's Node and bundle, not the repository's.
    const run = spawnSync('sh', ['-x', argv0, ...args], { cwd: '/', encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, want);
    const exec = run.stderr.split('\n').find((l) => l.startsWith('+ exec ')) ?? '';
    assert.ok(exec.includes(`${elsewhere}/bin/../node_modules/node/bin/node`) && !exec.includes(ROOT), exec);
  }
  const koffi = spawnSync(path.join(elsewhere, 'node_modules/node/bin/node'), ['-e', "process.stdout.write(typeof require('koffi').load)"], { cwd: elsewhere, encoding: 'utf8' });
  assert.equal(koffi.stdout, 'function', koffi.stderr);
});
