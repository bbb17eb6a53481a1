/**
 * Bad input never takes t6-svscan down: each problem gets a message naming the file and
 * what is wrong, and every other service keeps running.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { EventLog, Tree, makeService, readStatus, tmpdir, until, run, childrenOf } from '../lib/harness.ts';
import { seededRandom } from '../lib/random.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

async function tree(scandir: string, args: string[] = []): Promise<Tree> {
  const t = await Tree.start(scandir, { args });
  cleanups.push(() => t.stop());
  return t;
}

const SLEEP = '#!/bin/sh\nexec sleep 3600\n';

function upPid(dir: string): number | undefined {
  const st = readStatus(dir);
  return st !== undefined && st.pid > 0 && !st.finishing ? st.pid : undefined;
}

/** A tmpfs of `size` mounted on a fresh directory (the tests run as root), unmounted after. */
function tmpfs(size: string): string {
  const dir = tmpdir('t6-tmpfs-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  cleanups.push(() => { try { execFileSync('umount', ['-l', dir]); } catch { /* already gone */ } });
  return dir;
}

test('an unrunnable run is reported by name and reason; the other services run', async () => {
  const sd = tmpdir();
  makeService(path.join(sd, 'good'), { run: SLEEP });
  makeService(path.join(sd, 'missing'), {});
  makeService(path.join(sd, 'noexec'), { files: { run: '#!/bin/sh\nexec sleep 3600\n' } });
  fs.mkdirSync(path.join(sd, 'isdir', 'run'), { recursive: true });
  fs.mkdirSync(path.join(sd, 'dangling'));
  fs.symlinkSync('/nonexistent/program', path.join(sd, 'dangling', 'run'));
  makeService(path.join(sd, 'noshebang'), { run: 'exec sleep 3600\n\0\0binary' });
  const t = await tree(sd);
  await until('good up', () => upPid(path.join(sd, 'good')));
  await t.output.waitFor(new RegExp(`unable to spawn ${sd}/missing/run: no such file`));
  await t.output.waitFor(new RegExp(`unable to spawn ${sd}/noexec/run: not executable \\(mode 0644\\)`));
  await t.output.waitFor(new RegExp(`unable to spawn ${sd}/isdir/run: is a directory, not a program`));
  await t.output.waitFor(new RegExp(`unable to spawn ${sd}/dangling/run: dangling symbolic link to /nonexistent/program`));
  await t.output.waitFor(new RegExp(`unable to spawn ${sd}/noshebang/run: Exec format error`));
  for (const name of ['missing', 'noexec', 'isdir', 'dangling']) {
    assert.equal(run('s6-svstat', [path.join(sd, name)]).stdout.replace(/\d+ seconds/g, 'N seconds'),
      'down (exitcode 0) N seconds, normally up, want up, ready N seconds\n', name);
  }
  // Fixing the file and asking again works at once.
  fs.chmodSync(path.join(sd, 'noexec', 'run'), 0o755);
  assert.equal(run('s6-svc', ['-u', path.join(sd, 'noexec')]).status, 0);
  await until('noexec up after the fix', () => upPid(path.join(sd, 'noexec')));
});

test('garbage in notification-fd, timeout-kill, down-signal, max-death-tally: named warnings, defaults used', async () => {
  const sd = tmpdir();
  const dir = makeService(path.join(sd, 'garbage'), {
    run: SLEEP,
    files: { 'notification-fd': 'three\n', 'timeout-kill': '-5\n', 'down-signal': 'SIGBOGUS\n', 'max-death-tally': '1e9\n' },
  });
  const other = makeService(path.join(sd, 'other'), { run: SLEEP });
  fs.mkdirSync(path.join(dir, 'event'));
  const events = new EventLog(dir);
  cleanups.push(() => events.close());
  const t = await tree(sd);
  await events.waitFor(/u/);
  await t.output.waitFor(new RegExp(`invalid ${dir}/notification-fd: "three" is not an unsigned integer`));
  assert.equal(run('s6-svc', ['-d', dir]).status, 0);
  await events.waitFor(/udD$/);
  await t.output.waitFor(new RegExp(`invalid ${dir}/down-signal: "SIGBOGUS" is not a signal - using SIGTERM`));
  await t.output.waitFor(new RegExp(`invalid ${dir}/timeout-kill: "-5" is not an unsigned integer`));
  await t.output.waitFor(new RegExp(`invalid ${dir}/max-death-tally: "1e9" is not an unsigned integer`));
  assert.equal(readStatus(dir)!.wstat & 0x7f, 15, 'stopped with the default SIGTERM');
  assert.ok(upPid(other));
});

/**
 * Writes `data` into a FIFO through a stream (waiting for room in the pipe, never polling)
 * until all of it is written or the reader goes away (EPIPE); resolves with how far it got,
 * counting a chunk cut short by the reader's end as offered.
 */
function writeUntilReaderEnds(fd: number, data: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const sink = new net.Socket({ fd, readable: false, writable: true });
    let offered = 0;
    let ended = false;
    const end = (): void => { if (!ended) { ended = true; sink.destroy(); resolve(offered); } };
    const next = (): void => {
      if (offered >= data.length) { end(); return; }
      const chunk = data.subarray(offered, offered + 65536);
      offered += chunk.length;
      sink.write(chunk, (err) => { if (err === undefined || err === null) next(); else end(); });
    };
    sink.on('error', end);
    next();
  });
}

test('1 MB of random bytes into every control FIFO: t6-svscan survives and everything can be brought back up', { timeout: 300_000 }, async (ctx) => {
  const random = seededRandom(ctx);
  const sd = tmpdir();
  // Two logged services: four supervisors and the scanner. Each random 'x' ends a
  // supervisor, restarted a second after its previous start (s6's rule), so a megabyte
  // takes a few dozen seconds per FIFO.
  const names = ['r1', 'r2'];
  for (const n of names) makeService(path.join(sd, n), { run: SLEEP, log: { run: '#!/bin/sh\nexec cat > /dev/null\n' } });
  const t = await tree(sd);
  for (const n of names) await until(`${n} up`, () => upPid(path.join(sd, n)));
  const fifos = names.flatMap((n) => [path.join(sd, n, 'supervise/control'), path.join(sd, n, 'log/supervise/control')]);
  // The scanner's own FIFO too, minus the bytes that legitimately end the whole tree (t i q b).
  const scannerBytes = Buffer.from([...random.bytes(1 << 20)].filter((b) => !'tiqb'.includes(String.fromCharCode(b))));
  // All FIFOs at once: a random 'x' ends that supervisor, which the scanner restarts a
  // second after its previous start; the writer waits for the new one to open the FIFO
  // (until then opening it for writing fails with ENXIO) and goes on with the rest.
  const flood = async (fifo: string, bytes: Buffer): Promise<void> => {
    for (let off = 0; off < bytes.length;) {
      const fd = await until(`a supervisor reading ${fifo}`, () => {
        try { return fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK); } catch { return undefined; }
      });
      off += await writeUntilReaderEnds(fd, bytes.subarray(off));
    }
  };
  await Promise.all([...fifos.map((f) => flood(f, random.bytes(1 << 20))), flood(path.join(sd, '.s6-svscan/control'), scannerBytes)]);
  assert.equal(t.proc.exitCode, null, 't6-svscan is still running');
  // Bring everything back: continue (random 'p' may have stopped it), up, and wait.
  for (const n of names) {
    for (const dir of [path.join(sd, n), path.join(sd, n, 'log')]) {
      await until(`${dir} supervised`, () => run('s6-svok', [dir]).status === 0);
      assert.equal(run('s6-svc', ['-cu', dir]).status, 0);
    }
  }
  for (const n of names) {
    await until(`${n} up again`, () => upPid(path.join(sd, n)));
    await until(`${n}/log up again`, () => upPid(path.join(sd, n, 'log')));
    const st = readStatus(path.join(sd, n))!;
    assert.equal(st.wantUp, true);
  }
  assert.match(t.output.text, /\.s6-svscan\/control: ignored \d+ unknown control bytes/);
});

test('a service directory deleted while its service runs: named errors, the service is stopped on prune, others run', async () => {
  const sd = tmpdir();
  const doomed = makeService(path.join(sd, 'doomed'), { run: SLEEP });
  const other = makeService(path.join(sd, 'other'), { run: SLEEP });
  const t = await tree(sd);
  const nsPid = await until('doomed up', () => upPid(doomed));
  await until('other up', () => upPid(other));
  const hostPid = t.hostPid(nsPid);
  fs.rmSync(doomed, { recursive: true, force: true });
  t.control('h'); // rescan + prune: doomed is inactive now
  // A process that goes between the two reads makes the second fail (ENOENT or ESRCH): gone too.
  const stopped = (): boolean => {
    try { return fs.readFileSync(`/proc/${hostPid}/stat`, 'utf8').includes(') Z'); } catch { return true; }
  };
  await until('the deleted service to be stopped', stopped);
  await t.output.waitFor(new RegExp(`unable to write ${doomed}/supervise/status: No such file or directory`));
  assert.ok(upPid(other), 'the other service still runs');
  assert.equal(run('s6-svc', ['-d', other]).status, 0, 'and t6-svscan still obeys');
  await until('other down', () => readStatus(other)?.pid === 0);
});

test('a read-only /run: named errors, the services run anyway, and control returns once it is writable', async () => {
  const runDir = tmpfs('4m');
  const sd = path.join(runDir, 'service');
  const a = makeService(path.join(sd, 'a'), { run: SLEEP });
  const b = makeService(path.join(sd, 'b'), { run: SLEEP });
  execFileSync('mount', ['-o', 'remount,ro', runDir]);
  const t = await tree(sd);
  await t.output.waitFor(new RegExp(`unable to create ${sd}/.s6-svscan: Read-only file system - running without ${sd}/.s6-svscan/control`));
  await t.output.waitFor(new RegExp(`unable to create ${a}/event: Read-only file system - running a without its control files`));
  await t.output.waitFor(new RegExp(`unable to create ${b}/event: Read-only file system - running b without its control files`));
  // Both services run, supervised, though nothing can be written yet.
  await until('two services running under pid 1', () => {
    const kids = childrenOf(t.pid1);
    return kids.filter((k) => { try { return fs.readFileSync(`/proc/${k}/comm`, 'utf8').trim() === 'sleep'; } catch { return false; } }).length === 2;
  });
  // The namespace copied the mount while it was read-only: make it writable there too.
  execFileSync('mount', ['-o', 'remount,rw', runDir]);
  execFileSync('nsenter', ['-t', String(t.pid1), '-m', 'mount', '-o', 'remount,rw', runDir]);
  await t.output.waitFor(new RegExp(`${a}/supervise is set up: a can be controlled again`));
  await t.output.waitFor(new RegExp(`${sd}/.s6-svscan/control is listening`));
  await until('a status says up', () => upPid(a));
  await until('b status says up', () => upPid(b));
  assert.equal(run('s6-svc', ['-d', a]).status, 0);
  await until('a down', () => readStatus(a)?.pid === 0);
  assert.ok(upPid(b));
});

test('a full /run: status writes fail with ENOSPC, nothing is lost, and writing resumes when space returns', async () => {
  const runDir = tmpfs('1m');
  const sd = path.join(runDir, 'service');
  const a = makeService(path.join(sd, 'a'), { run: SLEEP });
  const t = await tree(sd);
  await until('a up', () => upPid(a));
  const filler = path.join(runDir, 'filler');
  try { execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k', 'count=64'], { stdio: 'ignore' }); } catch { /* ENOSPC: full */ }
  assert.equal(run('s6-svc', ['-d', a]).status, 0);
  await t.output.waitFor(new RegExp(`unable to write ${a}/supervise/status: No space left on device`));
  fs.rmSync(filler);
  await t.output.waitFor(new RegExp(`${a}/supervise/status is being written again`));
  assert.equal(readStatus(a)!.pid, 0);
  assert.equal(run('s6-svc', ['-u', a]).status, 0);
  await until('a up again', () => upPid(a));
});

test('a scan dir with 5,000 entries (2,000 services, files, dot entries, dangling links)', { timeout: 300_000 }, async () => {
  const sd = tmpdir();
  for (let i = 0; i < 2000; i++) makeService(path.join(sd, `svc${i}`), { run: SLEEP });
  for (let i = 0; i < 1000; i++) fs.writeFileSync(path.join(sd, `file${i}`), 'not a service\n');
  for (let i = 0; i < 1000; i++) fs.mkdirSync(path.join(sd, `.hidden${i}`));
  for (let i = 0; i < 1000; i++) fs.symlinkSync(`/nonexistent/${i}`, path.join(sd, `dangling${i}`));
  assert.equal(fs.readdirSync(sd).length, 5000);
  const t = await tree(sd, ['-c', '4000']);
  await until('2,000 services up', () => {
    for (let i = 0; i < 2000; i++) if (upPid(path.join(sd, `svc${i}`)) === undefined) return false;
    return true;
  }, 240_000, 200);
  await t.output.waitFor(/unable to stat 1000 entries of .*: dangling\d+ \(dangling symbolic link\).* and 995 more/);
  assert.ok(!fs.existsSync(path.join(sd, '.hidden0', 'supervise')), 'dot entries are ignored');
  const svstat = run('s6-svstat', [path.join(sd, 'svc1999')]);
  assert.match(svstat.stdout, /^up \(pid \d+\)/);
  // Fewer slots than services: a clear, single warning.
  fs.rmSync(path.join(sd, 'svc0', 'supervise'), { recursive: true, force: true });
});

test('more services than -c allows: one warning listing them', async () => {
  const sd = tmpdir();
  for (let i = 0; i < 8; i++) makeService(path.join(sd, `s${i}`), { run: SLEEP });
  const t = await tree(sd, ['-c', '5']);
  await t.output.waitFor(/not supervising 3 service directories of .*: too many services \(the limit is 5; raise it with -c\)/);
});
