/**
 * The oneshot runner built into t6-svscan (`.s6-svscan/run`): runs a command as the
 * scanner's child with the scanner's stdout, reports pid and wait status, enforces the
 * timeout, outlives a client that goes away, and shrugs off bad input.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Tree, WAIT_MS, tmpdir, until } from '../lib/harness.ts';
import { runOneshot, runnerSocket } from '../../src/rc/oneshot.ts';

let tree: Tree;
let sd: string;
let sock: string;
before(async () => {
  sd = tmpdir();
  tree = await Tree.start(sd);
  sock = runnerSocket(sd);
  await until('the runner socket', () => fs.existsSync(sock));
});
after(async () => { await tree.stop(); });

/** Sends raw bytes and collects every reply line until the runner closes the connection. */
function raw(bytes: string | Buffer, end = true): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const s = net.connect(sock, () => { s.write(bytes); if (end) s.end(); });
    s.setEncoding('utf8');
    s.on('data', (d: string) => { out += d; });
    s.on('error', () => {});
    s.on('close', () => resolve(out));
  });
}

test('the socket is root-only: mode 0600 in the 0700 .s6-svscan', () => {
  assert.equal(fs.statSync(sock).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.dirname(sock)).mode & 0o777, 0o700);
  assert.ok(fs.statSync(sock).isSocket());
});

test('a command runs as the scanner child, its output is the scanner output, its wait status comes back', async () => {
  let pid = 0;
  const r = await runOneshot(sock, { argv: ['sh', '-c', 'echo "runner says $RC_NAME from $(pwd)"; exit 3'], cwd: '/tmp', env: null, setenv: ['RC_NAME=hello'], timeoutMs: 0 }, (p) => { pid = p; });
  assert.deepEqual(r, { kind: 'exited', wstat: 3 << 8, timedOut: false });
  assert.ok(pid > 1);
  await tree.output.waitFor(/runner says hello from \/tmp/);
});

test('stdin is /dev/null and the process leads a new session', async () => {
  const out = path.join(sd, '..', `${path.basename(sd)}-stdin`);
  const r = await runOneshot(sock, { argv: ['sh', '-c', `readlink /proc/self/fd/0 > ${out}; ps -o sid= -p $$ >> ${out}; echo $$ >> ${out}`], cwd: '/', env: null, timeoutMs: 0 });
  assert.equal(r.kind, 'exited');
  const [stdin, sid, self] = fs.readFileSync(out, 'utf8').trim().split('\n').map((s) => s.trim());
  assert.equal(stdin, '/dev/null');
  assert.equal(sid, self);
  fs.rmSync(out);
});

test('an explicit env replaces the scanner environment', async () => {
  await runOneshot(sock, { argv: ['/usr/bin/env'], cwd: '/', env: ['A=1', 'PATH=/usr/bin:/bin'], setenv: ['A=2'], timeoutMs: 0 });
  await tree.output.waitFor(/^A=2$/m);
});

test('a command past its timeout gets SIGTERM, then SIGKILL one second later', async () => {
  // Upper bounds far below the 30 s the commands would run: generous, for a loaded machine.
  const t0 = performance.now();
  const r = await runOneshot(sock, { argv: ['sleep', '30'], cwd: '/', env: null, timeoutMs: 200 });
  assert.deepEqual(r, { kind: 'exited', wstat: 15, timedOut: true });
  assert.ok(performance.now() - t0 < 10_000);
  // The shell must have set its trap before SIGTERM comes: a timeout of 1 s leaves it room
  // on a loaded machine (100 ms did not always).
  const t1 = performance.now();
  const r2 = await runOneshot(sock, { argv: ['sh', '-c', 'trap "" TERM; sleep 30'], cwd: '/', env: null, timeoutMs: 1000 });
  assert.deepEqual(r2, { kind: 'exited', wstat: 9, timedOut: true });
  const took = performance.now() - t1;
  assert.ok(took >= 2000 && took < 12_000, `took ${took} ms`);
});

test('a command past its timeout is killed with its process group: what it started dies too', async () => {
  // The shell must start its child and say so before the timeout: 2 s leave room on a loaded machine.
  const r = runOneshot(sock, { argv: ['sh', '-c', 'sleep 300 & echo "oneshot child $!"; wait'], cwd: '/', env: null, timeoutMs: 2000 });
  const child = Number((await tree.output.waitFor(/oneshot child (\d+)/))[1]);
  // /proc as the tree sees it (its pid namespace): a process's stat line, by its pid there.
  const stat = (nsPid: number): string | undefined => {
    try { return fs.readFileSync(`/proc/${tree.pid1}/root/proc/${nsPid}/stat`, 'utf8'); } catch { return undefined; }
  };
  assert.match(stat(1) ?? '', /^1 \(/, 'the tree\'s /proc can be read from here');
  assert.deepEqual(await r, { kind: 'exited', wstat: 15, timedOut: true });
  // Killed (not a zombie: the scanner reaps what is re-parented to it).
  await until('the oneshot\'s child to be killed and reaped', () => !/^\d+ \(sleep\)/.test(stat(child) ?? ''));
});

test('a command that cannot be spawned gets an error reply', async () => {
  const r = await runOneshot(sock, { argv: ['/nonexistent/prog'], cwd: '/', env: null, timeoutMs: 0 });
  assert.equal(r.kind, 'error');
  assert.match((r as { message: string }).message, /^unable to spawn \/nonexistent\/prog: No such file or directory$/);
});

test('the process runs to completion when the client goes away', async () => {
  const marker = path.join(sd, '..', `${path.basename(sd)}-survivor`);
  const go = `${marker}-go`;
  const s = net.connect(sock);
  s.on('error', () => {});
  // The command finishes only once told to, after its client is gone.
  s.write(`${JSON.stringify({ argv: ['sh', '-c', `while [ ! -e ${go} ]; do sleep 0.01; done; echo done > ${marker}`], cwd: '/', env: null, timeoutMs: 0 })}\n`);
  await new Promise<void>((resolve) => s.once('data', () => resolve()));
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  s.destroy();
  await closed;
  // A request made after the client closed is answered after the runner saw that close.
  assert.equal((await runOneshot(sock, { argv: ['true'], cwd: '/', env: null, timeoutMs: 0 })).kind, 'exited');
  fs.writeFileSync(go, '');
  await until('the orphaned oneshot to finish', () => fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === 'done\n');
  fs.rmSync(marker);
  fs.rmSync(go);
});

test('bad input gets an error reply and a closed connection, and the scanner lives on', async () => {
  assert.match(await raw('garbage\n'), /^\{"error":"request is not valid JSON","reason":"bad-request"\}\n$/);
  assert.match(await raw('[1,2]\n'), /not a JSON object/);
  assert.match(await raw('{"argv":[],"cwd":"/","env":null}\n'), /argv must be/);
  assert.match(await raw('{"argv":["x"],"cwd":"rel","env":null}\n'), /cwd must be/);
  assert.match(await raw('{"argv":["x"],"cwd":"/","env":[1]}\n'), /env must be/);
  assert.match(await raw('{"argv":["x"],"cwd":"/","env":null,"timeoutMs":-1}\n'), /timeoutMs/);
  assert.match(await raw('{"argv":["true"]'), /incomplete request/);
  assert.match(await raw(''), /empty request/);
  assert.match(await raw(Buffer.alloc(200_000, 'x'), false), /longer than 65536/);
  assert.match(await raw(Buffer.from([0xff, 0xfe, 0x00, 0x0a])), /not valid JSON/);
  // Many clients that connect and vanish at once.
  await Promise.all(Array.from({ length: 50 }, () => new Promise<void>((resolve) => {
    const s = net.connect(sock, () => { s.write('{"argv":["tr'); s.destroy(); resolve(); });
    s.on('error', () => resolve());
  })));
  // The runner sees those 50 closes in its own time; until it has, it may still count them
  // and refuse a client over its bound (as it should). Then it serves again.
  let r: Awaited<ReturnType<typeof runOneshot>>;
  for (const deadline = Date.now() + 30_000; ;) {
    r = await runOneshot(sock, { argv: ['true'], cwd: '/', env: null, timeoutMs: 0 });
    if (r.kind !== 'error' || !/too many clients/.test(r.message) || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.deepEqual(r, { kind: 'exited', wstat: 0, timedOut: false });
  assert.doesNotMatch(tree.output.text, /internal error|uncaught/);
});

test('a stale socket is replaced when t6-svscan starts again', async () => {
  const dir = tmpdir();
  fs.mkdirSync(path.join(dir, '.s6-svscan'), { mode: 0o700 });
  // A process that listened and was killed leaves the classic stale socket behind.
  const sockPath = runnerSocket(dir);
  spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sockPath)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  assert.ok(fs.statSync(runnerSocket(dir)).isSocket());
  const t = await Tree.start(dir);
  try {
    const r = await runOneshot(runnerSocket(dir), { argv: ['true'], cwd: '/', env: null, timeoutMs: 0 });
    assert.equal(r.kind, 'exited');
  } finally {
    await t.stop();
  }
});

/** A servicedir in the tree's scandir, linked and supervised (by a scan request). */
async function supervised(name: string, run: string, files: Record<string, string> = {}): Promise<string> {
  const dir = path.join(sd, '..', `${path.basename(sd)}-${name}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'run'), run, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'down'), '');
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
  fs.symlinkSync(dir, path.join(sd, name));
  const reply = JSON.parse(await raw('{"scan":true}\n')) as { scanned: boolean; supervised: string[] };
  assert.equal(reply.scanned, true);
  assert.ok(reply.supervised.includes(name), `${name} is supervised once the scan request is answered`);
  assert.ok(fs.existsSync(path.join(dir, 'supervise', 'control')));
  return dir;
}

test('a scan request scans at once and answers with every supervised entry, new ones set up', async () => {
  await supervised('scanned', '#!/bin/sh\nexec sleep 1000\n');
  assert.match(await raw('{"scan":true,"extra":1}\n'), /argv must be/); // only {"scan":true}
});

test('a control request sends the bytes and answers when the goal holds, fails or times out', async () => {
  const dir = await supervised('ctl', '#!/bin/sh\necho >&3\nexec sleep 1000 3>&-\n', { 'notification-fd': '3\n' });
  const ask = async (req: object): Promise<Record<string, unknown>> => JSON.parse(await raw(`${JSON.stringify(req)}\n`)) as Record<string, unknown>;
  // Up and ready: the reply comes after the service said it is ready (status says so too).
  assert.deepEqual(await ask({ svc: 'u', dir, wait: 'U', timeoutMs: WAIT_MS }), { reached: true, failures: 0, timedOut: false });
  const { readStatus } = await import('../lib/harness.ts');
  assert.equal(readStatus(dir)?.ready, true);
  assert.notEqual(readStatus(dir)?.pid, 0);
  // Already there: answered at once.
  assert.deepEqual(await ask({ svc: 'u', dir, wait: 'u' }), { reached: true, failures: 0, timedOut: false });
  assert.deepEqual(await ask({ svc: 'd', dir, wait: 'D', timeoutMs: WAIT_MS }), { reached: true, failures: 0, timedOut: false });
  assert.equal(readStatus(dir)?.pid, 0);
  // Never ready: the wait ends at its timeout.
  const slow = await supervised('ctl-slow', '#!/bin/sh\nexec sleep 1000\n', { 'notification-fd': '3\n' });
  assert.deepEqual(await ask({ svc: 'u', dir: slow, wait: 'U', timeoutMs: 300 }), { reached: false, failures: 0, timedOut: true });
  // Not supervised, bad requests.
  assert.match(await raw(`${JSON.stringify({ svc: 'u', dir: '/nonexistent', wait: 'U' })}\n`), /"error":"\/nonexistent is not supervised here","reason":"not-supervised"/);
  assert.match(await raw(`${JSON.stringify({ svc: 'u', dir: sd, wait: 'U' })}\n`), /not supervised here/);
  assert.match(await raw(`${JSON.stringify({ svc: 'u!', dir, wait: 'U' })}\n`), /svc must be/);
  assert.match(await raw(`${JSON.stringify({ svc: 'u', dir: 'rel', wait: 'U' })}\n`), /dir must be/);
  assert.match(await raw(`${JSON.stringify({ svc: 'u', dir, wait: 'x' })}\n`), /wait must be/);
});

test('a session carries many requests on one connection, answered by id as each ends; a runner without sessions makes t6-rc fall back', async () => {
  const dir = await supervised('sess', '#!/bin/sh\necho >&3\nexec sleep 1000 3>&-\n', { 'notification-fd': '3\n' });
  const replies: Record<string, unknown>[] = [];
  const s = net.connect(sock);
  s.setEncoding('utf8');
  let buf = '';
  s.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      replies.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
    }
  });
  const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
  const final = (id: number): Record<string, unknown> | undefined => replies.find((r) => r.id === id && !('pid' in r && !('wstat' in r)));
  const go = path.join(tmpdir(), 'go');
  s.write('{"id":0}\n');
  // A slow oneshot first, a fast one second: the fast one's answer comes first. The slow one
  // ends only once told to, after that answer came.
  s.write(`${JSON.stringify({ id: 1, argv: ['sh', '-c', `while [ ! -e ${go} ]; do sleep 0.01; done`], cwd: '/', env: null })}\n`);
  s.write(`${JSON.stringify({ id: 2, argv: ['true'], cwd: '/', env: null })}\n`);
  s.write(`${JSON.stringify({ id: 3, svc: 'u', dir, wait: 'U', timeoutMs: WAIT_MS })}\n`);
  s.write(`${JSON.stringify({ id: 4, argv: [], cwd: '/', env: null })}\n`);
  s.end(); // the session still answers everything, then t6-svscan closes it
  await until('the fast oneshot\'s answer', () => final(2));
  fs.writeFileSync(go, '');
  await closed;
  assert.deepEqual(replies.find((r) => r.id === 0), { id: 0, session: true });
  assert.deepEqual(final(1), { id: 1, wstat: 0 });
  assert.deepEqual(final(2), { id: 2, wstat: 0 });
  assert.ok(replies.indexOf(final(2)!) < replies.indexOf(final(1)!), 'answered as they end, not in order');
  assert.deepEqual(final(3), { id: 3, reached: true, failures: 0, timedOut: false });
  assert.match(String(final(4)?.error), /argv must be/);
  // Without an id, a request after the first of a session is refused.
  assert.match(await raw('{"id":0}\n{"argv":["true"],"cwd":"/","env":null}\n'), /every request of a session needs an id/);
  // A runner without sessions (one request per connection, no ids): the RunnerSession
  // sees it and says 'unsupported'; t6-rc then runs each oneshot on its own connection.
  const old = path.join(tmpdir(), 'old-runner');
  let served = 0;
  const server = net.createServer((c) => {
    c.setEncoding('utf8');
    c.once('data', () => { served++; c.end('{"error":"argv must be a non-empty list of strings"}\n'); });
  });
  await new Promise<void>((resolve) => server.listen(old, resolve));
  try {
    const { RunnerSession } = await import('../../src/rc/oneshot.ts');
    const session = new RunnerSession(old);
    assert.equal(await session.run({ argv: ['true'], cwd: '/', env: null, timeoutMs: 0 }), 'unsupported');
    assert.equal((await session.control({ svc: 'u', dir, wait: 'U', timeoutMs: 0 })).kind, 'unsupported');
    // One connection, answered once for the opening {"id":0}: an old runner drops the rest.
    assert.equal(served, 1);
    session.close();
  } finally {
    server.close();
  }
});
