/**
 * t6's client tools against the real thing: Debian's s6-svscan (2.11.3.2) as pid 1 of its
 * own pid namespace, driven by bin/t6-svc, read by bin/t6-svstat, waited on with
 * bin/t6-svwait, probed with bin/t6-svok and stopped with bin/t6-svscanctl. Every t6-svstat
 * line is compared with real s6-svstat's for the same service (seconds aside).
 * Waits are on events (t6-svwait, the event fifodir), never on sleeps.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { EventLog, Tree, WAIT_MS, makeService, readStatus, run, t6, tmpdir, until } from '../lib/harness.ts';
import { assertValid, loadSchema } from '../lib/jsonschema.ts';
import type { ServiceJson } from '../../src/s6/servicejson.ts';

const SERVICE = loadSchema('service');

const hasS6 = spawnSync('s6-svscan', ['-h']).error === undefined;
const skip = !hasS6 && 's6 not installed';

const T = String(WAIT_MS); // -T/-t for every wait, so that a failure cannot hang the test run

let base: string;
let scandir: string;
let tree: Tree | undefined;
const logs = new Map<string, EventLog>();
const sv = (name: string): string => path.join(scandir, name);

/** Creates a service and subscribes to its events before any supervisor exists. */
function service(name: string, spec: Parameters<typeof makeService>[1]): string {
  const dir = makeService(sv(name), spec);
  fs.mkdirSync(path.join(dir, 'event'));
  logs.set(name, new EventLog(dir));
  return dir;
}

before(async () => {
  if (!hasS6) return;
  base = tmpdir('t6-interop-');
  scandir = path.join(base, 'scan');
  fs.mkdirSync(scandir);
  service('plain', { run: '#!/bin/sh\nexec sleep 1000\n' });
  service('ready', { run: '#!/bin/sh\necho >&3\nexec sleep 1000 3>&-\n', files: { 'notification-fd': '3\n' } });
  service('idle', { run: '#!/bin/sh\nexec sleep 1000\n', down: true });
  // Fails permanently: run exits 2, finish exits 125. Has a notification-fd so that -wU stays -wU.
  service('perma', { run: '#!/bin/sh\nexit 2\n', finish: '#!/bin/sh\nexit 125\n', down: true, files: { 'notification-fd': '3\n' } });
  service('logged', { run: '#!/bin/sh\nexec sleep 1000\n', log: { run: '#!/bin/sh\nexec cat >/dev/null\n' } });
  tree = await Tree.start(scandir, { command: ['s6-svscan', '-d', '3'] });
  await logs.get('plain')!.waitFor(/su/);
  await logs.get('ready')!.waitFor(/suU/);
  await logs.get('idle')!.waitFor(/s/);
  await logs.get('perma')!.waitFor(/s/);
  await logs.get('logged')!.waitFor(/su/);
  await until('the logger of logged to be supervised', () => t6('svok', [path.join(sv('logged'), 'log')]).status === 0);
});

after(async () => {
  if (tree !== undefined) await tree.stop();
  for (const l of logs.values()) l.close();
  if (base !== undefined) fs.rmSync(base, { recursive: true, force: true });
});

/** t6-svstat's output for these args equals s6-svstat's, seconds aside; returns it. */
function sameStatus(args: string[]): string {
  const ours = t6('svstat', args);
  const theirs = run('s6-svstat', args);
  const norm = (s: string): string => s.replace(/\d+ seconds/g, 'N seconds');
  assert.equal(ours.status, theirs.status, `exit code of svstat ${args.join(' ')}: ${ours.stderr}`);
  assert.equal(norm(ours.stdout), norm(theirs.stdout), `svstat ${args.join(' ')}`);
  return ours.stdout;
}

function ok(r: { status: number | null; stdout: string; stderr: string }, what: string): void {
  assert.equal(r.status, 0, `${what}: exit ${r.status}, stderr: ${r.stderr}`);
}

test('t6-svstat prints what s6-svstat prints, for every kind of service', { skip }, () => {
  assert.match(sameStatus([sv('plain')]), /^up \(pid \d+\) \d+ seconds\n$/);
  assert.match(sameStatus([sv('ready')]), /^up \(pid \d+\) \d+ seconds, ready \d+ seconds\n$/);
  assert.match(sameStatus([sv('idle')]), /^down \(exitcode 0\) \d+ seconds, ready \d+ seconds\n$/);
  sameStatus([path.join(sv('logged'), 'log')]);
  sameStatus(['-n', sv('idle')]);
  sameStatus(['-o', 'up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum,updownsince,readysince', sv('ready')]);
  sameStatus(['-uwNrpes', sv('plain')]);
  sameStatus(['-o', 'u,re,p,si', sv('idle')]); // bookworm's prefix matching
});

test('t6-svstat reports errors as s6-svstat does', { skip }, () => {
  const unsupervised = makeService(path.join(base, 'nobody'), { run: '#!/bin/sh\nexit 0\n' });
  const ours = t6('svstat', [unsupervised]);
  const theirs = run('s6-svstat', [unsupervised]);
  assert.equal(ours.status, 1);
  assert.equal(theirs.status, 1);
  assert.equal(ours.stderr, `t6-svstat: fatal: unable to read status for ${unsupervised}: s6-supervise not running\n`);
  const bad = t6('svstat', ['-o', 'up,bogus', sv('plain')]);
  assert.equal(bad.status, 100);
  assert.equal(bad.stderr, 't6-svstat: fatal: invalid option field: bogus\n');
  assert.equal(t6('svstat', []).status, 100);
});

test('t6-svstat -a lists a scan directory with loggers, as text and JSON', { skip }, () => {
  const text = t6('svstat', ['-a', scandir]);
  ok(text, 'svstat -a');
  const lines = text.stdout.trimEnd().split('\n');
  assert.deepEqual(lines.map((l) => l.split(':')[0]), ['idle', 'logged', 'logged/log', 'perma', 'plain', 'ready']);
  for (const line of lines) {
    const name = line.slice(0, line.indexOf(':'));
    const real = run('s6-svstat', [path.join(scandir, name)]).stdout.trimEnd();
    assert.equal(line.replace(/\d+ seconds/g, 'N'), `${name}: ${real}`.replace(/\d+ seconds/g, 'N'));
  }
  const json = t6('svstat', ['-a', scandir, '--json']);
  ok(json, 'svstat -a --json');
  const entries = JSON.parse(json.stdout) as ServiceJson[];
  assert.equal(entries.length, 6);
  for (const e of entries) assertValid(SERVICE, e, `t6-svstat -a --json on s6's ${e.name}`);
  const ready = entries.find((e) => e.name === 'ready')!;
  assert.equal(ready.supervised, true);
  assert.equal(ready.state, 'up');
  assert.equal(ready.ready, true);
  assert.equal(ready.pid, readStatus(sv('ready'))!.pid);
  assert.equal(entries.find((e) => e.name === 'idle')!.state, 'down');
  // The logger comes from the directories' files, whichever supervisor holds them.
  assert.deepEqual(['logged', 'logged/log'].map((n) => entries.find((e) => e.name === n)!.logger), ['external', 'none']);
});

test('t6-svok says which directories are supervised', { skip }, () => {
  assert.equal(t6('svok', [sv('plain')]).status, 0);
  assert.equal(t6('svok', [path.join(sv('logged'), 'log')]).status, 0);
  assert.equal(t6('svok', [path.join(base, 'nowhere')]).status, 1);
  assert.equal(t6('svok', []).status, 100);
});

test('t6-svc -wD -d stops a service; s6 sees it killed by SIGTERM', { skip }, async () => {
  ok(t6('svc', ['-T', T, '-wD', '-d', sv('plain')]), 'svc -wD -d');
  assert.match(sameStatus([sv('plain')]), /^down \(signal SIGTERM\) \d+ seconds, normally up, ready \d+ seconds\n$/);
  const s = readStatus(sv('plain'))!;
  assert.equal(s.pid, 0);
  assert.equal(s.wantUp, false);
  assert.equal(s.wstat, 15);
  await logs.get('plain')!.waitFor(/sudD$/); // the events the wait saw reach us too
});

test('t6-svc -wU on a service without notification-fd warns and waits for up', { skip }, () => {
  const r = t6('svc', ['-T', T, '-wU', '-u', sv('plain')]);
  ok(r, 'svc -wU -u');
  assert.equal(r.stderr, `t6-svc: warning: ${sv('plain')}/notification-fd not present - ignoring request for readiness notification\n`);
  assert.match(sameStatus([sv('plain')]), /^up \(pid \d+\) \d+ seconds\n$/);
});

test('t6-svc -wR -r restarts a service with readiness and waits until it is ready again', { skip }, async () => {
  const pid = readStatus(sv('ready'))!.pid;
  ok(t6('svc', ['-T', T, '-wR', '-r', sv('ready')]), 'svc -wR -r');
  const s = readStatus(sv('ready'))!;
  assert.notEqual(s.pid, pid);
  assert.equal(s.ready, true);
  await logs.get('ready')!.waitFor(/suUdDuU$/);
});

test('t6-svc -wr -k kills a service, which s6 restarts', { skip }, () => {
  const pid = readStatus(sv('plain'))!.pid;
  ok(t6('svc', ['-T', T, '-wr', '-k', sv('plain')]), 'svc -wr -k');
  assert.notEqual(readStatus(sv('plain'))!.pid, pid);
  ok(t6('svc', ['-T', T, '-wr', '-s', 'SIGKILL', sv('plain')]), 'svc -wr -s SIGKILL');
});

test('t6-svc -p / -c pause and continue; s6-svstat shows it', { skip }, async () => {
  ok(t6('svc', ['-p', sv('plain')]), 'svc -p');
  // No event is sent for a pause: the status file is what changes (bounded polling).
  await until('paused in status', () => readStatus(sv('plain'))?.paused === true);
  assert.match(sameStatus([sv('plain')]), /, paused\n$/);
  ok(t6('svc', ['-c', sv('plain')]), 'svc -c');
  await until('not paused', () => readStatus(sv('plain'))?.paused === false);
});

test('t6-svwait: -t times out with 99, -o takes any, -a needs all', { skip }, () => {
  const timedOut = t6('svwait', ['-t', '300', '-u', sv('idle')]);
  assert.equal(timedOut.status, 99);
  assert.equal(timedOut.stderr, 't6-svwait: fatal: timed out\n');
  ok(t6('svwait', ['-t', T, '-o', '-u', sv('idle'), sv('plain')]), 'svwait -o');
  assert.equal(t6('svwait', ['-t', '300', '-a', '-u', sv('idle'), sv('plain')]).status, 99);
  ok(t6('svwait', ['-t', T, '-d', sv('idle')]), 'svwait -d');
  ok(t6('svwait', ['-t', T, '-U', sv('ready')]), 'svwait -U');
});

test('a permanent failure (finish exits 125) ends t6-svc -wU with 1, as s6-svwait counts it', { skip }, async () => {
  const r = t6('svc', ['-T', T, '-wU', '-u', sv('perma')]);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr, 't6-svc: fatal: some services reported permanent failure or their supervisor died\n');
  await logs.get('perma')!.waitFor(/sudOD$/);
  assert.match(sameStatus([sv('perma')]), /^down \(exitcode 2\) \d+ seconds, ready \d+ seconds\n$/);
});

test('t6-svc errors: not supervised 102, missing directory 111, broken supervise 1, usage 100', { skip }, () => {
  const lonely = makeService(path.join(base, 'lonely'), { run: '#!/bin/sh\nexit 0\n' });
  const r = t6('svc', ['-u', lonely]);
  assert.equal(r.status, 102);
  assert.equal(r.stderr, `t6-svc: fatal: unable to control ${lonely}: supervisor not listening\n`);
  const missing = path.join(base, 'missing');
  const m = t6('svc', ['-u', missing]);
  assert.equal(m.status, 111);
  assert.equal(m.stderr, `t6-svc: fatal: unable to control ${missing}: No such file or directory\n`);
  fs.mkdirSync(path.join(lonely, 'supervise'));
  const broken = t6('svc', ['-u', lonely]);
  assert.equal(broken.status, 1);
  assert.equal(broken.stderr, `t6-svc: fatal: something is wrong with the ${lonely}/supervise directory: No such file or directory\n`);
  // s6-svc agrees on the messages (bookworm words fatal errors without errno as "fatal: : unable to").
  assert.equal(run('s6-svc', ['-u', lonely]).stderr, broken.stderr.replace('t6-svc', 's6-svc'));
  assert.equal(t6('svc', ['-Z', sv('plain')]).status, 100);
  assert.equal(t6('svc', ['-u']).status, 100);
  assert.equal(t6('svc', ['-s', 'SEGV', sv('plain')]).status, 100);
});

test('t6-svc -x makes the supervisor exit; t6-svwait sees x and counts a failure', { skip }, async () => {
  const r = t6('svc', ['-T', T, '-wu', '-x', sv('idle')]);
  assert.equal(r.status, 1, r.stderr);
  await logs.get('idle')!.waitFor(/x/);
});

test('t6-svscanctl -a makes s6-svscan pick up a new service', { skip }, async () => {
  service('late', { run: '#!/bin/sh\nexec sleep 1000\n' });
  ok(t6('svscanctl', ['-a', scandir]), 'svscanctl -a');
  await logs.get('late')!.waitFor(/su/);
  assert.match(sameStatus([sv('late')]), /^up \(pid \d+\)/);
  assert.equal(t6('svscanctl', ['-a', path.join(base, 'missing')]).status, 111);
  assert.equal(t6('svscanctl', ['-a', sv('late')]).status, 102);
});

test('t6-svscanctl -t stops the real s6-svscan and its services', { skip }, async () => {
  ok(t6('svscanctl', ['-t', scandir]), 'svscanctl -t');
  await logs.get('plain')!.waitFor(/x$/);
  await tree!.exited;
});
