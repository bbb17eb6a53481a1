/**
 * The lock keeper in this process (src/sys/lockkeeper.ts): a lock parked in its thread's
 * fd table is still held (another open file of the same path cannot lock it), released the
 * moment its holder closes, parked with those held before the keeper started; a keeper
 * whose thread ends is reported once and its locks are taken again in the main table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { O_CREAT, O_WRONLY, close, open, tryLock } from '../../src/sys/fd.ts';
import { markAllCloexec, nodeOwnFds } from '../../src/sys/spawn.ts';
import { enableLockKeeper, holdLock, lockKeeperThread, type HeldLock } from '../../src/sys/lockkeeper.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't6-lockkeeper-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

/** Opens `name` in the test dir and locks it: the fd, or undefined if someone holds the lock. */
function lockFile(name: string): number | undefined {
  const fd = open(path.join(dir, name), O_WRONLY | O_CREAT);
  if (tryLock(fd)) return fd;
  close(fd);
  return undefined;
}

/** Whether the file's lock is held (by someone other than a new open file of it). */
function held(name: string): boolean {
  const fd = lockFile(name);
  if (fd === undefined) return true;
  close(fd);
  return false;
}

const reports: string[] = [];
markAllCloexec();

test('parked locks stay held, are released when closed, and go back to the main table if the keeper ends', async () => {
  const first = lockFile('first')!;
  const early = holdLock(first, path.join(dir, 'first'));
  assert.equal(early.parked, false, 'no keeper before it is enabled');
  enableLockKeeper({ minFds: 0, keep: nodeOwnFds, report: (m) => reports.push(m) });
  const locks: HeldLock[] = [];
  for (const name of ['a', 'b', 'c']) locks.push(holdLock(lockFile(name)!, path.join(dir, name)));
  assert.ok(lockKeeperThread() !== undefined, 'the keeper runs');
  for (const l of [early, ...locks]) {
    assert.equal(l.parked, true, `${l.path} parked, the one held before the keeper started too`);
    assert.equal(l.fd, undefined);
  }
  assert.equal(fs.readdirSync('/proc/self/fd').map((fd) => { try { return fs.readlinkSync(`/proc/self/fd/${fd}`); } catch { return ''; } }).filter((l) => l.startsWith(dir)).length, 0, 'no fd of them left in this table');
  for (const name of ['first', 'a', 'b', 'c']) assert.equal(held(name), true, `${name} still locked`);

  locks[0]!.close();
  assert.equal(held('a'), false, 'released when close returns');
  locks[0]!.close(); // idempotent

  // Hand-over: a parked lock gives no fd (execve would release it).
  assert.equal(locks[1]!.handOver(), undefined);

  // The keeper's thread ends: reported once; the locks it held are taken again here.
  const worker = lockKeeperThread()!;
  await Promise.all([new Promise((r) => worker.once('exit', r)), worker.terminate()]);
  // The thread's table is freed a little after its end: the locks are taken again then.
  const deadline = Date.now() + 30_000;
  while ((early.fd === undefined || locks[2]!.fd === undefined) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(reports.length, 1, reports.join('\n'));
  assert.match(reports[0]!, /the lock-keeper thread ended - supervise\/lock fds stay in the main fd table from now on; locking again the 2 it held/);
  for (const l of [early, locks[2]!]) {
    assert.equal(l.parked, false);
    assert.ok(l.fd !== undefined, `${l.path} held in this table again`);
  }
  assert.equal(held('first'), true);
  assert.equal(held('c'), true);
  assert.equal(held('b'), false, 'the handed-over one is not taken again');
  // From now on, locks stay here.
  const later = holdLock(lockFile('d')!, path.join(dir, 'd'));
  assert.equal(later.parked, false);
  for (const l of [early, locks[2]!, later]) l.close();
  for (const name of ['first', 'c', 'd']) assert.equal(held(name), false);
  assert.equal(reports.length, 1);
});
