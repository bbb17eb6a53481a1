/**
 * The lock keeper (src/sys/lockkeeper.ts): with T6_LOCK_KEEPER_MIN_FDS low, a tree's
 * supervise/lock fds leave t6-svscan's main fd table for the keeper thread's once a lock's
 * fd number reaches it (those held already too), and every lock stays held: Debian's
 * s6-svok and t6-svok say supervised, s6-supervise and a second t6-svscan are refused. A
 * removed service's lock is released at once, a re-added one parked again, and a re-exec
 * (whose next image locks the files again) leaves every service supervised, its lock held.
 * And the fd limit those fds live under: raised to what -c needs, or said once.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, EventLog, Tree, makeService, readStatus, run, tmpdir, until } from '../lib/harness.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

/** Where the keeper starts: above what t6-svscan holds with two services, below what it holds with a dozen more. */
const MIN_FDS = 64;
const RUN = '#!/bin/sh\nexec sleep 3600\n';

const links = (dir: string): string[] => fs.readdirSync(dir).map((fd) => { try { return fs.readlinkSync(path.join(dir, fd)); } catch { return ''; } });

/** The lock keeper thread's fd links, undefined while it does not run. */
function keeperFds(pid1: number): string[] | undefined {
  for (const task of fs.readdirSync(`/proc/${pid1}/task`)) {
    let comm = '';
    try { comm = fs.readFileSync(`/proc/${pid1}/task/${task}/comm`, 'utf8').trim(); } catch { continue; }
    if (comm === 'lock-keeper') return links(`/proc/${pid1}/task/${task}/fd`);
  }
  return undefined;
}

/** The supervise/lock links of a table, sorted. */
const locksIn = (fds: string[]): string[] => fds.filter((l) => l.endsWith('/supervise/lock')).sort();

/** A supervisor expected to be refused at once, in a pid namespace of its own all the same (bounded: 30 s). */
const isolated = (argv: string[]): { status: number | null; stderr: string } =>
  spawnSync('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', ...argv], { encoding: 'utf8', timeout: 30_000 });

const svok = (dir: string): number | null => run('s6-svok', [dir]).status;
const t6svok = (dir: string): number | null => spawnSync(path.join(BIN, 't6-svok'), [dir]).status;

test('lock fds parked in the keeper thread: still held, released at once on removal, held again after a re-exec', { timeout: 120_000 }, async () => {
  const sd = tmpdir();
  const store = tmpdir();
  // b lives outside the scan directory, behind a link: the one to remove and add again.
  const dirs = [makeService(path.join(sd, 'a'), { run: RUN }), makeService(path.join(store, 'b'), { run: RUN })];
  fs.mkdirSync(path.join(dirs[1]!, 'event'));
  fs.symlinkSync(dirs[1]!, path.join(sd, 'b'));
  const t = await Tree.start(sd, { env: { T6_LOCK_KEEPER_MIN_FDS: String(MIN_FDS) } });
  cleanups.push(() => t.stop());
  for (const d of dirs) await until(`${d} up`, () => (readStatus(d)?.pid ?? 0) > 0);
  assert.equal(keeperFds(t.pid1), undefined, 'no keeper thread for a small tree');
  assert.equal(locksIn(links(`/proc/${t.pid1}/fd`)).length, 2, 'the locks are in the main table');

  // Services one at a time until the keeper starts: the fds of those already there go too.
  const fdsBefore = fs.readdirSync(`/proc/${t.pid1}/fd`).length;
  let heldBefore = 0;
  while (keeperFds(t.pid1) === undefined) {
    assert.ok(dirs.length < 40, 'the keeper started');
    const dir = makeService(path.join(sd, `s${dirs.length}`), { run: RUN });
    heldBefore = locksIn(links(`/proc/${t.pid1}/fd`)).length;
    dirs.push(dir);
    run('s6-svscanctl', ['-a', sd]);
    await until(`${dir} up`, () => (readStatus(dir)?.pid ?? 0) > 0);
  }
  const mainFds = links(`/proc/${t.pid1}/fd`);
  assert.deepEqual(locksIn(mainFds), [], 'no lock left in the main table');
  assert.deepEqual(locksIn(keeperFds(t.pid1)!), dirs.map((d) => path.join(fs.realpathSync(d), 'supervise', 'lock')).sort(), 'one lock per service in the keeper\'s table');
  // One service more and every lock moved out: the table holds those locks fewer (give or take the keeper's start).
  const added = dirs.length - 2;
  console.log(`main table: ${fdsBefore} fds with 2 services and their locks; ${mainFds.length} with ${dirs.length} services, ${heldBefore + 1} locks parked at once`);
  assert.equal(mainFds.filter((l) => l.endsWith('/supervise/control')).length, dirs.length);
  // Without the keeper, two fds per service added; with it, one (and the keeper's few of its start).
  assert.ok(mainFds.length <= fdsBefore - 2 + added + 8, `${mainFds.length} fds for ${dirs.length} services`);

  for (const d of dirs) {
    assert.equal(svok(d), 0, `s6-svok ${d}`);
    assert.equal(t6svok(d), 0, `t6-svok ${d}`);
  }
  // Another supervisor of the same directory is refused: the lock is held.
  const rival = isolated(['s6-supervise', dirs[0]!]);
  assert.notEqual(rival.status, 0, `s6-supervise ran on a supervised directory: ${rival.stderr}`);
  assert.match(rival.stderr, /already running/);
  const second = isolated([path.join(BIN, 't6-svscan'), sd]);
  assert.equal(second.status, 100, `a second t6-svscan: ${second.stderr}`);

  // Removal: the lock is released by the time the supervisor is gone ('x').
  const gone = dirs[1]!;
  const events = new EventLog(gone);
  cleanups.push(() => events.close());
  fs.unlinkSync(path.join(sd, path.basename(gone)));
  t.signal('SIGHUP');
  await events.waitFor(/x$/);
  assert.equal(svok(gone), 1, 'the removed service\'s lock is released');
  assert.ok(!locksIn(keeperFds(t.pid1)!).includes(path.join(gone, 'supervise', 'lock')), 'its fd is gone from the keeper');
  // Added again at once: its supervisor takes the lock, parked again.
  fs.symlinkSync(gone, path.join(sd, path.basename(gone)));
  run('s6-svscanctl', ['-a', sd]);
  await events.waitFor(/x.*u$/);
  assert.equal(svok(gone), 0);
  assert.ok(locksIn(keeperFds(t.pid1)!).includes(path.join(gone, 'supervise', 'lock')), 're-added: parked again');

  // Re-exec: parked locks hand over no fd; the next image locks again. Nothing restarts.
  const pids = dirs.map((d) => readStatus(d)!.pid);
  t.control('R');
  await until('the re-exec', () => (/re-executed \(/.test(t.output.text) ? true : undefined));
  for (const d of dirs) assert.equal(svok(d), 0, `after the re-exec, s6-svok ${d}`);
  assert.deepEqual(dirs.map((d) => readStatus(d)!.pid), pids, 'no service restarted');
  const [inMain, inKeeper] = [locksIn(links(`/proc/${t.pid1}/fd`)), locksIn(keeperFds(t.pid1) ?? [])];
  console.log(`after the re-exec: ${inMain.length} locks in the main table, ${inKeeper.length} parked`);
  const everyLock = [...inMain, ...inKeeper].sort();
  assert.deepEqual(everyLock, dirs.map((d) => path.join(fs.realpathSync(d), 'supervise', 'lock')).sort(), 'each lock held once, in one table or the other');
  assert.notEqual(isolated(['s6-supervise', dirs[2]!]).status, 0, 's6-supervise refused after the re-exec');
  assert.doesNotMatch(t.output.text, /lock keeper|may be supervised twice/);
  assert.match(run('s6-svstat', [dirs[0]!]).stdout, /^up \(pid \d+\)/);
});

/** Whether this process has CAP_SYS_RESOURCE (may raise a hard limit). */
function maySetHardLimits(): boolean {
  const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  return ((BigInt(`0x${eff}`) >> 24n) & 1n) === 1n;
}

/** [soft, hard] of a process's RLIMIT_NOFILE. */
function nofile(pid: number): [number, number] {
  const m = /^Max open files\s+(\d+)\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'))!;
  return [Number(m[1]), Number(m[2])];
}

test('RLIMIT_NOFILE: raised to what -c needs when allowed, else one warning naming the limit and the services it holds', { timeout: 60_000 }, async () => {
  const sd = tmpdir();
  makeService(path.join(sd, 'a'), { run: RUN });
  // -c 1000 needs 3 × 1000 + 256 fds; the hard limit is 2,048 (as pid 1 at boot has 4,096).
  const t = await Tree.start(sd, { command: ['prlimit', '--nofile=1024:2048', path.join(BIN, 't6-svscan'), '-d', '3', '-c', '1000'] });
  cleanups.push(() => t.stop());
  await until('a up', () => (readStatus(path.join(sd, 'a'))?.pid ?? 0) > 0);
  const warning = /the limit on open files \(RLIMIT_NOFILE\) is 2048 and could not be raised to the 3256 that -c 1000 needs: Operation not permitted - about 597 services can be supervised \(about 896 once their locks are parked\)/g;
  if (maySetHardLimits()) {
    assert.deepEqual(nofile(t.pid1), [3256, 3256]);
    assert.doesNotMatch(t.output.text, warning);
  } else {
    assert.deepEqual(nofile(t.pid1), [2048, 2048], 'the soft limit up to the hard one');
    assert.equal(t.output.text.match(warning)?.length, 1, t.output.text);
  }
  // A re-exec does not say it again.
  t.control('R');
  await until('the re-exec', () => (/re-executed \(/.test(t.output.text) ? true : undefined));
  assert.ok((t.output.text.match(warning)?.length ?? 0) <= 1);
  assert.equal(svok(path.join(sd, 'a')), 0);
});
