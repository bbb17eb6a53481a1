/**
 * t6's restart policy (supervise/restart-policy.ts) through a Supervisor with a fake host:
 * backoff delays follow initial × factor^n up to the cap, a run that stayed up for the
 * settle time ends the streak, N deaths within the window give the service up (`O`,
 * wanted down, the reason in supervise/t6-health), `u` clears it; and a service without
 * these files keeps s6's one-second rule.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Supervisor } from '../../src/supervise/supervisor.ts';
import { decodeStatus } from '../../src/s6/status.ts';
import { readHealth } from '../../src/s6/healthfile.ts';
import { tmpdir } from '../lib/harness.ts';
import { FakeHost } from '../lib/supervisorhost.ts';

const open: Supervisor[] = [];
afterEach(() => { for (const sup of open.splice(0)) sup.request('quit'); });

function setup(files: Record<string, string>) {
  const dir = path.join(tmpdir(), 'svc');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'run'), '#!/bin/sh\n', { mode: 0o755 });
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  const host = new FakeHost();
  const sup = Supervisor.open('svc', dir, host);
  open.push(sup);
  const status = () => decodeStatus(fs.readFileSync(path.join(dir, 'supervise/status')))!;
  return { dir, host, sup, status };
}

/** Kills the current run after `livedMs`, then returns how long until the next spawn (ms), or undefined if none within `limitMs`. */
function dieAndTime(host: FakeHost, livedMs: number, limitMs = 600_000): number | undefined {
  host.advance(livedMs);
  const before = host.spawned.length;
  host.spawned.at(-1)!.onExit(1 << 8);
  const diedAt = host.mono;
  for (let waited = 0; waited <= limitMs; waited += 1) {
    if (host.spawned.length > before) return host.mono - diedAt;
    host.advance(1);
  }
  return undefined;
}

test('backoff: delays follow backoff-initial × backoff-factor^n, capped by backoff-max', () => {
  const { host } = setup({ 'backoff-initial': '100\n', 'backoff-factor': '2\n', 'backoff-max': '1000\n' });
  assert.equal(host.spawned.length, 1);
  const delays = [0, 1, 2, 3, 4, 5].map(() => dieAndTime(host, 10));
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
});

test('backoff: a decimal factor, and a run that stayed up for backoff-settle starts the series again', () => {
  const { host } = setup({ 'backoff-initial': '200\n', 'backoff-factor': '1.5\n', 'backoff-settle': '5000\n' });
  assert.deepEqual([dieAndTime(host, 10), dieAndTime(host, 10), dieAndTime(host, 10)], [200, 300, 450]);
  assert.equal(dieAndTime(host, 6000), 200);
});

test('give-up: give-up-deaths within give-up-window give the service up; u clears it', () => {
  const { dir, host, status } = setup({ 'give-up-deaths': '3\n', 'give-up-window': '60000\n', 'backoff-initial': '50\n' });
  assert.equal(dieAndTime(host, 10), 50);
  assert.equal(dieAndTime(host, 10), 100);
  const events = host.events.length;
  assert.equal(dieAndTime(host, 10, 5000), undefined, 'no restart after the third death');
  assert.ok(host.events.slice(events).some((e) => e.includes('O')), 'an O event, as for finish exiting 125');
  assert.equal(status().wantUp, false);
  assert.equal(status().pid, 0);
  assert.match(readHealth(dir)?.givenUp ?? '', /3 deaths within 60000 ms/);
  assert.ok(host.reports.some((r) => /given up/.test(r)));
  // t6-svc -u: starts at once, the count starts afresh, the record is cleared.
  const before = host.spawned.length;
  open[0]!.command('u');
  assert.equal(host.spawned.length, before + 1);
  assert.equal(status().wantUp, true);
  host.advance(200); // the health file is written at most every 100 ms
  assert.equal(readHealth(dir), null);
  assert.equal(dieAndTime(host, 10), 50);
});

test('give-up: deaths outside the window do not count', () => {
  const { host } = setup({ 'give-up-deaths': '2\n', 'give-up-window': '1000\n', 'backoff-initial': '10\n', 'backoff-settle': '100000\n' });
  assert.equal(dieAndTime(host, 2000), 10);
  assert.equal(dieAndTime(host, 2000), 20);
  assert.equal(dieAndTime(host, 2000), 40);
});

test('give-up alone keeps s6\'s one-second delay between restarts', () => {
  const { host, status } = setup({ 'give-up-deaths': '3\n' });
  assert.equal(dieAndTime(host, 10), 1000);
  assert.equal(dieAndTime(host, 10), 1000);
  assert.equal(dieAndTime(host, 10, 5000), undefined);
  assert.equal(status().wantUp, false);
});

test('without the files: s6\'s rule, a second after the death of a service that never said it was ready', () => {
  const { host, dir } = setup({});
  assert.equal(dieAndTime(host, 10), 1000);
  assert.equal(dieAndTime(host, 300), 1000);
  assert.equal(dieAndTime(host, 1500), 1000);
  assert.equal(fs.existsSync(path.join(dir, 'supervise/t6-health')), false, 'no t6 file for an s6 service');
});

test('a bad backoff-factor is warned about, naming the file, and the default used', () => {
  const { host } = setup({ 'backoff-initial': '100\n', 'backoff-factor': 'fast\n' });
  assert.equal(dieAndTime(host, 10), 100);
  assert.equal(dieAndTime(host, 10), 200);
  assert.ok(host.reports.some((r) => r.includes('backoff-factor') && r.includes('not a decimal number')), host.reports.join('\n'));
});

test('re-exec carries the streak and the give-up over', () => {
  const { host, sup } = setup({ 'backoff-initial': '100\n' });
  dieAndTime(host, 10);
  dieAndTime(host, 10);
  const snap = sup.handOver();
  open.splice(0);
  assert.equal(snap.policy?.streak, 2);
  const next = Supervisor.resume(snap, host, {}, 0, false);
  open.push(next);
  // The next image watches the same run (not spawned by it): its death comes through the watch.
  host.advance(10);
  const before = host.spawned.length;
  host.watched.get(snap.runPid)!(1 << 8);
  const diedAt = host.mono;
  while (host.spawned.length === before && host.mono - diedAt < 10_000) host.advance(1);
  assert.equal(host.mono - diedAt, 400);
});
