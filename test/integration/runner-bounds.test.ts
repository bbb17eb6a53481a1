/**
 * The oneshot runner under abuse, against t6-svscan as pid 1 of a pid namespace:
 *
 * - a client floods requests (seeded, of every kind, some with 60 kB answers) and never
 *   reads: t6-svscan's RSS stays within RSS_GROWTH_BOUND of what it was, the client is
 *   dropped with a warning naming why, and another client's `t6-rc change` completes
 *   meanwhile;
 * - 2,000 simultaneous connections: at most MAX_CLIENTS are served and t6-svscan's fds stay
 *   bounded (those and MAX_REFUSED_LINGERING refused ones); every other one gets the too-many-clients line; t6-rc, refused, says so; once
 *   they close, everything works again.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BIN, Tree, tmpdir, until } from '../lib/harness.ts';
import { writeDb } from '../lib/rcdb.ts';
import { seededRandom } from '../lib/random.ts';
import { runOneshot, runnerSocket } from '../../src/rc/oneshot.ts';
import { MAX_CLIENTS, MAX_REFUSED_LINGERING } from '../../src/supervise/runner.ts';
import { BLOCKED_MS } from '../../src/supervise/runner-connection.ts';
import { HEAP_LIMIT_MB } from '../../src/sys/heap.ts';

/**
 * How much t6-svscan's resident memory may grow while a client floods it: tens of MB, not
 * the gigabytes an unbounded reply buffer reached (the runner holds under 2 MB per client;
 * the rest is V8 and allocator slack).
 */
const RSS_GROWTH_BOUND = 32 * 1024 * 1024;

let tree: Tree;
let live: string;
let sock: string;
before(async () => {
  const base = tmpdir('t6-runner-bounds-');
  const scandir = path.join(base, 'service');
  const compiled = path.join(base, 'compiled');
  live = path.join(base, 'live');
  fs.mkdirSync(scandir);
  writeDb(compiled, [
    { name: 'setup', type: 'oneshot', up: ['sh', '-c', 'echo setup is up'], down: ['true'] },
    { name: 'daemon', type: 'longrun', run: '#!/bin/sh\nexec sleep 1000\n', deps: ['setup'] },
  ]);
  tree = await Tree.start(scandir);
  sock = runnerSocket(scandir);
  const init = spawnSync(path.join(BIN, 't6-rc-init'), ['-c', compiled, '-l', live, scandir], { encoding: 'utf8' });
  assert.equal(init.status, 0, `t6-rc-init: ${init.stderr}`);
});
after(async () => { await tree.stop(); });

/** t6-rc, run without blocking this process; its exit code and stderr. */
function rc(args: string[]): Promise<{ status: number | null; stderr: string }> {
  const p = spawn(path.join(BIN, 't6-rc'), ['-l', live, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  return new Promise((resolve) => p.on('close', (status) => resolve({ status, stderr })));
}

/** Samples a /proc figure of t6-svscan every few ms until stopped; the largest seen (throws if it went away). */
function sampler(read: () => number) {
  let max = read();
  let failure: unknown;
  const timer = setInterval(() => {
    try { max = Math.max(max, read()); } catch (err) { failure = err; clearInterval(timer); }
  }, 5);
  return {
    stop: (): number => {
      clearInterval(timer);
      if (failure !== undefined) throw failure;
      return Math.max(max, read());
    },
  };
}
const rssOf = (pid: number): number => {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`t6-svscan (${pid}) is gone`);
  return Number(m[1]) * 1024;
};
const fdsOf = (pid: number): number => fs.readdirSync(`/proc/${pid}/fd`).length;

test('a client that floods requests and never reads is dropped; RSS stays bounded; t6-rc change completes meanwhile', { timeout: 120_000 }, async (t) => {
  const random = seededRandom(t);
  const pid = tree.pid1;
  // Its heap limit is the one set for it, far above what the flood may take.
  assert.ok(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(`--max-old-space-size=${HEAP_LIMIT_MB}`));
  const rssBefore = rssOf(pid);
  const rss = sampler(() => rssOf(pid));
  const flood = net.connect(sock);
  flood.on('error', () => {});
  flood.pause(); // never read
  const closed = new Promise<void>((resolve) => flood.on('close', () => resolve()));
  let gone = false;
  void closed.then(() => { gone = true; });
  const long = (): string => `/nonexistent/${'x'.repeat(100 + random.int(60_000))}`;
  // Mostly small requests answered at once, some whose answers repeat 60 kB of the request.
  const request = (id: number): object => {
    const kind = random.int(100);
    if (kind < 45) return { id };
    if (kind < 90) return { id, argv: [], cwd: '/', env: null };
    if (kind < 97) return { id, scan: true };
    if (kind < 99) return { id, svc: 'u', dir: long() };
    return { id, argv: [long()], cwd: '/', env: null };
  };
  let sent = 0;
  const flooding = (async () => {
    flood.write('{"id":0}\n');
    while (!gone) {
      const batch = Array.from({ length: 1000 }, () => `${JSON.stringify(request(++sent))}\n`).join('');
      if (flood.write(batch)) continue;
      await new Promise<void>((resolve) => { flood.once('drain', resolve); void closed.then(resolve); });
    }
  })();
  // Served meanwhile: a whole change, a oneshot and a longrun through the runner.
  const change = await rc(['-u', 'change', 'daemon']);
  assert.equal(change.status, 0, change.stderr);
  // Meanwhile: done before the flooder was dropped (5 s after it blocked). Under test:stress's
  // artificial load t6-rc's Node start alone can take that long: only the completion counts there.
  if (process.env['T6_STRESS'] !== '1') assert.equal(gone, false, 'the change was done before the flooder was dropped');
  await closed;
  await flooding;
  const rssMax = rss.stop();
  await tree.output.waitFor(new RegExp(`oneshot runner: dropped a client: its replies went unread for ${BLOCKED_MS / 1000} seconds`));
  t.diagnostic(`${sent} requests sent; t6-svscan RSS ${(rssBefore / 2 ** 20).toFixed(1)} MB before, at most ${(rssMax / 2 ** 20).toFixed(1)} MB during the flood`);
  assert.ok(rssMax - rssBefore < RSS_GROWTH_BOUND, `RSS grew by ${((rssMax - rssBefore) / 2 ** 20).toFixed(1)} MB`);
  assert.deepEqual(await runOneshot(sock, { argv: ['true'], cwd: '/', env: null, timeoutMs: 0 }), { kind: 'exited', wstat: 0, timedOut: false });
  assert.equal((await rc(['-d', 'change', 'daemon'])).status, 0);
  assert.doesNotMatch(tree.output.text, /internal error|uncaught/);
});

/** Connects, again at once while the listen queue is full (EAGAIN); resolves when connected. */
function connect(onLine: (line: string) => void): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = net.connect(sock);
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        buf += d;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) { onLine(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
      });
      let connected = false;
      s.once('connect', () => { connected = true; resolve(s); });
      s.on('error', (err: NodeJS.ErrnoException) => {
        if (connected) return; // refused: the runner closed it after its line
        if (err.code === 'EAGAIN') setImmediate(attempt);
        else reject(err);
      });
    };
    attempt();
  });
}

test('2,000 simultaneous connections: the cap holds, the others are told so, t6-rc says it, and all recovers', { timeout: 120_000 }, async () => {
  const pid = tree.pid1;
  const fdsBefore = fdsOf(pid);
  const fds = sampler(() => fdsOf(pid));
  const refusal = `{"error":"the oneshot runner has too many clients (${MAX_CLIENTS} connected); try again later","reason":"too-many-clients"}`;
  const others: string[] = [];
  let refused = 0;
  const sockets = await Promise.all(Array.from({ length: 2000 }, () => connect((line) => {
    if (line === refusal) refused++;
    else others.push(line);
  })));
  await until('every connection past the cap to be refused', () => refused === 2000 - MAX_CLIENTS);
  const open = sockets.filter((s) => !s.destroyed && !s.readableEnded);
  assert.equal(open.length, MAX_CLIENTS, 'the served ones are still open');
  assert.deepEqual(others, []);
  // Refused, t6-rc says why.
  const change = await rc(['-u', 'change', 'daemon']);
  assert.notEqual(change.status, 0);
  assert.match(change.stderr, new RegExp(`unable to start service daemon: the oneshot runner has too many clients \\(${MAX_CLIENTS} connected\\); try again later`));
  const fdsMax = fds.stop();
  // Served clients, refused ones left open a moment to read why, and a few for t6-rc's oneshot.
  assert.ok(fdsMax <= fdsBefore + MAX_CLIENTS + MAX_REFUSED_LINGERING + 8, `t6-svscan had ${fdsMax} fds (${fdsBefore} before)`);
  for (const s of sockets) s.destroy();
  await until('the served connections to be closed', () => fdsOf(pid) <= fdsBefore);
  await tree.output.waitFor(/oneshot runner: \d+ connections were refused while 32 clients were connected/);
  assert.equal(tree.output.text.split(`oneshot runner: ${MAX_CLIENTS} clients connected; refusing more until one leaves`).length, 2, 'the refusals are reported once');
  assert.equal((await rc(['-u', 'change', 'daemon'])).status, 0);
  assert.equal((await rc(['-d', 'change', 'daemon'])).status, 0);
  assert.equal(tree.proc.exitCode, null);
  assert.doesNotMatch(tree.output.text, /internal error|uncaught/);
});
