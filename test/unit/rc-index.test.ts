/**
 * The compiled database's reader index (src/rc/db-index.ts) and t6-rc's short path over it
 * (src/cli/_rc-read.ts): the compiler writes an index that agrees with db.json; list,
 * listall and diff give the same answers with it, without it (an older database) and with
 * a damaged one, which is named in a warning and not used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { CommandIo } from '../../src/cli/_run.ts';
import { main } from '../../src/cli/rc.ts';
import { readCommand } from '../../src/cli/_rc-read.ts';
import { compileSources } from '../../src/rc/compile.ts';
import { writeCompiled } from '../../src/rc/write-compiled.ts';
import { type Db, loadDb, atomicsOf } from '../../src/rc/db.ts';
import { INDEX_FILE, IndexDamagedError, readIndex } from '../../src/rc/db-index.ts';
import { tmpdir } from '../lib/harness.ts';

/** A source of 40 longruns, 25 oneshots and nested bundles, with dependencies of every kind. */
function writeSource(dir: string): void {
  const put = (name: string, files: Record<string, string>): void => {
    fs.mkdirSync(path.join(dir, name), { recursive: true });
    for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name, f), text, { mode: f === 'run' ? 0o755 : 0o644 });
  };
  for (let i = 0; i < 25; i++) put(`o${i}`, { type: 'oneshot\n', up: 'true\n', ...(i > 0 ? { dependencies: `o${i - 1}\n` } : {}) });
  for (let i = 0; i < 40; i++) {
    const deps = [i % 5 === 0 ? `o${i % 25}` : '', i > 2 ? `l${i - 3}` : '', i % 7 === 3 ? 'small' : ''].filter(Boolean);
    put(`l${i}`, { type: 'longrun\n', run: '#!/bin/sh\nexec sleep 100\n', ...(deps.length > 0 ? { dependencies: `${deps.join('\n')}\n` } : {}) });
  }
  put('small', { type: 'bundle\n', contents: 'o3\no4\n' });
  put('big', { type: 'bundle\n', contents: 'small\nl39\nl38\no24\n' });
  put('default', { type: 'bundle\n', contents: `big\n${Array.from({ length: 40 }, (_, i) => `l${i}`).join('\n')}\n` });
}

/** A compiled database and a live directory for it (no supervisor: the readers need none), `up` marked up. */
async function makeLive(up: (name: string) => boolean = () => false): Promise<{ compiled: string; live: string; db: Db }> {
  const base = tmpdir('t6-rc-index-');
  writeSource(path.join(base, 'source'));
  const result = compileSources([path.join(base, 'source')]);
  assert.ok(result.ok);
  const compiled = path.join(base, 'compiled');
  await writeCompiled(compiled, result.db, result.sources);
  const db = loadDb(compiled);
  const real = path.join(base, 'live:real');
  fs.mkdirSync(path.join(real, 'servicedirs'), { recursive: true });
  fs.symlinkSync(compiled, path.join(real, 'compiled'));
  fs.symlinkSync(path.join(base, 'scandir'), path.join(real, 'scandir'));
  fs.writeFileSync(path.join(real, 'prefix'), '');
  fs.writeFileSync(path.join(real, 'lock'), '');
  fs.writeFileSync(path.join(real, 'state'), Buffer.from(db.services.slice(0, db.atomics).map((s) => (up(s.name) ? 1 : 0))));
  const live = path.join(base, 'live');
  fs.symlinkSync(real, live);
  return { compiled, live, db };
}

function io(): CommandIo & { stdout: string; stderr: string } {
  const r = { prog: 't6-rc', stdout: '', stderr: '', out: (t: string) => { r.stdout += t; }, err: (t: string) => { r.stderr += t; } };
  return r;
}

const COMMANDS = [
  ['list', 'default'], ['-d', 'list', 'big'], ['-a', 'list', 'o1'], ['-u', 'listall', 'l20'], ['-d', 'listall', 'o0'],
  ['-u', 'listall', 'default', 'small'], ['-d', 'listall', 'big', 'l7'], ['list'], ['-a', '-d', 'listall'], ['diff'],
] as const;

test('the compiler writes an index that agrees with db.json', async () => {
  const { compiled, db } = await makeLive();
  const index = readIndex(compiled);
  assert.ok(index !== undefined);
  assert.equal(index.longruns, db.longruns);
  assert.equal(index.atomics, db.atomics);
  assert.deepEqual(index.names, db.services.map((s) => s.name));
  for (const s of db.services) {
    assert.equal(index.indexOf(s.name), s.index);
    assert.deepEqual(index.atomicsOf(s.index), atomicsOf(s));
  }
  for (let i = 0; i < 20; i++) assert.equal(index.indexOf(`nosuch${i}`), undefined); // past the Map's threshold too
  assert.deepEqual(index.dependencies(), db.services.slice(0, db.atomics).map((s) => (s.type === 'bundle' ? [] : s.deps)));
});

test('list, listall and diff answer the same from the index, without it, and through the whole command', async () => {
  const { compiled, live } = await makeLive((n) => /^(o[0-4]|l1\d)$/.test(n));
  const answers = new Map<string, { code: number; out: string }>();
  for (const args of COMMANDS) {
    const short = io();
    const code = readCommand(['-l', live, ...args], short);
    assert.notEqual(code, undefined, `${args.join(' ')} takes the short path`);
    assert.equal(short.stderr, '');
    const whole = io();
    assert.equal(await main(['-l', live, '--json', ...args], whole), code, `${args.join(' ')} --json`);
    assert.deepEqual((JSON.parse(whole.stdout) as { name: string }[]).map((s) => `${s.name}\n`).join(''), short.stdout.replace(/^[+-]/gm, ''));
    answers.set(args.join(' '), { code: code!, out: short.stdout });
  }
  assert.equal(answers.get('list default')!.out.split('\n').length, 44); // 40 longruns, o3, o4, o24, and the last newline
  fs.rmSync(path.join(compiled, INDEX_FILE));
  for (const args of COMMANDS) {
    const r = io();
    assert.equal(readCommand(['-l', live, ...args], r), undefined, 'no index: the whole command');
    const code = await main(['-l', live, ...args], r);
    assert.deepEqual({ code, out: r.stdout }, answers.get(args.join(' ')), `${args.join(' ')} without an index`);
  }
});

test('an unknown name on the short path is exit 3 with the usual words', async () => {
  const { live } = await makeLive();
  assert.throws(() => readCommand(['-l', live, 'list', 'nosuch'], io()), (err: Error & { exitCode?: number }) => err.name === 'FatalError' && err.exitCode === 3 && err.message === `nosuch is not a recognized identifier in ${live}/compiled`);
});

test('a damaged index is named in a warning and db.json is read instead', async () => {
  const { compiled, live } = await makeLive();
  const file = path.join(compiled, INDEX_FILE);
  const good = fs.readFileSync(file, 'utf8');
  const expected = io();
  await main(['-l', live, '-d', 'listall', 'o0'], expected);
  const damaged: [string, string, RegExp][] = [
    ['truncated', good.slice(0, good.length >> 1), /truncated or damaged/],
    ['cut at the end mark', good.slice(0, -2), /truncated or damaged/],
    ['garbage', 'x'.repeat(500), /not a t6-rc index/],
    ['empty', '', /not a t6-rc index/],
    ['a record of another type', good.replace('\no\n', '\nb1\n'), /record \d+ is not a o record/],
    ['a dependency out of range', good.replace('\no\n', '\no99999\n'), /names a service that is not atomic/],
    ['a bad number', good.replace('\no\n', '\no1,,2\n'), /is not a o record/],
    ['another db.json', good.replace(/^(t6-rc-index 1 \d+ \d+ \d+) \d+/, '$1 7'), /written for a db\.json of 7 bytes/],
  ];
  for (const [what, text, message] of damaged) {
    fs.writeFileSync(file, text);
    if (what !== 'a record of another type' && what !== 'a bad number' && what !== 'a dependency out of range') {
      assert.throws(() => readIndex(compiled), (err: Error) => err instanceof IndexDamagedError && err.message.startsWith(`${file}: `) && message.test(err.message), what);
    }
    const r = io();
    const code = readCommand(['-l', live, '-d', 'listall', 'o0'], r);
    assert.equal(code, undefined, `${what}: left to the whole command`);
    assert.equal(r.stdout, '', `${what}: nothing printed from the damaged index`);
    // Named as t6-rc opened it: through LIVE's compiled link.
    assert.match(r.stderr, new RegExp(`^t6-rc: warning: ${path.join(live, 'compiled', INDEX_FILE).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*; reading db\\.json instead\\n$`), what);
    assert.match(r.stderr, message, what);
    const whole = io();
    assert.equal(await main(['-l', live, '-v0', '-d', 'listall', 'o0'], whole), 0);
    assert.equal(whole.stdout, expected.stdout, `${what}: the right answer from db.json`);
    assert.equal(whole.stderr, '', `${what}: -v0 says nothing`);
  }
});

test('a writer at work, or a state of the wrong size, leaves the short path', async () => {
  const { live } = await makeLive();
  fs.writeFileSync(path.join(live, 'lock'), '4242\n');
  assert.equal(readCommand(['-l', live, 'list', 'default'], io()), undefined);
  fs.writeFileSync(path.join(live, 'lock'), '');
  fs.writeFileSync(path.join(live, 'state'), Buffer.alloc(3));
  assert.equal(readCommand(['-l', live, 'list', 'default'], io()), undefined);
  for (const args of [['--json', 'list'], ['change', 'default'], ['graph'], ['-Z', 'list'], ['-vx', 'list']]) {
    assert.equal(readCommand(['-l', live, ...args], io()), undefined, args.join(' '));
  }
  const help = io();
  assert.equal(readCommand(['help'], help), 0);
  assert.match(help.stdout, /^usage: t6-rc /);
});
