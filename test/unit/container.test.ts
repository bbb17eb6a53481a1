import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cmdRunnerScript, containerEnvironment, containerMaxServices, containerPath } from '../../src/init/container.ts';
import { readContainerSettings } from '../../src/init/container-settings.ts';
import { fdsNeeded } from '../../src/supervise/fdlimit.ts';
import { readAccountDb, setuidgidAccount } from '../../src/init/legacy-accounts.ts';
import { tmpdir } from '../lib/harness.ts';

test('settings come from the saved environment; from the process\'s own with S6_KEEP_ENV, or where nothing was saved', () => {
  const dir = path.join(tmpdir('t6-cenv-'), 'container_environment');
  const mine = { S6_VERBOSITY: '0', PATH: '/bin' };
  assert.deepEqual(containerEnvironment(mine, dir), mine, 'nothing saved: a step run by hand');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'S6_VERBOSITY'), '3\n');
  assert.deepEqual(containerEnvironment(mine, dir), { S6_VERBOSITY: '3' });
  assert.deepEqual(containerEnvironment({ ...mine, S6_KEEP_ENV: '1' }, dir), { ...mine, S6_KEEP_ENV: '1' });
});

test('PATH as s6-overlay\'s /init leaves it, with t6\'s bin/ last', () => {
  assert.equal(containerPath('/usr/local/bin:/usr/bin', '/opt/t6/bin'), '/command:/bin:/usr/local/bin:/usr/bin:/opt/t6/bin');
  assert.equal(containerPath(undefined, '/opt/t6/bin'), '/command:/usr/bin:/bin:/opt/t6/bin');
  assert.equal(containerPath('/command:/usr/bin:/bin:/opt/t6/bin', '/opt/t6/bin'), '/command:/usr/bin:/bin:/opt/t6/bin');
});

test('pid 1 takes on 1,000 services, or what a limit it cannot raise holds', () => {
  assert.equal(containerMaxServices(1 << 20), 1000);
  assert.equal(containerMaxServices(fdsNeeded(1000)), 1000);
  const small = containerMaxServices(1024);
  assert.ok(small > 100 && small < 1000 && fdsNeeded(small) <= 1024, String(small));
});

test('the CMD runner is valid sh, quotes S6_CMD_ARG0\'s words, and records CMD\'s code (128+N for a signal)', () => {
  for (const env of [{}, { S6_CMD_RECEIVE_SIGNALS: '1' }, { S6_CMD_ARG0: "it's two words" }, { S6_CMD_USE_TERMINAL: '1', S6_LOGGING: '2' }]) {
    const script = cmdRunnerScript(readContainerSettings(env).settings);
    assert.equal(spawnSync('sh', ['-n', '-c', script]).status, 0, script);
  }
  assert.match(cmdRunnerScript(readContainerSettings({ S6_CMD_ARG0: "it's two" }).settings), /'it'\\''s' two "\$@"/);
  // S6_CMD_USE_TERMINAL: only with a catch-all logger (without one CMD's output is the terminal's already).
  assert.match(cmdRunnerScript(readContainerSettings({ S6_CMD_USE_TERMINAL: '1', S6_LOGGING: '2' }).settings), /tty/);
  assert.doesNotMatch(cmdRunnerScript(readContainerSettings({ S6_CMD_USE_TERMINAL: '1' }).settings), /tty/);
});

test('t6-setuidgid\'s account: a name with its primary and listed groups, uid:gid in numbers, an unknown name undefined', () => {
  const dir = tmpdir('t6-accounts-');
  fs.writeFileSync(path.join(dir, 'passwd'), 'abc:x:911:1000::/config:/bin/false\n');
  fs.writeFileSync(path.join(dir, 'group'), 'users:x:1000:\nvideo:x:44:abc,other\naudio:x:29:other\n');
  const db = readAccountDb(path.join(dir, 'passwd'), path.join(dir, 'group'));
  assert.deepEqual(setuidgidAccount('abc', db), { uid: 911, gid: 1000, groups: [1000, 44] });
  assert.deepEqual(setuidgidAccount('12:34', db), { uid: 12, gid: 34, groups: [] });
  assert.equal(setuidgidAccount('nobody-here', db), undefined);
});
