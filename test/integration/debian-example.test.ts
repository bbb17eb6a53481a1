/**
 * examples/debian without a machine: its source compiles with t6-rc-compile, its bundles hold
 * what its README says, and its fsck-root script reads fsck's exit code as a bit mask
 * (0 and 1 go on, 2 reboots at once, 4 and above fail the oneshot), run here against a
 * stand-in fsck and reboot on PATH. The Debian boot test (test/boot/debian.test.ts) runs
 * the real thing. Its random-seed script loads and reads a seed with no writable root, stores
 * the fresh one later, and saves one at shutdown.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, ROOT, tmpdir } from '../lib/harness.ts';
import { atomicsOf, loadDb } from '../../src/rc/db.ts';
import { closure } from '../../src/rc/plan.ts';

const EXAMPLE = path.join(ROOT, 'examples/debian');

/** What `t6-rc listall NAME` prints: NAME's services and all they depend on, by name. */
function listall(compiled: string, name: string): string[] {
  const db = loadDb(compiled);
  const g = { atomics: db.atomics, deps: db.services.slice(0, db.atomics).map((s) => (s.type === 'bundle' ? [] : s.deps)), essential: [] };
  return [...closure(g, atomicsOf(db.byName.get(name)!), true)].map((i) => db.services[i]!.name).sort();
}

test('examples/debian compiles; basic, network and default hold what the README says, getty does not wait for fsck', () => {
  const compiled = path.join(tmpdir('t6-debian-ex-'), 'compiled');
  const r = spawnSync(path.join(BIN, 't6-rc-compile'), [compiled, path.join(EXAMPLE, 'source')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const list = (bundle: string): string[] => listall(compiled, bundle);
  assert.deepEqual(list('network'), ['eth0', 'fsck-root', 'loopback', 'mount-kernfs', 'remount-root', 'udevd']);
  // eth0 waits for its own interface, not for udev-trigger's pass over every device, nor for udev to settle; the random seed is loaded before the root is writable.
  assert.ok(!list('eth0').includes('udev-settle') && !list('eth0').includes('udev-trigger'), 'eth0 waits for neither udev-trigger nor udev-settle');
  assert.deepEqual(list('random-seed'), ['random-seed']);
  assert.deepEqual(list('sshd').filter((n) => n.startsWith('random-seed') || n.startsWith('udev')), [], 'sshd waits for neither the seed nor udev');
  assert.deepEqual(list('basic'), ['fsck-root', 'hostname', 'modules', 'mount-fstab', 'mount-kernfs', 'mount-tmp', 'random-seed', 'random-seed-save', 'remount-root', 'sysctl', 'udev-settle', 'udev-trigger', 'udevd']);
  const all = list('default');
  for (const name of [...list('basic'), ...list('network'), 'rsyslogd', 'cron', 'ssh-keys', 'sshd', 'getty-ttyS0']) assert.ok(all.includes(name), name);
  assert.ok(!list('getty-ttyS0').includes('fsck-root'), 'a broken root still gets a console');
  // Every oneshot's program is one of the example's scripts or a Debian command, by absolute path.
  for (const name of fs.readdirSync(path.join(EXAMPLE, 'source'))) {
    for (const file of ['up', 'down']) {
      const p = path.join(EXAMPLE, 'source', name, file);
      if (!fs.existsSync(p)) continue;
      const prog = fs.readFileSync(p, 'utf8').trim().split(/\s+/)[0]!;
      assert.ok(prog.startsWith('/'), `${name}/${file}: ${prog}`);
      if (prog.startsWith('/etc/t6-rc/scripts/')) assert.ok(fs.existsSync(path.join(EXAMPLE, 'scripts', path.basename(prog))), `${name}/${file}: ${prog}`);
    }
  }
});

test("fsck-root reads fsck's exit code as a bit mask: 0 and 1 go on, 2 and 3 reboot at once, 4 and above fail", () => {
  const dir = tmpdir('t6-debian-fsck-');
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const log = path.join(dir, 'log');
  fs.writeFileSync(path.join(bin, 'fsck'), `#!/bin/sh\necho "fsck $*" >> '${log}'\nexit "$FSCK_EXIT"\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'reboot'), `#!/bin/sh\necho "reboot $*" >> '${log}'\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'sync'), '#!/bin/sh\n', { mode: 0o755 });
  const cases: Array<[number, number, RegExp | undefined]> = [[0, 0, undefined], [1, 0, /corrected/], [2, 0, /rebooting/], [3, 0, /rebooting/], [4, 1, /has errors/], [8, 1, /fsck exited 8/], [12, 1, /has errors/]];
  for (const [code, status, says] of cases) {
    fs.rmSync(log, { force: true });
    const r = spawnSync(path.join(EXAMPLE, 'scripts/fsck-root'), [], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin`, FSCK_EXIT: String(code) } });
    assert.equal(r.status, status, `fsck ${code}: ${r.stdout}${r.stderr}`);
    if (says === undefined) assert.equal(r.stdout, '');
    else assert.match(r.stdout, says);
    const calls = fs.readFileSync(log, 'utf8');
    assert.match(calls, /^fsck -T -a \/$/m);
    assert.equal(/^reboot -f$/m.test(calls), code === 2 || code === 3, `fsck ${code}: ${calls}`);
  }
});

test('random-seed: load reads a fresh seed with no writable root; store makes it the saved one; save writes a new one', () => {
  const dir = tmpdir('t6-debian-seed-');
  const env = { PATH: '/usr/bin:/bin', RANDOM_SEED: path.join(dir, 'var/lib/urandom/random-seed'), RANDOM_SEED_FRESH: path.join(dir, 'run-random-seed') };
  const run = (arg: string): void => {
    const r = spawnSync(path.join(EXAMPLE, 'scripts/random-seed'), [arg], { encoding: 'utf8', env });
    assert.equal(r.status, 0, `${arg}: ${r.stdout}${r.stderr}`);
  };
  // First boot: no saved seed, and nothing written where the root would be.
  run('load');
  assert.equal(fs.statSync(env.RANDOM_SEED_FRESH).size, 512);
  assert.equal(fs.statSync(env.RANDOM_SEED_FRESH).mode & 0o777, 0o600);
  assert.ok(!fs.existsSync(path.dirname(env.RANDOM_SEED)), 'load writes nothing on the root');
  const fresh = fs.readFileSync(env.RANDOM_SEED_FRESH);
  run('store');
  assert.deepEqual(fs.readFileSync(env.RANDOM_SEED), fresh);
  assert.ok(!fs.existsSync(env.RANDOM_SEED_FRESH));
  // The next boot loads the saved one (into /dev/urandom) and reads another.
  run('load');
  assert.notDeepEqual(fs.readFileSync(env.RANDOM_SEED_FRESH), fresh);
  run('save');
  assert.equal(fs.statSync(env.RANDOM_SEED).size, 512);
  assert.notDeepEqual(fs.readFileSync(env.RANDOM_SEED), fresh);
  assert.equal(spawnSync(path.join(EXAMPLE, 'scripts/random-seed'), ['frob'], { env }).status, 100);
});

test("eth0 down: stops ifupdown's dhclient (by its pid file) and waits for it to be gone before ifdown, so dhclient -r releases without its fixed sleep", async () => {
  const dir = tmpdir('t6-debian-eth0-');
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const log = path.join(dir, 'log');
  const pidfile = path.join(dir, 'dhclient.eth0.pid');
  // The stand-in ifdown says whether the pid file still named a process (was not empty) and whether that process still ran.
  fs.writeFileSync(path.join(bin, 'ifdown'), `#!/bin/sh\necho "ifdown $* pidfile=$([ -s '${pidfile}' ] && echo yes || echo no) alive=$(kill -0 "$VICTIM" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' /proc/$VICTIM/status && echo yes || echo no)" >> '${log}'\n`, { mode: 0o755 });
  // A process whose comm is "dhclient": sleep under that name.
  const dhclient = path.join(dir, 'dhclient');
  fs.copyFileSync(fs.realpathSync('/bin/sleep'), dhclient);
  fs.chmodSync(dhclient, 0o755);
  const down = (victim?: number): string => {
    fs.rmSync(log, { force: true });
    const r = spawnSync(path.join(EXAMPLE, 'scripts/eth0'), ['down'], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin`, DHCLIENT_PID: pidfile, VICTIM: String(victim ?? '') } });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    return fs.readFileSync(log, 'utf8');
  };
  const { spawn } = await import('node:child_process');
  const client = spawn(dhclient, ['300'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => client.on('exit', (_code, signal) => resolve(signal)));
  fs.writeFileSync(pidfile, `${client.pid}\n`);
  assert.equal(down(client.pid!), `ifdown eth0 pidfile=no alive=no\n`);
  assert.equal(await exited, 'SIGTERM');
  // A pid file naming a process that is not a dhclient (a stale file, the pid reused): left alone, ifdown still runs.
  const other = spawn(fs.realpathSync('/bin/sleep'), ['300'], { stdio: 'ignore' });
  fs.writeFileSync(pidfile, `${other.pid}\n`);
  try {
    assert.equal(down(other.pid!), `ifdown eth0 pidfile=yes alive=yes\n`);
  } finally {
    other.kill('SIGKILL');
  }
  // No pid file (eth0 never came up): ifdown alone.
  fs.rmSync(pidfile, { force: true });
  assert.equal(down(), `ifdown eth0 pidfile=no alive=no\n`);
  assert.equal(spawnSync(path.join(EXAMPLE, 'scripts/eth0'), ['frob']).status, 100);
});
