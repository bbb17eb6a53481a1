import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { containerSources, readContainerSources, writeSystemDefinitions } from '../../src/rc/container-sources.ts';
import { check } from '../../src/rc/compile.ts';
import { tmpdir } from '../lib/harness.ts';

const T6 = '/opt/t6/bin/t6-container';

/** Writes definition `name` under `dir`: files by text, directories of empty files by name list. */
function def(dir: string, name: string, files: Record<string, string | string[]>): void {
  fs.mkdirSync(path.join(dir, name), { recursive: true });
  for (const [f, v] of Object.entries(files)) {
    if (typeof v === 'string') fs.writeFileSync(path.join(dir, name, f), v);
    else {
      fs.mkdirSync(path.join(dir, name, f), { recursive: true });
      for (const e of v) fs.writeFileSync(path.join(dir, name, f, e), '');
    }
  }
}

/** An image root with /etc/s6-overlay; `layout` new: bundles in user-bundles.d; old: in s6-rc.d (user without a type, as s6-overlay's syslogd add-on leaves it). */
function image(layout: 'new' | 'old' | 'none') {
  const root = tmpdir('t6-csrc-');
  const overlay = path.join(root, 'etc/s6-overlay');
  const s6rcd = path.join(overlay, 's6-rc.d');
  const bundles = path.join(overlay, 'user-bundles.d');
  if (layout !== 'none') {
    // The shape of a linuxserver.io image: an init-* chain of oneshots, then a longrun.
    def(s6rcd, 'init-config', { type: 'oneshot\n', up: '/etc/s6-overlay/s6-rc.d/init-config/run\n' });
    def(s6rcd, 'init-services', { type: 'oneshot\n', up: '# nothing: an ordering barrier\n', 'dependencies.d': ['init-config'] });
    def(s6rcd, 'svc-app', { type: 'longrun\n', run: '#!/bin/sh\nexec sleep 1d\n', 'notification-fd': '3\n', 'dependencies.d': ['init-services'] });
    const at = layout === 'new' ? bundles : s6rcd;
    def(at, 'user', { ...(layout === 'new' ? { type: 'bundle\n' } : {}), 'contents.d': ['init-config', 'init-services', 'svc-app'] });
    def(at, 'user2', { type: 'bundle\n', 'contents.d': [] });
  }
  return { root, where: { overlay, bundles }, own: path.join(root, 'run/s6/sources'), imageSystem: path.join(root, 'package/admin/s6-overlay/etc/s6-rc/sources') };
}

/** The compiled services' names and types, or the problems. */
function compiled(sources: ReturnType<typeof containerSources>) {
  const set = readContainerSources(sources);
  assert.deepEqual(set.problems, [], JSON.stringify(set.problems));
  const result = check(set.services, set.problems, set.warnings);
  assert.equal(result.ok, true, JSON.stringify(result));
  return new Map(set.services.map((s) => [s.name, s]));
}

test('the new layout: s6-rc.d, user-bundles.d, and t6\'s system definitions, compiled together', () => {
  const img = image('new');
  const sources = containerSources(img.where, img.own, T6, img.imageSystem);
  assert.equal(sources.compat, false);
  assert.deepEqual(sources.dirs, [`${img.where.overlay}/s6-rc.d`, img.where.bundles, img.own]);
  const svcs = compiled(sources);
  assert.deepEqual(svcs.get('top')!.contents.map((c) => c.name), ['base', 'legacy-services', 'user', 'user2']);
  assert.deepEqual(svcs.get('legacy-services')!.dependencies.map((d) => d.name).sort(), ['base', 'user']);
  assert.deepEqual(svcs.get('legacy-cont-init')!.up, [T6, 'legacy', 'cont-init']);
  assert.deepEqual(svcs.get('legacy-cont-init')!.down, [T6, 'legacy', 'cont-finish']);
  assert.equal(svcs.get('user')!.type, 'bundle');
  assert.equal(fs.existsSync(path.join(img.own, 'user')), false, 'the image\'s bundles, not empty ones of ours');
});

test('the old layout: user and user2 in s6-rc.d, a typeless user taken as a bundle, nothing written under /etc', () => {
  const img = image('old');
  fs.mkdirSync(path.join(img.where.bundles, 'user'), { recursive: true }); // present but not read
  const before = fs.readdirSync(path.join(img.where.overlay, 's6-rc.d', 'user'));
  const sources = containerSources(img.where, img.own, T6, img.imageSystem);
  assert.equal(sources.compat, true);
  assert.equal(sources.dirs.includes(img.where.bundles), false);
  assert.match(sources.notes.join('\n'), /is not read/);
  const svcs = compiled(sources);
  assert.equal(svcs.get('user')!.type, 'bundle');
  assert.deepEqual(svcs.get('user')!.contents.map((c) => c.name), ['init-config', 'init-services', 'svc-app']);
  assert.deepEqual(fs.readdirSync(path.join(img.where.overlay, 's6-rc.d', 'user')), before, '/etc untouched');
});

test('an image with its own system definitions gets them compiled, not ours; an image with none gets empty user bundles', () => {
  const img = image('new');
  writeSystemDefinitions(img.imageSystem, '/package/admin/s6-overlay/command/custom');
  def(img.imageSystem, 'base-addon-banner', { type: 'oneshot\n', up: 'echo banner\n' });
  fs.writeFileSync(path.join(img.imageSystem, 'base', 'contents.d', 'base-addon-banner'), '');
  const sources = containerSources(img.where, img.own, T6, img.imageSystem);
  assert.deepEqual(sources.dirs.at(-1), img.imageSystem);
  const svcs = compiled(sources);
  assert.ok(svcs.has('base-addon-banner'));
  assert.equal(svcs.get('fix-attrs')!.up[0], '/package/admin/s6-overlay/command/custom');

  const bare = image('none');
  const none = containerSources(bare.where, bare.own, T6, bare.imageSystem);
  assert.deepEqual(none.dirs, [bare.own]);
  const bareSvcs = compiled(none);
  assert.deepEqual([...bareSvcs.keys()].sort(), ['base', 'fix-attrs', 'legacy-cont-init', 'legacy-services', 'top', 'user', 'user2']);
});

test('the t6-container path goes into up scripts: it must be absolute and plain', () => {
  const dir = tmpdir('t6-csrc-bad-');
  assert.throws(() => writeSystemDefinitions(dir, 'bin/t6-container'), /must be absolute/);
  assert.throws(() => writeSystemDefinitions(dir, '/opt/my t6/bin/t6-container'), /without blanks/);
});

test('a legacy step with nothing to do in the image runs no process: its script has no command', () => {
  const img = image('new');
  const legacy = path.join(img.root, 'etc');
  fs.mkdirSync(path.join(legacy, 'cont-init.d'), { recursive: true });
  fs.writeFileSync(path.join(legacy, 'cont-init.d', '10-x'), '#!/bin/sh\n');
  fs.mkdirSync(path.join(legacy, 'services.d'), { recursive: true }); // empty
  const svcs = compiled(containerSources(img.where, img.own, T6, img.imageSystem, legacy));
  assert.deepEqual(svcs.get('fix-attrs')!.up, []);
  assert.deepEqual(svcs.get('legacy-cont-init')!.up, [T6, 'legacy', 'cont-init']);
  assert.deepEqual(svcs.get('legacy-cont-init')!.down, []);
  assert.deepEqual(svcs.get('legacy-services')!.up, []);
});
