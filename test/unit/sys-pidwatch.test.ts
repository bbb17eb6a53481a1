/**
 * sys/pidwatch.ts and sys/proc.ts on the real kernel: processes that are not children of
 * this test (started by a shell that exits at once, so they are re-parented away) are
 * watched through pidfds, and each exit is reported once, as an event (no test sleeps);
 * an unwatched or closed watch reports nothing and holds nothing that keeps a process
 * alive. procStartTime reads /proc/PID/stat right even when the command name has spaces
 * and parentheses. Every process a test starts is killed by the test, by pid, and only if
 * it is still the process that was started (its start time).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PidWatcher } from '../../src/sys/pidwatch.ts';
import { procStartTime, parseStartTime } from '../../src/sys/proc.ts';

/** Every process the tests started, with its start time: killed at the end if still there. */
const started = new Map<number, bigint>();

after(() => {
  for (const [pid, startTime] of started) killStarted(pid, startTime);
});

/** Kills a process this file started, unless it is gone (its pid may belong to another now). */
function killStarted(pid: number, startTime = started.get(pid)): void {
  if (startTime === undefined || procStartTime(pid) !== startTime) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // it died meanwhile
  }
}

/**
 * Starts `count` copies of `program args…` from a shell that exits at once: they are
 * orphans, re-parented to the nearest subreaper or pid 1, not children of this process.
 */
function startOrphans(count: number, program = 'sleep', args: string[] = ['300']): number[] {
  const script = 'n=$1; shift; i=0; while [ $i -lt $n ]; do "$@" </dev/null >/dev/null 2>&1 & echo $!; i=$((i+1)); done';
  const out = execFileSync('sh', ['-c', script, 'sh', String(count), program, ...args], { encoding: 'utf8' });
  const pids = out.trim().split('\n').map(Number);
  for (const pid of pids) {
    const startTime = procStartTime(pid);
    assert.notEqual(startTime, undefined, `orphan ${pid} is running`);
    started.set(pid, startTime!);
  }
  return pids;
}

/** The parent pid of `pid`, field 4 of /proc/PID/stat. */
function parentOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** A promise and the callback that resolves it, counting calls. */
function exitSignal(): { promise: Promise<void>; onExit: () => void; calls: () => number } {
  let calls = 0;
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, onExit: () => { calls++; resolve(); }, calls: () => calls };
}

/**
 * Waits until everything a watcher could have seen so far has been delivered: a fresh
 * process is watched, killed, and its exit awaited. Any exit that happened before it was
 * reported by the same wake or an earlier one.
 */
async function roundTrip(watcher: PidWatcher): Promise<void> {
  const [pid] = startOrphans(1);
  const exit = exitSignal();
  assert.equal(watcher.watch(pid!, exit.onExit), true);
  killStarted(pid!);
  await exit.promise;
}

test('a process that is not our child: its exit is reported once, and its pidfd is open meanwhile', async () => {
  const [pid] = startOrphans(1);
  assert.notEqual(parentOf(pid!), process.pid, 'the sleeper is not our child');
  const watcher = new PidWatcher();
  const exit = exitSignal();
  assert.equal(watcher.watch(pid!, exit.onExit), true);
  assert.equal(watcher.size, 1);
  const pidfd = watcher.pidfd(pid!);
  assert.ok(pidfd !== undefined && pidfd > 2);
  assert.match(fs.readFileSync(`/proc/self/fdinfo/${pidfd}`, 'utf8'), new RegExp(`^Pid:\\s+${pid}$`, 'm'));
  assert.throws(() => watcher.watch(pid!, () => {}), /watched already/);
  killStarted(pid!);
  await exit.promise;
  assert.equal(watcher.size, 0);
  assert.equal(watcher.pidfd(pid!), undefined);
  await roundTrip(watcher);
  assert.equal(exit.calls(), 1);
  watcher.close();
});

test('a pid that is gone, or that is not the process that started at the given time: watch says false', () => {
  // A shell reaped by execFileSync before it returns: its pid names no process now.
  const gone = Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
  assert.equal(procStartTime(gone), undefined);
  const watcher = new PidWatcher();
  assert.equal(watcher.watch(gone, () => assert.fail('no callback for a gone pid')), false);
  const [pid] = startOrphans(1);
  const startTime = procStartTime(pid!)!;
  assert.equal(watcher.watch(pid!, () => {}, startTime + 1n), false, 'a reused pid is not adopted');
  assert.equal(watcher.size, 0);
  assert.equal(watcher.watch(pid!, () => {}, startTime), true, 'the same process is');
  watcher.close();
  assert.throws(() => watcher.watch(pid!, () => {}), /after close/);
  killStarted(pid!);
});

test('unwatch before the exit: no callback, while the other watches go on', async () => {
  const [a, b] = startOrphans(2);
  const watcher = new PidWatcher();
  const exitA = exitSignal();
  const exitB = exitSignal();
  watcher.watch(a!, exitA.onExit);
  watcher.watch(b!, exitB.onExit);
  watcher.unwatch(a!);
  watcher.unwatch(a!); // twice is harmless
  // A second watcher tells when a has died; the first must still say nothing of it.
  const witness = new PidWatcher();
  const sawA = exitSignal();
  witness.watch(a!, sawA.onExit);
  killStarted(a!);
  await sawA.promise;
  killStarted(b!);
  await exitB.promise;
  await roundTrip(watcher);
  assert.equal(exitA.calls(), 0);
  assert.equal(exitB.calls(), 1);
  watcher.close();
  witness.close();
});

test('unwatch from the callback of an exit seen in the same wake: the other exit is not reported', async () => {
  const [a, b] = startOrphans(2);
  const watcher = new PidWatcher();
  const calls: number[] = [];
  watcher.watch(a!, () => { calls.push(a!); watcher.unwatch(b!); });
  watcher.watch(b!, () => { calls.push(b!); watcher.unwatch(a!); });
  const witness = new PidWatcher();
  const both = [exitSignal(), exitSignal()];
  witness.watch(a!, both[0]!.onExit);
  witness.watch(b!, both[1]!.onExit);
  killStarted(a!);
  killStarted(b!);
  await Promise.all(both.map((s) => s.promise));
  await roundTrip(watcher);
  assert.equal(calls.length, 1, `exactly one of the two reported: ${calls.join(' ')}`);
  watcher.close();
  witness.close();
});

test('200 watched processes: each exit reported exactly once', async () => {
  const pids = startOrphans(200);
  const watcher = new PidWatcher();
  const calls = new Map<number, number>();
  let left = pids.length;
  let allDone!: () => void;
  const done = new Promise<void>((r) => { allDone = r; });
  for (const pid of pids) {
    assert.equal(watcher.watch(pid, () => {
      calls.set(pid, (calls.get(pid) ?? 0) + 1);
      if (--left === 0) allDone();
    }), true);
  }
  assert.equal(watcher.size, 200);
  for (const pid of pids) killStarted(pid);
  await done;
  await roundTrip(watcher);
  assert.deepEqual([...calls.keys()].sort((x, y) => x - y), [...pids].sort((x, y) => x - y));
  assert.ok([...calls.values()].every((n) => n === 1), 'no exit reported twice');
  assert.equal(watcher.size, 0);
  watcher.close();
});

test('a callback that throws goes to onError; the other watches are still served', async () => {
  const errors: unknown[] = [];
  let failed!: () => void;
  const failure = new Promise<void>((r) => { failed = r; });
  const watcher = new PidWatcher({ onError: (err) => { errors.push(err); failed(); } });
  const [pid] = startOrphans(1);
  watcher.watch(pid!, () => { throw new Error('planted'); });
  killStarted(pid!);
  await failure;
  assert.match(String(errors[0]), /planted/);
  await roundTrip(watcher);
  watcher.close();
});

/**
 * Runs a node script that watches `pids`, then ends its watches by `ending`; returns its
 * output once it has exited (execFileSync throws if it fails or does not exit).
 */
function runWatcherScript(pids: number[], ending: 'close' | 'unwatch'): string {
  const script = `
    import { PidWatcher } from ${JSON.stringify(new URL('../../src/sys/pidwatch.ts', import.meta.url).href)};
    const pids = process.argv.slice(3).map(Number);
    const watcher = new PidWatcher();
    for (const pid of pids) if (!watcher.watch(pid, () => console.log('exit', pid))) throw new Error('gone ' + pid);
    // Once the wait is under way on its worker thread, end every watch: the process must exit.
    setImmediate(() => {
      if (process.argv[2] === 'close') watcher.close();
      else for (const pid of pids) watcher.unwatch(pid);
      console.log('ended', watcher.size);
    });
  `;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't6-pidwatch-'));
  try {
    const file = path.join(dir, 'watch.mts');
    fs.writeFileSync(file, script);
    // The timeout only turns a hang into a failure; nothing waits for it to pass.
    return execFileSync(process.execPath, [file, ending, ...pids.map(String)], { encoding: 'utf8', timeout: 30_000 });
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}

test('close() with watches pending, or unwatching the last one, lets the process exit', () => {
  const pids = startOrphans(3);
  for (const ending of ['close', 'unwatch'] as const) {
    assert.equal(runWatcherScript(pids, ending), 'ended 0\n', `${ending}: exited, and reported no exit`);
  }
  for (const pid of pids) assert.equal(procStartTime(pid), started.get(pid), 'the watched processes still run');
  for (const pid of pids) killStarted(pid);
});

test('procStartTime: stable for a process, later for a later one, and what /proc/self/stat says for ourselves', () => {
  const self = procStartTime(process.pid);
  assert.equal(typeof self, 'bigint');
  assert.equal(procStartTime(process.pid), self);
  // Our own command name ("node") has no space: a plain split finds field 22.
  assert.equal(BigInt(fs.readFileSync('/proc/self/stat', 'latin1').split(' ')[21]!), self);
  const [pid] = startOrphans(1);
  const other = procStartTime(pid!)!;
  assert.equal(procStartTime(pid!), other);
  // Started after us: a later tick, or the same one if both came within 10 ms.
  assert.ok(other >= self!, `${other} >= ${self}`);
  killStarted(pid!);
  assert.equal(procStartTime(0), undefined);
  assert.equal(procStartTime(-1), undefined);
  assert.equal(procStartTime(1.5), undefined);
  assert.equal(procStartTime(2 ** 22 + 1), undefined, 'above pid_max');
});

test('procStartTime: a command name with spaces and parentheses', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't6-proc-'));
  try {
    const program = path.join(dir, 'a) b (c');
    fs.copyFileSync('/bin/sleep', program);
    fs.chmodSync(program, 0o755);
    const [pid] = startOrphans(1, program, ['300']);
    assert.equal(fs.readFileSync(`/proc/${pid}/comm`, 'utf8'), 'a) b (c\n');
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Parsed independently, knowing the name: "PID (NAME) " then field 3 on.
    const known = BigInt(stat.slice(`${pid} (a) b (c) `.length).split(' ')[22 - 3]!);
    assert.equal(procStartTime(pid!), known);
    assert.notEqual(stat.split(' ')[21], String(known), 'a plain split would be wrong here');
    killStarted(pid!);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('parseStartTime: the fields after the last parenthesis; undefined for text that is not a stat line', () => {
  const after = ['S', ...Array.from({ length: 18 }, (_, i) => String(i + 4)), '987654321', '23', '24'];
  assert.equal(parseStartTime(`42 (x) 4 5) ${after.join(' ')}\n`), 987654321n);
  assert.equal(parseStartTime(`42 ()) (() ${after.join(' ')}`), 987654321n);
  assert.equal(parseStartTime('42 (x) S 1 2'), undefined);
  assert.equal(parseStartTime('no parenthesis'), undefined);
  assert.equal(parseStartTime(`42 (x) ${after.slice(0, 19).join(' ')} -5`), undefined);
});

test('sys/proc.ts imports nothing (no libc, no koffi): a client may ask it at no start-up cost', () => {
  const source = fs.readFileSync(new URL('../../src/sys/proc.ts', import.meta.url), 'utf8');
  assert.doesNotMatch(source, /^\s*import\b/m);
});
