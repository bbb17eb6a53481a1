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
const exec = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });

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
  // Boot analysis's record of the change before the update came along into the new live directory.
  assert.deepEqual(fs.readdirSync(path.join(live, 'timings')), ['change-1.json']);
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

/** Every directory under `root` (links not followed) that holds a `supervise/`: the servicedirs a supervisor has run on. */
function superviseDirs(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      if (e.name === 'supervise') out.push(dir);
      else walk(path.join(dir, e.name));
    }
  };
  walk(root);
  return out.sort();
}

/** The live directories next to LIVE (`live:t6-rc-…`), and anything else t6-rc left there. */
const liveDirs = (base: string): string[] => fs.readdirSync(base).filter((n) => n.startsWith('live:')).sort();

/**
 * Database i of a run of updates: keep (up throughout; its run script changes), r<i> (up
 * throughout, renamed at each update), add<i> (new at update i, brought up, gone at i+1),
 * even (only in even databases, never up), o (a oneshot).
 */
function updateDb(base: string, i: number): string {
  return writeDb(path.join(base, `db${i}`), [
    { name: 'keep', type: 'longrun', run: sh(`# version ${i}\nexec sleep 3600`) },
    { name: `r${i}`, type: 'longrun', run: sh('exec sleep 3600') },
    { name: `add${i}`, type: 'longrun', run: sh('exec sleep 3600') },
    ...(i % 2 === 0 ? [{ name: 'even', type: 'longrun' as const, run: sh('exec sleep 3600') }] : []),
    { name: 'o', type: 'oneshot', up: ['true'] },
  ]);
}

async function updatesInARow(scanner: 'native' | 's6-svscan', count: number): Promise<void> {
  const base = tmpdir('t6-rcu-');
  const scandir = path.join(base, 'service');
  const live = path.join(base, 'live');
  fs.mkdirSync(scandir);
  const tree = await Tree.start(scandir, scanner === 'native' ? {} : { command: ['s6-svscan', '-d', '3'] });
  cleanups.push(async () => { await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  assert.equal(run('t6-rc-init', ['-c', updateDb(base, 0), '-l', live, scandir]).status, 0);
  // Oneshots need t6-svscan's runner: under another scanner, longruns only.
  const up = run('t6-rc', ['-l', live, '-u', 'change', 'keep', 'r0', 'add0', ...(scanner === 'native' ? ['o'] : [])]);
  assert.equal(up.status, 0, up.stderr);
  const pid = (name: string): number | undefined => readStatus(path.join(scandir, name))?.pid;
  const [keepPid, rPid] = [pid('keep'), pid('r0')];
  assert.ok(keepPid! > 0 && rPid! > 0);
  for (let i = 1; i <= count; i++) {
    fs.writeFileSync(path.join(base, 'conv'), `r${i - 1} -> r${i}\n`);
    const u = run('t6-rc-update', ['-l', live, '-f', path.join(base, 'conv'), updateDb(base, i)]);
    assert.equal(u.status, 0, `update ${i}: ${u.stderr}`);
    assert.equal(u.stderr, '', `update ${i}: no warning`);
    assert.deepEqual([pid('keep'), pid(`r${i}`)], [keepPid, rPid], `update ${i}: the same processes`);
    assert.match(fs.readFileSync(path.join(scandir, 'keep', 'run'), 'utf8'), new RegExp(`# version ${i}\n`), 'the new files, copied where it runs');
    assert.ok(!fs.existsSync(path.join(scandir, `add${i - 1}`)) && !fs.existsSync(path.join(scandir, `r${i - 1}`)));
    assert.deepEqual(liveDirs(base), [fs.readlinkSync(live)], `update ${i}: one live directory`);
    assert.equal(run('t6-rc', ['-l', live, '-u', 'change', `add${i}`]).status, 0);
    if (i === Math.ceil(count / 2)) {
      // Refused (no such old service): nothing changes, the same live directory stays.
      fs.writeFileSync(path.join(base, 'conv'), 'nowhere -> keep\n');
      const refused = run('t6-rc-update', ['-l', live, '-f', path.join(base, 'conv'), updateDb(base, i + 1)]);
      assert.equal(refused.status, 3, refused.stderr);
      assert.deepEqual(liveDirs(base), [fs.readlinkSync(live)], 'a refused update: the same live directory');
      fs.rmSync(path.join(base, `db${i + 1}`), { recursive: true });
    }
  }
  // No servicedir left but the live ones: every one a supervisor ever ran on is in the live dir.
  const real = fs.realpathSync(live);
  // Under s6-svscan, t6-rc-init added s6-rc's oneshot runner, carried by every update too.
  const internal = scanner === 'native' ? [] : ['s6rc-oneshot-runner'];
  const longruns = ['keep', `r${count}`, `add${count}`, ...(count % 2 === 0 ? ['even'] : []), ...internal].sort();
  assert.deepEqual(fs.readdirSync(path.join(real, 'servicedirs')).sort(), longruns);
  assert.deepEqual(superviseDirs(base), longruns.map((n) => path.join(real, 'servicedirs', n)).sort());
  assert.equal(run('t6-rc', ['-l', live, 'diff']).status, 0);
  // The kept service's supervisor works where its directory is now: down, then up again.
  const sd = path.join(scandir, 'keep');
  const [svc, svstat] = scanner === 'native' ? [path.join(BIN, 't6-svc'), path.join(BIN, 't6-svstat')] : ['s6-svc', 's6-svstat'];
  assert.equal(exec(svc, ['-wD', '-d', sd]).status, 0);
  assert.match(exec(svstat, [sd]).stdout, /^down \(exitcode 0|^down \(signal SIGTERM\)/);
  assert.equal(exec(svc, ['-wu', '-u', sd]).status, 0);
  assert.match(exec(svstat, [sd]).stdout, /^up \(pid \d+\)/);
  assert.notEqual(pid('keep'), keepPid);
  if (scanner === 'native') assert.equal(tree.output.text, '', 't6-svscan had nothing to complain about (no status write failed, every move was followed)');
}

test('t6-rc-update ten times in a row: one live directory and no orphaned servicedirs left; a longrun up throughout keeps its process and its supervisor', async () => {
  await updatesInARow('native', 10);
});

test('the same under real s6-svscan: s6-supervise follows its renamed directory by itself', async () => {
  await updatesInARow('s6-svscan', 3);
});

test('what an older t6-rc-update left (live directories reduced to servicedirs, a running one behind a link) goes at the next update', async () => {
  const base = tmpdir('t6-rcu-');
  const scandir = path.join(base, 'service');
  const live = path.join(base, 'live');
  fs.mkdirSync(scandir);
  const tree = await Tree.start(scandir);
  cleanups.push(async () => { await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  assert.equal(run('t6-rc-init', ['-c', updateDb(base, 0), '-l', live, scandir]).status, 0);
  assert.equal(run('t6-rc', ['-l', live, '-u', 'change', 'keep', 'add0']).status, 0);
  const keepPid = readStatus(path.join(scandir, 'keep'))!.pid;
  // The older layout: a new live dir whose servicedirs/keep links to the running one, and the
  // first live dir reduced to its servicedirs (add0's was removed; even's had ended).
  const first = fs.realpathSync(live);
  const older = `${live}:t6-rc-update:OLDER1`;
  fs.mkdirSync(path.join(older, 'servicedirs'), { recursive: true });
  for (const f of ['compiled', 'scandir']) fs.symlinkSync(fs.readlinkSync(path.join(first, f)), path.join(older, f));
  for (const f of ['prefix', 'lock', 'state']) fs.copyFileSync(path.join(first, f), path.join(older, f));
  for (const n of ['keep', 'add0', 'even']) fs.symlinkSync(path.join(first, 'servicedirs', n), path.join(older, 'servicedirs', n));
  fs.symlinkSync(path.basename(older), `${live}.new`);
  fs.renameSync(`${live}.new`, live);
  for (const f of ['compiled', 'scandir', 'prefix', 'lock', 'state']) fs.unlinkSync(path.join(first, f));
  assert.deepEqual(liveDirs(base), [path.basename(first), path.basename(older)].sort());

  const u = run('t6-rc-update', ['-l', live, updateDb(base, 1)]);
  assert.equal(u.status, 0, u.stderr);
  assert.equal(readStatus(path.join(scandir, 'keep'))!.pid, keepPid);
  assert.deepEqual(liveDirs(base), [fs.readlinkSync(live)]);
  const real = fs.realpathSync(live);
  assert.deepEqual(superviseDirs(base), ['add1', 'keep', 'r1'].map((n) => path.join(real, 'servicedirs', n)));
  const sd = path.join(scandir, 'keep');
  assert.equal(exec(path.join(BIN, 't6-svc'), ['-wD', '-d', sd]).status, 0);
  assert.match(exec(path.join(BIN, 't6-svstat'), [sd]).stdout, /^down /);
  assert.equal(tree.output.text, '');
});

test("a carried-over servicedir gets the new database's files as s6-rc-update gives them: each replaced whole, the dropped ones removed, the process kept", async () => {
  const base = tmpdir('t6-rcu-');
  const scandir = path.join(base, 'service');
  const live = path.join(base, 'live');
  fs.mkdirSync(scandir);
  const source = (dir: string, files: Record<string, string>): string => {
    for (const [f, text] of Object.entries({ type: 'longrun\n', run: sh('exec sleep 3600'), ...files })) {
      fs.mkdirSync(path.dirname(path.join(dir, 'keep', f)), { recursive: true });
      fs.writeFileSync(path.join(dir, 'keep', f), text, { mode: f === 'run' ? 0o755 : 0o644 });
    }
    return dir;
  };
  const compile = (name: string, files: Record<string, string>): string => {
    const c = run('t6-rc-compile', [path.join(base, name), source(path.join(base, `${name}-src`), files)]);
    assert.equal(c.status, 0, c.stderr);
    return path.join(base, name);
  };
  const db1 = compile('db1', { 'env/A': 'one\n', 'env/B': 'two\n', 'backoff-initial': '100\n', 'up-settle': '50\n', 'timeout-kill': '1000\n' });
  const db2 = compile('db2', { 'env/A': 'uno\n', 'backoff-factor': '2\n', 'timeout-kill': '2000\n' });
  const tree = await Tree.start(scandir);
  cleanups.push(async () => { await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  assert.equal(run('t6-rc-init', ['-c', db1, '-l', live, scandir]).status, 0);
  assert.equal(run('t6-rc', ['-l', live, 'change', 'keep']).status, 0);
  const sd = path.join(scandir, 'keep');
  const pid = readStatus(sd)!.pid;
  assert.ok(pid > 0);
  assert.deepEqual(fs.readdirSync(path.join(sd, 'env')).sort(), ['A', 'B']);

  const u = run('t6-rc-update', ['-l', live, db2]);
  assert.equal(u.status, 0, u.stderr);
  assert.equal(readStatus(sd)!.pid, pid, 'carried over: the same process');
  assert.deepEqual(fs.readdirSync(path.join(sd, 'env')), ['A'], 'env/ replaced whole: B is gone');
  assert.equal(fs.readFileSync(path.join(sd, 'env/A'), 'utf8'), 'uno\n');
  assert.equal(fs.readFileSync(path.join(sd, 'backoff-factor'), 'utf8'), '2\n');
  assert.equal(fs.readFileSync(path.join(sd, 'timeout-kill'), 'utf8'), '2000\n');
  for (const dropped of ['backoff-initial', 'up-settle']) assert.equal(fs.existsSync(path.join(sd, dropped)), false, `${dropped} removed`);
  assert.ok(fs.existsSync(path.join(sd, 'supervise')) && fs.existsSync(path.join(sd, 'event')), "the supervisor's files are left alone");
  assert.deepEqual(fs.readdirSync(sd).filter((n) => n.startsWith('.')), [], 'nothing staged is left behind');
});

test("after t6-rc-update, list, listall and diff read the new database's index and agree with its db.json", async () => {
  const base = tmpdir('t6-rcu-');
  const scandir = path.join(base, 'service');
  const live = path.join(base, 'live');
  fs.mkdirSync(scandir);
  const compile = (name: string, services: Record<string, Record<string, string>>): string => {
    const src = path.join(base, `${name}-src`);
    for (const [svc, files] of Object.entries(services)) {
      fs.mkdirSync(path.join(src, svc), { recursive: true });
      for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(src, svc, f), text, { mode: f === 'run' ? 0o755 : 0o644 });
    }
    const c = run('t6-rc-compile', [path.join(base, name), src]);
    assert.equal(c.status, 0, c.stderr);
    return path.join(base, name);
  };
  const longrun = (deps = ''): Record<string, string> => ({ type: 'longrun\n', run: sh('exec sleep 3600'), ...(deps === '' ? {} : { dependencies: deps }) });
  const db1 = compile('db1', { a: longrun(), b: longrun('a\n'), o: { type: 'oneshot\n', up: 'true\n' }, all: { type: 'bundle\n', contents: 'a\nb\no\n' } });
  const db2 = compile('db2', {
    a: longrun('o\n'), b: longrun('a\n'), c: longrun('b\n'), o: { type: 'oneshot\n', up: 'true\n' }, all: { type: 'bundle\n', contents: 'c\n' }, some: { type: 'bundle\n', contents: 'a\no\n' },
  });
  const tree = await Tree.start(scandir);
  cleanups.push(async () => { await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  assert.equal(run('t6-rc-init', ['-c', db1, '-l', live, scandir]).status, 0);
  assert.equal(run('t6-rc', ['-l', live, 'change', 'all']).status, 0);
  const u = run('t6-rc-update', ['-l', live, db2]);
  assert.equal(u.status, 0, u.stderr);
  assert.equal(fs.readFileSync(path.join(live, 'compiled', 'index'), 'utf8'), fs.readFileSync(path.join(db2, 'index'), 'utf8'));
  const seen: string[] = [];
  for (const args of [['list', 'all'], ['-a', 'list'], ['-d', 'list', 'some'], ['listall', 'all'], ['-d', 'listall', 'o'], ['-a', '-d', 'listall'], ['diff']]) {
    const short = run('t6-rc', ['-l', live, ...args]);
    const whole = run('t6-rc', ['-l', live, '--json', ...args]);
    assert.equal(short.stderr, '', args.join(' '));
    assert.equal(short.status, whole.status, args.join(' '));
    assert.equal(short.stdout.replace(/^[+-]/gm, ''), (JSON.parse(whole.stdout) as { name: string }[]).map((s) => `${s.name}\n`).join(''), args.join(' '));
    seen.push(short.stdout);
  }
  assert.deepEqual(seen.slice(0, 4), ['c\n', 'a\nb\no\n', 'b\nc\n', 'a\nb\nc\no\n']);
});
