/**
 * The sd_notify hub on the real kernel: a datagram is given to the service whose tree its
 * sender is in (here the test process stands for a service's `run`, and python3 children
 * for its processes), a process outside every tree is refused and counted, a MAINPID= alias
 * is one at a time, and a handler that throws does not close the shared socket.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { SocketNotifyHub } from '../../src/supervise/notify-hub.ts';
import type { NotifyMessage } from '../../src/supervise/sd-notify.ts';

const hubs: SocketNotifyHub[] = [];
after(() => { for (const h of hubs) h.close(); });

function hub(): { hub: SocketNotifyHub; reports: string[] } {
  const reports: string[] = [];
  const h = new SocketNotifyHub({ address: `@t6-test/hub/${process.pid}/${hubs.length}`, report: (_l, m) => reports.push(m), monotonicMs: () => performance.now() });
  hubs.push(h);
  return { hub: h, reports };
}

/**
 * Sends `text` from a python3 child (of this process, or detached from it with setsid -f)
 * that stays alive a while after: the hub places a sender by /proc, so one already reaped
 * could not be placed.
 */
function send(address: string, text: string, detached = false): void {
  const py = ['python3', '-c', 'import socket,sys,time; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(sys.argv[2].encode(), "\\0" + sys.argv[1][1:]); time.sleep(2)', address, text];
  const child = spawn(detached ? 'setsid' : py[0]!, detached ? ['-f', ...py] : py.slice(1), { stdio: 'ignore' });
  child.unref();
}

function next(messages: NotifyMessage[], count: number): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => { if (messages.length >= count) resolve(); else setTimeout(check, 5); };
    check();
  });
}

test('a message from a process of the tree is taken; one from outside is refused and counted', async () => {
  const { hub: h, reports } = hub();
  const address = h.address()!;
  assert.match(address, /^@t6-test\/hub\//);
  const got: NotifyMessage[] = [];
  h.register(process.pid, (m) => got.push(m));
  send(address, 'READY=1\nSTATUS=child');
  await next(got, 1);
  assert.equal(got[0]!.ready, true);
  assert.equal(got[0]!.status, 'child');
  // setsid -f: the sender's parent is gone and its session its own: in no tree.
  send(address, 'READY=1\nSTATUS=stranger', true);
  const refused = () => h.counters.refused >= 1;
  await new Promise<void>((resolve) => { const c = (): void => { if (refused()) resolve(); else setTimeout(c, 5); }; c(); });
  assert.equal(got.length, 1);
  assert.ok(reports.some((r) => /refused: not a process of a service/.test(r)), reports.join('\n'));
});

test('a handler that throws is reported, and the socket goes on serving', async () => {
  const { hub: h, reports } = hub();
  const address = h.address()!;
  const got: NotifyMessage[] = [];
  let first = true;
  h.register(process.pid, (m) => {
    if (first) { first = false; throw new Error('boom'); }
    got.push(m);
  });
  send(address, 'STATUS=one');
  await new Promise<void>((resolve) => { const c = (): void => { if (!first) resolve(); else setTimeout(c, 5); }; c(); });
  send(address, 'STATUS=two');
  await next(got, 1);
  assert.equal(got[0]!.status, 'two');
  assert.ok(reports.some((r) => /internal error on an sd_notify message.*boom/.test(r)), reports.join('\n'));
});

test('MAINPID= aliases one process of the tree at a time; cancel forgets them all', () => {
  const { hub: h } = hub();
  h.address();
  const reg = h.register(process.pid, () => {});
  assert.equal(reg.alias(1), false, 'pid 1 is in no service');
  assert.equal(reg.alias(process.pid), true);
  reg.cancel();
  assert.equal(reg.alias(process.pid), false, 'after cancel, nothing routes to it');
});
