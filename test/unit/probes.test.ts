/**
 * The Prober (src/supervise/probes.ts) against real servers and real processes: TCP to a
 * node:net server and to a closed port; HTTP to node:http servers (status, body, a server
 * that never answers) and to Debian's busybox httpd; readiness at the first success,
 * giving up after `attempts`, liveness failing after exactly N in a row; check commands
 * started by the real spawn (src/sys/spawn.ts) and reaped by the real Reaper. Intervals are
 * 20 ms; tests wait on events, never on fixed sleeps.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn as childSpawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Prober, type ProberDeps } from '../../src/supervise/probes.ts';
import { readProbeSpec, type ProbeSpec } from '../../src/supervise/probe-spec.ts';
import { kill as sysKill, spawn as sysSpawn } from '../../src/sys/spawn.ts';
import { Reaper } from '../../src/sys/reaper.ts';
import { tmpdir, until } from '../lib/harness.ts';
import { closedPort } from '../lib/probe-servers.ts';

/** An outcome the Prober reported. */
type Outcome = { kind: 'ready' } | { kind: 'gave-up' | 'unhealthy'; reason: string };

/** The host's timers, clock and kill, with the timers still pending counted; spawn throws unless a test gives a real one. */
function timerDeps(): ProberDeps & { pending: Set<NodeJS.Timeout> } {
  const pending = new Set<NodeJS.Timeout>();
  return {
    pending,
    spawn: () => { throw Object.assign(new Error('spawn EACCES'), { code: 'EACCES' }); },
    kill: (pid, sig) => { sysKill(pid, sig); },
    setTimer: (ms, fn) => {
      const timer = setTimeout(() => { pending.delete(timer); fn(); }, ms);
      pending.add(timer);
      return { cancel: () => { pending.delete(timer); clearTimeout(timer); } };
    },
    monotonicMs: () => performance.now(),
  };
}

/** One Reaper for every processDeps of a test (two would steal each other's children), on SIGCHLD while the test runs. */
let reaping: { reaper: Reaper; users: number; onChild: () => void } | undefined;
function sharedReaper(t: TestContext): Reaper {
  if (reaping === undefined) {
    const reaper = new Reaper();
    reaping = { reaper, users: 0, onChild: () => reaper.reap() };
    process.on('SIGCHLD', reaping.onChild);
  }
  const r = reaping;
  r.users++;
  t.after(() => {
    if (--r.users > 0) return;
    process.off('SIGCHLD', r.onChild);
    reaping = undefined;
  });
  return r.reaper;
}

/**
 * timerDeps with real processes: the real spawn and Reaper (on SIGCHLD, while the test
 * runs); `log` records each spawn and reap in order; timers of `deadlineMs` are held for
 * the test to fire (`expire`), so a timeout comes when the test says, not when a loaded
 * machine happens to be slow.
 */
function processDeps(t: TestContext, deadlineMs: number) {
  const reaper = sharedReaper(t);
  const log: string[] = [];
  const deadlines: (() => void)[] = [];
  const base = timerDeps();
  const deps: ProberDeps = {
    ...base,
    spawn: (opts, onExit) => {
      const pid = sysSpawn(opts);
      log.push(`spawn ${pid}`);
      reaper.watch(pid, (wstat) => { log.push(`exit ${pid} ${wstat}`); onExit(wstat); });
      return pid;
    },
    setTimer: (ms, fn) => {
      if (ms !== deadlineMs) return base.setTimer(ms, fn);
      let live = true;
      deadlines.push(() => { if (live) { live = false; fn(); } });
      return { cancel: () => { live = false; } };
    },
  };
  /** Fires the deadline of the attempt under way. */
  const expire = (): void => deadlines.at(-1)!();
  return { deps, log, deadlines, expire, pending: base.pending };
}

/** A service directory whose probe/check is `script` (sh), read through readProbeSpec. */
function checkService(script: string, settings: Record<string, string> = {}): { dir: string; spec: ProbeSpec } {
  const dir = tmpdir('t6-probe-check-');
  fs.mkdirSync(path.join(dir, 'probe'));
  fs.writeFileSync(path.join(dir, 'probe', 'check'), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  for (const [name, value] of Object.entries(settings)) fs.writeFileSync(path.join(dir, 'probe', name), `${value}\n`);
  const { spec, problem } = readProbeSpec(dir);
  assert.equal(problem, undefined);
  return { dir, spec: spec! };
}

/** Starts a Prober on `spec` (settings on top of defaults); its outcomes in order, and a promise of the first. */
function probe(t: TestContext, target: ProbeSpec['target'], settings: Partial<Omit<ProbeSpec, 'target'>> = {}, deps: ProberDeps = timerDeps(), dir = '/') {
  const spec: ProbeSpec = { target, intervalMs: 20, timeoutMs: 10_000, startDelayMs: 0, attempts: 0, httpStatus: { min: 200, max: 399 }, ...settings };
  const outcomes: Outcome[] = [];
  let first: (o: Outcome) => void = () => {};
  const firstOutcome = new Promise<Outcome>((resolve) => { first = resolve; });
  const note = (o: Outcome): void => { outcomes.push(o); first(o); };
  const prober = new Prober(spec, dir, deps, {
    onReady: () => note({ kind: 'ready' }),
    onGaveUp: (reason) => note({ kind: 'gave-up', reason }),
    onUnhealthy: (reason) => note({ kind: 'unhealthy', reason }),
  });
  t.after(() => prober.stop());
  /** The outcome after `count` have been seen. */
  const nth = (count: number): Promise<Outcome> => until(`outcome ${count}`, () => outcomes[count - 1]);
  return { prober, outcomes, first: firstOutcome, nth };
}

const tcp = (port: number, host = '127.0.0.1'): ProbeSpec['target'] => ({ kind: 'tcp', name: `tcp ${host}:${port}`, host, port });
const httpTarget = (port: number, urlPath = '/health'): ProbeSpec['target'] =>
  ({ kind: 'http', name: `http://127.0.0.1:${port}${urlPath}`, host: '127.0.0.1', port, path: urlPath, hostHeader: `127.0.0.1:${port}` });

/** A server listening on 127.0.0.1 (closed after the test); its port. */
async function listening(t: TestContext, server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => { server.close(); if (server instanceof http.Server) server.closeAllConnections(); });
  return (server.address() as net.AddressInfo).port;
}


/** An HTTP server answering with `answer(n)` for its n-th request (from 1): status and body. */
async function httpServer(t: TestContext, answer: (n: number, req: http.IncomingMessage) => [number, string?]) {
  const seen: { n: number; status: number; url: string; host: string | undefined }[] = [];
  const server = http.createServer((req, res) => {
    const n = seen.length + 1;
    const [status, body] = answer(n, req);
    seen.push({ n, status, url: req.url ?? '', host: req.headers.host });
    res.statusCode = status;
    if (body === undefined) res.end();
    else { for (const c of body.match(/.{1,3}/gs) ?? []) res.write(c); res.end(); } // chunked, in pieces
  });
  const port = await listening(t, server);
  return { port, seen };
}

test('tcp: a listening server makes the service ready at the first attempt; without liveness the Prober ends there', async (t) => {
  let connections = 0;
  const port = await listening(t, net.createServer((s) => { connections++; s.destroy(); }));
  const p = probe(t, tcp(port));
  assert.deepEqual(await p.first, { kind: 'ready' });
  assert.equal(p.prober.phase, 'ended');
  await until('the connection reaches the server', () => connections === 1);
});

test('tcp: a closed port fails each attempt, and onGaveUp names the probe, the count and the error', async (t) => {
  const port = await closedPort();
  const p = probe(t, tcp(port), { attempts: 3 });
  assert.deepEqual(await p.first, { kind: 'gave-up', reason: `readiness probe tcp 127.0.0.1:${port} failed 3 attempts: connect ECONNREFUSED` });
  assert.equal(p.prober.failures, 3);
  assert.equal(p.prober.phase, 'ended');
});

test('a host name goes over node:net (it resolves and tries each address), and so does any target with transport node:net', async (t) => {
  const server = await httpServer(t, () => [200]);
  const byName = probe(t, tcp(server.port, 'localhost'));
  assert.deepEqual(await byName.first, { kind: 'ready' });
  const forced = probe(t, httpTarget(server.port), {}, { ...timerDeps(), transport: 'node:net' });
  assert.deepEqual(await forced.first, { kind: 'ready' });
  const refused = probe(t, tcp(await closedPort()), { attempts: 1 }, { ...timerDeps(), transport: 'node:net' });
  assert.match((await refused.first as { reason: string }).reason, /failed 1 attempt: connect ECONNREFUSED$/);
});

test('readiness comes at the first success: a server that starts listening after a few failed attempts', async (t) => {
  const port = await closedPort();
  const p = probe(t, tcp(port));
  await until('three refused attempts', () => p.prober.failures >= 3);
  assert.deepEqual(p.outcomes, []);
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  t.after(() => server.close());
  assert.deepEqual(await p.first, { kind: 'ready' });
  assert.equal(p.prober.lastError, 'connect ECONNREFUSED');
});

test('http: a status in 200-399 is ready; the request is GET path with Host', async (t) => {
  const server = await httpServer(t, () => [302]);
  const p = probe(t, httpTarget(server.port, '/health?x=1'));
  assert.deepEqual(await p.first, { kind: 'ready' });
  assert.deepEqual(server.seen, [{ n: 1, status: 302, url: '/health?x=1', host: `127.0.0.1:${server.port}` }]);
});

test('http: statuses outside the accepted range fail, and a configured one is accepted', async (t) => {
  const server = await httpServer(t, () => [404]);
  const p = probe(t, httpTarget(server.port), { attempts: 2 });
  assert.deepEqual(await p.first, { kind: 'gave-up', reason: `readiness probe http://127.0.0.1:${server.port}/health failed 2 attempts: status 404` });
  const q = probe(t, httpTarget(server.port), { httpStatus: { min: 404, max: 404 } });
  assert.deepEqual(await q.first, { kind: 'ready' });
});

test('http: the body must contain http-body (sent chunked, in 3-byte pieces)', async (t) => {
  const server = await httpServer(t, (n) => [200, n < 3 ? '{"status":"starting"}' : '{"status":"up"}']);
  const p = probe(t, httpTarget(server.port), { httpBody: Buffer.from('"status":"up"') });
  assert.deepEqual(await p.first, { kind: 'ready' });
  assert.equal(server.seen.length, 3);
  assert.equal(p.prober.lastError, 'body lacks "\\"status\\":\\"up\\""');
});

test('http: a server that accepts and never answers is a timeout; the socket is destroyed', async (t) => {
  const open = new Set<net.Socket>();
  let closed = 0;
  const port = await listening(t, net.createServer((s) => { open.add(s); s.resume(); s.on('close', () => { open.delete(s); closed++; }); }));
  t.after(() => { for (const s of open) s.destroy(); });
  const p = probe(t, httpTarget(port), { timeoutMs: 50, attempts: 2 });
  assert.deepEqual(await p.first, { kind: 'gave-up', reason: `readiness probe http://127.0.0.1:${port}/health failed 2 attempts: timed out after 50 ms` });
  await until('both connections closed by the prober', () => closed === 2);
});

test('liveness: after readiness the probe goes on, and exactly N consecutive failures make the service unhealthy', async (t) => {
  // ready at 1; 503 at 2; 200 at 3 (the count starts again); then 503 for good.
  const server = await httpServer(t, (n) => [n === 1 || n === 3 ? 200 : 503]);
  const p = probe(t, httpTarget(server.port), { liveness: 3 });
  assert.deepEqual(await p.nth(2), { kind: 'unhealthy', reason: `liveness probe http://127.0.0.1:${server.port}/health failed 3 times: status 503` });
  assert.deepEqual(p.outcomes[0], { kind: 'ready' });
  assert.deepEqual(server.seen.map((s) => s.status), [200, 503, 200, 503, 503, 503], 'no request after the third failure in a row');
  assert.equal(p.prober.phase, 'ended');
});

test('attempts bounds readiness only: during liveness a refused connection counts toward N, not attempts', async (t) => {
  const server = net.createServer((s) => s.destroy());
  const port = await listening(t, server);
  const p = probe(t, tcp(port), { liveness: 2, attempts: 1 });
  assert.deepEqual(await p.first, { kind: 'ready' });
  assert.equal(p.prober.phase, 'liveness');
  server.close();
  assert.deepEqual(await p.nth(2), { kind: 'unhealthy', reason: `liveness probe tcp 127.0.0.1:${port} failed 2 times: connect ECONNREFUSED` });
});

test('start-delay: no attempt before it has passed; nothing fires from inside the constructor', async (t) => {
  const server = await httpServer(t, () => [200]);
  const begun = performance.now();
  let attemptAt = 0;
  const deps = timerDeps();
  const p = probe(t, httpTarget(server.port), { startDelayMs: 60 }, { ...deps, monotonicMs: () => { attemptAt ||= performance.now(); return attemptAt; } });
  assert.deepEqual(p.outcomes, []);
  assert.deepEqual(await p.first, { kind: 'ready' });
  assert.ok(attemptAt - begun >= 59, `first attempt ${attemptAt - begun} ms after the start`);
});

test('stop() cancels everything, is idempotent, and nothing fires after it', async (t) => {
  let connected = 0;
  let closed = 0;
  const port = await listening(t, net.createServer((s) => { connected++; s.resume(); s.on('close', () => closed++); }));
  const deps = timerDeps();
  const p = probe(t, httpTarget(port), { timeoutMs: 5000 }, deps);
  await until('an attempt under way', () => connected === 1);
  assert.equal(deps.pending.size, 1, 'its deadline');
  p.prober.stop();
  p.prober.stop();
  assert.equal(deps.pending.size, 0, 'no timer left to fire');
  await until('its socket destroyed', () => closed === 1);
  assert.deepEqual(p.outcomes, []);
  assert.equal(connected, 1);
  assert.equal(p.prober.phase, 'ended');
});

test('an owner may stop the Prober from inside onReady (no liveness attempt follows)', async (t) => {
  const server = await httpServer(t, () => [200]);
  const deps = timerDeps();
  let prober: Prober | undefined;
  const ready = new Promise<void>((resolve) => {
    prober = new Prober({ target: httpTarget(server.port), intervalMs: 5, timeoutMs: 1000, startDelayMs: 0, attempts: 0, httpStatus: { min: 200, max: 399 }, liveness: 1 }, '/', deps, {
      onReady: () => { prober!.stop(); resolve(); },
      onGaveUp: () => assert.fail('gave up'),
      onUnhealthy: () => assert.fail('unhealthy'),
    });
  });
  t.after(() => prober?.stop());
  await ready;
  assert.equal(deps.pending.size, 0, 'no next attempt scheduled');
  assert.equal(server.seen.length, 1);
  assert.equal(prober!.phase, 'ended');
});

test('check: run directly with argv ./probe/check, cwd the service directory, stdin /dev/null; exit 0 is ready', async (t) => {
  const { dir, spec } = checkService('echo "$0|$PWD|$(readlink /proc/self/fd/0)" > seen');
  const proc = processDeps(t, spec.timeoutMs);
  const p = probe(t, spec.target, { ...spec, intervalMs: 20 }, proc.deps, dir);
  assert.deepEqual(await p.first, { kind: 'ready' });
  assert.equal(fs.readFileSync(path.join(dir, 'seen'), 'utf8'), `./probe/check|${dir}|/dev/null\n`);
  assert.match(proc.log.join(','), /^spawn (\d+),exit \1 0$/);
});

test('check: a non-zero exit or a signal is a failure, named in the reason', async (t) => {
  const failing = checkService('exit 3', { attempts: '2', interval: '20' });
  const a = probe(t, failing.spec.target, failing.spec, processDeps(t, failing.spec.timeoutMs).deps, failing.dir);
  assert.deepEqual(await a.first, { kind: 'gave-up', reason: 'readiness probe ./probe/check failed 2 attempts: exit 3' });
  const killed = checkService('kill -TERM $$', { attempts: '1' });
  const b = probe(t, killed.spec.target, killed.spec, processDeps(t, killed.spec.timeoutMs).deps, killed.dir);
  assert.deepEqual(await b.first, { kind: 'gave-up', reason: 'readiness probe ./probe/check failed 1 attempt: killed by SIGTERM' });
});

test('check: one that cannot be started is a failed attempt, not an exception', async (t) => {
  const { dir, spec } = checkService('exit 0', { attempts: '1' });
  const p = probe(t, spec.target, spec, timerDeps(), dir);
  assert.deepEqual(await p.first, { kind: 'gave-up', reason: 'readiness probe ./probe/check failed 1 attempt: unable to run it: Permission denied' });
});

test('check: past its timeout its process group is SIGKILLed and reaped before the next one starts', async (t) => {
  const { dir, spec } = checkService('sleep 1000 & echo $! > bg.$$; exec sleep 1000', { attempts: '2', timeout: '987654', interval: '20' });
  const proc = processDeps(t, spec.timeoutMs);
  const p = probe(t, spec.target, spec, proc.deps, dir);
  const backgrounds: number[] = [];
  for (let i = 1; i <= 2; i++) {
    const pid = Number(await until(`check ${i} started`, () => /^spawn (\d+)$/.exec(proc.log[2 * (i - 1)] ?? '')?.[1]));
    const bg = await until(`check ${i}'s background child`, () => { try { return Number(fs.readFileSync(path.join(dir, `bg.${pid}`), 'utf8')) || undefined; } catch { return undefined; } });
    backgrounds.push(bg);
    proc.expire();
  }
  assert.deepEqual(await p.first, { kind: 'gave-up', reason: 'readiness probe ./probe/check failed 2 attempts: timed out after 987654 ms' });
  assert.match(proc.log.join(','), /^spawn (\d+),exit \1 9,spawn (\d+),exit \2 9$/, 'each reaped (SIGKILL) before the next spawn');
  for (const bg of backgrounds) await until(`background child ${bg} killed with the group`, () => gone(bg));
});

test('check: stop() SIGKILLs a check still running; its exit is still reaped, and nothing fires', async (t) => {
  const { dir, spec } = checkService('touch started; exec sleep 1000');
  const proc = processDeps(t, spec.timeoutMs);
  const p = probe(t, spec.target, spec, proc.deps, dir);
  await until('the check running', () => fs.existsSync(path.join(dir, 'started')));
  p.prober.stop();
  assert.equal(proc.pending.size, 0);
  await until('the check reaped', () => proc.log.length === 2);
  assert.match(proc.log.join(','), /^spawn (\d+),exit \1 9$/);
  assert.deepEqual(p.outcomes, []);
});

/** Is this process gone (or a zombie, waiting for whoever inherited it)? */
function gone(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').startsWith('Z');
  } catch {
    return true;
  }
}

test('busybox httpd (Debian): ready once it listens; a missing page is a 404; its body is read to the end', async (t) => {
  const root = tmpdir('t6-probe-www-');
  fs.writeFileSync(path.join(root, 'health'), 'service: up\n');
  const port = await closedPort();
  const p = probe(t, httpTarget(port), { httpBody: Buffer.from('service: up') });
  const httpd = childSpawn('busybox', ['httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', root], { stdio: 'ignore' });
  const gone = new Promise((resolve) => httpd.once('exit', resolve));
  t.after(async () => { if (httpd.pid !== undefined) process.kill(httpd.pid, 'SIGTERM'); await gone; });
  assert.deepEqual(await p.first, { kind: 'ready' });
  const missing = probe(t, httpTarget(port, '/nothing'), { attempts: 1 });
  assert.deepEqual(await missing.first, { kind: 'gave-up', reason: `readiness probe http://127.0.0.1:${port}/nothing failed 1 attempt: status 404` });
});

test('liveness attempts and their deadlines go on the coarse clock when the host has one; readiness ones never do', async (t) => {
  const server = await httpServer(t, (n) => [n === 1 ? 503 : 200]);
  const base = timerDeps();
  const calls: string[] = [];
  const deps: ProberDeps = {
    ...base,
    setTimer: (ms, fn) => { calls.push('precise'); return base.setTimer(ms, fn); },
    coarseTimer: (ms, fn) => { calls.push('coarse'); return base.setTimer(ms, fn); },
  };
  const p = probe(t, httpTarget(server.port), { liveness: 3 }, deps);
  assert.deepEqual(await p.first, { kind: 'ready' });
  await until('two liveness attempts', () => server.seen.length >= 4);
  // Start delay, deadline, a failure, the next attempt and its deadline: precise; from the
  // first liveness attempt's scheduling (just before onReady) on, coarse.
  assert.match(calls.join(' '), /^(precise ){4}(coarse ?){3,}$/);
});

for (const transport of ['uring', 'epoll'] as const) {
  test(`transport ${transport}: readiness over HTTP, then liveness failures named alike, and a refused port`, async (t) => {
    const server = await httpServer(t, (n) => [n <= 2 ? 200 : 500, n <= 2 ? 'fine' : 'broken']);
    const deps: ProberDeps = { ...timerDeps(), transport };
    const p = probe(t, httpTarget(server.port), { liveness: 2, timeoutMs: 5000 }, deps);
    assert.deepEqual(await p.first, { kind: 'ready' });
    assert.deepEqual(await p.nth(2), { kind: 'unhealthy', reason: `liveness probe http://127.0.0.1:${server.port}/health failed 2 times: status 500` });
    const refused = probe(t, tcp(await closedPort()), { attempts: 2 }, deps);
    assert.match(JSON.stringify(await refused.first), /failed 2 attempts: connect ECONNREFUSED/);
  });
}

/** An HTTP server that records each request as "connection number:its Connection header" (`seen`), answering the nth with status(n). */
async function recordingServer(t: TestContext, status: (n: number) => number): Promise<{ seen: string[]; port: number }> {
  const seen: string[] = [];
  const ids = new WeakMap<net.Socket, number>();
  let connections = 0;
  const server = http.createServer((req, res) => {
    seen.push(`${ids.get(req.socket)}:${req.headers.connection ?? ''}`);
    res.statusCode = status(seen.length);
    res.end('ok');
  });
  server.on('connection', (s: net.Socket) => ids.set(s, ++connections));
  return { seen, port: await listening(t, server) };
}

for (const transport of ['uring', 'epoll'] as const) {
  test(`http-reuse over ${transport}: liveness attempts share one connection; one the server drops when idle costs no failure`, async (t) => {
    const sockets: net.Socket[] = [];
    let requests = 0;
    let drop = false;
    const server = http.createServer((req, res) => {
      requests++;
      res.end('ok');
      if (drop) res.on('finish', () => req.socket.destroy());
    });
    server.on('connection', (s: net.Socket) => sockets.push(s));
    const port = await listening(t, server);
    const p = probe(t, httpTarget(port), { liveness: 3, httpReuse: 1000, timeoutMs: 5000 }, { ...timerDeps(), transport });
    assert.deepEqual(await p.first, { kind: 'ready' });
    await until('5 liveness answers', () => requests >= 6 || undefined);
    // The readiness attempt's own connection (closed after it), then one for every liveness attempt.
    assert.equal(sockets.length, 2, `${sockets.length} connections for ${requests} requests`);
    // Now the server closes each connection once it has answered, as one whose keep-alive timeout is short.
    drop = true;
    const before = requests;
    await until('5 more answers', () => requests >= before + 5 || undefined);
    assert.ok(sockets.length > 2, 'new connections once the old ones were dropped');
    assert.deepEqual(p.outcomes, [{ kind: 'ready' }], 'no attempt failed');
  });

  test(`http-reuse over ${transport}: a connection carries N liveness attempts, the Nth with Connection: close; after a failure, a new one`, async (t) => {
    // The 8th request is answered 500.
    const { seen, port } = await recordingServer(t, (n) => (n === 8 ? 500 : 200));
    const p = probe(t, httpTarget(port), { liveness: 3, httpReuse: 3, timeoutMs: 5000 }, { ...timerDeps(), transport });
    assert.deepEqual(await p.first, { kind: 'ready' });
    await until('10 requests', () => seen.length >= 10 || undefined);
    assert.deepEqual(seen.slice(0, 10), [
      '1:close', // readiness: a connection of its own
      '2:', '2:', '2:close', // three liveness attempts, the third ends the connection
      '3:', '3:', '3:close',
      '4:', // answered 500: the connection is not kept
      '5:', '5:',
    ]);
    assert.deepEqual(p.outcomes, [{ kind: 'ready' }], 'one failure of liveness 3');
  });

  test(`http-reuse 1 over ${transport}: a new connection, with Connection: close, for every attempt`, async (t) => {
    const { seen, port } = await recordingServer(t, () => 200);
    const p = probe(t, httpTarget(port), { liveness: 3, httpReuse: 1, timeoutMs: 5000 }, { ...timerDeps(), transport });
    assert.deepEqual(await p.first, { kind: 'ready' });
    await until('4 requests', () => seen.length >= 4 || undefined);
    assert.deepEqual(seen.slice(0, 4), ['1:close', '2:close', '3:close', '4:close']);
  });

  test(`http-reuse over ${transport}: a kept connection closed as the request goes is retried at once on a new one`, async (t) => {
    let connections = 0;
    let answers = 0;
    // Each connection answers its first request, then closes at the second without a word
    // (a server whose keep-alive timeout fell just as the request went).
    const server = net.createServer((s) => {
      connections++;
      let seen = 0;
      s.on('error', () => {});
      s.on('data', () => {
        if (++seen > 1) return void s.destroy();
        answers++;
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
    });
    const port = await listening(t, server);
    const p = probe(t, httpTarget(port), { liveness: 1, httpReuse: 1000, timeoutMs: 5000 }, { ...timerDeps(), transport });
    assert.deepEqual(await p.first, { kind: 'ready' });
    await until('4 liveness answers', () => answers >= 5 || undefined);
    assert.deepEqual(p.outcomes, [{ kind: 'ready' }], 'liveness 1: a single failed attempt would have made it unhealthy');
    assert.ok(connections >= answers, `${connections} connections, ${answers} answers`);
  });
}
