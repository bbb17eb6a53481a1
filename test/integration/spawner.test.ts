/**
 * The spawner thread (src/sys/spawner.ts), forced on from the first spawn with
 * T6_SPAWNER_MIN_FDS=0 (by default it starts at 1,024 fds): a service started through it
 * gets exactly what a spawn from the main thread gives; the thread holds none of t6's files,
 * so a removed service's lock is released (Debian's s6-svok says so); a re-exec's new image
 * spawns through a spawner of its own.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, EventLog, Tree, makeService, readStatus, run, tmpdir, until } from '../lib/harness.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const links = (dir: string): string[] => fs.readdirSync(dir).map((fd) => { try { return fs.readlinkSync(path.join(dir, fd)); } catch { return ''; } });

/** The spawner thread's fd links (the thread is named `spawner`). */
function spawnerFds(pid1: number): string[] | undefined {
  for (const task of fs.readdirSync(`/proc/${pid1}/task`)) {
    if (fs.readFileSync(`/proc/${pid1}/task/${task}/comm`, 'utf8').trim() === 'spawner') return links(`/proc/${pid1}/task/${task}/fd`);
  }
  return undefined;
}

/** The host pid of `dir`'s `sleep`, once `run` has exec'd it and it sleeps. */
async function sleeping(t: Tree, dir: string, notPid = 0): Promise<number> {
  const nsPid = await until(`${dir} to be up`, () => { const p = readStatus(dir)?.pid ?? 0; return p > 0 && p !== notPid ? p : undefined; });
  const pid = await until('run to exec sleep', () => { const p = t.hostPid(nsPid); return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'sleep' ? p : undefined; });
  await until('sleep to be in nanosleep', () => /^(35|230) /.test(fs.readFileSync(`/proc/${pid}/syscall`, 'utf8')));
  return pid;
}

/** What a service must see: fds 0, 1, 2 and 5 (its notification fd), no blocked or ignored SIGPIPE, its own session. */
function assertClean(pid: number): void {
  const fds = fs.readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b);
  assert.deepEqual(fds, [0, 1, 2, 5], links(`/proc/${pid}/fd`).join(', '));
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  assert.equal(BigInt(`0x${status.match(/SigBlk:\s*(\w+)/)![1]}`), 0n, 'no blocked signals');
  assert.equal((BigInt(`0x${status.match(/SigIgn:\s*(\w+)/)![1]}`) >> 12n) & 1n, 0n, 'SIGPIPE not ignored');
  assert.equal(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[3], String(pid), 'session leader');
}

test('through the spawner thread: a service gets only its fds, the thread holds none of t6\'s files, a removed service is unlocked, a re-exec carries on', async () => {
  const sd = tmpdir();
  const store = tmpdir();
  const fdsDir = makeService(path.join(sd, 'fds'), { run: '#!/bin/sh\nexec sleep 3600\n', files: { 'notification-fd': '5\n' } });
  const gone = makeService(path.join(store, 'gone'), { run: '#!/bin/sh\nexec sleep 3600\n' });
  fs.symlinkSync(gone, path.join(sd, 'gone'));
  fs.mkdirSync(path.join(gone, 'event'));
  const events = new EventLog(gone);
  cleanups.push(() => events.close());
  // Locks in the main table (no lock keeper), as this test looks for them there.
  const t = await Tree.start(sd, { env: { T6_SPAWNER_MIN_FDS: '0', T6_LOCK_KEEPER_MIN_FDS: '-1' } });
  cleanups.push(() => t.stop());
  const first = await sleeping(t, fdsDir);
  assertClean(first);
  await events.waitFor(/u/);

  const held = spawnerFds(t.pid1);
  assert.ok(held !== undefined, 'the spawner thread runs');
  assert.deepEqual(held.filter((l) => l.startsWith(sd) || l.startsWith(store) || l.includes('supervise')), [], 'none of t6\'s files in the spawner\'s table');
  assert.ok(links(`/proc/${t.pid1}/fd`).some((l) => l === path.join(gone, 'supervise', 'lock')), 'the main table holds the lock');

  assert.equal(run('s6-svok', [gone]).status, 0);
  fs.unlinkSync(path.join(sd, 'gone'));
  t.signal('SIGHUP');
  await events.waitFor(/udDx$/);
  assert.equal(run('s6-svok', [gone]).status, 1, 'the removed service\'s lock is released');
  assert.equal(run('s6-svok', [fdsDir]).status, 0);

  t.control('R');
  await until('the re-exec', () => (/re-executed \(/.test(t.output.text) ? true : undefined));
  assert.equal(run('s6-svok', [fdsDir]).status, 0, 'still supervised after the re-exec');
  assert.match(run('s6-svstat', [fdsDir]).stdout, /^up \(pid \d+\)/);
  const firstNs = readStatus(fdsDir)!.pid;
  process.kill(first, 'SIGKILL');
  const second = await sleeping(t, fdsDir, firstNs);
  assertClean(second);
  const heldAfter = spawnerFds(t.pid1);
  assert.ok(heldAfter !== undefined, 'the new image spawns through a spawner thread of its own');
  assert.deepEqual(heldAfter.filter((l) => l.startsWith(sd) || l.startsWith(store) || l.includes('supervise')), []);
  assert.equal(run(path.join(BIN, 't6-svstat'), [fdsDir]).status, 0);
});
