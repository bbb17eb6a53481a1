/**
 * A real-world-shaped s6-rc tree (issue 11), compiled by t6-rc-compile and run unchanged
 * under t6-svscan and under Debian's real s6-svscan, both with PATH as small as the
 * maker's default (/usr/bin:/bin), where Debian's execline programs are not:
 *
 * - execline oneshots using if, foreground, redirfd, fdmove and s6-envdir;
 * - a longrun made ready by s6-notifyoncheck (data/check), feeding s6-log (a pipeline
 *   with a pipeline-name);
 * - a longrun with an execline run script and a notification-fd, feeding s6-log;
 * - a bundle, and an essential longrun.
 *
 * Every service comes up; each log directory receives its service's lines, and keeps them
 * when the producer restarts (under s6-svscan the pipe lives in s6rc-fdholder); -da brings
 * everything down but the essential service, -Da that one too.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, Tree, WAIT_MS, readStatus, run, tmpdir, until } from '../lib/harness.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const MINIMAL_PATH = '/usr/bin:/bin';
const hasS6 = run('sh', ['-c', 'command -v s6-svscan && command -v s6-fdholder-daemon && command -v s6-notifyoncheck']).status === 0;

/** Writes the source tree; files are [relative path, content, executable?]. */
function writeSource(src: string, base: string): void {
  const file = (rel: string, content: string, exec = false): void => {
    const p = path.join(src, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content, { mode: exec ? 0o755 : 0o644 });
  };
  const state = path.join(base, 'state');
  const logs = path.join(base, 'logs');
  fs.mkdirSync(path.join(base, 'envd'));
  fs.writeFileSync(path.join(base, 'envd', 'GREETING'), 'hello from an envdir\n');
  // Oneshots: the kind of execline that s6-rc trees are full of.
  file('mount-state/type', 'oneshot\n');
  file('mount-state/up', `if { mkdir -p ${state} ${logs} }\nforeground { echo mount-state: done }\nfdmove -c 2 1\ns6-envdir ${base}/envd\nredirfd -w 1 ${state}/greeting\nprintenv GREETING\n`);
  file('mount-state/down', `foreground { rm -f ${state}/greeting }\necho mount-state: undone\n`);
  // A daemon that announces nothing: s6-notifyoncheck polls data/check.
  file('web/type', 'longrun\n');
  file('web/run', `#!/bin/sh\nexec 2>&1\nexec s6-notifyoncheck -w 20 -n 500 sh -c 'echo web: started; touch ${state}/web-up; exec sleep 100000'\n`, true);
  file('web/data/check', `#!/bin/sh\ntest -e ${state}/web-up\n`, true);
  file('web/notification-fd', '3\n');
  file('web/dependencies.d/mount-state', '');
  file('web/producer-for', 'web-log\n');
  file('web-log/type', 'longrun\n');
  file('web-log/run', `#!/bin/sh\nexec s6-log n3 s100000 ${logs}/web\n`, true);
  file('web-log/consumer-for', 'web\n');
  file('web-log/pipeline-name', 'web-pipeline\n');
  file('web-log/dependencies.d/mount-state', '');
  // An execline run script with its own readiness.
  file('app/type', 'longrun\n');
  file('app/run', '#!/usr/bin/execlineb -P\nfdmove -c 2 1\nforeground { echo app: serving }\nforeground { fdmove 1 3 echo }\nfdclose 3\nsleep 100000\n', true);
  file('app/notification-fd', '3\n');
  file('app/dependencies', 'web-pipeline\n');
  file('app/producer-for', 'app-log\n');
  file('app-log/type', 'longrun\n');
  file('app-log/run', `#!/bin/sh\nexec s6-log n3 s100000 ${logs}/app\n`, true);
  file('app-log/consumer-for', 'app\n');
  file('app-log/dependencies.d/mount-state', '');
  // Essential: -d leaves it, -D stops it.
  file('sysd/type', 'longrun\n');
  file('sysd/run', '#!/bin/sh\nexec sleep 100000\n', true);
  file('sysd/flag-essential', '');
  file('default/type', 'bundle\n');
  file('default/contents', 'app\nsysd\n');
}

interface Setup { base: string; scandir: string; live: string; tree: Tree }

async function setUp(scanner: 't6' | 's6'): Promise<Setup> {
  const base = tmpdir(`t6-real-world-${scanner}-`);
  const scandir = path.join(base, 'service');
  fs.mkdirSync(scandir);
  writeSource(path.join(base, 'src'), base);
  const compiled = path.join(base, 'compiled');
  const c = run(path.join(BIN, 't6-rc-compile'), [compiled, path.join(base, 'src')]);
  assert.equal(c.status, 0, c.stderr);
  const command = scanner === 's6' ? ['s6-svscan', '-d', '3'] : undefined;
  const tree = await Tree.start(scandir, { ...(command === undefined ? {} : { command }), env: { PATH: MINIMAL_PATH } });
  cleanups.push(async () => { await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  const live = path.join(base, 'live');
  const i = run(path.join(BIN, 't6-rc-init'), ['-t', String(WAIT_MS), '-c', compiled, '-l', live, scandir]);
  assert.equal(i.status, 0, i.stderr);
  return { base, scandir, live, tree };
}

function rc(s: Setup, ...args: string[]): string {
  const r = run(path.join(BIN, 't6-rc'), ['-l', s.live, '-t', String(WAIT_MS), ...args]);
  assert.equal(r.status, 0, `t6-rc ${args.join(' ')}: ${r.stderr}\n${s.tree.output.text}`);
  return r.stdout;
}

const logLines = (s: Setup, name: string): string[] => {
  try {
    return fs.readFileSync(path.join(s.base, 'logs', name, 'current'), 'utf8').split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
};

async function exercise(s: Setup): Promise<void> {
  rc(s, '-u', 'change', 'default');
  const up = rc(s, '-a', 'list').split('\n').filter((l) => l !== '').sort();
  assert.deepEqual(up, ['app', 'app-log', 'mount-state', 'sysd', 'web', 'web-log']);
  assert.equal(fs.readFileSync(path.join(s.base, 'state', 'greeting'), 'utf8'), 'hello from an envdir\n');
  // Ready means the check passed: the file it looks for is there.
  assert.ok(fs.existsSync(path.join(s.base, 'state', 'web-up')));
  for (const name of ['web', 'app']) {
    const st = readStatus(path.join(s.scandir, name));
    assert.ok(st !== undefined && st.pid !== 0 && st.ready, `${name} is up and ready`);
  }
  const json = JSON.parse(rc(s, '--json', 'list', 'web', 'web-log')) as { name: string; logger: string; state: string }[];
  assert.deepEqual(json.map((j) => [j.name, j.state, j.logger]), [['web', 'up', 'external'], ['web-log', 'up', 'none']]);
  await until('web-log holds web\'s line', () => logLines(s, 'web').some((l) => l.endsWith('web: started')));
  await until('app-log holds app\'s line', () => logLines(s, 'app').includes('app: serving'));
  // The producer restarts; the pipe stays, and the logger gets the new line too.
  const webPid = readStatus(path.join(s.scandir, 'web'))!.pid;
  assert.equal(run(path.join(BIN, 't6-svc'), ['-k', path.join(s.scandir, 'web')]).status, 0);
  await until('web restarted and logged again', () => readStatus(path.join(s.scandir, 'web'))!.pid !== webPid
    && logLines(s, 'web').filter((l) => l.endsWith('web: started')).length === 2);
  assert.equal(logLines(s, 'web').length, 2, 'only web\'s lines, nothing else in its log');

  rc(s, '-da', 'change');
  assert.deepEqual(rc(s, '-a', 'list').split('\n').filter((l) => l !== ''), ['sysd'], 'the essential service stays up under -d');
  assert.equal(fs.existsSync(path.join(s.base, 'state', 'greeting')), false, 'the oneshot\'s down script ran');
  rc(s, '-Da', 'change');
  assert.equal(rc(s, '-a', 'list'), '');
  for (const name of ['web', 'web-log', 'app', 'app-log', 'sysd']) {
    assert.equal(readStatus(path.join(s.scandir, name))?.pid, 0, `${name} is down`);
  }
}

test('under t6-svscan with PATH=/usr/bin:/bin, the whole tree comes up, logs through its pipelines and goes down', async () => {
  await exercise(await setUp('t6'));
});

test('under Debian\'s s6-svscan, the same tree: oneshots through s6rc-oneshot-runner, pipes held by s6rc-fdholder', { skip: !hasS6 && 's6 is not installed' }, async () => {
  const s = await setUp('s6');
  for (const internal of ['s6rc-oneshot-runner', 's6rc-fdholder']) {
    const st = run('s6-svstat', [path.join(s.scandir, internal)]).stdout;
    assert.match(st, /^up .*ready/, `${internal} is up and ready when t6-rc-init returns`);
  }
  await exercise(s);
  // The internal services are not the user's: no change stops them.
  assert.match(run('s6-svstat', [path.join(s.scandir, 's6rc-fdholder')]).stdout, /^up /);
});

test('under a scanner that is not t6-svscan, pipelines without s6\'s fd holder are refused before anything is made', { skip: !hasS6 && 's6 is not installed' }, async () => {
  const base = tmpdir('t6-real-world-refuse-');
  const scandir = path.join(base, 'service');
  fs.mkdirSync(scandir);
  writeSource(path.join(base, 'src'), base);
  const compiled = path.join(base, 'compiled');
  assert.equal(run(path.join(BIN, 't6-rc-compile'), [compiled, path.join(base, 'src')]).status, 0);
  const tree = await Tree.start(scandir, { command: ['s6-svscan', '-d', '3'] });
  cleanups.push(async () => { await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  const live = path.join(base, 'live');
  // t6-rc-init looks for s6's tools in its own PATH: here, nowhere.
  const r = spawnSync(path.join(BIN, 't6-rc-init'), ['-t', String(WAIT_MS), '-c', compiled, '-l', live, scandir], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
  assert.equal(r.status, 111);
  assert.match(r.stderr, /not t6-svscan.*missing: .*s6-fdholder-daemon, s6-fdholder-retrieve, s6-fdholder-store/);
  assert.equal(fs.existsSync(live), false, 'no live directory');
  assert.deepEqual(fs.readdirSync(base).filter((n) => n.startsWith('live')), []);
  assert.deepEqual(fs.readdirSync(scandir).filter((n) => !n.startsWith('.')), [], 'nothing linked');
});
