/**
 * sys/notifysocket.ts on the real kernel: a socket bound to an abstract name (or a path)
 * receives what python3's socket module and Debian's real systemd-notify send, with the
 * sender's credentials as the kernel gives them; oversized and credential-less datagrams
 * are refused and counted; fds passed along are closed (none stays in this process); the
 * socket closes while listening and survives a hand-over. Every wait is for an
 * event (a message, a refusal, a process's exit), never for time.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NotifySocket, MAX_NOTIFY_BYTES, type Credentials, type NotifyRefusal } from '../../src/sys/notifysocket.ts';
import { parseAncillary, CONTROL_BYTES } from '../../src/sys/unixdgram.ts';
import { c } from '../../src/sys/libc.ts';

/** Every socket a test made: closed after it, passed or failed (a listening one keeps the process alive). */
const made: NotifySocket[] = [];
afterEach(() => {
  for (const socket of made.splice(0)) socket.close();
});

/** NotifySocket.bind, remembered for afterEach. */
function bind(address: string): NotifySocket {
  const socket = NotifySocket.bind(address);
  made.push(socket);
  return socket;
}

let names = 0;
/** An abstract name no other test (or test run) uses. */
const freshName = (): string => `@t6-test-notify-${process.pid}-${names++}`;

type Received =
  | { kind: 'message'; sender: Credentials; text: string }
  | { kind: 'refused'; refusal: NotifyRefusal }
  | { kind: 'error'; err: Error };

/** Everything a socket reports, in order, and a way to wait for the next n of it. */
class Inbox {
  readonly items: Received[] = [];
  #waiters: { n: number; resolve: () => void }[] = [];

  listen(socket: NotifySocket, onMessage?: (text: string) => void): void {
    socket.listen(
      (sender, payload) => { onMessage?.(payload.toString()); this.#push({ kind: 'message', sender, text: payload.toString() }); },
      (err) => this.#push({ kind: 'error', err }),
      (refusal) => this.#push({ kind: 'refused', refusal }),
    );
  }

  /** Resolves once `n` items have come in all. */
  async count(n: number): Promise<Received[]> {
    if (this.items.length < n) await new Promise<void>((resolve) => this.#waiters.push({ n, resolve }));
    return this.items;
  }

  #push(item: Received): void {
    this.items.push(item);
    for (const w of this.#waiters.filter((x) => this.items.length >= x.n)) w.resolve();
  }
}

/** What one python3 sendto carries: text, or so many bytes of 'x'; fds: that many copies of its stdin (/dev/null). */
type Send = { data: string; fds?: number } | { size: number };

const SENDER = `
import socket, sys, json, array
addr = sys.argv[1]
target = '\\0' + addr[1:] if addr.startswith('@') else addr
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for item in json.loads(sys.argv[2]):
    data = item['data'].encode() if 'data' in item else b'x' * item['size']
    # socket.send_fds would do, but python 3.11's drops its address argument.
    if item.get('fds', 0): s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [0] * item['fds']))], 0, target)
    else: s.sendto(data, target)
`;

/** Runs python3 sending `items` to `address`, in order; resolves with its pid once it has exited 0. */
async function pythonSends(address: string, items: Send[]): Promise<number> {
  const child = spawn('python3', ['-c', SENDER, address, JSON.stringify(items)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const code = await exited(child);
  assert.equal(code, 0, 'python3 sent everything');
  return child.pid!;
}

/** The exit code of a child, once it has exited. */
function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** How many fds this process has open. */
function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

test('python3 sends to an abstract name: the payload arrives with its pid, uid and gid', async () => {
  const socket = bind(freshName());
  const inbox = new Inbox();
  inbox.listen(socket);
  const pid = await pythonSends(socket.address, [{ data: 'READY=1\nSTATUS=up and running' }]);
  const [item] = await inbox.count(1);
  assert.deepEqual(item, { kind: 'message', sender: { pid, uid: process.getuid!(), gid: process.getgid!() }, text: 'READY=1\nSTATUS=up and running' });
  assert.deepEqual(socket.counters, { delivered: 1, oversized: 0, noCredentials: 0, fdsClosed: 0 });
  socket.close();
  socket.close(); // twice is harmless
});

test("Debian's systemd-notify --ready --status: the message arrives, and its BARRIER=1 is answered at once", async () => {
  const socket = bind(freshName());
  const inbox = new Inbox();
  inbox.listen(socket);
  // From a shell, as a run script would call it. As root, systemd-notify sends in the name
  // of its parent (the shell: the service's own process); otherwise in its own.
  const child = spawn('sh', ['-c', 'systemd-notify --ready --status="serving 3 clients"'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, NOTIFY_SOCKET: socket.address },
  });
  // systemd-notify waits for the fd it sends with BARRIER=1 to be closed, and fails after 5 s if not.
  assert.equal(await exited(child), 0, 'systemd-notify saw its barrier answered');
  const items = await inbox.count(2);
  const [ready, barrier] = items;
  assert.equal(ready?.kind, 'message');
  assert.equal(barrier?.kind, 'message');
  if (ready?.kind !== 'message' || barrier?.kind !== 'message') return;
  assert.equal(ready.text, 'READY=1\nSTATUS=serving 3 clients');
  if (process.getuid!() === 0) assert.equal(ready.sender.pid, child.pid, 'sent in the name of the shell');
  else assert.notEqual(ready.sender.pid, process.pid);
  assert.equal(barrier.text, 'BARRIER=1');
  assert.equal(socket.counters.fdsClosed, 1, 'the barrier fd was closed');
  socket.close();
});

test('a datagram over 4096 bytes is refused with its size and sender; 4096 bytes exactly is delivered', async () => {
  const socket = bind(freshName());
  const inbox = new Inbox();
  inbox.listen(socket);
  const pid = await pythonSends(socket.address, [{ size: MAX_NOTIFY_BYTES + 1 }, { size: MAX_NOTIFY_BYTES }, { data: 'READY=1' }]);
  const [big, full, ready] = await inbox.count(3);
  assert.equal(big?.kind, 'refused');
  if (big?.kind === 'refused') assert.deepEqual(big.refusal, { reason: 'oversized', bytes: MAX_NOTIFY_BYTES + 1, sender: { pid, uid: process.getuid!(), gid: process.getgid!() } });
  assert.equal(full?.kind === 'message' ? full.text.length : -1, MAX_NOTIFY_BYTES);
  assert.equal(ready?.kind === 'message' ? ready.text : '', 'READY=1');
  assert.deepEqual(socket.counters, { delivered: 2, oversized: 1, noCredentials: 0, fdsClosed: 0 });
  socket.close();
});

test('fds passed with a message (SCM_RIGHTS), up to the kernel bound of 253, are all closed: none stays in this process', async () => {
  const socket = bind(freshName());
  const inbox = new Inbox();
  inbox.listen(socket);
  await pythonSends(socket.address, [{ data: 'WARMUP=1' }]); // Node's own first-spawn fds, out of the count
  await inbox.count(1);
  const before = openFdCount();
  await pythonSends(socket.address, [{ data: 'FDSTORE=1', fds: 2 }, { data: 'FDSTORE=1', fds: 253 }, { data: 'READY=1' }]);
  const items = await inbox.count(4);
  assert.deepEqual(items.slice(1).map((i) => (i.kind === 'message' ? i.text : i.kind)), ['FDSTORE=1', 'FDSTORE=1', 'READY=1']);
  assert.equal(openFdCount(), before, 'no received fd is open');
  assert.equal(socket.counters.fdsClosed, 255);
  socket.close();
});

test('a datagram the kernel gives no sender for is refused and counted', async () => {
  const socket = bind(freshName());
  // SO_PASSCRED off while python3 sends: neither end asked for credentials, so the kernel
  // records no sender, and later reports pid 0 for it.
  const zero = Buffer.alloc(4);
  assert.equal(c.setsockopt(socket.fd, 1 /* SOL_SOCKET */, 16 /* SO_PASSCRED */, zero, 4), 0);
  const pid = await pythonSends(socket.address, [{ data: 'READY=1' }]);
  // fromFd turns SO_PASSCRED on again, as after a re-exec; the queued datagram still has no sender.
  const again = NotifySocket.fromFd(socket.handOver(), socket.address);
  made.push(again);
  const inbox = new Inbox();
  inbox.listen(again);
  await pythonSends(again.address, [{ data: 'STATUS=later' }]);
  const [first, second] = await inbox.count(2);
  assert.deepEqual(first, { kind: 'refused', refusal: { reason: 'no-credentials', bytes: 7 } });
  assert.equal(second?.kind === 'message' ? second.text : '', 'STATUS=later');
  assert.notEqual(second?.kind === 'message' ? second.sender.pid : 0, pid, 'another python3');
  assert.deepEqual(again.counters, { delivered: 1, oversized: 0, noCredentials: 1, fdsClosed: 0 });
  again.close();
});

test('parseAncillary: credentials and fds from cmsg headers; a header running past the data ends the walk', () => {
  const control = Buffer.alloc(CONTROL_BYTES);
  // cmsghdr: len u64, level i32, type i32, then data padded to 8.
  control.writeBigUInt64LE(16n + 12n, 0);
  control.writeInt32LE(1, 8);
  control.writeInt32LE(2, 12); // SCM_CREDENTIALS
  control.writeInt32LE(4242, 16);
  control.writeUInt32LE(1000, 20);
  control.writeUInt32LE(100, 24);
  control.writeBigUInt64LE(16n + 8n, 32);
  control.writeInt32LE(1, 40);
  control.writeInt32LE(1, 44); // SCM_RIGHTS
  control.writeInt32LE(7, 48);
  control.writeInt32LE(9, 52);
  assert.deepEqual(parseAncillary(control, 56), { credentials: { pid: 4242, uid: 1000, gid: 100 }, fds: [7, 9] });
  assert.deepEqual(parseAncillary(control, 32), { credentials: { pid: 4242, uid: 1000, gid: 100 }, fds: [] });
  assert.deepEqual(parseAncillary(control, 50), { credentials: { pid: 4242, uid: 1000, gid: 100 }, fds: [] }, 'the rights header runs past 50 bytes');
  assert.deepEqual(parseAncillary(control, 0), { credentials: undefined, fds: [] });
  control.writeBigUInt64LE(3n, 0);
  assert.deepEqual(parseAncillary(control, 56), { credentials: undefined, fds: [] }, 'a header shorter than itself');
});

test('a callback that throws goes to onError; the next message is still delivered', async () => {
  const socket = bind(freshName());
  const inbox = new Inbox();
  inbox.listen(socket, (text) => { if (text === 'STATUS=one') throw new Error('planted'); });
  await pythonSends(socket.address, [{ data: 'STATUS=one' }, { data: 'STATUS=two' }]);
  const items = await inbox.count(2);
  assert.equal(items[0]?.kind, 'error');
  assert.match(items[0]?.kind === 'error' ? items[0].err.message : '', /planted/);
  assert.equal(items[1]?.kind === 'message' ? items[1].text : '', 'STATUS=two');
  socket.close();
});

test('200 datagrams through a queue of a few: every one delivered, in order (64 per wake at most)', async () => {
  const socket = bind(freshName());
  const inbox = new Inbox();
  inbox.listen(socket);
  const items: Send[] = Array.from({ length: 200 }, (_, i) => ({ data: `STATUS=${i}` }));
  await pythonSends(socket.address, items);
  const got = await inbox.count(200);
  assert.deepEqual(got.map((i) => (i.kind === 'message' ? i.text : i.kind)), items.map((i) => ('data' in i ? i.data : '')));
  socket.close();
});

test('one datagram per wake: the ones left in the socket come on the next wake, none lost, in order', async () => {
  const socket = NotifySocket.bind(freshName(), { datagramsPerWake: 1 });
  made.push(socket);
  const inbox = new Inbox();
  inbox.listen(socket);
  const items: Send[] = Array.from({ length: 100 }, (_, i) => ({ data: `STATUS=${i}` }));
  await pythonSends(socket.address, items);
  const got = await inbox.count(100);
  assert.deepEqual(got.map((i) => (i.kind === 'message' ? i.text : i.kind)), items.map((i) => ('data' in i ? i.data : '')));
});

test('close() from a callback: the rest of the wake is not delivered, and the name is free again', async () => {
  const socket = bind(freshName());
  const received: string[] = [];
  let first!: () => void;
  const closed = new Promise<void>((r) => { first = r; });
  socket.listen((_sender, payload) => { received.push(payload.toString()); socket.close(); first(); }, (err) => assert.fail(err));
  // Both queued before the wait returns: python3 sends them back to back.
  await pythonSends(socket.address, [{ data: 'STATUS=a' }, { data: 'STATUS=b' }]).catch(() => 0);
  await closed;
  assert.deepEqual(received, ['STATUS=a']);
  await boundOnceFree(socket.address);
});

/**
 * Binds `address` once the socket that held it is closed (at once with a libuv poll handle;
 * a wait on a worker thread would free it when that wait returns): each failed try waits
 * for the next turn of the event loop, never for a time.
 */
async function boundOnceFree(address: string): Promise<void> {
  for (let tries = 0; tries < 10_000; tries++) {
    try {
      NotifySocket.bind(address).close();
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
      await new Promise((r) => setImmediate(r));
    }
  }
  assert.fail(`${address} still bound`);
}

test('close() while listening lets the process exit, and frees the name', () => {
  const address = freshName();
  const script = `
    import { NotifySocket } from ${JSON.stringify(new URL('../../src/sys/notifysocket.ts', import.meta.url).href)};
    const socket = NotifySocket.bind(process.argv[2]);
    socket.listen(() => console.log('message'), (err) => console.log('error', err.message));
    setImmediate(() => { socket.close(); console.log('closed'); });
  `;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't6-notify-'));
  try {
    const file = path.join(dir, 'close.mts');
    fs.writeFileSync(file, script);
    // The timeout only turns a hang into a failure; nothing waits for it to pass.
    assert.equal(execFileSync(process.execPath, [file, address], { encoding: 'utf8', timeout: 30_000 }), 'closed\n');
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
  NotifySocket.bind(address).close();
});

test('50 sockets listened to and closed at once: every fd is released', async () => {
  const before = openFdCount();
  const addresses = Array.from({ length: 50 }, () => freshName());
  for (const address of addresses) {
    const socket = NotifySocket.bind(address);
    socket.listen(() => {}, (err) => assert.fail(err));
    socket.close();
  }
  for (const address of addresses) await boundOnceFree(address);
  assert.equal(openFdCount(), before, 'no socket or eventfd left open');
});

test('handOver(): a close-on-exec duplicate; fromFd() on it receives what was sent in between, and what comes after', async () => {
  const socket = bind(freshName());
  const inbox = new Inbox();
  inbox.listen(socket);
  await pythonSends(socket.address, [{ data: 'STATUS=before' }]);
  await inbox.count(1);
  const fd = socket.handOver();
  assert.throws(() => socket.handOver(), /after close/);
  assert.equal(c.fcntl(fd, 1 /* F_GETFD */, 'int', 0) & 1, 1, 'close-on-exec until the hand-over clears it');
  await pythonSends(socket.address, [{ data: 'STATUS=between' }]);
  const next = NotifySocket.fromFd(fd, socket.address);
  made.push(next);
  assert.equal(next.fd, fd);
  const later = new Inbox();
  later.listen(next);
  await pythonSends(next.address, [{ data: 'STATUS=after' }]);
  const items = await later.count(2);
  assert.deepEqual(items.map((i) => (i.kind === 'message' ? i.text : i.kind)), ['STATUS=between', 'STATUS=after']);
  assert.equal(inbox.items.length, 1, 'the first socket delivered nothing after its hand-over');
  next.close();
});

test('bind: a path as well as a name; EADDRINUSE naming the address; bad addresses refused; fromFd refuses a non-socket', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't6-notify-'));
  try {
    const file = path.join(dir, 'notify');
    const socket = bind(file);
    assert.ok(fs.statSync(file).isSocket());
    const inbox = new Inbox();
    inbox.listen(socket);
    await pythonSends(file, [{ data: 'READY=1' }]);
    assert.equal((await inbox.count(1))[0]?.kind, 'message');
    assert.throws(() => NotifySocket.bind(file), (err: Error & { code?: string }) => err.code === 'EADDRINUSE' && err.message.includes(file));
    socket.close();
    const name = freshName();
    const held = bind(name);
    assert.throws(() => NotifySocket.bind(name), (err: Error & { code?: string }) => err.code === 'EADDRINUSE' && err.message.includes(name));
    held.close();
    assert.throws(() => NotifySocket.bind('relative/path'), { code: 'EINVAL' });
    assert.throws(() => NotifySocket.bind('@'), { code: 'EINVAL' });
    // sun_path has 108 bytes: a NUL and 107 for a name.
    assert.throws(() => NotifySocket.bind(`@${'n'.repeat(108)}`), { code: 'ENAMETOOLONG' });
    NotifySocket.bind(`@${process.pid}-${'n'.repeat(107)}`.slice(0, 108)).close();
    const plain = fs.openSync(path.join(dir, 'plain'), 'w');
    assert.throws(() => NotifySocket.fromFd(plain, '@x'), { code: 'ENOTSOCK' });
    fs.closeSync(plain);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('listen twice, or after close, is refused', () => {
  const socket = bind(freshName());
  socket.listen(() => {}, () => {});
  assert.throws(() => socket.listen(() => {}, () => {}), /listening already/);
  socket.close();
  assert.throws(() => socket.listen(() => {}, () => {}), /after close/);
});
