/**
 * Progress on a terminal (issue 13, item 4): t6-rc change draws a status line (done/total,
 * in flight, slowest) on a terminal — here a pseudo-terminal made by util-linux's `script`
 * — and prints exactly the usual lines when stderr is not a terminal. t6-rc-compile shows
 * its steps the same way.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, Tree, tmpdir } from '../lib/harness.ts';
import { writeDb } from '../lib/rcdb.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

/** Runs argv on a pseudo-terminal; its output as the terminal got it. */
function onTerminal(argv: string[]): { status: number | null; screen: string } {
  // script(1) runs a command line through a shell: the words are quoted for it here (test data only).
  const line = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('script', ['-q', '-e', '-c', line, '/dev/null'], { encoding: 'utf8', env: { ...process.env, TERM: 'xterm' } });
  return { status: r.status, screen: r.stdout };
}

test('t6-rc change: a status line on a terminal (done/total, in flight, slowest), the s6-rc lines otherwise', async () => {
  const base = tmpdir('t6-progress-');
  const scandir = path.join(base, 'service');
  fs.mkdirSync(scandir);
  const compiled = path.join(base, 'compiled');
  const slow = (ms: number): string => `#!/bin/sh\nsleep ${ms / 1000}\necho >&3\nexec sleep 1000\n`;
  writeDb(compiled, [
    { name: 'first', type: 'oneshot', up: ['true'] },
    { name: 'quick', type: 'longrun', run: slow(100), notificationFd: 3, deps: ['first'] },
    { name: 'sluggish', type: 'longrun', run: slow(900), notificationFd: 3, deps: ['first'] },
    { name: 'last', type: 'oneshot', up: ['true'], deps: ['quick', 'sluggish'] },
    { name: 'all', type: 'bundle', contents: ['last'] },
  ]);
  const tree = await Tree.start(scandir);
  cleanups.push(async () => { await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  const live = path.join(base, 'live');
  assert.equal(spawnSync(path.join(BIN, 't6-rc-init'), ['-c', compiled, '-l', live, scandir]).status, 0);

  const up = onTerminal([path.join(BIN, 't6-rc'), '-l', live, '-u', 'change', 'all']);
  assert.equal(up.status, 0, up.screen);
  // Every state of the line went by: the last one drawn says 4 of 4 and names the slowest.
  const drawn = up.screen.split('\r\x1b[K').filter((s) => s.startsWith('t6-rc: ['));
  assert.ok(drawn.some((s) => /^t6-rc: \[0\/4\] 1 in flight \(first\)/.test(s)), JSON.stringify(drawn));
  assert.ok(drawn.some((s) => /in flight \((quick, sluggish|sluggish, quick)\)/.test(s)), JSON.stringify(drawn));
  assert.match(drawn.at(-1)!, /^t6-rc: \[4\/4\] 0 in flight · slowest: sluggish \d+\.\d s$/);
  assert.ok(up.screen.endsWith('\r\x1b[K'), 'the line is cleared at the end');

  // Not a terminal: the s6-rc lines, nothing else.
  const down = spawnSync(path.join(BIN, 't6-rc'), ['-l', live, '-v2', '-da', 'change'], { encoding: 'utf8' });
  assert.equal(down.status, 0);
  assert.ok(!down.stderr.includes('\r') && !down.stderr.includes('\x1b'), JSON.stringify(down.stderr));
  const lines = down.stderr.trim().split('\n');
  assert.equal(lines.length, 8, down.stderr);
  for (const l of lines) assert.match(l, /^t6-rc: info: service (first|quick|sluggish|last)(: stopping| successfully stopped)$/);
  assert.deepEqual([lines[0], lines.at(-1)], ['t6-rc: info: service last: stopping', 't6-rc: info: service first successfully stopped']);
});

test('t6-rc-compile: its steps on a terminal, nothing more when stderr is not one', () => {
  const base = tmpdir('t6-progress-compile-');
  cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
  const src = path.join(base, 'src');
  fs.mkdirSync(path.join(src, 'svc'), { recursive: true });
  fs.writeFileSync(path.join(src, 'svc', 'type'), 'longrun\n');
  fs.writeFileSync(path.join(src, 'svc', 'run'), '#!/bin/sh\nexec sleep 1000\n', { mode: 0o755 });
  const tty = onTerminal([path.join(BIN, 't6-rc-compile'), path.join(base, 'db1'), src]);
  assert.equal(tty.status, 0, tty.screen);
  assert.match(tty.screen, /t6-rc-compile: \[1\/3\] reading the source directories…/);
  // Steps shorter than a redraw (0.1 s) are not drawn; the line is gone at the end.
  assert.ok(tty.screen.endsWith('\r\x1b[K'));
  const plain = spawnSync(path.join(BIN, 't6-rc-compile'), [path.join(base, 'db2'), src], { encoding: 'utf8' });
  assert.deepEqual([plain.status, plain.stderr], [0, '']);
});
