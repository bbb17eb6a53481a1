/**
 * sys/tcpprobe.ts on the real kernel, against servers in another process (so that this
 * process's fds are the probes' alone): a request answered and the end seen; a bare
 * connect told after open() returns, never inside it; a refused connection thrown at once;
 * a server that never answers, closed by its owner's deadline; a server that closes
 * early; IPv6 on ::1 where the machine has it; a callback that throws; and 10,000 attempts
 * of every kind that leave this process with as many fds as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { TcpProbes, tcpAddress, type TcpAddress, type TcpProbeClient } from '../../src/sys/tcpprobe.ts';
import { servers, closedPort } from '../lib/probe-servers.ts';



const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');

/** This process's open fds. */
const fdCount = (): number => fs.readdirSync('/proc/self/fd').length;

/** What one connection came to: its callbacks in order (data as text). */
function attempt(probes: TcpProbes, address: TcpAddress, request: Buffer | undefined): { log: string[]; done: Promise<string[]>; close(): void } {
  const log: string[] = [];
  let finish!: () => void;
  const done = new Promise<string[]>((resolve) => { finish = () => resolve(log); });
  const client: TcpProbeClient = {
    onConnected: () => { log.push('connected'); if (request === undefined) { conn.close(); finish(); } },
    onData: (bytes) => log.push(`data ${bytes.toString('latin1')}`),
    onEnd: () => { log.push('end'); finish(); },
    onFailed: (syscall, code) => { log.push(`failed ${syscall} ${code}`); finish(); },
  };
  const conn = probes.open(address, request, client);
  return { log, done, close: () => { conn.close(); finish(); } };
}

test('tcpAddress takes IPv4 and IPv6 literals, not names', () => {
  assert.equal(tcpAddress('127.0.0.1', 8080)!.sockaddr.toString('hex'), '02001f907f0000010000000000000000');
  assert.equal(tcpAddress('::1', 80)!.sockaddr.length, 28);
  assert.equal(tcpAddress('localhost', 80), undefined);
  assert.equal(tcpAddress('1.2.3', 80), undefined);
});

test('a request is sent, the answer read, the end seen; nothing is left open', async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const probes = new TcpProbes();
  const a = attempt(probes, tcpAddress('127.0.0.1', s.answer)!, REQUEST);
  assert.deepEqual(await a.done, ['data HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 'end']);
  assert.equal(probes.size, 0);
  probes.shutdown();
});

test('a bare connect is told after open() returns, never inside it', async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const probes = new TcpProbes();
  const a = attempt(probes, tcpAddress('127.0.0.1', s.silent)!, undefined);
  assert.deepEqual(a.log, [], 'nothing inside open()');
  assert.deepEqual(await a.done, ['connected']);
  assert.equal(probes.size, 0);
  probes.shutdown();
});

test('a refused connection throws connect ECONNREFUSED from open(), its fd closed', async () => {
  const port = await closedPort();
  const probes = new TcpProbes();
  const before = fdCount() + 1; // the epoll set, made by the first open()
  for (const request of [REQUEST, undefined]) {
    assert.throws(() => probes.open(tcpAddress('127.0.0.1', port)!, request, {} as TcpProbeClient), { syscall: 'connect', code: 'ECONNREFUSED' });
  }
  assert.equal(probes.size, 0);
  assert.equal(fdCount(), before);
  probes.shutdown();
});

test('a server that never answers: the owner closes it at its deadline, and nothing is told after', async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const probes = new TcpProbes();
  const a = attempt(probes, tcpAddress('127.0.0.1', s.silent)!, REQUEST);
  const deadline = setTimeout(() => a.close(), 50);
  t.after(() => clearTimeout(deadline));
  assert.deepEqual(await a.done, [], 'nothing told: the owner closed it');
  assert.equal(probes.size, 0);
  probes.shutdown();
});

test('a server that closes as soon as it accepts: the end (or a reset) is told, and the connection is closed', async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const probes = new TcpProbes();
  for (const request of [REQUEST, undefined]) {
    const a = attempt(probes, tcpAddress('127.0.0.1', s.drop)!, request);
    const log = await a.done;
    if (request === undefined) assert.deepEqual(log, ['connected']);
    else assert.ok(/^(end|failed (read|write|connect) (ECONNRESET|EPIPE))$/.test(log.at(-1)!), log.join(', '));
  }
  assert.equal(probes.size, 0);
  probes.shutdown();
});

test('IPv6: the same exchange on ::1 (skipped where the machine has no IPv6 loopback)', async (t) => {
  const ok = await new Promise<boolean>((resolve) => {
    const probe = net.createServer().once('error', () => resolve(false)).listen(0, '::1', () => probe.close(() => resolve(true)));
  });
  if (!ok) return t.skip('no ::1 here');
  const s = await servers('::1');
  t.after(() => s.stop());
  const probes = new TcpProbes();
  assert.deepEqual(await attempt(probes, tcpAddress('::1', s.answer)!, REQUEST).done, ['data HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 'end']);
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '::1', resolve));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  assert.throws(() => probes.open(tcpAddress('::1', port)!, REQUEST, {} as TcpProbeClient), { code: 'ECONNREFUSED' });
  probes.shutdown();
});

test('what a callback throws goes to onError, and its connection is closed', async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const errors: Error[] = [];
  const probes = new TcpProbes({ onError: (err) => errors.push(err) });
  const thrown = new Promise<void>((resolve) => {
    probes.open(tcpAddress('127.0.0.1', s.answer)!, REQUEST, {
      onConnected: () => {}, onData: () => { resolve(); throw new Error('boom'); }, onEnd: () => {}, onFailed: () => {},
    });
  });
  await thrown;
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(errors.map((e) => e.message), ['boom']);
  assert.equal(probes.size, 0);
  probes.shutdown();
});

test('10,000 attempts (answered, bare, refused, timed out, dropped) leave as many fds as before', async (t) => {
  const s = await servers();
  t.after(() => s.stop());
  const refused = await closedPort();
  const probes = new TcpProbes();
  const before = fdCount();
  const outcomes = new Map<string, number>();
  const count = (k: string): void => { outcomes.set(k, (outcomes.get(k) ?? 0) + 1); };
  const kinds = ['answer', 'bare', 'refused', 'timeout', 'drop'] as const;
  for (let batch = 0; batch < 50; batch++) {
    const waits: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const kind = kinds[(batch * 200 + i) % kinds.length]!;
      const port = kind === 'answer' ? s.answer : kind === 'refused' ? refused : kind === 'drop' ? s.drop : s.silent;
      try {
        const a = attempt(probes, tcpAddress('127.0.0.1', port)!, kind === 'bare' ? undefined : REQUEST);
        if (kind === 'timeout') setTimeout(() => a.close(), 5);
        waits.push(a.done.then((log) => count(`${kind}: ${log.at(-1)}`)));
      } catch (err) {
        count(`${kind}: threw ${(err as NodeJS.ErrnoException).code}`);
      }
    }
    await Promise.all(waits);
  }
  assert.equal(probes.size, 0);
  assert.equal(fdCount(), before + 1, `only the epoll set is left: ${JSON.stringify([...outcomes])}`);
  assert.equal([...outcomes.values()].reduce((a, b) => a + b), 10_000);
  assert.equal(outcomes.get('refused: threw ECONNREFUSED'), 2000);
  assert.equal(outcomes.get('answer: end'), 2000);
  probes.shutdown();
  assert.equal(fdCount(), before, 'shutdown closes the epoll set too');
});
