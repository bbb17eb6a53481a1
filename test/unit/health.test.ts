/**
 * ServiceHealth through a Supervisor with a fake host and a fake sd_notify hub: what each
 * sd_notify assignment does (READY=1 is `U`; STATUS=, MAINPID=, RELOADING=1, ERRNO= go to
 * supervise/t6-health), the watchdog's deadline (from readiness, moved by WATCHDOG=1, set
 * by WATCHDOG_USEC=, pushed by EXTEND_TIMEOUT_USEC=, fired by WATCHDOG=trigger), and what
 * an unhealthy service gets: its down-signal, SIGKILL after timeout-kill, a restart.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Supervisor } from '../../src/supervise/supervisor.ts';
import type { NotifyHub, NotifyRegistration } from '../../src/supervise/notify-hub.ts';
import { parseNotifyMessage, type NotifyMessage } from '../../src/supervise/sd-notify.ts';
import { readHealth } from '../../src/s6/healthfile.ts';
import { decodeStatus } from '../../src/s6/status.ts';
import { tmpdir } from '../lib/harness.ts';
import { FakeHost } from '../lib/supervisorhost.ts';

const open: Supervisor[] = [];
afterEach(() => { for (const sup of open.splice(0)) sup.request('quit'); });

/** A hub that hands messages straight to whoever registered `pid`; MAINPID= is allowed for pids in `tree`. */
class FakeHub implements NotifyHub {
  listeners = new Map<number, (msg: NotifyMessage) => void>();
  tree = new Set<number>();
  address(): string { return '@t6-test/notify'; }
  register(runPid: number, onMessage: (msg: NotifyMessage) => void): NotifyRegistration {
    this.listeners.set(runPid, onMessage);
    return { alias: (pid) => this.tree.has(pid), cancel: () => { this.listeners.delete(runPid); } };
  }
  send(pid: number, text: string): void {
    const parsed = parseNotifyMessage(Buffer.from(text));
    assert.ok(parsed.ok);
    const listener = this.listeners.get(pid);
    assert.ok(listener !== undefined, `pid ${pid} is registered`);
    listener(parsed.message);
  }
}

function setup(files: Record<string, string>) {
  const dir = path.join(tmpdir(), 'svc');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'run'), '#!/bin/sh\n', { mode: 0o755 });
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  const host = new FakeHost();
  const hub = new FakeHub();
  (host as FakeHost & { notifyHub: NotifyHub }).notifyHub = hub;
  const sup = Supervisor.open('svc', dir, host);
  open.push(sup);
  const status = () => decodeStatus(fs.readFileSync(path.join(dir, 'supervise/status')))!;
  return { dir, host, hub, sup, status, pid: () => host.spawned.at(-1)!.pid };
}

test('flag-sd-notify: run gets NOTIFY_SOCKET (and WATCHDOG_USEC); a service without it gets t6-svscan\'s environment untouched', () => {
  const { host } = setup({ 'flag-sd-notify': '', 'watchdog-timeout': '1500\n' });
  const env = host.spawned[0]!.env;
  assert.ok(env?.includes('NOTIFY_SOCKET=@t6-test/notify'));
  assert.ok(env?.includes('WATCHDOG_USEC=1500000'));
  open.splice(0).forEach((s) => s.request('quit'));
  const plain = setup({});
  assert.equal(plain.host.spawned[0]!.env, undefined);
});

test('READY=1 is U; STATUS=, MAINPID= in the tree, RELOADING=1 until the next READY=1, ERRNO= are in the health file', () => {
  const { dir, host, hub, status, pid } = setup({ 'flag-sd-notify': '' });
  hub.send(pid(), 'STATUS=loading\nMAINPID=4242\nERRNO=5');
  assert.equal(status().ready, false);
  host.advance(200);
  assert.deepEqual({ ...readHealth(dir), lastFailure: null }, { statusText: 'loading', mainPid: null, stopping: false, reloading: false, errno: 5, watchdogMs: null, lastFailure: null, givenUp: null });
  assert.ok(host.reports.some((r) => r.includes('MAINPID=4242 refused')));
  hub.tree.add(4243);
  hub.send(pid(), 'READY=1\nMAINPID=4243');
  assert.equal(status().ready, true);
  assert.ok(host.events.some((e) => e.includes('U')));
  hub.send(pid(), 'RELOADING=1\nMONOTONIC_USEC=123');
  host.advance(200);
  assert.equal(readHealth(dir)?.reloading, true);
  assert.equal(readHealth(dir)?.mainPid, 4243);
  hub.send(pid(), 'READY=1');
  host.advance(200);
  assert.equal(readHealth(dir)?.reloading, false);
  // A second READY=1 is no second U.
  assert.equal(host.events.filter((e) => e.includes('U')).length, 1);
});

test('the health file is written at most every 100 ms, whatever the STATUS= flood', () => {
  const { dir, host, hub, pid } = setup({ 'flag-sd-notify': '' });
  let writes = 0;
  const file = path.join(dir, 'supervise', 't6-health');
  let last = '';
  for (let i = 0; i < 1000; i++) {
    hub.send(pid(), `STATUS=step ${i}`);
    const now = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (now !== last) writes++;
    last = now;
    host.advance(1);
  }
  host.advance(200);
  assert.ok(writes <= 11, `${writes} writes for 1,000 messages over 1 s`);
  assert.equal(readHealth(dir)?.statusText, 'step 999');
});

test('watchdog: counted from readiness, moved by WATCHDOG=1; a miss is the down-signal, SIGKILL after timeout-kill, a restart', () => {
  const { dir, host, hub, pid } = setup({ 'flag-sd-notify': '', 'watchdog-timeout': '1000\n', 'timeout-kill': '300\n' });
  const first = pid();
  host.advance(5000); // not ready yet: no watchdog
  assert.deepEqual(host.kills, []);
  hub.send(first, 'READY=1');
  host.advance(900);
  hub.send(first, 'WATCHDOG=1');
  host.advance(900);
  assert.deepEqual(host.kills, []);
  host.advance(100);
  assert.deepEqual(host.kills, [[first, 15], [first, 18]]);
  assert.ok(host.reports.some((r) => r.includes('svc: watchdog: no keep-alive (WATCHDOG=1) within 1000 ms - restarting the service')));
  host.advance(300);
  assert.deepEqual(host.kills.slice(2), [[first, 9], [first, 18]]);
  host.spawned.at(-1)!.onExit(9);
  host.advance(1000);
  assert.notEqual(pid(), first, 'restarted');
  assert.match(readHealth(dir)?.lastFailure ?? '', /^watchdog: no keep-alive/);
});

test('WATCHDOG_USEC= sets the period, EXTEND_TIMEOUT_USEC= pushes the deadline, WATCHDOG=trigger fires at once', () => {
  const { host, hub, pid } = setup({ 'flag-sd-notify': '' });
  hub.send(pid(), 'READY=1\nWATCHDOG_USEC=500000');
  host.advance(400);
  hub.send(pid(), 'EXTEND_TIMEOUT_USEC=2000000');
  host.advance(1900);
  assert.deepEqual(host.kills, []);
  host.advance(200);
  assert.equal(host.kills[0]?.[1], 15);
  host.spawned.at(-1)!.onExit(15);
  host.advance(2000);
  const second = pid();
  hub.send(second, 'WATCHDOG=trigger');
  assert.deepEqual(host.kills.at(-2), [second, 15]);
});

test('a failure while acting on a message is reported, never thrown back into the socket that delivered it', () => {
  const { host, hub, pid } = setup({ 'flag-sd-notify': '' });
  const event = host.event.bind(host);
  host.event = (sup: Supervisor, bytes: string) => {
    if (bytes.includes('U')) throw new Error('boom');
    event(sup, bytes);
  };
  assert.doesNotThrow(() => hub.send(pid(), 'READY=1'));
  assert.ok(host.reports.some((r) => /^error: svc: internal error on readiness: .*boom/.test(r)), host.reports.join('\n'));
});
