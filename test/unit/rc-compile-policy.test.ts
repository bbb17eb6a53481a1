/**
 * t6-rc-compile and the servicedir files t6 adds (issue 14: flag-sd-notify, probe/,
 * watchdog-timeout, backoff-*, give-up-*, up-settle): accepted and carried into the
 * compiled servicedir, readiness and up-settle in db.json; refused with the file and the
 * problem named; for longruns only. Runs the command in-process, as rc-compile.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { type CommandIo, FatalError, UsageError } from '../../src/cli/_run.ts';
import { main } from '../../src/cli/rc-compile.ts';
import { type LongrunService, loadDb } from '../../src/rc/db.ts';
import { tmpdir } from '../lib/harness.ts';

type Tree = { [name: string]: string | Tree };

function build(dir: string, tree: Tree): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, node] of Object.entries(tree)) {
    const p = path.join(dir, name);
    if (typeof node === 'string') fs.writeFileSync(p, node, { mode: name === 'run' ? 0o755 : 0o644 });
    else build(p, node);
  }
}

const RUN = '#!/bin/sh\nexec sleep 1000\n';
const longrun = (extra: Tree = {}): Tree => ({ type: 'longrun\n', run: RUN, ...extra });

/** Compiles `src` (one source directory); returns exit code, stderr, and the paths. */
async function compile(src: Tree): Promise<{ code: number; err: string; base: string; target: string }> {
  const base = tmpdir('t6-rc-compile-policy-');
  build(path.join(base, 'src'), src);
  const target = path.join(base, 'compiled');
  let err = '';
  const io: CommandIo = { prog: 't6-rc-compile', out: () => {}, err: (t) => { err += t; } };
  try {
    return { code: await main([target, path.join(base, 'src')], io), err, base, target };
  } catch (e) {
    if (e instanceof UsageError) return { code: 100, err, base, target };
    if (e instanceof FatalError) return { code: e.exitCode, err: `${err}t6-rc-compile: fatal: ${e.message}\n`, base, target };
    throw e;
  }
}

/** The `fatal:` lines, each as `file (relative to the base): message`. */
function problems(r: { err: string; base: string }): string[] {
  return r.err.split('\n').flatMap((line) => {
    const m = /^t6-rc-compile: fatal: (.*?): (.*)$/.exec(line);
    return m === null ? [] : [`${path.relative(r.base, m[1]!)}: ${m[2]!}`];
  });
}

test('every new file is accepted in a longrun and carried into its servicedir; numbers rewritten as N\\n', async () => {
  const r = await compile({
    app: longrun({
      'flag-sd-notify': '', 'watchdog-timeout': '5000\n', 'backoff-initial': '100', 'backoff-factor': '1.5\n',
      'backoff-max': '30000\n\n', 'backoff-settle': '60000\n', 'give-up-deaths': '5\n', 'give-up-window': '10000\n',
      'up-settle': '2000\n', probe: { tcp: '127.0.0.1:80\n', interval: '1000\n' },
    }),
  });
  try {
    assert.equal(r.code, 0, r.err);
    const sd = path.join(r.target, 'servicedirs/app');
    const read = (f: string): string => fs.readFileSync(path.join(sd, f), 'utf8');
    assert.equal(read('flag-sd-notify'), '');
    assert.equal(read('watchdog-timeout'), '5000\n');
    assert.equal(read('backoff-initial'), '100\n');
    assert.equal(read('backoff-factor'), '1.5\n');
    assert.equal(read('backoff-max'), '30000\n');
    assert.equal(read('backoff-settle'), '60000\n');
    assert.equal(read('give-up-deaths'), '5\n');
    assert.equal(read('give-up-window'), '10000\n');
    assert.equal(read('up-settle'), '2000\n');
    assert.equal(read('probe/tcp'), '127.0.0.1:80\n');
    assert.equal(read('probe/interval'), '1000\n');
    const app = loadDb(r.target).byName.get('app') as LongrunService;
    assert.equal(app.readiness, true);
    assert.equal(app.upSettle, 2000);
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});

test('readiness (t6-rc waits for U) comes from notification-fd, flag-sd-notify or probe/; up-settle only from its file', async () => {
  const r = await compile({
    plain: longrun(), fd: longrun({ 'notification-fd': '3\n' }), notify: longrun({ 'flag-sd-notify': '' }),
    probed: longrun({ probe: { http: 'http://127.0.0.1:8080/health\n' } }), settled: longrun({ 'up-settle': '0\n' }),
  });
  try {
    assert.equal(r.code, 0, r.err);
    const db = loadDb(r.target);
    const lr = (name: string): LongrunService => db.byName.get(name) as LongrunService;
    assert.deepEqual(['plain', 'fd', 'notify', 'probed', 'settled'].map((n) => lr(n).readiness), [false, true, true, true, false]);
    assert.equal(lr('plain').upSettle, undefined);
    assert.equal(lr('settled').upSettle, 0, 'up-settle 0: a death before u fails the start; up at u');
    assert.doesNotMatch(fs.readFileSync(path.join(r.target, 'db.json'), 'utf8'), /"upSettle":null/);
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});

const refusals: [string, Tree, string[]][] = [
  ['a flag-sd-notify with content', { a: longrun({ 'flag-sd-notify': '1\n' }) }, ['src/a/flag-sd-notify: must be empty (its presence is the setting), found 2 bytes']],
  ['a backoff-factor that is not a number', { a: longrun({ 'backoff-factor': 'fast\n' }) }, ['src/a/backoff-factor: "fast" is not a decimal number (such as 2 or 1.5)']],
  ['a backoff-factor in exponent form', { a: longrun({ 'backoff-factor': '1e3\n' }) }, ['src/a/backoff-factor: "1e3" is not a decimal number (such as 2 or 1.5)']],
  ['a backoff-factor below 1', { a: longrun({ 'backoff-factor': '0.5\n' }) }, ['src/a/backoff-factor: 0.5 is below 1: the delay would shrink with every death']],
  ['a backoff-max below backoff-initial', { a: longrun({ 'backoff-initial': '500\n', 'backoff-max': '100\n' }) }, ['src/a/backoff-max: 100 ms is below backoff-initial (500 ms)']],
  ['ms settings that are not unsigned decimals', { a: longrun({ 'watchdog-timeout': '5s\n', 'backoff-initial': '-1\n', 'backoff-settle': '1.5\n', 'give-up-window': '\n', 'up-settle': 'soon\n' }) }, [
    'src/a/watchdog-timeout: "5s" is not an unsigned decimal number',
    'src/a/backoff-initial: "-1" is not an unsigned decimal number',
    'src/a/backoff-settle: "1.5" is not an unsigned decimal number',
    'src/a/give-up-window: "" is not an unsigned decimal number',
    'src/a/up-settle: "soon" is not an unsigned decimal number',
  ]],
  ['an ms setting past what a timer holds', { a: longrun({ 'up-settle': '2147483648\n' }) }, ['src/a/up-settle: 2147483648 is too large (at most 2147483647)']],
  ['zero where zero cannot work', { a: longrun({ 'watchdog-timeout': '0\n', 'give-up-deaths': '0\n', 'give-up-window': '0\n' }) }, [
    'src/a/watchdog-timeout: must be at least 1 ms', 'src/a/give-up-window: must be at least 1 ms', 'src/a/give-up-deaths: must be at least 1',
  ]],
  ['a give-up-deaths that is not a count', { a: longrun({ 'give-up-deaths': 'three\n' }) }, ['src/a/give-up-deaths: "three" is not an unsigned decimal number']],
  ['a probe that is a file', { a: longrun({ probe: 'tcp 127.0.0.1:80\n' }) }, ['src/a/probe: is not a directory']],
  ['a probe of no kind', { a: longrun({ probe: { interval: '1000\n' } }) }, ['src/a/probe: must hold exactly one of tcp, http, check (the kind of probe); found none']],
  ['a probe of two kinds', { a: longrun({ probe: { tcp: ':80\n', check: '#!/bin/sh\ntrue\n' } }) }, ['src/a/probe: must hold exactly one of tcp, http, check (the kind of probe); found tcp, check']],
  ['the files in a oneshot', { a: { type: 'oneshot\n', up: 'true\n', 'up-settle': '100\n', 'flag-sd-notify': '', probe: { tcp: ':80\n' } } }, [
    'src/a/flag-sd-notify: flag-sd-notify is for longruns; this service is a oneshot',
    'src/a/up-settle: up-settle is for longruns; this service is a oneshot',
    'src/a/probe: probe is for longruns; this service is a oneshot',
  ]],
  ['the files in a bundle', { a: { type: 'bundle\n', contents: 'b\n', 'backoff-factor': '2\n' }, b: longrun() }, [
    'src/a/backoff-factor: backoff-factor is for longruns; this service is a bundle',
  ]],
];

for (const [name, src, expected] of refusals) {
  test(`refused, naming the file: ${name}`, async () => {
    const r = await compile(src);
    try {
      assert.equal(r.code, 1, r.err);
      assert.deepEqual(problems(r), expected);
      assert.equal(fs.existsSync(r.target), false, 'nothing is written');
    } finally {
      fs.rmSync(r.base, { recursive: true, force: true });
    }
  });
}
