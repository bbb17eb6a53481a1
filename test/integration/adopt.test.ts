/**
 * Adoption (issue 10, 3b): t6-svscan, not pid 1, killed with SIGKILL and started again on
 * the same scan directory, 20 times. The tree's pid 1 is another t6-svscan (the subreaper
 * the orphaned services go to), which supervises the one under test as a service and
 * restarts it. No service may ever run twice; every one is supervised again right after
 * the new start; crash-looping services go on restarting; a supervised logger (s6-log)
 * is adopted with its pipe, so not one of its lines is lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, EventLog, Tree, makeService, readStatus, run, tmpdir, until } from '../lib/harness.ts';

const KILLS = 20;
const STABLE = 20;
/** How soon after the new t6-svscan starts every service must be supervised again. */
const SUPERVISED_AGAIN_MS = 1000;

/** The processes of the namespace whose command line is exactly `argv`. */
function processesRunning(argv: string[], tree: Tree): number {
  const want = `${argv.join('\0')}\0`;
  // Only the tree's own: another run of this suite on the machine has the same markers.
  const ns = fs.readlinkSync(`/proc/${tree.pid1}/ns/pid`);
  let n = 0;
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try { if (fs.readFileSync(`/proc/${name}/cmdline`, 'latin1') === want && fs.readlinkSync(`/proc/${name}/ns/pid`) === ns) n++; } catch { /* gone */ }
  }
  return n;
}

/** What s6-svok checks, done here (spawning s6-svok per service would be most of what is timed): a reader on supervise/control. */
function supervised(dir: string): boolean {
  try {
    fs.closeSync(fs.openSync(path.join(dir, 'supervise', 'control'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
    return true;
  } catch {
    return false;
  }
}

/** The start time (clock ticks since boot) of a process, from /proc. */
function startTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

test('kill -9 of t6-svscan and a new start, 20 times: every service adopted, none doubled, no log line lost', { timeout: 600_000 }, async () => {
  const outer = tmpdir();
  const inner = tmpdir();
  const logdir = tmpdir();
  // A marker per stable service: its `sleep` is the only process with that command line.
  const marker = (i: number): string[] => ['sleep', String(271_000 + i)];
  for (let i = 0; i < STABLE; i++) makeService(path.join(inner, `s${i}`), { run: `#!/bin/sh\necho $$ >> starts\nexec ${marker(i).join(' ')}\n` });
  for (let i = 0; i < 3; i++) makeService(path.join(inner, `crash${i}`), { run: '#!/bin/sh\nexit 1\n' });
  makeService(path.join(inner, 'locked'), { run: '#!/bin/sh\necho $$ >> starts\nexec sleep 271777\n', files: { 'lock-fd': '5\n' } });
  makeService(path.join(inner, 'talker'), {
    run: '#!/bin/sh\ni=0\nwhile :; do i=$((i+1)); echo $i; sleep 0.005; done\n',
    log: { run: `#!/bin/sh\nexec s6-log ${logdir}\n` },
  });
  makeService(path.join(outer, 'inner'), { run: `#!/bin/sh\nexec ${path.join(BIN, 't6-svscan')} ${inner}\n` });
  const tree = await Tree.start(outer);
  try {
    const innerDir = path.join(outer, 'inner');
    const stable = Array.from({ length: STABLE }, (_v, i) => path.join(inner, `s${i}`));
    const everyDir = [...stable, path.join(inner, 'locked'), path.join(inner, 'talker'), path.join(inner, 'talker', 'log')];
    const pids = new Map<string, number>();
    for (const dir of everyDir) pids.set(dir, await until(`${dir} up`, () => readStatus(dir)?.pid || undefined));
    const slowest: number[] = [];
    for (let round = 1; round <= KILLS; round++) {
      const old = readStatus(innerDir)!.pid;
      tree.signalNs(old, 'SIGKILL');
      const fresh = await until('t6-svscan started again', () => { const pid = readStatus(innerDir)?.pid; return pid !== undefined && pid !== 0 && pid !== old ? pid : undefined; });
      const startedAt = startTicks(tree.hostPid(fresh)) * 10; // ms: USER_HZ is 100 on Linux
      await until(`round ${round}: every service supervised`, () => everyDir.every(supervised), undefined, 2);
      const uptime = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
      slowest.push(uptime - startedAt);
      for (const dir of everyDir) assert.equal(run('s6-svok', [dir]).status, 0, `round ${round}: s6-svok ${dir}`);
      for (let i = 0; i < STABLE; i++) assert.equal(processesRunning(marker(i), tree), 1, `round ${round}: s${i} runs once`);
      for (const [dir, pid] of pids) assert.equal(readStatus(dir)?.pid, pid, `round ${round}: ${dir} kept its pid`);
    }
    for (const dir of stable) assert.equal(fs.readFileSync(path.join(dir, 'starts'), 'utf8').trim().split('\n').length, 1, `${dir} started once`);
    // s6-svc acts on an adopted service, and its lock-fd lets the next instance start.
    const locked = path.join(inner, 'locked');
    assert.equal(run('s6-svc', ['-k', locked]).status, 0);
    const restarted = await until('locked restarted', () => { const pid = readStatus(locked)?.pid; return pid !== undefined && pid !== 0 && pid !== pids.get(locked) ? pid : undefined; });
    // The status names the new run as soon as it is spawned: wait for its exec of sleep
    // (found by a stress run: sh was still running ./run), then count.
    await until('the new locked instance runs sleep', () => { try { return fs.readFileSync(`/proc/${tree.hostPid(restarted)}/cmdline`, 'latin1') === 'sleep\x00271777\x00'; } catch { return false; } });
    assert.equal(processesRunning(['sleep', '271777'], tree), 1);
    // Crash-looping services go on being restarted.
    const events = new EventLog(path.join(inner, 'crash0'));
    await events.waitFor(/u/);
    events.close();
    // The adopted logger read on: the talker's numbers have no gap.
    const last = await until('the talker logged on', () => {
      const lines = fs.readFileSync(path.join(logdir, 'current'), 'utf8').split('\n').filter((l) => l !== '');
      return lines.length > 100 ? lines : undefined;
    });
    for (let i = 1; i < last.length; i++) assert.equal(Number(last[i]), Number(last[i - 1]) + 1, `line after ${last[i - 1]}`);
    assert.ok(Math.max(...slowest) <= SUPERVISED_AGAIN_MS * (process.env['T6_STRESS'] === '1' ? 10 : 1), `supervised again after ${slowest.map((ms) => Math.round(ms)).join(', ')} ms`);
  } finally {
    await tree.stop();
  }
});
