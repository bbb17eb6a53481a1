/**
 * The oneshot runner's bounds (runner.ts, runner-connection.ts), on a fake host and small
 * limits: one client too many is told so and closed; a client that does not read its
 * replies is not read either, then dropped; late replies past the hard limit drop it at
 * once; oneshots past the caps wait their turn; a session's open requests are capped; an
 * idle connection is closed. Other clients are served meanwhile. t6-rc's client side
 * reports a refusal as it is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { OneshotRunner, RUNNER_LIMITS, type RunnerHost, type RunnerLimits } from '../../src/supervise/runner.ts';
import type { ControlOutcome, ControlRequest } from '../../src/supervise/runner-protocol.ts';
import { RunnerSession, runOneshot } from '../../src/rc/oneshot.ts';
import { tmpdir, until } from '../lib/harness.ts';

/** A runner on a fake host: what it was asked, and what it reported. */
function fakeRunner(limits: Partial<RunnerLimits> = {}, opts: { async?: boolean } = {}) {
  const reports: string[] = [];
  const controls: { req: ControlRequest; done: (o: ControlOutcome) => void }[] = [];
  const spawns: { argv: readonly string[]; exit: (wstat: number) => void }[] = [];
  const asyncSpawns: { argv: readonly string[]; settle: (pid: number | Error) => void }[] = [];
  let nextPid = 100;
  const host: RunnerHost = {
    spawn: (o, onExit) => { spawns.push({ argv: o.argv, exit: onExit }); return nextPid++; },
    kill: () => {},
    report: (level, message) => { reports.push(`${level}: ${message}`); },
    control: (req, done) => {
      controls.push({ req, done });
      if (req.wait === undefined) done({ reached: true, failures: 0, timedOut: false });
      return () => {};
    },
  };
  if (opts.async === true) {
    host.spawnAsync = (o, onExit) => new Promise<number>((resolve, reject) => {
      asyncSpawns.push({ argv: o.argv, settle: (r) => { if (typeof r === 'number') { spawns.push({ argv: o.argv, exit: onExit }); resolve(r); } else reject(r); } });
    });
  }
  const socketPath = path.join(tmpdir('t6-runner-'), 'run');
  const runner = OneshotRunner.listen(socketPath, host, { ...RUNNER_LIMITS, ...limits });
  return { runner, socketPath, reports, controls, spawns, asyncSpawns };
}

/** A client: every reply line it reads, and its close. */
function client(socketPath: string, opts: { read?: boolean; allowHalfOpen?: boolean } = {}) {
  const sock = net.connect({ path: socketPath, allowHalfOpen: opts.allowHalfOpen === true });
  const replies: Record<string, unknown>[] = [];
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('error', () => {});
  if (opts.read === false) sock.pause();
  else {
    sock.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        replies.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        buf = buf.slice(nl + 1);
      }
    });
  }
  const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
  const send = (obj: object): boolean => sock.write(`${JSON.stringify(obj)}\n`);
  const reply = (id: number, final = true): Promise<Record<string, unknown>> =>
    until(`the reply to request ${id}`, () => replies.find((r) => r.id === id && (!final || !('pid' in r) || 'wstat' in r)));
  return { sock, replies, closed, send, reply };
}

const controlReq = (id: number, extra: object = {}): object => ({ id, svc: 'u', dir: `/srv/${id}`, ...extra });
const runReq = (id: number): object => ({ id, argv: [`prog${id}`], cwd: '/', env: null });

test('one client too many gets a too-many-clients line and is closed; a freed slot serves again', async () => {
  const r = fakeRunner({ maxClients: 3 });
  const held = [client(r.socketPath), client(r.socketPath), client(r.socketPath)];
  for (const c of held) c.send({ id: 0 });
  for (const c of held) assert.deepEqual(await c.reply(0), { id: 0, session: true });
  const refused = client(r.socketPath);
  await refused.closed;
  assert.deepEqual(refused.replies, [{ error: 'the oneshot runner has too many clients (3 connected); try again later', reason: 'too-many-clients' }]);
  // t6-rc's two ways in say it as it is.
  const session = new RunnerSession(r.socketPath);
  assert.deepEqual(await session.run({ argv: ['true'], cwd: '/', env: null, timeoutMs: 0 }), { kind: 'error', message: 'the oneshot runner has too many clients (3 connected); try again later' });
  assert.deepEqual(await session.control({ svc: 'u', dir: '/srv', wait: 'U', timeoutMs: 0 }), { kind: 'error', message: 'the oneshot runner has too many clients (3 connected); try again later', reason: 'too-many-clients' });
  assert.deepEqual(await runOneshot(r.socketPath, { argv: ['true'], cwd: '/', env: null, timeoutMs: 0 }), { kind: 'error', message: 'the oneshot runner has too many clients (3 connected); try again later' });
  assert.deepEqual(r.reports, ['warning: oneshot runner: 3 clients connected; refusing more until one leaves'], 'reported once, not once per refusal');
  held[0]!.sock.destroy();
  await until('the count of refusals', () => r.reports.length === 2);
  assert.equal(r.reports[1], 'info: oneshot runner: 3 connections were refused while 3 clients were connected');
  const next = client(r.socketPath);
  next.send(controlReq(1));
  assert.deepEqual(await next.reply(1), { id: 1, reached: true, failures: 0, timedOut: false });
  for (const c of [...held, next]) c.sock.destroy();
  r.runner.close();
});

test('a client that does not read its replies is not read either, then dropped; another is served meanwhile', async () => {
  const r = fakeRunner({ outputHighWater: 4096, blockedMs: 300 });
  const flood = client(r.socketPath, { read: false });
  flood.send({ id: 0 });
  // About 4 MB of requests whose replies would be 5 MB: far more than the socket buffers hold.
  let sent = 0;
  const batch = (from: number): string => Array.from({ length: 1000 }, (_, i) => `${JSON.stringify(controlReq(from + i + 1))}\n`).join('');
  const flooding = (async () => {
    while (sent < 100_000) {
      sent += 1000;
      if (flood.sock.write(batch(sent - 1000))) continue;
      const drained = new Promise<boolean>((resolve) => { flood.sock.once('drain', () => resolve(true)); void flood.closed.then(() => resolve(false)); });
      if (!await drained) return;
    }
  })();
  const other = client(r.socketPath);
  other.send(controlReq(1_000_000));
  assert.deepEqual(await other.reply(1_000_000), { id: 1_000_000, reached: true, failures: 0, timedOut: false });
  await flood.closed;
  await flooding;
  assert.ok(r.reports.includes('warning: oneshot runner: dropped a client: its replies went unread for 0.3 seconds'), r.reports.join('\n'));
  assert.ok(r.controls.length < sent / 2, `${r.controls.length} of ${sent} requests were read`);
  other.sock.destroy();
  r.runner.close();
});

test('late replies past the hard limit drop the client at once', async () => {
  const r = fakeRunner({ outputHighWater: 4096, maxPendingOutput: 64 * 1024, blockedMs: 60_000 });
  const c = client(r.socketPath, { read: false });
  for (let id = 1; id <= 100; id++) c.send(controlReq(id, { wait: 'U' }));
  await until('every request under way', () => r.controls.length === 100);
  // Each answer carries 10 kB: 1 MB in all, far past what the socket buffers and the limit hold.
  const padded = { reached: true, failures: 0, timedOut: false, padding: 'x'.repeat(10_000) } as ControlOutcome;
  for (const { done } of r.controls) done(padded);
  await until('the client to be dropped', () => r.reports.includes('warning: oneshot runner: dropped a client: more than 65536 bytes of its replies went unread'));
  // Its connection is closed: reading again, the client finds the end after fewer than 100 answers.
  let got = 0;
  c.sock.on('data', (d: string) => { got += d.split('\n').length - 1; });
  c.sock.resume();
  await c.closed;
  assert.ok(got < 100, `${got} answers came`);
  r.runner.close();
});

test('oneshots past the running cap wait their turn, in order, and their connection is not read meanwhile', async () => {
  const r = fakeRunner({ maxRunningOneshots: 3 });
  const c = client(r.socketPath);
  for (let id = 1; id <= 6; id++) c.send(runReq(id));
  c.send(controlReq(7));
  for (const id of [1, 2, 3]) assert.equal((await c.reply(id, false)).pid, 99 + id);
  assert.equal(r.spawns.length, 3);
  assert.equal(r.controls.length, 0, 'the request after the waiting one is not read yet');
  r.spawns[0]!.exit(0);
  assert.deepEqual(await c.reply(1), { id: 1, wstat: 0 });
  assert.equal((await c.reply(4, false)).pid, 103);
  for (let i = 1; i < 6; i++) {
    await until(`oneshot ${i + 1} to start`, () => r.spawns.length > i);
    r.spawns[i]!.exit(i << 8);
  }
  for (let id = 2; id <= 6; id++) assert.deepEqual(await c.reply(id), { id, wstat: (id - 1) << 8 });
  assert.deepEqual(r.spawns.map((s) => s.argv[0]), ['prog1', 'prog2', 'prog3', 'prog4', 'prog5', 'prog6']);
  assert.deepEqual(await c.reply(7), { id: 7, reached: true, failures: 0, timedOut: false });
  c.sock.destroy();
  r.runner.close();
});

test('spawns under way are capped: the others wait until one is done, and a failed one frees its slot', async () => {
  const r = fakeRunner({ maxSpawning: 2 }, { async: true });
  const c = client(r.socketPath);
  for (let id = 1; id <= 4; id++) c.send(runReq(id));
  await until('two spawns under way', () => r.asyncSpawns.length === 2);
  r.asyncSpawns[0]!.settle(new Error('no such program'));
  assert.deepEqual(await c.reply(1), { id: 1, error: 'unable to spawn prog1: no such program', reason: 'spawn-failed' });
  await until('the third spawn', () => r.asyncSpawns.length === 3);
  r.asyncSpawns[1]!.settle(200);
  assert.equal((await c.reply(2, false)).pid, 200);
  await until('the fourth spawn', () => r.asyncSpawns.length === 4);
  c.sock.destroy();
  r.runner.close();
});

test('a session has at most its cap of requests under way; an answer lets the next one in', async () => {
  const r = fakeRunner({ maxOpenPerClient: 5 });
  const c = client(r.socketPath);
  for (let id = 1; id <= 8; id++) c.send(controlReq(id, { wait: 'U' }));
  await until('five requests under way', () => r.controls.length === 5);
  r.controls[0]!.done({ reached: true, failures: 0, timedOut: false });
  await c.reply(1);
  await until('the sixth request', () => r.controls.length === 6);
  assert.equal((r.controls[5]!.req.dir), '/srv/6');
  c.sock.destroy();
  r.runner.close();
});

test('an idle connection is closed, and so is one kept open after its answer', async () => {
  const r = fakeRunner({ idleMs: 100 });
  const silent = client(r.socketPath);
  await silent.closed;
  assert.ok(r.reports.includes('warning: oneshot runner: dropped a client: it sent nothing for 0.1 seconds'), r.reports.join('\n'));
  // One request, answered; the client keeps its side open.
  const lingering = client(r.socketPath, { allowHalfOpen: true });
  lingering.sock.write(`${JSON.stringify({ svc: 'u', dir: '/srv' })}\n`);
  await until('the lingering client to be dropped', () => r.reports.includes('warning: oneshot runner: dropped a client: it kept its connection open 0.1 seconds after its answer'));
  assert.deepEqual(lingering.replies, [{ reached: true, failures: 0, timedOut: false }]);
  lingering.sock.end();
  await lingering.closed;
  r.runner.close();
});
