/**
 * sys/uringprobe.ts on the real kernel, against servers in another process (so that this
 * process's fds are the probes' alone), as test/unit/sys-tcpprobe.test.ts does for
 * TcpProbes: an HTTP request answered and the end seen; a bare connect told after open()
 * returns; a refused connection told as `connect ECONNREFUSED`; a server that never answers,
 * closed in flight with nothing told after; a server that closes early; close() inside a
 * callback; a throwing callback; shutdown(); urgent delivery with no tick to wait for; the
 * maxConnections cap; 5,000 attempts of every kind that leave as many fds and no busy
 * slot; and the handshake's last ACK carried by the request (segments counted). Skipped as a whole where io_uring cannot serve (uringUnavailable() says why).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tcpAddress, type TcpAddress, type TcpProbeClient } from '../../src/sys/tcpprobe.ts';
import { UringProbes, probeTransport, uringSocketCommands, uringUnavailable } from '../../src/sys/uringprobe.ts';
import { servers, closedPort } from '../lib/probe-servers.ts';

const why = uringUnavailable();
const skip = why === undefined ? false : `io_uring unavailable: ${why}`;



const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
const ANSWER = 'data HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

/** This process's open fds. */
const fdCount = (): number => fs.readdirSync('/proc/self/fd').length;

/** Resolves once `cond()` holds, looking on each tick of the probes (a slot is freed by a completion, not by a callback). */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** What one connection came to: its callbacks in order (data as text); every callback after close() is logged as a fault. */
function attempt(probes: UringProbes, address: TcpAddress, request: Buffer | undefined, urgent = false): { log: string[]; done: Promise<string[]>; close(): void } {
  const log: string[] = [];
  let closed = false;
  let finish!: () => void;
  const done = new Promise<string[]>((resolve) => { finish = () => resolve(log); });
  const note = (s: string): void => { log.push(closed ? `AFTER CLOSE ${s}` : s); };
  const client: TcpProbeClient = {
    onConnected: () => { note('connected'); if (request === undefined) { closed = true; conn.close(); finish(); } },
    onData: (bytes) => note(`data ${bytes.toString('latin1')}`),
    onEnd: () => { note('end'); closed = true; finish(); },
    onFailed: (syscall, code) => { note(`failed ${syscall} ${code}`); closed = true; finish(); },
  };
  const conn = probes.open(address, request, client, urgent);
  return { log, done, close: () => { closed = true; conn.close(); finish(); } };
}

test('probeTransport: T6_PROBE_TRANSPORT=epoll forces TcpProbes', { skip }, () => {
  assert.equal(probeTransport({ T6_PROBE_TRANSPORT: 'epoll' }), 'epoll');
  assert.equal(probeTransport({}), 'uring');
});

test('a request is sent, the answer read, the end seen; the slot is freed (with and without the follow-up enter)', { skip }, async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  for (const followUpMs of [0, 1]) {
    const probes = UringProbes.tryCreate({ followUpMs })!;
    const a = attempt(probes, tcpAddress('127.0.0.1', s.answer)!, REQUEST);
    assert.deepEqual(await a.done, [ANSWER, 'end']);
    assert.equal(probes.size, 0);
    await until(() => probes.busySlots === 0, 'the slot');
    probes.shutdown();
  }
});

test('a bare connect is told after open() returns, never inside it', { skip }, async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const probes = new UringProbes();
  const a = attempt(probes, tcpAddress('127.0.0.1', s.silent)!, undefined);
  assert.deepEqual(a.log, [], 'nothing inside open()');
  assert.deepEqual(await a.done, ['connected']);
  assert.equal(probes.size, 0);
  probes.shutdown();
});

test('a refused connection is told as connect ECONNREFUSED, with or without a request', { skip }, async () => {
  const port = await closedPort();
  const probes = new UringProbes();
  for (const request of [REQUEST, undefined]) {
    assert.deepEqual(await attempt(probes, tcpAddress('127.0.0.1', port)!, request).done, ['failed connect ECONNREFUSED']);
  }
  assert.equal(probes.size, 0);
  probes.shutdown();
});

test('a server that never answers: closed in flight by its owner, nothing told after, the slot freed', { skip }, async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const probes = new UringProbes({ reapMs: 5 });
  const a = attempt(probes, tcpAddress('127.0.0.1', s.silent)!, REQUEST);
  const b = attempt(probes, tcpAddress('127.0.0.1', s.silent)!, REQUEST);
  b.close(); // before its chain was even submitted
  await until(() => probes.busySlots === 1, 'the first close');
  a.close();
  await until(() => probes.busySlots === 0, 'both slots');
  // A few more ticks: nothing may be told to a closed connection.
  const c = attempt(probes, tcpAddress('127.0.0.1', s.answer)!, REQUEST);
  assert.deepEqual(await c.done, [ANSWER, 'end']);
  assert.deepEqual([a.log, b.log], [[], []]);
  probes.shutdown();
});

test('a server that closes as soon as it accepts: the end (or a reset) is told', { skip }, async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const probes = new UringProbes();
  for (const request of [REQUEST, undefined]) {
    const log = await attempt(probes, tcpAddress('127.0.0.1', s.drop)!, request).done;
    if (request === undefined) assert.deepEqual(log, ['connected']);
    else assert.ok(/^(end|failed (read|write|connect) (ECONNRESET|EPIPE))$/.test(log.at(-1)!), log.join(', '));
  }
  probes.shutdown();
});

test('close() inside onData: no onEnd after it', { skip }, async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const probes = new UringProbes();
  const log: string[] = [];
  await new Promise<void>((resolve) => {
    const conn = probes.open(tcpAddress('127.0.0.1', s.answer)!, REQUEST, {
      onConnected: () => log.push('connected'),
      onData: () => { log.push('data'); conn.close(); conn.close(); resolve(); },
      onEnd: () => log.push('end'),
      onFailed: (syscall, code) => log.push(`failed ${syscall} ${code}`),
    });
  });
  await until(() => probes.busySlots === 0, 'the slot');
  assert.deepEqual(log, ['data']);
  probes.shutdown();
});

test('what a callback throws goes to onError, and its connection is closed', { skip }, async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const errors: Error[] = [];
  const probes = new UringProbes({ onError: (err) => errors.push(err) });
  await new Promise<void>((resolve) => {
    probes.open(tcpAddress('127.0.0.1', s.answer)!, REQUEST, {
      onConnected: () => {}, onData: () => { resolve(); throw new Error('boom'); }, onEnd: () => {}, onFailed: () => {},
    });
  });
  await until(() => probes.busySlots === 0, 'the slot');
  assert.deepEqual(errors.map((e) => e.message), ['boom']);
  assert.equal(probes.size, 0);
  probes.shutdown();
});

test('urgent: the answer is told at once, with no tick for a minute', { skip, timeout: 20_000 }, async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const probes = new UringProbes({ reapMs: 60_000 });
  const before = fdCount();
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    assert.deepEqual(await attempt(probes, tcpAddress('127.0.0.1', s.answer)!, REQUEST, true).done, [ANSWER, 'end']);
    assert.ok(performance.now() - t0 < 5000, 'told through the eventfd, not the tick');
  }
  assert.equal(fdCount(), before + 1, 'the urgent ring alone');
  probes.shutdown();
  assert.equal(fdCount(), before);
});

test('shutdown() with connections in flight: nothing told after, every fd closed', { skip }, async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const before = fdCount();
  const probes = new UringProbes();
  const attempts = Array.from({ length: 50 }, (_, i) => attempt(probes, tcpAddress('127.0.0.1', i % 2 === 0 ? s.silent : s.answer)!, REQUEST, i === 0));
  probes.shutdown();
  assert.equal(probes.size, 0);
  assert.equal(fdCount(), before);
  // It serves again after (a new ring), and the old connections heard nothing.
  assert.deepEqual(await attempt(probes, tcpAddress('127.0.0.1', s.answer)!, REQUEST).done, [ANSWER, 'end']);
  assert.deepEqual(attempts.flatMap((a) => a.log), []);
  probes.shutdown();
});

test('shutdown() inside a callback: the other connections hear nothing, and the probes serve again after', { skip }, async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const errors: Error[] = [];
  const probes = new UringProbes({ onError: (err) => errors.push(err) });
  const others = Array.from({ length: 20 }, () => attempt(probes, tcpAddress('127.0.0.1', s.answer)!, REQUEST));
  await new Promise<void>((resolve) => {
    probes.open(tcpAddress('127.0.0.1', s.answer)!, REQUEST, {
      onConnected: () => {}, onData: () => { probes.shutdown(); resolve(); }, onEnd: () => {}, onFailed: () => {},
    });
  });
  const told = others.filter((a) => a.log.length > 0).length;
  // A new exchange takes a few ticks: any late callback of the old ones would show meanwhile.
  assert.deepEqual(await attempt(probes, tcpAddress('127.0.0.1', s.answer)!, REQUEST).done, [ANSWER, 'end']);
  assert.equal(others.filter((a) => a.log.length > 0).length, told, 'nothing told after the shutdown');
  assert.deepEqual(errors, []);
  probes.shutdown();
});

test('maxConnections: open() past it throws socket EMFILE; a freed slot is taken again', { skip }, async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const probes = new UringProbes({ maxConnections: 16, reapMs: 5 });
  const open = Array.from({ length: 16 }, () => attempt(probes, tcpAddress('127.0.0.1', s.silent)!, REQUEST));
  assert.throws(() => probes.open(tcpAddress('127.0.0.1', s.silent)!, REQUEST, {} as TcpProbeClient), { syscall: 'socket', code: 'EMFILE' });
  open[3]!.close();
  await until(() => probes.busySlots === 15, 'the freed slot');
  open.push(attempt(probes, tcpAddress('127.0.0.1', s.silent)!, REQUEST));
  for (const a of open) a.close();
  await until(() => probes.busySlots === 0, 'every slot');
  probes.shutdown();
});

test('300 connections opened in one turn are all answered within a few ticks (the kernel runs deferred work in batches)', { skip, timeout: 30_000 }, async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const probes = new UringProbes({ reapMs: 200 });
  const t0 = performance.now();
  const logs = await Promise.all(Array.from({ length: 300 }, () => attempt(probes, tcpAddress('127.0.0.1', s.answer)!, REQUEST).done));
  const elapsed = performance.now() - t0;
  assert.equal(logs.filter((l) => l.at(-1) === 'end').length, 300);
  // Each connection needs about 3 items of deferred work, and one enter runs about 20: taken
  // one enter per tick, this would take some 45 ticks (9 s); entered until none is left, 2-4.
  assert.ok(elapsed < 4000, `${elapsed.toFixed(0)} ms`);
  probes.shutdown();
});

test('5,000 attempts (answered, bare, refused, closed in flight, dropped) leave as many fds and no busy slot', { skip, timeout: 60_000 }, async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const refused = await closedPort();
  const probes = new UringProbes({ reapMs: 10 });
  const before = fdCount();
  const outcomes = new Map<string, number>();
  const count = (k: string): void => { outcomes.set(k, (outcomes.get(k) ?? 0) + 1); };
  const kinds = ['answer', 'bare', 'refused', 'inflight', 'drop'] as const;
  for (let batch = 0; batch < 25; batch++) {
    const waits: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const kind = kinds[(batch * 200 + i) % kinds.length]!;
      const port = kind === 'answer' ? s.answer : kind === 'refused' ? refused : kind === 'drop' ? s.drop : s.silent;
      const a = attempt(probes, tcpAddress('127.0.0.1', port)!, kind === 'bare' ? undefined : REQUEST, i % 50 === 0);
      if (kind === 'inflight') (i % 2 === 0 ? queueMicrotask : (f: () => void) => setTimeout(f, 3))(() => a.close());
      waits.push(a.done.then((log) => count(`${kind}: ${log.at(-1) ?? 'closed'}`)));
    }
    await Promise.all(waits);
  }
  assert.equal(probes.size, 0);
  await until(() => probes.busySlots === 0, 'every slot');
  assert.equal(fdCount(), before + 2, `only the two rings are left: ${JSON.stringify([...outcomes])}`);
  assert.equal([...outcomes.values()].reduce((a, b) => a + b), 5000);
  assert.equal(outcomes.get('refused: failed connect ECONNREFUSED'), 1000);
  assert.equal(outcomes.get('answer: end'), 1000);
  assert.equal(outcomes.get('bare: connected'), 1000);
  assert.equal(outcomes.get('inflight: closed'), 1000);
  assert.ok(![...outcomes.keys()].some((k) => k.includes('AFTER CLOSE')), JSON.stringify([...outcomes]));
  probes.shutdown();
  assert.equal(fdCount(), before, 'shutdown closes both rings');
});

const notRoot = process.getuid?.() !== 0 ? 'needs root (unshare --net)' : false;
const segmentsSkip = { uring: skip || (!uringSocketCommands() ? 'io_uring sets no socket option here (kernel before 6.7)' : notRoot), epoll: notRoot };
for (const transport of ['uring', 'epoll'] as const) {
  test(`an HTTP attempt (${transport}) acknowledges the SYN-ACK with its request: two TCP segments fewer, counted in a network namespace of its own`, { skip: segmentsSkip[transport] }, () => {
    const script = fileURLToPath(new URL('../lib/handshake-segments.ts', import.meta.url));
    const perAttempt = (mode: string): number => {
      const r = spawnSync('unshare', ['--net', 'sh', '-c', '{ ip link set lo up || busybox ip link set lo up; } && exec "$0" "$@"', process.execPath, script, '40', mode, transport], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      return Number(r.stdout.trim());
    };
    const plain = perAttempt('plain');
    const merged = perAttempt('merge');
    // Ten or eleven segments for both ends without (SYN, SYN-ACK, ACK, request, …), two fewer
    // with: no bare ACK closing the handshake, and none from the server for the request alone.
    assert.ok(plain - merged >= 1.5, `segments per attempt: ${plain} without, ${merged} with`);
  });
}
