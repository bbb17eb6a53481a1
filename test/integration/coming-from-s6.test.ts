/**
 * docs/coming-from-s6.md stays true: every `sh` block in it runs, in order, as one bash
 * script with `set -eu`, as root in a private mount and pid namespace, with t6's bin/ first
 * in PATH as after an install. `/etc` is a copy-on-write overlay (nothing reaches the real
 * one), `/run` a fresh tmpfs, and `/etc/s6-rc/source` a small s6-rc tree: a oneshot
 * `setup`, a longrun `web` feeding `web-log` through a pipeline, a bundle `default`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, ROOT, tmpdir } from '../lib/harness.ts';

const cleanups: (() => void)[] = [];
after(() => { for (const c of cleanups.reverse()) c(); });

const GUIDE = path.join(ROOT, 'docs', 'coming-from-s6.md');

/** The guide's `sh` blocks, in order. */
function shBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh\n([^]*?)^```$/gm)].map((m) => m[1]!);
}

/** The s6-rc source tree the guide's commands work on. */
function writeSource(dir: string): void {
  const file = (rel: string, content: string, mode = 0o644): void => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content, { mode });
  };
  file('setup/type', 'oneshot\n');
  file('setup/up', 'if { mkdir -p /run/t6-try/state }\nredirfd -w 1 /run/t6-try/state/setup\necho done\n');
  file('web/type', 'longrun\n');
  file('web/run', '#!/bin/sh\nexec 2>&1\necho web: serving\nexec sleep 100000\n', 0o755);
  file('web/dependencies', 'setup\n');
  file('web/producer-for', 'web-log\n');
  file('web-log/type', 'longrun\n');
  file('web-log/run', '#!/bin/sh\nexec s6-log n3 s100000 /run/t6-try/web-log\n', 0o755);
  file('web-log/consumer-for', 'web\n');
  file('web-log/pipeline-name', 'web-pipeline\n');
  file('default/type', 'bundle\n');
  file('default/contents', 'web-pipeline\n');
}

test('the guide has runnable blocks for each step: compile, try, switch, remove', () => {
  const blocks = shBlocks(fs.readFileSync(GUIDE, 'utf8'));
  const all = blocks.join('\n');
  for (const step of ['t6-rc-compile', 't6-svscan', 't6-rc-init', 't6-rc ', 's6-svc', 't6-linux-init-maker', 'rm -r']) {
    assert.ok(all.includes(step), `a block runs ${step}`);
  }
});

// The copy-on-write /etc needs overlayfs (built into Debian's kernels).
const hasOverlay = /\toverlay$/m.test(fs.readFileSync('/proc/filesystems', 'utf8'));

test('every sh block of docs/coming-from-s6.md runs, in order, and does what the guide says', { skip: !hasOverlay && 'no overlayfs in this kernel' }, () => {
  const base = tmpdir('t6-guide-');
  cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
  for (const d of ['upper', 'work']) fs.mkdirSync(path.join(base, d));
  writeSource(path.join(base, 'source'));
  const guide = shBlocks(fs.readFileSync(GUIDE, 'utf8')).join('\n');
  // The namespace's set-up, then the guide. /tmp gets a tmpfs of its own unless t6 lives there.
  const script = [
    'set -eu',
    'mount --make-rprivate /',
    `mount -t overlay overlay -o lowerdir=/etc,upperdir=${base}/upper,workdir=${base}/work /etc`,
    'mount -t tmpfs tmpfs /run',
    `mkdir -p /etc/s6-rc && cp -a ${base}/source /etc/s6-rc/source`,
    `case ${ROOT}/ in /tmp/*) ;; *) mount -t tmpfs tmpfs /tmp ;; esac`,
    `export PATH=${BIN}:/usr/bin:/bin`,
    'echo "--- guide ---"',
    guide,
    'echo "--- after ---"',
    'cat /run/t6-try/web-log/current',
    'cat /run/t6-try/state/setup',
    'test ! -e /etc/t6-rc && test ! -e /etc/t6-linux-init && echo removed',
  ].join('\n');
  const r = spawnSync('unshare', ['--mount', '--pid', '--fork', '--mount-proc', '--kill-child', 'bash', '-c', script], { encoding: 'utf8', timeout: 120_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out);
  const [, during = '', afterwards = ''] = r.stdout.split(/^--- (?:guide|after) ---$/m);
  // `t6-rc -a list`: everything the default bundle holds is up.
  for (const name of ['setup', 'web', 'web-log']) assert.match(during, new RegExp(`^${name}$`, 'm'), out);
  // s6-svstat (s6's own tool) reads t6's status file: up, then up again under a new pid
  // once s6-svc -r has restarted it.
  const pids = [...during.matchAll(/^up \(pid (\d+)\) \d+ seconds$/gm)].map((m) => m[1]);
  assert.equal(pids.length, 2, out);
  assert.notEqual(pids[0], pids[1], out);
  assert.match(during, /t6-linux-init\.cjs -c \/etc\/t6-linux-init\/current/, 'the boot tree\'s init runs t6-linux-init');
  // The pipeline carried web's line into its logger.
  assert.match(afterwards, /web: serving$/m, out);
  assert.match(afterwards, /^done$/m);
  assert.match(afterwards, /^removed$/m);
  assert.equal(fs.readdirSync(path.join(base, 'upper')).includes('t6-rc'), false, 'removed in the overlay too');
});
