/** `t6-rc graph`: the article's demo database as Graphviz DOT (and SVG where Graphviz is installed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { t6, tmpdir } from '../lib/harness.ts';

function articleSource(dir: string): void {
  const svc = (name: string, files: Record<string, string>): void => {
    fs.mkdirSync(path.join(dir, name), { recursive: true });
    for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name, f), text, { mode: f === 'run' ? 0o755 : 0o644 });
  };
  svc('demo-longrun-1', { type: 'longrun\n', run: '#!/bin/sh\nwhile :; do echo "demo-longrun-1 is running"; sleep 10; done\n', dependencies: 'demo-oneshot-1\n' });
  svc('demo-oneshot-1', { type: 'oneshot\n', up: 'echo "demo-oneshot-1 is up"\n', down: 'echo "demo-oneshot-1 is down"\n' });
  svc('default', { type: 'bundle\n', contents: 'demo-longrun-1\n' });
}

test('t6-rc -c compiled graph prints the dependency graph as DOT', () => {
  const base = tmpdir();
  articleSource(path.join(base, 'source'));
  assert.equal(t6('rc-compile', [path.join(base, 'compiled'), path.join(base, 'source')]).status, 0);
  const r = t6('rc', ['-c', path.join(base, 'compiled'), 'graph']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^digraph services \{/);
  for (const name of ['demo-longrun-1', 'demo-oneshot-1', 'default']) assert.match(r.stdout, new RegExp(`"${name}" \\[`));
  assert.match(r.stdout, /"demo-longrun-1" -> "demo-oneshot-1"/);
  const hasDot = spawnSync('dot', ['-V']).error === undefined;
  const svg = t6('rc', ['-c', path.join(base, 'compiled'), '--svg', 'graph']);
  if (hasDot) {
    assert.equal(svg.status, 0, svg.stderr);
    assert.match(svg.stdout, /<svg/);
  } else {
    assert.equal(svg.status, 111);
    assert.match(svg.stderr, /unable to run Graphviz's dot/);
  }
  fs.rmSync(base, { recursive: true, force: true });
});

test('t6-rc graph on a missing database says which file and exits 4', () => {
  const r = t6('rc', ['-c', '/nonexistent/compiled', 'graph']);
  assert.equal(r.status, 4);
  assert.match(r.stderr, /unable to read \/nonexistent\/compiled\/db\.json/);
});
