/**
 * supervise/sd-notify.ts: what an sd_notify payload says (each key t6 decodes, unknown keys
 * listed, bad values named as problems, payloads that are no message refused), and whether
 * a sender belongs to a service's process tree, with a made-up process table and with real
 * processes (a run started in its own session, a child that left the session, one two
 * sessions away, a stranger). Processes are killed by the test, by pid, if still theirs.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { parseNotifyMessage, senderInServiceTree, serviceOfSender, cutUtf8, MAX_STATUS_BYTES, MAX_PARENT_STEPS, NOTIFY_KEYS, type NotifyMessage } from '../../src/supervise/sd-notify.ts';
import { parseLineage, procLineage, procStartTime, type ProcLineage } from '../../src/sys/proc.ts';

/** The message parsed from `text`; fails the test if it is refused. */
function parsed(text: string | Buffer): NotifyMessage {
  const result = parseNotifyMessage(typeof text === 'string' ? Buffer.from(text) : text);
  assert.ok(result.ok, `a message: ${result.ok ? '' : result.reason}`);
  return result.message;
}

const EMPTY: NotifyMessage = { ready: false, stopping: false, reloading: false, unknown: [], problems: [] };

test('READY, STOPPING, RELOADING with MONOTONIC_USEC, STATUS, MAINPID, ERRNO: each decoded', () => {
  assert.deepEqual(parsed('READY=1\nSTATUS=serving\n'), { ...EMPTY, ready: true, status: 'serving' });
  assert.deepEqual(parsed('RELOADING=1\nMONOTONIC_USEC=123456789'), { ...EMPTY, reloading: true, monotonicUsec: 123456789 });
  assert.deepEqual(parsed('STOPPING=1'), { ...EMPTY, stopping: true });
  assert.deepEqual(parsed('MAINPID=4242\nERRNO=2'), { ...EMPTY, mainPid: 4242, errno: 2 });
  assert.deepEqual(parsed('STATUS=a=b=c'), { ...EMPTY, status: 'a=b=c' }, 'the value runs to the end of the line');
  assert.deepEqual(parsed('STATUS='), { ...EMPTY, status: '' });
  assert.deepEqual(parsed(''), EMPTY);
  assert.deepEqual(parsed('\n\nREADY=1\n\n'), { ...EMPTY, ready: true }, 'empty lines are nothing');
  assert.deepEqual(parsed('STATUS=one\nSTATUS=two'), { ...EMPTY, status: 'two' }, 'the last assignment counts');
});

test('WATCHDOG=1 is a ping, WATCHDOG=trigger a trigger; WATCHDOG_USEC and EXTEND_TIMEOUT_USEC are numbers', () => {
  assert.deepEqual(parsed('WATCHDOG=1'), { ...EMPTY, watchdog: 'ping' });
  assert.deepEqual(parsed('WATCHDOG=trigger'), { ...EMPTY, watchdog: 'trigger' });
  assert.deepEqual(parsed('WATCHDOG_USEC=30000000\nEXTEND_TIMEOUT_USEC=0'), { ...EMPTY, watchdogUsec: 30000000, extendTimeoutUsec: 0 });
});

test('unknown keys are listed in order and otherwise ignored', () => {
  assert.deepEqual(parsed('FDSTORE=1\nREADY=1\nBARRIER=1\nFDSTORE=1\nready=1'), { ...EMPTY, ready: true, unknown: ['FDSTORE', 'BARRIER', 'FDSTORE', 'ready'] });
  assert.deepEqual(parsed('__proto__=1\nconstructor=1\ntoString=1'), { ...EMPTY, unknown: ['__proto__', 'constructor', 'toString'] }, 'no key of Object.prototype is taken for one of ours');
});

test('values t6 cannot use are problems, named with their line; the rest of the message still counts', () => {
  const m = parsed('MAINPID=0\nREADY=1\nWATCHDOG_USEC=soon\nMAINPID=-5\nMONOTONIC_USEC=12345678901234567890\nREADY=yes\nWATCHDOG=2\nERRNO=+1\nno equals sign\n=value\nWATCHDOG_USEC=0\nMAINPID=99999999');
  assert.equal(m.ready, true);
  assert.equal(m.mainPid, undefined);
  assert.equal(m.watchdogUsec, undefined);
  assert.deepEqual(m.problems, [
    'MAINPID=0: out of range (1 to 4194304)',
    'WATCHDOG_USEC=soon: not a number',
    'MAINPID=-5: not a number',
    'MONOTONIC_USEC=12345678901234567890: not a number',
    'READY=yes: only 1 is meant',
    'WATCHDOG=2: only 1 or trigger is meant',
    'ERRNO=+1: not a number',
    'no equals sign: not KEY=VALUE',
    '=value: not KEY=VALUE',
    'WATCHDOG_USEC=0: out of range (1 to 9007199254740991)',
    'MAINPID=99999999: out of range (1 to 4194304)',
  ]);
  assert.equal(parsed(`STATUS=x\n${'Z'.repeat(200)}`).problems[0], `${'Z'.repeat(64)}…: not KEY=VALUE`, 'a problem quotes at most 64 bytes');
});

test('a payload with a NUL byte, or that is not UTF-8, is no message', () => {
  assert.deepEqual(parseNotifyMessage(Buffer.from('READY=1\0STATUS=x')), { ok: false, reason: 'a NUL byte in the message' });
  assert.deepEqual(parseNotifyMessage(Buffer.from([0x52, 0x45, 0x41, 0x44, 0x59, 0x3d, 0xff])), { ok: false, reason: 'the message is not UTF-8' });
  assert.deepEqual(parseNotifyMessage(Buffer.from('STATUS=\xe2\x82', 'latin1')), { ok: false, reason: 'the message is not UTF-8' }, 'a cut character');
  assert.equal(parsed('STATUS=caf\u00e9 \u2713 \u{1F600}').status, 'caf\u00e9 \u2713 \u{1F600}');
});

test(`STATUS is cut to ${MAX_STATUS_BYTES} bytes, never inside a character`, () => {
  assert.equal(parsed(`STATUS=${'a'.repeat(300)}`).status, 'a'.repeat(MAX_STATUS_BYTES));
  // 255 ASCII bytes, then a 3-byte character that would straddle the bound.
  const cut = parsed(`STATUS=${'a'.repeat(255)}\u2713tail`).status!;
  assert.equal(cut, 'a'.repeat(255));
  const emoji = parsed(`STATUS=${'\u{1F600}'.repeat(100)}`).status!;
  assert.equal(Buffer.byteLength(emoji), 256);
  assert.equal(emoji, '\u{1F600}'.repeat(64));
  assert.equal(cutUtf8('\u00e9\u00e9', 3), '\u00e9');
  assert.equal(cutUtf8('\u00e9', 1), '');
  assert.equal(cutUtf8('abc', 3), 'abc');
});

test('random bytes never make the parser throw', () => {
  let seed = 14;
  const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const alphabet = Buffer.from('READY=1\nSTATUS=MAINPID=WATCHDOG_USEC=0123456789\n\xff\x00\xc3\xa9=', 'latin1');
  for (let i = 0; i < 2000; i++) {
    const bytes = Buffer.from(Array.from({ length: Math.floor(random() * 80) }, () => alphabet[Math.floor(random() * alphabet.length)]!));
    const result = parseNotifyMessage(bytes);
    if (result.ok) assert.ok(Array.isArray(result.message.problems));
  }
  assert.deepEqual(NOTIFY_KEYS, ['READY', 'STOPPING', 'RELOADING', 'STATUS', 'MONOTONIC_USEC', 'MAINPID', 'WATCHDOG', 'WATCHDOG_USEC', 'EXTEND_TIMEOUT_USEC', 'ERRNO']);
});

/** A made-up process table: pid → [ppid, session]. */
function table(rows: Record<number, [number, number]>): (pid: number) => ProcLineage | undefined {
  return (pid) => {
    const row = rows[pid];
    return row === undefined ? undefined : { ppid: row[0], pgrp: pid, session: row[1] };
  };
}

test('senderInServiceTree with a made-up table: run itself, its session, its descendants, up to 32 steps', () => {
  const t = table({ 100: [1, 100], 101: [100, 100], 102: [101, 102], 103: [102, 103], 200: [1, 200], 201: [200, 200] });
  assert.equal(senderInServiceTree(100, 100, t), true, 'run itself');
  assert.equal(senderInServiceTree(101, 100, t), true, 'in its session');
  assert.equal(senderInServiceTree(102, 100, t), true, 'left the session: its parent is in it');
  assert.equal(senderInServiceTree(103, 100, t), true, 'two sessions away: the chain reaches run');
  assert.equal(senderInServiceTree(201, 100, t), false, "another service's");
  assert.equal(senderInServiceTree(999, 100, t), false, 'gone');
  assert.equal(senderInServiceTree(100, 0, t), false, 'no run');
  assert.equal(senderInServiceTree(100, 1, t), false, 'pid 1 is no service');
  assert.equal(senderInServiceTree(0, 100, t), false);
  // A chain of new sessions, each one step further from run (pid 100).
  const chain: Record<number, [number, number]> = { 100: [1, 100] };
  for (let pid = 1001; pid <= 1040; pid++) chain[pid] = [pid === 1001 ? 100 : pid - 1, pid];
  assert.equal(senderInServiceTree(1000 + MAX_PARENT_STEPS, 100, table(chain)), true, `${MAX_PARENT_STEPS} steps up`);
  assert.equal(senderInServiceTree(1001 + MAX_PARENT_STEPS, 100, table(chain)), false, 'one more is too far');
  const loop = table({ 500: [501, 500], 501: [500, 501] });
  assert.equal(senderInServiceTree(500, 100, loop), false, 'a parent loop ends at the bound');
  const unreadable = (): ProcLineage => { throw Object.assign(new Error('EACCES'), { code: 'EACCES' }); };
  assert.equal(senderInServiceTree(101, 100, unreadable), false, 'a process we may not read is not vouched for');
});

/** Processes the tests started, with their start times: killed at the end if still theirs. */
const started = new Map<number, bigint>();
after(() => {
  for (const [pid, startTime] of started) {
    if (procStartTime(pid) !== startTime) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // it died meanwhile
    }
  }
});

/**
 * Starts `sh -c script` in a session of its own; resolves with its pid and the pids it
 * prints as `name pid` lines, once every one of `names` has been printed (some come from
 * processes of their own, in any order).
 */
async function startTree(script: string, names: string[]): Promise<{ pid: number; pids: Map<string, number> }> {
  const child = spawn('sh', ['-c', `${script}\nwait`], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
  started.set(child.pid!, procStartTime(child.pid!)!);
  const pids = new Map<string, number>();
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      for (const line of out.split('\n').slice(0, -1)) {
        const [name, pid] = [line.split(' ')[0]!, Number(line.split(' ')[1])];
        // Recorded at once, so that after() kills it even if this test fails later.
        if (!pids.has(name)) started.set(pid, procStartTime(pid)!);
        pids.set(name, pid);
      }
      if (names.every((n) => pids.has(n))) resolve();
    });
    child.once('exit', () => reject(new Error(`the tree ended: ${out}`)));
  });
  child.stdout.destroy();
  child.unref();
  return { pid: child.pid!, pids };
}

test('senderInServiceTree with real processes: the run, a child, one that left the session, one two sessions away; a stranger is not', async () => {
  const run = await startTree([
    'sleep 300 & echo child $!',
    '(setsid sleep 300 & echo left $!; wait) &',
    "setsid sh -c 'sleep 300 & echo deep $!; wait' &",
  ].join('\n'), ['child', 'left', 'deep']);
  const stranger = await startTree('sleep 300 & echo sleeper $!', ['sleeper']);
  const [child, left, deep] = ['child', 'left', 'deep'].map((k) => run.pids.get(k)!);
  assert.equal(procLineage(run.pid)?.session, run.pid, 'run leads its session');
  assert.equal(procLineage(child!)?.session, run.pid);
  assert.equal(procLineage(left!)?.session, left, 'left: a session of its own');
  assert.notEqual(procLineage(procLineage(deep!)!.ppid)?.session, run.pid, "deep: its parent's session is not run's either");
  for (const pid of [run.pid, child!, left!, deep!]) assert.equal(senderInServiceTree(pid, run.pid), true, `pid ${pid}`);
  assert.equal(senderInServiceTree(stranger.pids.get('sleeper')!, run.pid), false, 'a stranger');
  assert.equal(senderInServiceTree(stranger.pid, run.pid), false);
  assert.equal(senderInServiceTree(process.pid, run.pid), false, 'the test itself');
  assert.equal(senderInServiceTree(run.pid, stranger.pid), false, 'and the other way round');
});

test('procLineage reads ppid, pgrp and session after the last parenthesis; parseLineage refuses what is not a stat line', () => {
  const self = procLineage(process.pid)!;
  assert.equal(self.ppid, process.ppid);
  assert.equal(procLineage(0), undefined);
  assert.equal(procLineage(2 ** 22 + 1), undefined);
  assert.deepEqual(parseLineage('42 (a) b (c)) S 7 8 9 0 0'), { ppid: 7, pgrp: 8, session: 9 });
  assert.equal(parseLineage('42 (a) S 7 8'), undefined);
  assert.equal(parseLineage('42 (a) S 7 x 9'), undefined);
  assert.equal(parseLineage('no parenthesis'), undefined);
});

test('serviceOfSender places a sender among many services (the hub\'s routing), and a /proc it may not read places it nowhere', () => {
  const t = table({ 100: [1, 100], 101: [100, 100], 102: [101, 102], 200: [1, 200], 201: [200, 200], 300: [1, 300] });
  const services = new Map<number, string>([[100, 'a'], [200, 'b'], [300, 'c']]);
  const of = (pid: number): string | undefined => services.get(pid);
  assert.equal(serviceOfSender(101, of, t), 'a');
  assert.equal(serviceOfSender(102, of, t), 'a', 'left the session: found by its parent');
  assert.equal(serviceOfSender(201, of, t), 'b');
  assert.equal(serviceOfSender(300, of, t), 'c');
  assert.equal(serviceOfSender(999, of, t), undefined, 'gone');
  assert.equal(serviceOfSender(0, of, t), undefined, 'outside the pid namespace');
  const unreadable = (): ProcLineage => { throw Object.assign(new Error('EACCES'), { code: 'EACCES' }); };
  assert.equal(serviceOfSender(101, of, unreadable), undefined, 'an unreadable /proc: refused, not thrown');
});
