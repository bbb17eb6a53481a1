/**
 * t6-rc-update under Debian's s6-svscan (no t6-svscan runner socket): the internal
 * services s6rc-oneshot-runner and s6rc-fdholder are carried from live dir to live dir; a
 * database that brings the first pipeline gets an fd holder, started before its services;
 * a new consumer's pipe is stored in the running holder before it starts, a removed one's
 * is deleted (so it can come back); carried services keep their process and their pipe.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, Tree, WAIT_MS, readStatus, run, tmpdir, until } from '../lib/harness.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const hasS6 = run('sh', ['-c', 'command -v s6-svscan && command -v s6-fdholder-daemon']).status === 0;

type Files = Record<string, string>;

/** One database: the service files by relative path (`run` files are made executable). */
function compile(base: string, name: string, files: Files): string {
  const src = path.join(base, `src-${name}`);
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
    fs.writeFileSync(path.join(src, rel), content, { mode: rel.endsWith('/run') ? 0o755 : 0o644 });
  }
  const out = path.join(base, `db-${name}`);
  const c = run(path.join(BIN, 't6-rc-compile'), [out, src]);
  assert.equal(c.status, 0, c.stderr);
  return out;
}

/** A daemon printing `NAME: hello` once, and its s6-log logger into base/logs/NAME. */
function pipeline(base: string, name: string): Files {
  return {
    [`${name}/type`]: 'longrun\n',
    [`${name}/run`]: `#!/bin/sh\nexec 2>&1\necho ${name}: hello\nexec sleep 100000\n`,
    [`${name}/producer-for`]: `${name}-log\n`,
    [`${name}-log/type`]: 'longrun\n',
    [`${name}-log/run`]: `#!/bin/sh\nexec s6-log n3 s100000 ${base}/logs/${name}\n`,
    [`${name}-log/consumer-for`]: `${name}\n`,
  };
}

test('t6-rc-update under s6-svscan carries s6rc-oneshot-runner and s6rc-fdholder, and keeps the holder\'s pipes in step', { skip: !hasS6 && 's6 is not installed' }, async () => {
  const base = tmpdir('t6-rcu-foreign-');
  const scandir = path.join(base, 'service');
  const live = path.join(base, 'live');
  fs.mkdirSync(scandir);
  fs.mkdirSync(path.join(base, 'logs'));
  const plain: Files = { 'sysd/type': 'longrun\n', 'sysd/run': '#!/bin/sh\nexec sleep 100000\n', 'hello/type': 'oneshot\n', 'hello/up': `redirfd -a 1 ${base}/hello echo hi\n` };
  const db1 = compile(base, '1', plain);
  const db2 = compile(base, '2', { ...plain, ...pipeline(base, 'web') });
  const db3 = compile(base, '3', { ...plain, ...pipeline(base, 'web'), ...pipeline(base, 'app') });
  const tree = await Tree.start(scandir, { command: ['s6-svscan', '-d', '3'] });
  cleanups.push(async () => { await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  const t6 = (name: string, ...args: string[]): string => {
    const r = run(path.join(BIN, name), args);
    assert.equal(r.status, 0, `${name} ${args.join(' ')}: ${r.stderr}\n${tree.output.text}`);
    return r.stdout;
  };
  const update = (db: string): string => t6('t6-rc-update', '-l', live, '-t', String(WAIT_MS), db);
  const pid = (name: string): number | undefined => readStatus(path.join(scandir, name))?.pid;
  const logged = (name: string): number => {
    try { return fs.readFileSync(path.join(base, 'logs', name, 'current'), 'utf8').split('\n').filter((l) => l === `${name}: hello`).length; } catch { return 0; }
  };

  t6('t6-rc-init', '-t', String(WAIT_MS), '-c', db1, '-l', live, scandir);
  assert.equal(fs.existsSync(path.join(scandir, 's6rc-fdholder')), false, 'no pipelines, no fd holder');
  t6('t6-rc', '-l', live, '-t', String(WAIT_MS), '-u', 'change', 'sysd', 'hello');
  const runner = pid('s6rc-oneshot-runner');
  const sysd = pid('sysd');

  // The first pipeline: a holder is made and ready before web and web-log start.
  update(db2);
  assert.match(run('s6-svstat', [path.join(scandir, 's6rc-fdholder')]).stdout, /^up .*ready/);
  t6('t6-rc', '-l', live, '-t', String(WAIT_MS), '-u', 'change', 'web', 'web-log');
  await until('web logged through the holder', () => logged('web') === 1);
  const holder = pid('s6rc-fdholder');
  const web = pid('web');

  // A second pipeline: its pipe goes into the running holder; the first keeps its processes.
  update(db3);
  t6('t6-rc', '-l', live, '-t', String(WAIT_MS), '-u', 'change', 'app', 'app-log');
  await until('app logged through the holder', () => logged('app') === 1);
  // Back to one pipeline (app's pipe deleted), then the second again: stored anew.
  update(db2);
  update(db3);
  t6('t6-rc', '-l', live, '-t', String(WAIT_MS), '-u', 'change', 'app', 'app-log');
  await until('app logged again', () => logged('app') === 2);

  assert.deepEqual([pid('s6rc-oneshot-runner'), pid('s6rc-fdholder'), pid('sysd'), pid('web')], [runner, holder, sysd, web], 'carried services keep their process');
  // web restarts: its pipe is still in the holder, so its line still reaches its logger.
  t6('t6-svc', '-k', path.join(scandir, 'web'));
  await until('web logged after its restart', () => logged('web') === 2);
  // Oneshots still run, through the carried runner.
  t6('t6-rc', '-l', live, '-t', String(WAIT_MS), '-d', 'change', 'hello');
  t6('t6-rc', '-l', live, '-t', String(WAIT_MS), '-u', 'change', 'hello');
  assert.equal(fs.readFileSync(path.join(base, 'hello'), 'utf8'), 'hi\nhi\n');
  const liveDirs = fs.readdirSync(base).filter((n) => n.startsWith('live:'));
  assert.equal(liveDirs.length, 1, `one live directory: ${liveDirs.join(' ')}`);
  assert.deepEqual(fs.readdirSync(path.join(live, 'servicedirs')).sort(), ['app', 'app-log', 's6rc-fdholder', 's6rc-oneshot-runner', 'sysd', 'web', 'web-log']);
});
