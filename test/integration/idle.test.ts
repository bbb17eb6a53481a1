/**
 * Idle means idle (issue 12): once t6-svscan has nothing to do, no thread of it has a
 * deadline, so nothing wakes it until something comes from outside (a byte on a FIFO or a
 * pipe, a signal, a child's exit).
 *
 * Each thread's blocking system call and its arguments are read from
 * /proc/PID/task/TID/syscall, which neither stops nor wakes the thread: the event loop in
 * epoll_pwait with timeout -1, V8's and libuv's workers in futex waits without a timeout.
 * A timer anywhere — one of t6's, Node's, a periodic V8 task such as the memory reducer's
 * 8-second one — shows up as a finite timeout, so that state is never reached. The tests
 * wait for it (polling, with a deadline: a timer armed for a reason, the page-out a second
 * after start, may run out first), then watch the threads' context switches over a short
 * window: none may be switched in. In that state only an outside event could wake one,
 * and the tests wait until every service is up, ready and logged before looking, so the
 * window holds no such event however loaded the machine is.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Tree, makeService, readStatus, t6, tmpdir, until } from '../lib/harness.ts';

/** A measurement window, not a wait: how long the threads are watched for wake-ups. */
const WINDOW_MS = 3000;
const PLAIN = 80;
const READY = 10;
const LOGGED = 10;

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

/** System call numbers (per architecture) of the waits a thread of t6-svscan blocks in. */
const SYSCALLS: Record<string, Record<number, string>> = {
  x64: { 0: 'read', 7: 'poll', 61: 'wait4', 202: 'futex', 232: 'epoll_wait', 271: 'ppoll', 281: 'epoll_pwait', 441: 'epoll_pwait2' },
  arm64: { 22: 'epoll_pwait', 63: 'read', 73: 'ppoll', 98: 'futex', 260: 'wait4', 441: 'epoll_pwait2' },
};

/**
 * What would wake a thread by itself, from its /proc/PID/task/TID/syscall line: undefined if
 * it waits with no deadline, else what it is doing (running, or waiting with a timeout).
 */
function ownWakeUp(line: string): string | undefined {
  const [nr = '', ...hex] = line.trim().split(' ');
  if (nr === 'running') return 'running';
  const name = SYSCALLS[process.arch]?.[Number(nr)];
  const arg = (i: number): bigint => BigInt(hex[i] ?? '0');
  switch (name) {
    case 'read': case 'wait4':
      return undefined;
    case 'epoll_wait': case 'epoll_pwait': case 'poll': {
      const ms = BigInt.asIntN(32, arg(name === 'poll' ? 2 : 3));
      return ms < 0n ? undefined : `${name} with a ${ms} ms timeout`;
    }
    case 'futex': case 'epoll_pwait2': case 'ppoll':
      return arg(name === 'ppoll' ? 2 : 3) === 0n ? undefined : `${name} with a timeout`;
    default:
      return `system call ${line.trim()}`;
  }
}

interface ThreadState { tid: string; comm: string; wakeUp: string | undefined; switches: number }

function threads(pid: number): ThreadState[] {
  const out: ThreadState[] = [];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const dir = `/proc/${pid}/task/${tid}`;
      const status = fs.readFileSync(`${dir}/status`, 'utf8');
      const count = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
      out.push({
        tid,
        comm: fs.readFileSync(`${dir}/comm`, 'utf8').trim(),
        wakeUp: ownWakeUp(fs.readFileSync(`${dir}/syscall`, 'utf8')),
        switches: count('voluntary_ctxt_switches') + count('nonvoluntary_ctxt_switches'),
      });
    } catch { /* a thread that ended */ }
  }
  return out;
}

const describe = (ts: ThreadState[]): string => ts.map((t) => `${t.tid} (${t.comm}): ${t.wakeUp ?? 'no deadline'}`).join('; ');

/**
 * Waits until no thread of `pid` has a deadline, then watches them for WINDOW_MS: none may
 * be switched in, and none may have one at the end.
 */
async function assertIdle(pid: number, when: string): Promise<void> {
  let last: ThreadState[] = [];
  try {
    await until(`t6-svscan to wait with no deadline ${when}`, () => {
      last = threads(pid);
      return last.every((t) => t.wakeUp === undefined);
    }, 30_000, 20);
  } catch (err) {
    throw new Error(`${String(err)}; its threads: ${describe(last)}`);
  }
  const before = new Map(last.map((t) => [t.tid, t.switches]));
  await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
  const now = threads(pid);
  const woke = now.filter((t) => t.switches !== before.get(t.tid));
  assert.deepEqual(woke.map((t) => `${t.tid} (${t.comm}): ${t.switches - (before.get(t.tid) ?? 0)} context switches`), [], `woken ${when}`);
  assert.ok(now.every((t) => t.wakeUp === undefined), `a deadline ${when}: ${describe(now)}`);
}

test('with 100 services up, ready and logged, t6-svscan wakes for nothing; after restarts, a rescan and a re-exec neither', { timeout: 180_000 }, async () => {
  const scandir = tmpdir();
  const logs = tmpdir();
  const plain: string[] = [];
  const ready: string[] = [];
  for (let i = 0; i < PLAIN; i++) plain.push(makeService(path.join(scandir, `plain${i}`), { run: '#!/bin/sh\nexec sleep 100000\n' }));
  for (let i = 0; i < READY; i++) {
    ready.push(makeService(path.join(scandir, `ready${i}`), { run: '#!/bin/sh\necho >&3\nexec sleep 100000 3>&-\n', files: { 'notification-fd': '3\n' } }));
  }
  for (let i = 0; i < LOGGED; i++) {
    makeService(path.join(scandir, `logged${i}`), { run: '#!/bin/sh\necho hello\nexec sleep 100000\n', log: { files: { 't6-log': `${path.join(logs, `l${i}`)}\n` } } });
  }
  const external = makeService(path.join(scandir, 'external'), { run: '#!/bin/sh\necho hello\nexec sleep 100000\n', log: { run: '#!/bin/sh\nexec cat >/dev/null\n' } });
  const tree = await Tree.start(scandir);
  cleanups.push(() => tree.stop());
  const pid = tree.pid1;

  const up = (dir: string): boolean => (readStatus(dir)?.pid ?? 0) > 0;
  const isReady = (dir: string): boolean => up(dir) && readStatus(dir)!.ready;
  const logged = (i: number): boolean => {
    try { return fs.readFileSync(path.join(logs, `l${i}`, 'current'), 'utf8').includes('hello'); } catch { return false; }
  };
  const settled = (): boolean => plain.every(up) && ready.every(isReady) && up(external) && up(path.join(external, 'log'))
    && Array.from({ length: LOGGED }, (_, i) => i).every(logged);
  await until('every service up, ready and logged', settled);
  await assertIdle(pid, 'after start');

  // Some activity, each step waited for: restarts (the last one before its one-second rule
  // has run out, so it waits on a timer), a rescan, a re-exec.
  const restart = async (dir: string, back: (dir: string) => boolean): Promise<void> => {
    const old = readStatus(dir)!.pid;
    assert.equal(t6('svc', ['-r', dir]).status, 0);
    await until(`${path.basename(dir)} restarted`, () => readStatus(dir)!.pid !== old && back(dir));
  };
  await restart(plain[0]!, up);
  await restart(ready[0]!, isReady);
  await restart(ready[0]!, isReady);
  assert.equal(t6('svscanctl', ['-a', scandir]).status, 0);
  assert.equal(t6('svscanctl', ['-R', scandir]).status, 0);
  await tree.output.waitFor(/re-executed \(/);
  await until('every service still up, ready and logged', settled);
  assert.equal(tree.pid1, pid);
  await assertIdle(pid, 'after restarts, a rescan and a re-exec');
});
