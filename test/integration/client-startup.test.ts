/**
 * The status and control clients start no more than Node itself does (issue 12): a
 * t6-svstat, t6-svc or t6-svok of a supervised service, and a t6-svok of one nobody
 * supervises, and a `t6-rc list` while no change is at work, load no native module (koffi's libc binding costs a dlopen of a 1 MB library)
 * and no module file beside their bundle. Nor does `t6-hpr -p` asking the shutdown daemon
 * (poweroff's time goes by it), which also leaves node:tty and node:net alone. Needs a build.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, ROOT, Tree, makeService, readStatus, tmpdir, until } from '../lib/harness.ts';
import { writeDb } from '../lib/rcdb.ts';

const NODE = path.join(ROOT, 'node_modules', 'node', 'bin', 'node');

/** Runs dist/NAME.cjs under the pinned Node with a preload that reports, at exit, what else was loaded. */
function loadedBy(name: string, args: string[], env: NodeJS.ProcessEnv = process.env): { status: number | null; loaded: string[]; builtins: string[] } {
  const dir = tmpdir('t6-client-startup-');
  const probe = path.join(dir, 'probe.cjs');
  fs.writeFileSync(probe, `const fs = require('node:fs'); const dlopen = process.dlopen; const seen = []; const before = new Set(process.moduleLoadList);
process.on('exit', () => fs.writeFileSync(${JSON.stringify(path.join(dir, 'builtins'))}, JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith('NativeModule ')).map((m) => m.slice(13)))));
process.dlopen = function (m, file, ...rest) { seen.push(file); return dlopen.call(this, m, file, ...rest); };
process.on('exit', () => fs.writeFileSync(${JSON.stringify(path.join(dir, 'loaded'))}, JSON.stringify([...seen, ...Object.keys(require.cache).filter((f) => f !== __filename && !f.endsWith(${JSON.stringify(`/dist/${name}.cjs`)}))])));\n`);
  const r = spawnSync(NODE, ['-r', probe, path.join(ROOT, 'dist', `${name}.cjs`), ...args], { encoding: 'utf8', env });
  return {
    status: r.status,
    loaded: JSON.parse(fs.readFileSync(path.join(dir, 'loaded'), 'utf8')) as string[],
    builtins: JSON.parse(fs.readFileSync(path.join(dir, 'builtins'), 'utf8')) as string[],
  };
}

test('t6-svstat, t6-svc and t6-svok load no native module and nothing beside their bundle', async () => {
  const scandir = tmpdir('t6-client-startup-scan-');
  const svc = makeService(path.join(scandir, 'a'), { run: '#!/bin/sh\nexec sleep 1000\n' });
  const tree = await Tree.start(scandir);
  try {
    await until('a up', () => readStatus(svc)?.pid);
    for (const [name, args, status] of [['t6-svstat', [svc], 0], ['t6-svc', ['-u', svc], 0], ['t6-svok', [svc], 0], ['t6-svok', [scandir], 1]] as const) {
      const r = loadedBy(name, [...args]);
      assert.equal(r.status, status, `${name} ${args.join(' ')}`);
      assert.deepEqual(r.loaded, [], `${name} ${args.join(' ')} loaded ${r.loaded.join(', ')}`);
    }
  } finally {
    await tree.stop();
  }
});

test('t6-rc list and listall load no native module while no writer is at work, and take the lock when one is', async () => {
  const base = tmpdir('t6-client-startup-rc-');
  const scandir = path.join(base, 'service');
  const compiled = path.join(base, 'compiled');
  const live = path.join(base, 'live');
  fs.mkdirSync(scandir);
  writeDb(compiled, [{ name: 'o1', type: 'oneshot', up: ['true'] }, { name: 'o2', type: 'oneshot', up: ['true'], deps: ['o1'] }]);
  const tree = await Tree.start(scandir);
  try {
    const init = spawnSync(path.join(BIN, 't6-rc-init'), ['-c', compiled, '-l', live, scandir], { encoding: 'utf8' });
    assert.equal(init.status, 0, init.stderr);
    for (const args of [['list', 'o2'], ['-u', 'listall', 'o2']]) {
      const r = loadedBy('t6-rc', ['-l', live, ...args]);
      assert.equal(r.status, 0, args.join(' '));
      assert.deepEqual(r.loaded, [], `t6-rc ${args.join(' ')} loaded ${r.loaded.join(', ')}`);
      // Nor a built-in module beyond those in Node's own snapshot (node:tty and node:net cost ~8 ms).
      assert.deepEqual(r.builtins, [], `t6-rc ${args.join(' ')} loaded node:${r.builtins.join(', node:')}`);
    }
    // A writer's mark in LIVE/lock: the reader takes the lock (koffi) and still answers.
    fs.writeFileSync(path.join(live, 'lock'), '4242\n');
    const marked = loadedBy('t6-rc', ['-l', live, 'list', 'o2']);
    assert.equal(marked.status, 0);
    assert.ok(marked.loaded.some((f) => f.includes('koffi')), `loaded ${marked.loaded.join(', ')}`);
  } finally {
    await tree.stop();
  }
});

test('t6-hpr -p, asking the shutdown daemon, loads no native module, nothing beside its bundle, and of the built-ins beyond Node\'s snapshot only node:os', () => {
  const dir = tmpdir('t6-client-startup-hpr-');
  const fifo = path.join(dir, 'fifo');
  const wtmp = path.join(dir, 'wtmp');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  fs.writeFileSync(wtmp, '');
  // The daemon's end: open for reading, so that the client's probe finds a reader.
  const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const r = loadedBy('t6-hpr', ['-p', '--fifo', fifo], { ...process.env, T6_WTMP: wtmp, T6_UTMP: path.join(dir, 'utmp') });
    assert.equal(r.status, 0);
    const request = Buffer.alloc(64);
    assert.equal(fs.readSync(reader, request), 17, 'one 17-byte request');
    assert.equal(String.fromCharCode(request[0]!), 'p');
    assert.equal(fs.statSync(wtmp).size, 384, 'the wtmp record written');
    assert.deepEqual(r.loaded, [], `t6-hpr loaded ${r.loaded.join(', ')}`);
    assert.deepEqual(r.builtins.filter((m) => m !== 'os'), [], `t6-hpr loaded node:${r.builtins.join(', node:')}`);
  } finally {
    fs.closeSync(reader);
  }
});
