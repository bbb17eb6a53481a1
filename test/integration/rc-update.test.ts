/** t6-rc-update against a running tree: carried-over services keep their process, renames, forced and implied restarts, removals. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, Tree, readStatus, tmpdir, until } from '../lib/harness.ts';
import { writeDb } from '../lib/rcdb.ts';
import { loadDb } from '../../src/rc/db.ts';
import { parseConversions, planUpdate } from '../../src/rc/update.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const sh = (script: string): string => `#!/bin/sh\n${script}\n`;
const run = (prog: string, args: string[]) => spawnSync(path.join(BIN, prog), args, { encoding: 'utf8' });

test('planUpdate: restart when gone, retyped, flagged, or depending on a restart; renames follow the conversion file', () => {
  const base = tmpdir('t6-rcu-');
  cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
  const old = loadDb(writeDb(path.join(base, 'old'), [
    { name: 'a', type: 'longrun', run: sh('exec sleep 100') },
    { name: 'b', type: 'oneshot', up: ['true'] },
    { name: 'c', type: 'longrun', run: sh('exec sleep 100'), deps: ['b'] },
    { name: 'd', type: 'longrun', run: sh('exec sleep 100') },
    { name: 'e', type: 'oneshot', up: ['true'] },
  ]));
  const next = loadDb(writeDb(path.join(base, 'new'), [
    { name: 'a2', type: 'longrun', run: sh('exec sleep 100') },
    { name: 'b', type: 'oneshot', up: ['true'] },
    { name: 'c', type: 'longrun', run: sh('exec sleep 100'), deps: ['b'] },
    { name: 'e', type: 'longrun', run: sh('exec sleep 100') },
    { name: 'f', type: 'longrun', run: sh('exec sleep 100') },
  ]));
  const conv = parseConversions('a -> a2\nb restart # forced\n', old, next);
  const p = planUpdate(old, [true, true, true, true, true], next, conv);
  const names = (db: typeof old, s: Iterable<number>) => [...s].map((i) => db.services[i]!.name).sort();
  assert.deepEqual(names(old, p.stop), ['b', 'c', 'd', 'e']);
  assert.deepEqual(names(next, p.start), ['b', 'c', 'e']);
  assert.deepEqual(names(next, p.carry.keys()), ['a2']);
  assert.deepEqual(names(next, p.state.flatMap((up, i) => (up ? [i] : []))), ['a2']);
  assert.throws(() => parseConversions('zz\n', old, next), /unknown identifier in .*: zz$/);
  assert.throws(() => parseConversions('a -> a2\na\n', old, next), /service a appears more than once in conversion file/);
  assert.throws(() => parseConversions('a -> \n', old, next), /unknown keyword in conversion file: ->$/);
});

test('t6-rc-update switches databases live: a carried-over longrun keeps its process, the rest restart or go', async () => {
  const base = tmpdir('t6-rcu-');
  const scandir = path.join(base, 'service');
  const live = path.join(base, 'live');
  const trace = path.join(base, 'trace');
  fs.mkdirSync(scandir);
  fs.writeFileSync(trace, '');
  const once = (n: string) => ({ up: ['sh', '-c', `echo "${n} up" >> '${trace}'`], down: ['sh', '-c', `echo "${n} down" >> '${trace}'`] });
  writeDb(path.join(base, 'db1'), [
    { name: 'keep', type: 'longrun', run: sh('exec sleep 3600') },
    { name: 'b', type: 'oneshot', ...once('b') },
    { name: 'c', type: 'longrun', run: sh('exec sleep 3600'), deps: ['b'] },
    { name: 'gone', type: 'longrun', run: sh('exec sleep 3600') },
  ]);
  writeDb(path.join(base, 'db2'), [
    { name: 'kept', type: 'longrun', run: sh('exec sleep 3600'), finish: sh('true') },
    { name: 'b', type: 'oneshot', ...once('b') },
    { name: 'c', type: 'longrun', run: sh('exec sleep 3600'), deps: ['b'] },
    { name: 'new', type: 'longrun', run: sh('exec sleep 3600') },
  ]);
  fs.writeFileSync(path.join(base, 'conv'), 'keep -> kept\nb restart\n');
  const tree = await Tree.start(scandir);
  cleanups.push(async () => { await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  assert.equal(run('t6-rc-init', ['-c', path.join(base, 'db1'), '-l', live, scandir]).status, 0);
  assert.equal(run('t6-rc', ['-l', live, 'change', 'keep', 'c', 'gone']).status, 0);
  const keepPid = readStatus(path.join(scandir, 'keep'))!.pid;
  const cPid = readStatus(path.join(scandir, 'c'))!.pid;
  const goneDir = fs.realpathSync(path.join(scandir, 'gone'));
  assert.ok(keepPid > 0 && cPid > 0);

  const dry = run('t6-rc-update', ['-n', '-l', live, '-f', path.join(base, 'conv'), path.join(base, 'db2')]);
  assert.equal(dry.stdout, 'stop: c gone b\nstart: c b\n');

  const u = run('t6-rc-update', ['-v2', '-l', live, '-f', path.join(base, 'conv'), path.join(base, 'db2')]);
  assert.equal(u.status, 0, u.stderr);
  // -v2 tells the steps in s6-rc-update's words.
  const steps = u.stderr.split('\n').filter((l) => l.startsWith('t6-rc-update: info: ')).map((l) => l.slice(20)).filter((l) => !l.startsWith('service '));
  assert.deepEqual(steps, ['computing state adjustments', 'stopping services in the old database', 'updating state and service directories', 'starting services in the new database', 'successfully switched to new database']);
  // Renamed and carried over: same process, same supervisor, new name and new files.
  assert.ok(!fs.existsSync(path.join(scandir, 'keep')));
  assert.equal(readStatus(path.join(scandir, 'kept'))!.pid, keepPid);
  assert.ok(fs.existsSync(path.join(scandir, 'kept', 'finish')));
  // Restarted through its forced-restart dependency.
  assert.notEqual(readStatus(path.join(scandir, 'c'))!.pid, cPid);
  assert.ok(readStatus(path.join(scandir, 'c'))!.pid > 0);
  assert.deepEqual(fs.readFileSync(trace, 'utf8').split('\n').filter(Boolean), ['b up', 'b down', 'b up']);
  // Gone: unlinked, supervisor ended, directory removed.
  assert.ok(!fs.existsSync(path.join(scandir, 'gone')));
  await until('the old servicedir of gone to be removed', () => !fs.existsSync(goneDir));
  // New: linked, supervised, down.
  assert.ok(fs.existsSync(path.join(scandir, 'new', 'down')));
  assert.equal(readStatus(path.join(scandir, 'new'))?.pid, 0);
  assert.equal(run('t6-rc', ['-l', live, '-a', 'list']).stdout, 'kept\nc\nb\n');
  assert.equal(run('t6-rc', ['-l', live, 'diff']).status, 0);
  // And the new database is the live one.
  assert.equal(fs.readlinkSync(path.join(live, 'compiled')), path.join(base, 'db2'));
  assert.equal(run('t6-rc', ['-l', live, '-v2', '-D', 'change', 'kept', 'b', 'new']).status, 0);
  assert.equal(run('t6-rc', ['-l', live, '-a', 'list']).stdout, '');
});

test('conversion files s6-rc-update refuses are refused before anything changes; lexed as execline', async () => {
  const base = tmpdir('t6-rcu-');
  const scandir = path.join(base, 'service');
  const live = path.join(base, 'live');
  fs.mkdirSync(scandir);
  const both = [
    { name: 'a', type: 'longrun' as const, run: sh('exec sleep 3600') },
    { name: 'b', type: 'longrun' as const, run: sh('exec sleep 3600') },
    { name: 'o', type: 'oneshot' as const, up: ['true'] },
  ];
  writeDb(path.join(base, 'db1'), both);
  writeDb(path.join(base, 'db2'), [...both.slice(0, 2), { name: 'o', type: 'bundle', contents: ['a'] }]);
  const tree = await Tree.start(scandir);
  cleanups.push(async () => { await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  assert.equal(run('t6-rc-init', ['-c', path.join(base, 'db1'), '-l', live, scandir]).status, 0);
  assert.equal(run('t6-rc', ['-l', live, 'change', 'a', 'b']).status, 0);
  const pids = () => ['a', 'b'].map((n) => readStatus(path.join(scandir, n))?.pid);
  const before = { pids: pids(), live: fs.readlinkSync(live), list: run('t6-rc', ['-l', live, '-a', 'list']).stdout, entries: fs.readdirSync(base).filter((e) => e !== 'conv').sort() };
  const update = (conv: string) => {
    fs.writeFileSync(path.join(base, 'conv'), conv);
    return run('t6-rc-update', ['-l', live, '-f', path.join(base, 'conv'), path.join(base, 'db2')]);
  };
  // [conversion file, exit code, message], as s6-rc-update 0.5.4.1 answers them (issue 11).
  const refused: [string, number, RegExp][] = [
    ['a -> b\n', 6, /fatal: unable to convert database: new service b is a target for more than one conversion, including old service a$/m],
    ['a -> nowhere\n', 4, /fatal: bad conversion file: new service nowhere is undefined in database .*\/db2$/m],
    ['a restart -> b\n', 100, /fatal: unknown keyword in conversion file: ->$/m],
    ['a ->\n', 100, /fatal: unknown keyword in conversion file: ->$/m],
    ['"a\n', 100, /fatal: syntax error in conversion file: "a$/m],
    ['a { b\n', 100, /fatal: mismatched braces in conversion file: a \{ b$/m],
    ['zz restart\n', 3, /fatal: unknown identifier in .*\/compiled: zz$/m],
    ['a\na restart\n', 6, /fatal: service a appears more than once in conversion file$/m],
  ];
  for (const [conv, code, message] of refused) {
    const u = update(conv);
    assert.equal(u.status, code, `${JSON.stringify(conv)}: ${u.stderr}`);
    assert.match(u.stderr, message);
    assert.deepEqual(pids(), before.pids, `${JSON.stringify(conv)}: the same pids`);
    assert.equal(fs.readlinkSync(live), before.live, 'the same live directory');
    assert.equal(run('t6-rc', ['-l', live, '-a', 'list']).stdout, before.list);
    assert.deepEqual(fs.readdirSync(base).filter((e) => e !== 'conv').sort(), before.entries, 'nothing left behind');
  }
  // Planned from an old oneshot that becomes a bundle holding a: a would be the target twice.
  const db1 = loadDb(path.join(base, 'db1'));
  const db2 = loadDb(path.join(base, 'db2'));
  assert.throws(() => parseConversions('', db1, db2), /new service a is a target for more than one conversion, including old service a$/);
  // Accepted as s6-rc-update accepts them: quotes, restart given twice, a comment after words.
  writeDb(path.join(base, 'db3'), both);
  const db3 = loadDb(path.join(base, 'db3'));
  assert.deepEqual([...parseConversions('"a" restart\nb restart restart # twice\n', db1, db3)], [['a', { to: undefined, restart: true }], ['b', { to: undefined, restart: true }]]);
});
