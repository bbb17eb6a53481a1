/**
 * Re-exec with hand-over (issue 10, 3a): t6-svscan executes itself again, as pid 1 of a pid
 * namespace, while services run, crash-loop and flood an in-process logger; nothing
 * restarts, no line is lost or doubled, and real s6 tools work before, during and after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, EventLog, Tree, makeService, readStatus, run, tmpdir, until } from '../lib/harness.ts';
import { writeDb } from '../lib/rcdb.ts';

/** Re-execs of the test under fire (the issue asks 100; T6_REEXEC_ROUNDS to try more). */
const ROUNDS = Number(process.env['T6_REEXEC_ROUNDS'] ?? 100);
const STABLE = 87;
const CRASHING = 10;
const FLOOD_LINES = 1_000_000;

const count = (text: string, re: RegExp): number => (text.match(re) ?? []).length;
const fdCount = (pid: number): number => fs.readdirSync(`/proc/${pid}/fd`).length;
const rssKb = (pid: number): number => Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

/** Waits for the `n`th "re-executed" line of the tree. */
async function reexecuted(tree: Tree, n: number): Promise<void> {
  await until(`re-exec ${n}`, () => count(tree.output.text, /re-executed \(/g) >= n);
}

/** Runs a command to its end without blocking the event loop. */
function runAsync(cmd: string, args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.on('exit', (code) => resolve(code));
  });
}

/** Every line of a logdir, archives first (by name: TAI64N order), then current; the stamp cut off. */
function loggedLines(logdir: string): string[] {
  const files = fs.readdirSync(logdir).filter((f) => f.startsWith('@')).sort();
  files.push('current');
  const lines: string[] = [];
  for (const f of files) {
    const text = fs.readFileSync(path.join(logdir, f), 'utf8');
    for (const line of text.split('\n')) if (line !== '') lines.push(line.slice(26));
  }
  return lines;
}

test('re-exec under fire: 100 re-execs with 100 services, 10 crash-looping, one flooding its logger', { timeout: 900_000 }, async () => {
  const scandir = tmpdir();
  const logdir = tmpdir();
  for (let i = 0; i < STABLE; i++) makeService(path.join(scandir, `s${i}`), { run: '#!/bin/sh\necho $$ >> starts\nexec sleep 100000\n' });
  for (let i = 0; i < CRASHING; i++) makeService(path.join(scandir, `crash${i}`), { run: '#!/bin/sh\nexit 1\n' });
  // The flood comes in batches over several seconds, so the re-execs land in the middle of it; once only.
  makeService(path.join(scandir, 'flood'), {
    run: `#!/bin/sh\n[ -e done ] && exec sleep 100000\ntouch done\ni=0\nwhile [ $i -lt 200 ]; do seq $((i*5000+1)) $((i*5000+5000)); i=$((i+1)); sleep 0.02; done\nexec sleep 100000\n`,
    log: { files: { 't6-log': `t\nn1000\ns4000000\n${logdir}\n` } },
  });
  makeService(path.join(scandir, 'usr1'), { run: "#!/bin/sh\ntrap 'echo x >> got' USR1\nwhile :; do sleep 0.1; done\n" });
  makeService(path.join(scandir, 'waiter'), { run: '#!/bin/sh\nexec sleep 100000\n', down: true });
  const tree = await Tree.start(scandir);
  try {
    const stable = Array.from({ length: STABLE }, (_v, i) => path.join(scandir, `s${i}`));
    const usr1 = path.join(scandir, 'usr1');
    const pids = new Map<string, number>();
    for (const dir of [...stable, usr1]) pids.set(dir, await until(`${dir} up`, () => readStatus(dir)?.pid || undefined));
    await until('the flood started', () => fs.existsSync(path.join(logdir, 'current')) && fs.statSync(path.join(logdir, 'current')).size > 0);
    assert.match(run('s6-svstat', [stable[0]!]).stdout, /^up /);
    const pid1 = tree.pid1;
    const fds0 = fdCount(pid1);
    const rss0 = rssKb(pid1);
    let usr1Sent = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      tree.control('R');
      // During the re-exec: control bytes wait in the FIFOs for the next image.
      if (round % 10 === 0) { assert.equal(run('s6-svc', ['-1', usr1]).status, 0); usr1Sent++; }
      if (round === Math.ceil(ROUNDS / 2)) {
        const waiter = path.join(scandir, 'waiter');
        const waiting = runAsync('s6-svwait', ['-u', '-t', '30000', waiter]);
        assert.equal(run('s6-svc', ['-u', waiter]).status, 0);
        await reexecuted(tree, round);
        assert.equal(await waiting, 0, 's6-svwait -u across a re-exec');
        continue;
      }
      await reexecuted(tree, round);
      if (round % 10 === 0) assert.match(run('s6-svstat', [stable[round % STABLE]!]).stdout, /^up /);
    }
    assert.equal(tree.pid1, pid1, 'the same pid 1');
    for (const [dir, pid] of pids) {
      assert.equal(readStatus(dir)?.pid, pid, `${dir} kept its pid`);
      if (dir !== usr1) assert.equal(fs.readFileSync(path.join(dir, 'starts'), 'utf8').trim().split('\n').length, 1, `${dir} started once`);
    }
    assert.equal(run('s6-svok', [stable[0]!]).status, 0);
    const got = (): number => (fs.existsSync(path.join(usr1, 'got')) ? fs.readFileSync(path.join(usr1, 'got'), 'utf8').length / 2 : 0);
    await until(`every USR1 delivered (${usr1Sent} sent)`, () => got() >= usr1Sent).catch((err: unknown) => {
      throw new Error(`${String(err)}: ${got()} delivered; t6-svscan said:\n${tree.output.text.split('\n').filter((l) => !/re-executed/.test(l)).slice(-30).join('\n')}`);
    });
    assert.equal(got(), usr1Sent, 'each USR1 delivered once');
    // Crash-looping services go on being restarted.
    const events = new EventLog(path.join(scandir, 'crash0'));
    await events.waitFor(/u/);
    events.close();
    const lines = await until('every flood line logged', () => { const l = loggedLines(logdir); return l.length >= FLOOD_LINES ? l : undefined; });
    assert.equal(lines.length, FLOOD_LINES, 'no line doubled');
    for (let i = 0; i < FLOOD_LINES; i++) if (lines[i] !== String(i + 1)) assert.fail(`line ${i + 1} is ${JSON.stringify(lines[i])}`);
    // Flat: fds and memory after 100 images as after the first.
    assert.ok(fdCount(pid1) <= fds0 + 4, `fds ${fds0} → ${fdCount(pid1)}`);
    assert.ok(rssKb(pid1) < rss0 * 1.5 + 10_000, `RSS ${rss0} kB → ${rssKb(pid1)} kB`);
    assert.doesNotMatch(tree.output.text, /unable to carry on|internal error/);
  } finally {
    await tree.stop();
  }
});

test('an uncaught exception ends in a re-exec: not a death, not a carry-on', async () => {
  const scandir = tmpdir();
  const dir = makeService(path.join(scandir, 'a'), { run: '#!/bin/sh\nexec sleep 100000\n' });
  const tree = await Tree.start(scandir, { env: { T6_TEST_HOOKS: '1' } });
  try {
    const pid = await until('a up', () => readStatus(dir)?.pid || undefined);
    const pid1 = tree.pid1;
    tree.control('X');
    await tree.output.waitFor(/uncaught exception: Error: fault injected by a test[^]*re-executing to start from a clean state/);
    await tree.output.waitFor(/re-executed \(uncaught exception/);
    assert.equal(tree.pid1, pid1);
    assert.equal(readStatus(dir)?.pid, pid);
    assert.equal(run('s6-svc', ['-d', dir]).status, 0);
    await until('a down', () => readStatus(dir)?.pid === 0);
  } finally {
    await tree.stop();
  }
});

test('a re-exec while a t6-rc change is in flight: the change completes or fails cleanly, and a retry completes', { timeout: 300_000 }, async () => {
  const base = tmpdir('t6-rc-');
  const scandir = path.join(base, 'service');
  const compiled = path.join(base, 'compiled');
  const live = path.join(base, 'live');
  const flag = path.join(base, 'go');
  const started = path.join(base, 'started');
  fs.mkdirSync(scandir);
  // The oneshot is under way (it said so) until the test lets it finish.
  writeDb(compiled, [
    { name: 'slow', type: 'oneshot', up: ['sh', '-c', `touch '${started}'; until [ -e '${flag}' ]; do sleep 0.02; done`] },
    { name: 'lr', type: 'longrun', run: '#!/bin/sh\nexec sleep 100000\n', deps: ['slow'] },
  ]);
  const tree = await Tree.start(scandir);
  try {
    assert.equal(run(path.join(BIN, 't6-rc-init'), ['-c', compiled, '-l', live, scandir]).status, 0);
    const change = runAsync(path.join(BIN, 't6-rc'), ['-l', live, '-u', 'change', 'lr']);
    await until('the oneshot is under way', () => fs.existsSync(started));
    tree.control('R');
    await reexecuted(tree, 1);
    fs.writeFileSync(flag, '');
    const status = await change;
    if (status !== 0) {
      // Failed, cleanly (an exit code, not a hang): a retry completes.
      assert.notEqual(status, null);
      assert.equal(await runAsync(path.join(BIN, 't6-rc'), ['-l', live, '-u', 'change', 'lr']), 0);
    }
    const up = run(path.join(BIN, 't6-rc'), ['-l', live, '-a', 'list']).stdout.split('\n').filter((l) => l !== '').sort();
    assert.deepEqual(up, ['lr', 'slow']);
    assert.ok((readStatus(path.join(scandir, 'lr'))?.pid ?? 0) > 0);
  } finally {
    await tree.stop();
  }
});
