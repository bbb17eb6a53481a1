/**
 * t6-linux-init end to end without a kernel: a boot tree from t6-linux-init-maker, booted
 * in container mode (-C) as pid 1 of a fresh pid + mount namespace, with the article's
 * t6-rc demo. Checks stage 1 (tmpfs on /run, run-image copied, clean environment), stage 2
 * (rc.init brings `default` up: the article's lines, in order, through the catch-all
 * logger copied to the console with -1), and the shutdown paths: a request on the
 * shutdown FIFO, SIGTERM (a container's halt), poweroff through reboot(2) in the pid
 * namespace, and a broken rc.init that leaves pid 1 and the early services running.
 * The real-kernel run of the same tree is test/boot/boot.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, OutputLog, childrenOf, tmpdir, until } from '../lib/harness.ts';
import { writeArticleSource } from '../lib/rcdb.ts';

const sh = (body: string): string => `#!/bin/sh\n${body}\n`;


interface Booted {
  proc: ChildProcess;
  out: OutputLog;
  base: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Host path of a file inside the namespace's /run. */
  run(rel: string): string;
  kill(): void;
}

/** Makes a tree with the maker and boots it as pid 1 of a new pid + mount namespace. */
function boot(opts: { makerArgs?: string[]; rcInit?: string; fd3?: boolean; source?: (dir: string) => void } = {}): Booted {
  const base = tmpdir('t6-linux-init-');
  writeArticleSource(path.join(base, 'source'));
  opts.source?.(path.join(base, 'source'));
  const c = spawnSync(path.join(BIN, 't6-rc-compile'), [path.join(base, 'compiled'), path.join(base, 'source')], { encoding: 'utf8' });
  assert.equal(c.status, 0, `t6-rc-compile: ${c.stderr}`);
  const basedir = path.join(base, 'current');
  const m = spawnSync(path.join(BIN, 't6-linux-init-maker'), [
    '-C', '-1', '-c', basedir, '-b', path.join(base, 'compiled'), '-l', '/run/t6-rc', '-q', '2000',
    '-p', `${BIN}:/usr/bin:/bin:/usr/sbin:/sbin`, '-e', 'T6_TEST=yes', ...(opts.makerArgs ?? []), basedir,
  ], { encoding: 'utf8' });
  assert.equal(m.status, 0, `t6-linux-init-maker: ${m.stderr}`);
  if (opts.rcInit !== undefined) fs.writeFileSync(path.join(basedir, 'scripts/rc.init'), opts.rcInit, { mode: 0o755 });
  const proc = spawn('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', path.join(basedir, 'bin/init')], {
    stdio: ['ignore', 'pipe', 'pipe', ...(opts.fd3 === true ? ['pipe' as const] : [])], env: { ...process.env, KERNEL_JUNK: 'dropped' },
  });
  const out = new OutputLog();
  out.attach(proc.stdout);
  out.attach(proc.stderr);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const pid1 = (): number => Number(fs.readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
  return {
    proc, out, base, exited,
    run: (rel) => `/proc/${pid1()}/root/run/${rel}`,
    kill: () => {
      try { process.kill(pid1(), 'SIGKILL'); } catch { /* gone */ }
      try { proc.kill('SIGKILL'); } catch { /* gone */ }
    },
  };
}

/** Index of the first match of each pattern, in order, failing if one is missing or out of order. */
function assertInOrder(text: string, lines: readonly string[]): void {
  let at = 0;
  for (const line of lines) {
    const i = text.indexOf(line, at);
    assert.ok(i >= 0, `missing (or out of order): ${JSON.stringify(line)}\n--- output ---\n${text}`);
    at = i + line.length;
  }
}

const UP_LINES = [
  't6-rc: info: service demo-oneshot-1: starting',
  'demo-oneshot-1 is up',
  't6-rc: info: service demo-oneshot-1 successfully started',
  't6-rc: info: service demo-longrun-1: starting',
  't6-rc: info: service demo-longrun-1 successfully started',
];
const DOWN_LINES = [
  't6-rc: info: service demo-longrun-1: stopping',
  't6-rc: info: service demo-longrun-1 successfully stopped',
  't6-rc: info: service demo-oneshot-1: stopping',
  'demo-oneshot-1 is down',
  't6-rc: info: service demo-oneshot-1 successfully stopped',
  'sending all processes the TERM signal...',
];

test('t6-linux-init -C: stage 1, the article demo up through rc.init, then halt from the shutdown FIFO, services down in reverse order', { timeout: 180_000 }, async () => {
  const b = boot();
  try {
    await b.out.waitFor(/t6-rc: info: service demo-longrun-1 successfully started/, 90_000);
    await b.out.waitFor(/demo-longrun-1 is running/, 90_000);
    assertInOrder(b.out.text, UP_LINES);
    // Stage 1 made /run a fresh tmpfs holding the run-image, and the catch-all log has the lines.
    const mounts = fs.readFileSync(b.run('../proc/1/mounts'), 'utf8');
    assert.match(mounts, /^tmpfs \/run tmpfs /m);
    assert.ok(fs.existsSync(b.run('service/.s6-svscan/control')), 'the scanner runs on /run/service');
    const current = fs.readFileSync(b.run('uncaught-logs/current'), 'utf8');
    assert.match(current, /^@[0-9a-f]{24} demo-oneshot-1 is up$/m);
    // Everything after stage 1 has PATH and env/'s variables only (the kernel's are dropped).
    // (/proc/1/environ shows pid 1's environment as exec'd; a child shows what it was given.)
    const hostPid1 = Number(fs.readFileSync(`/proc/${b.proc.pid}/task/${b.proc.pid}/children`, 'utf8').trim());
    // The first child still there when read (a oneshot may end meanwhile).
    const environ = (pid: string): string | undefined => { try { return fs.readFileSync(`/proc/${pid}/environ`, 'latin1'); } catch { return undefined; } };
    const env = childrenOf(hostPid1).map(String).map(environ).find((e) => e !== undefined)!.split('\0').filter(Boolean).sort();
    assert.ok(env.includes('T6_TEST=yes') && env.some((e) => e.startsWith('PATH=')), env.join(' '));
    assert.ok(!env.some((e) => e.startsWith('KERNEL_JUNK=')), env.join(' '));

    // A shutdown in a minute, cancelled: pid 1 says both, and nothing goes down.
    const fifo = b.run('service/s6-linux-init-shutdownd/fifo');
    const later = spawnSync(path.join(BIN, 't6-shutdown'), ['--fifo', fifo, '-h', '+1'], { encoding: 'utf8' });
    assert.equal(later.status, 0, later.stderr);
    await b.out.waitFor(/halt scheduled in 60 seconds/);
    const cancel = spawnSync(path.join(BIN, 't6-shutdown'), ['--fifo', fifo, '-c'], { encoding: 'utf8' });
    assert.equal(cancel.status, 0, cancel.stderr);
    await b.out.waitFor(/the scheduled shutdown is cancelled/);
    assert.doesNotMatch(b.out.text, /stopping/);

    const r = spawnSync(path.join(BIN, 't6-shutdown'), ['--fifo', fifo, '-h', 'now'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const end = await b.exited;
    assertInOrder(b.out.text, DOWN_LINES);
    assert.equal(end.code, 0, `exit ${end.code} ${end.signal}\n${b.out.text}`);
  } finally {
    b.kill();
  }
});

test("t6-linux-init -C with s6-overlay's -W and -R: pid 1 waits for the container manager to close fd 3, then boots with the hard limits set", { timeout: 180_000 }, async () => {
  const b = boot({ makerArgs: ['-W', '3', '-R', 'o4000,c0', '-V', '2'], fd3: true });
  try {
    const pid1 = await until('pid 1 forked', () => { try { return Number(fs.readFileSync(`/proc/${b.proc.pid}/task/${b.proc.pid}/children`, 'utf8').trim().split(/\s+/)[0]) || undefined; } catch { return undefined; } });
    // Blocked in read(2) (x86-64 syscall 0) on fd 3, before any of stage 1.
    await until('pid 1 waiting on fd 3', () => { try { return fs.readFileSync(`/proc/${pid1}/syscall`, 'utf8').startsWith('0 0x3 '); } catch { return false; } });
    assert.doesNotMatch(b.out.text, /demo-oneshot-1 is up/);
    (b.proc.stdio[3] as NodeJS.WritableStream & { destroy(): void }).destroy();
    await b.out.waitFor(/t6-rc: info: service demo-longrun-1 successfully started/, 90_000);
    const limits = fs.readFileSync(`/proc/${pid1}/limits`, 'utf8');
    assert.match(limits, /^Max open files\s+\d+\s+4000\s+files/m, limits);
    assert.match(limits, /^Max core file size\s+0\s+0\s+bytes/m, limits);
    process.kill(pid1, 'SIGTERM');
    assert.equal((await b.exited).code, 0, b.out.text);
  } finally {
    b.kill();
  }
});

test('t6-linux-init -C: SIGTERM halts, the container exit code comes from the results file', { timeout: 180_000 }, async () => {
  const b = boot();
  try {
    await b.out.waitFor(/t6-rc: info: service demo-longrun-1 successfully started/, 90_000);
    fs.writeFileSync(b.run('s6-linux-init-container-results/exitcode'), '7\n');
    const pid1 = Number(fs.readFileSync(`/proc/${b.proc.pid}/task/${b.proc.pid}/children`, 'utf8').trim());
    process.kill(pid1, 'SIGTERM');
    const end = await b.exited;
    assertInOrder(b.out.text, DOWN_LINES);
    assert.equal(end.code, 7, b.out.text);
  } finally {
    b.kill();
  }
});

test('t6-linux-init -C: poweroff (SIGUSR1) ends in reboot(2), which ends the pid namespace', { timeout: 180_000 }, async () => {
  const b = boot();
  try {
    await b.out.waitFor(/t6-rc: info: service demo-longrun-1 successfully started/, 90_000);
    const pid1 = Number(fs.readFileSync(`/proc/${b.proc.pid}/task/${b.proc.pid}/children`, 'utf8').trim());
    process.kill(pid1, 'SIGUSR1');
    const end = await b.exited;
    assertInOrder(b.out.text, DOWN_LINES);
    // reboot(RB_POWER_OFF) in a pid namespace kills its pid 1 with SIGINT (a restart would be
    // SIGHUP); unshare --kill-child passes the signal on.
    assert.ok(end.code === 128 + 2 || end.signal === 'SIGINT', `exit ${end.code} ${end.signal}\n${b.out.text}`);
  } finally {
    b.kill();
  }
});

test('t6-linux-init -C: a broken rc.init is reported, pid 1 and the early getty stay, shutdown still works', { timeout: 180_000 }, async () => {
  const b = boot({ makerArgs: ['-G', 'sh -c "echo early getty here; exec sleep 1000"'], rcInit: sh('echo "rc.init: broken on purpose"; exit 3') });
  try {
    await b.out.waitFor(/early getty here/, 90_000);
    await b.out.waitFor(/rc\.init exited 3/, 90_000);
    assert.match(b.out.text, /rc\.init: broken on purpose/);
    const st = spawnSync(path.join(BIN, 't6-svstat'), [b.run('service/s6-linux-init-early-getty')], { encoding: 'utf8' });
    assert.match(st.stdout, /^up \(pid \d+\)/, st.stderr);
    const r = spawnSync(path.join(BIN, 't6-shutdown'), ['--fifo', b.run('service/s6-linux-init-shutdownd/fifo'), '-h', 'now'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const end = await b.exited;
    assert.equal(end.code, 0, b.out.text);
  } finally {
    b.kill();
  }
});

test('t6-linux-init -C -r: the service manager inside pid 1 gives the same lines at boot and at halt, with no rc.init', { timeout: 180_000 }, async () => {
  const b = boot({ makerArgs: ['-r'] });
  try {
    await b.out.waitFor(/t6-rc: info: service demo-longrun-1 successfully started/, 90_000);
    assertInOrder(b.out.text, UP_LINES);
    assert.equal(fs.existsSync(path.join(b.base, 'current/scripts/rc.init')), false);
    // With no rc.init and no rc.shutdown, only pid 1 can have run t6-rc.
    assert.equal(fs.existsSync(path.join(b.base, 'current/scripts/rc.shutdown')), false);
    // pid 1 recorded its boot change for boot analysis, with stage 1's steps before it (no
    // kernel line in a container: the kernel's log is the host's).
    const bootRecord = await until('the boot record', () => fs.existsSync(b.run('t6-rc/timings/boot.json')));
    assert.ok(bootRecord);
    const chain = spawnSync(path.join(BIN, 't6-analyze'), ['--live', b.run('t6-rc'), 'critical-chain', '--json'], { encoding: 'utf8' });
    assert.equal(chain.status, 0, chain.stderr);
    assert.deepEqual((JSON.parse(chain.stdout) as { links: { name: string }[] }).links.map((l) => l.name), ['demo-longrun-1', 'demo-oneshot-1']);
    const rec = JSON.parse(fs.readFileSync(b.run('t6-rc/timings/boot.json'), 'utf8')) as { kind: string; kernelInit?: number; stages: { name: string; start: number; end: number }[] };
    assert.equal(rec.kind, 'boot');
    assert.equal(rec.kernelInit, undefined);
    assert.deepEqual(rec.stages.map((st) => st.name), ['node start', 'tmpfs /run', 'copy run-image', 'environment', 'scanner start', 't6-rc-init', 'change set-up']);
    for (let i = 1; i < rec.stages.length; i++) assert.ok(rec.stages[i]!.start >= rec.stages[i - 1]!.end - 0.01, JSON.stringify(rec.stages));
    const r = spawnSync(path.join(BIN, 't6-shutdown'), ['--fifo', b.run('service/s6-linux-init-shutdownd/fifo'), '-h', 'now'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const end = await b.exited;
    assertInOrder(b.out.text, DOWN_LINES);
    assert.equal(end.code, 0, b.out.text);
  } finally {
    b.kill();
  }
});

test('t6-linux-init -C -r: at boot, a longrun with up-settle that dies leaves its dependent down and pid 1 says why; one that stays up starts its own', { timeout: 180_000 }, async () => {
  const b = boot({
    makerArgs: ['-r'],
    source: (src) => {
      const put = (file: string, text: string, mode = 0o644): void => {
        fs.mkdirSync(path.dirname(path.join(src, file)), { recursive: true });
        fs.writeFileSync(path.join(src, file), text, { mode });
      };
      put('app/type', 'longrun\n');
      put('app/run', sh('exec /nonexistent-binary'), 0o755);
      put('app/up-settle', '5000\n');
      put('dep/type', 'oneshot\n');
      put('dep/up', 'echo "dep is up"\n');
      put('dep/dependencies', 'app\n');
      put('demo-longrun-1/up-settle', '200\n');
      put('default/contents', 'demo-longrun-1\ndep\n');
    },
  });
  try {
    await b.out.waitFor(/t6-rc: warning: unable to start service app: died \d+ ms after starting \(exit code 127\) - not starting: dep\n/, 90_000);
    await b.out.waitFor(/t6-rc: info: service demo-longrun-1 successfully started/, 90_000);
    assertInOrder(b.out.text, UP_LINES);
    const r = spawnSync(path.join(BIN, 't6-shutdown'), ['--fifo', b.run('service/s6-linux-init-shutdownd/fifo'), '-h', 'now'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    await b.exited;
    assert.doesNotMatch(b.out.text, /dep is up/);
  } finally {
    b.kill();
  }
});

test('bin/init run by a person (not pid 1) is telinit: it takes init\'s whole command line and asks for a runlevel change', () => {
  const base = tmpdir('t6-linux-init-');
  const basedir = path.join(base, 'current');
  const m = spawnSync(path.join(BIN, 't6-linux-init-maker'), ['-C', '-r', '-U', '-c', basedir, basedir], { encoding: 'utf8' });
  assert.equal(m.status, 0, m.stderr);
  // No t6 tree on this machine's /run/service: telinit says it cannot reach the runner
  // (never stage 1 on the host, even with -C).
  const r = spawnSync(path.join(basedir, 'bin/init'), ['3'], { encoding: 'utf8' });
  assert.equal(r.status, 111, r.stderr);
  assert.match(r.stderr, /t6-telinit: fatal: unable to run .*\/scripts\/runlevel 3: unable to reach the oneshot runner/);
});

test('t6-linux-init -C: pid 1 re-executes itself (t6-svscanctl -R), services keep their pids, stage 2 is not run again, and the halt still brings everything down in order', { timeout: 180_000 }, async () => {
  const b = boot();
  try {
    await b.out.waitFor(/demo-longrun-1 is running/, 90_000);
    // The scan dir entry is a link into /run/t6-rc, absolute inside the namespace.
    const target = fs.readlinkSync(b.run('service/demo-longrun-1'));
    const status = (): Buffer => fs.readFileSync(b.run(`${path.relative('/run', target)}/supervise/status`));
    const pidBefore = Number(status().readBigUInt64BE(24));
    assert.ok(pidBefore > 0);
    const r = spawnSync(path.join(BIN, 't6-svscanctl'), ['-R', b.run('service')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const log = (): string => fs.readFileSync(b.run('uncaught-logs/current'), 'utf8');
    await until('pid 1 re-executed', () => /re-executed \(requested on the control FIFO\)/.test(log()));
    assert.equal(Number(status().readBigUInt64BE(24)), pidBefore, 'demo-longrun-1 kept its pid');
    assert.equal(b.out.text.match(/t6-rc: info: service demo-longrun-1: starting/g)?.length, 1, 'stage 2 ran once');
    assert.doesNotMatch(b.out.text, /t6-linux-init version[^]*t6-linux-init version/);
    const h = spawnSync(path.join(BIN, 't6-shutdown'), ['--fifo', b.run('service/s6-linux-init-shutdownd/fifo'), '-h', 'now'], { encoding: 'utf8' });
    assert.equal(h.status, 0, h.stderr);
    const end = await b.exited;
    assertInOrder(b.out.text, DOWN_LINES);
    assert.equal(end.code, 0, `exit ${end.code} ${end.signal}\n${b.out.text}`);
  } finally {
    b.kill();
  }
});
