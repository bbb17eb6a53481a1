/**
 * The shutdown clients end to end: t6-shutdown and t6-hpr write the exact 17-byte requests
 * (or the cancel byte) to a FIFO read here, refuse what s6 refuses with s6's exit codes;
 * t6-hpr -f really calls reboot(2) — only as pid 1 of a fresh pid namespace, where the
 * kernel turns it into the death of that pid 1; t6-telinit runs the runlevel script through
 * a real t6-svscan's runner.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, Tree, makeService, tmpdir, until } from '../lib/harness.ts';
import { ShutdownRequestDecoder, shutdowndFifo } from '../../src/s6/initctl.ts';
import { UTMP_RECORD_SIZE, decodeUtmp } from '../../src/init/utmp.ts';
import { mkfifo } from '../../src/sys/index.ts';

const work = tmpdir();
// Nothing here may warn the machine's real users: utmp and wtmp point into the test dir.
const quietEnv = { T6_UTMP: path.join(work, 'no-utmp'), T6_WTMP: path.join(work, 'no-wtmp'), T6_SHUTDOWN_ALLOW: path.join(work, 'no-allow') };

interface Ran { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

function cli(name: string, args: string[], env: Record<string, string> = {}): Ran {
  const r = spawnSync(path.join(BIN, `t6-${name}`), args, { encoding: 'utf8', env: { ...process.env, ...quietEnv, ...env } });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Async run, for commands that talk to a tree this process also reads from. */
function cliAsync(name: string, args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const p = spawn(path.join(BIN, `t6-${name}`), args, { env: { ...process.env, ...quietEnv, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    p.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

/** A FIFO with a reader held open here, as the shutdown daemon holds it. */
class Fifo {
  readonly path: string;
  readonly fd: number;
  constructor(file: string) {
    this.path = file;
    mkfifo(file, 0o600);
    this.fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  }
  /** Everything written so far. */
  read(): Buffer {
    const buf = Buffer.alloc(65536);
    try {
      return Buffer.from(buf.subarray(0, fs.readSync(this.fd, buf)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return Buffer.alloc(0);
      throw err;
    }
  }
  close(): void { fs.closeSync(this.fd); }
}

let fifo: Fifo;
before(() => { fifo = new Fifo(path.join(work, 'fifo')); });
after(() => { fifo.close(); });

/** Decodes one request from the FIFO, checking it is exactly one. */
function oneRequest(bytes: Buffer): { action: string; delayMs: number; graceMs: number; raw: Buffer } {
  assert.equal(bytes.length, 17, `expected one 17-byte request, got ${bytes.toString('hex')}`);
  const items = new ShutdownRequestDecoder().push(bytes);
  assert.equal(items.length, 1);
  const item = items[0]!;
  assert.equal(item.kind, 'shutdown');
  if (item.kind !== 'shutdown') throw new Error('unreachable');
  return { action: item.action, delayMs: item.delayMs, graceMs: item.graceMs, raw: bytes };
}

// --- t6-shutdown ------------------------------------------------------------------------

test('shutdown -p +1: p, a delay of exactly 60 s, grace 0 (the daemon default)', () => {
  const r = cli('shutdown', ['--fifo', fifo.path, '-p', '+1']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(fifo.read().toString('hex'), `70${'000000000000003c'}${'00000000'}${'00000000'}`);
});

test('shutdown now (no action): S with delay 0; -r 5: r in 300 s', () => {
  assert.equal(cli('shutdown', ['--fifo', fifo.path, 'now']).status, 0);
  assert.deepEqual(oneRequest(fifo.read()).raw, Buffer.from(`53${'00'.repeat(16)}`, 'hex'));
  assert.equal(cli('shutdown', ['--fifo', fifo.path, '-r', '5']).status, 0);
  const req = oneRequest(fifo.read());
  assert.equal(req.action, 'r');
  assert.equal(req.delayMs, 300_000);
});

test('shutdown -h hh:mm: the delay to the next time the local clock shows hh:mm', () => {
  const target = new Date(Date.now() + 2 * 3_600_000 + 17 * 60_000);
  target.setSeconds(0, 0);
  const hhmm = `${target.getHours()}:${String(target.getMinutes()).padStart(2, '0')}`;
  const before = Date.now();
  const r = cli('shutdown', ['--fifo', fifo.path, '-h', hhmm]);
  const afterRun = Date.now();
  assert.equal(r.status, 0, r.stderr);
  const req = oneRequest(fifo.read());
  assert.equal(req.action, 'h');
  assert.ok(req.delayMs <= target.getTime() - before && req.delayMs >= target.getTime() - afterRun, `${req.delayMs} for ${hhmm}`);
  // One minute ago is tomorrow.
  const past = new Date(Date.now() - 60_000);
  const r2 = cli('shutdown', ['--fifo', fifo.path, '-h', `${past.getHours()}:${String(past.getMinutes()).padStart(2, '0')}`]);
  assert.equal(r2.status, 0, r2.stderr);
  const d = oneRequest(fifo.read()).delayMs;
  assert.ok(d > 22 * 3_600_000 && d <= 24 * 3_600_000, `${d}`);
});

test('-h -P powers off, -h -H halts; -H or -P without -h is a usage error', () => {
  assert.equal(cli('shutdown', ['--fifo', fifo.path, '-h', '-P', 'now']).status, 0);
  assert.equal(oneRequest(fifo.read()).action, 'p');
  assert.equal(cli('shutdown', ['--fifo', fifo.path, '-hH', 'now']).status, 0);
  assert.equal(oneRequest(fifo.read()).action, 'h');
  const r = cli('shutdown', ['--fifo', fifo.path, '-p', '-H', 'now']);
  assert.equal(r.status, 100);
  assert.match(r.stderr, /^t6-shutdown: usage: /);
  assert.equal(fifo.read().length, 0);
});

test('-t 5 sends a grace of 5000 ms; -t 400 is capped to 300,000 ms with a warning', () => {
  let r = cli('shutdown', ['--fifo', fifo.path, '-r', '-t', '5', 'now']);
  assert.equal(r.status, 0);
  assert.equal(r.stderr, '');
  assert.equal(oneRequest(fifo.read()).graceMs, 5000);
  r = cli('shutdown', ['--fifo', fifo.path, '-r', '-t400', 'now']);
  assert.equal(r.status, 0);
  assert.match(r.stderr, /warning: delay between SIGTERM and SIGKILL is capped to 300 seconds/);
  assert.equal(oneRequest(fifo.read()).graceMs, 300_000);
  assert.equal(cli('shutdown', ['--fifo', fifo.path, '-t', 'x', 'now']).status, 100);
});

test('-c sends the single byte c; -k sends nothing; -f and -F are accepted', () => {
  assert.equal(cli('shutdown', ['--fifo', fifo.path, '-c', 'never mind']).status, 0);
  assert.equal(fifo.read().toString('latin1'), 'c');
  assert.equal(cli('shutdown', ['--fifo', fifo.path, '-k', 'now']).status, 0);
  assert.equal(fifo.read().length, 0);
  assert.equal(cli('shutdown', ['--fifo', fifo.path, '-fF', '-p', 'now']).status, 0);
  assert.equal(oneRequest(fifo.read()).action, 'p');
});

test('a missing or invalid time: exit 100, nothing sent', () => {
  let r = cli('shutdown', ['--fifo', fifo.path, '-p']);
  assert.equal(r.status, 100);
  assert.match(r.stderr, /usage:/);
  for (const bad of ['soon', '25:00', '12:7', '+x']) {
    r = cli('shutdown', ['--fifo', fifo.path, '-p', bad]);
    assert.equal(r.status, 100, bad);
    assert.equal(r.stderr, `t6-shutdown: fatal: invalid time format: ${bad}\n`);
  }
  assert.equal(fifo.read().length, 0);
});

test('the FIFO comes from T6_SHUTDOWND_FIFO when --fifo is not given', () => {
  assert.equal(cli('shutdown', ['-r', 'now'], { T6_SHUTDOWND_FIFO: fifo.path }).status, 0);
  assert.equal(oneRequest(fifo.read()).action, 'r');
});

test('nobody reading the FIFO, or no FIFO: exit 111, "unable to talk to shutdownd"', () => {
  const lonely = path.join(work, 'lonely');
  mkfifo(lonely, 0o600);
  let r = cli('shutdown', ['--fifo', lonely, '-p', 'now']);
  assert.equal(r.status, 111);
  assert.match(r.stderr, /^t6-shutdown: fatal: unable to talk to shutdownd: .*lonely: nobody is reading it/);
  r = cli('shutdown', ['--fifo', path.join(work, 'absent'), '-c']);
  assert.equal(r.status, 111);
  assert.match(r.stderr, /unable to talk to shutdownd: open .*absent: No such file or directory/);
});

/** A utmp with these USER_PROCESS users. */
function writeUtmp(file: string, users: string[]): void {
  fs.writeFileSync(file, Buffer.concat(users.map((u, i) => {
    const b = Buffer.alloc(UTMP_RECORD_SIZE);
    b.writeInt16LE(7, 0);
    b.write(`ttyX${i}`, 8);
    b.write(u, 44);
    return b;
  })));
}

test('-a with a shutdown.allow: refused (exit 1, nothing sent) unless a listed user is logged in', () => {
  const allow = path.join(work, 'shutdown.allow');
  const utmp = path.join(work, 'utmp-a');
  fs.writeFileSync(allow, '# who may\nalice\n');
  writeUtmp(utmp, ['bob']);
  const env = { T6_SHUTDOWN_ALLOW: allow, T6_UTMP: utmp };
  let r = cli('shutdown', ['--fifo', fifo.path, '-a', '-p', 'now'], env);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 't6-shutdown: fatal: no authorized users logged in\n');
  assert.equal(fifo.read().length, 0);
  // Without -a the file does not matter.
  assert.equal(cli('shutdown', ['--fifo', fifo.path, '-p', 'now'], env).status, 0);
  assert.equal(oneRequest(fifo.read()).action, 'p');
  writeUtmp(utmp, ['bob', 'alice']);
  r = cli('shutdown', ['--fifo', fifo.path, '-a', '-r', 'now'], env);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(oneRequest(fifo.read()).action, 'r');
  // No access file: allowed.
  assert.equal(cli('shutdown', ['--fifo', fifo.path, '-a', '-h', 'now'], { T6_UTMP: utmp }).status, 0);
  assert.equal(oneRequest(fifo.read()).action, 'h');
});

test('-i without a terminal is refused (exit 100) before anything is sent', () => {
  const r = cli('shutdown', ['--fifo', fifo.path, '-i', '-p', 'now']);
  assert.equal(r.status, 100);
  assert.match(r.stderr, /stdin or stdout is not a tty/);
  assert.equal(fifo.read().length, 0);
});

test('--help describes the command and exits 0', () => {
  for (const name of ['shutdown', 'hpr', 'telinit']) {
    const r = cli(name, ['--help']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^usage: t6-/);
  }
});

// --- t6-hpr -----------------------------------------------------------------------------

// reboot(2) from a process of a non-initial pid namespace does not touch the machine: the
// kernel kills that namespace's pid 1 with SIGINT (halt, power off) or SIGHUP (restart).
// The shell checks it is pid 1 of a pid namespace other than ours before exec'ing t6-hpr.
const hostPidNs = fs.readlinkSync('/proc/self/ns/pid');
function hprAsNamespaceInit(opts: string): Ran {
  const guard = `[ "$$" = 1 ] && [ "$(readlink /proc/self/ns/pid)" != '${hostPidNs}' ] || exit 99; exec '${BIN}/t6-hpr' ${opts}`;
  const r = spawnSync('unshare', ['--pid', '--fork', '--kill-child', 'sh', '-c', guard], { encoding: 'utf8', env: { ...process.env, ...quietEnv } });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

test('hpr -h / -p / -r: the command now, grace 0', () => {
  for (const [opt, byte] of [['-h', '68'], ['-p', '70'], ['-r', '72']] as const) {
    const r = cli('hpr', ['--fifo', fifo.path, opt]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fifo.read().toString('hex'), `${byte}${'00'.repeat(16)}`);
  }
});

test('hpr needs one of -h -p -r (exit 100), also with -f: nothing is sent and nothing reboots', () => {
  for (const args of [[], ['-W', '-d']]) {
    const r = cli('hpr', ['--fifo', fifo.path, ...args]);
    assert.equal(r.status, 100, args.join(' '));
    assert.equal(r.stderr, 't6-hpr: fatal: one of the -h, -p or -r options must be given\n');
  }
  // With -f, inside a pid namespace: should a change ever make it call reboot(2), only the
  // namespace would die (a signal instead of exit 100), never this machine.
  for (const opts of ['-f', '-fn']) {
    const r = hprAsNamespaceInit(opts);
    assert.equal(r.status, 100, JSON.stringify(r));
    assert.equal(r.stderr, 't6-hpr: fatal: one of the -h, -p or -r options must be given\n');
  }
  const r = cli('hpr', ['--fifo', fifo.path, '-x']);
  assert.equal(r.status, 100);
  assert.match(r.stderr, /^t6-hpr: usage: /);
  assert.equal(fifo.read().length, 0);
});

test('hpr without a listening daemon exits 100 (s6-linux-init-hpr), without -f it never calls reboot', () => {
  const r = cli('hpr', ['--fifo', path.join(work, 'absent'), '-p']);
  assert.equal(r.status, 100);
  assert.match(r.stderr, /unable to talk to shutdownd/);
});

test('hpr writes the RUN_LVL record to an existing wtmp (not with -d); -w writes only that', () => {
  const wtmp = path.join(work, 'wtmp');
  fs.writeFileSync(wtmp, '');
  assert.equal(cli('hpr', ['--fifo', fifo.path, '-r'], { T6_WTMP: wtmp }).status, 0);
  assert.equal(oneRequest(fifo.read()).action, 'r');
  assert.equal(cli('hpr', ['--fifo', fifo.path, '-p', '-d'], { T6_WTMP: wtmp }).status, 0);
  assert.equal(oneRequest(fifo.read()).action, 'p');
  assert.equal(cli('hpr', ['--fifo', fifo.path, '-h', '-w'], { T6_WTMP: wtmp }).status, 0);
  assert.equal(fifo.read().length, 0);
  const recs = decodeUtmp(fs.readFileSync(wtmp));
  assert.deepEqual(recs.map((e) => [e.type, e.line, e.user]), [[1, '~', 'reboot'], [1, '~', 'shutdown']]);
});

test('hpr warns logged-in users on their terminals, unless -W', () => {
  // A logged-in user on tty63 whose "terminal" is a file: bound over /dev/tty63 in a private
  // mount namespace, so that no real terminal is written to.
  const utmp = path.join(work, 'utmp-wall');
  const term = path.join(work, 'tty63');
  const b = Buffer.alloc(UTMP_RECORD_SIZE);
  b.writeInt16LE(7, 0);
  b.write('tty63', 8);
  b.write('root', 44);
  fs.writeFileSync(utmp, b);
  const hprInNs = (opts: string): Ran => {
    const r = spawnSync('unshare', ['--mount', 'sh', '-c', `mount --bind '${term}' /dev/tty63 && exec '${BIN}/t6-hpr' --fifo '${fifo.path}' ${opts}`],
      { encoding: 'utf8', env: { ...process.env, ...quietEnv, T6_UTMP: utmp } });
    return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  };
  fs.writeFileSync(term, '');
  let r = hprInNs('-p');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(fs.readFileSync(term, 'utf8'), '\n\n*** WARNING ***\nThe system is going down NOW!\n');
  assert.equal(oneRequest(fifo.read()).action, 'p');
  fs.writeFileSync(term, '');
  r = hprInNs('-p -W');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(fs.readFileSync(term, 'utf8'), '');
  assert.equal(oneRequest(fifo.read()).action, 'p');
});

test('shutdown warns with the time left, or with the message given; -c with a message warns too', () => {
  const utmp = path.join(work, 'utmp-wall');
  const term = path.join(work, 'tty63');
  const shutdownInNs = (args: string): Ran => {
    fs.writeFileSync(term, '');
    const r = spawnSync('unshare', ['--mount', 'sh', '-c', `mount --bind '${term}' /dev/tty63 && exec '${BIN}/t6-shutdown' --fifo '${fifo.path}' ${args}`],
      { encoding: 'utf8', env: { ...process.env, ...quietEnv, T6_UTMP: utmp } });
    return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  };
  assert.equal(shutdownInNs('-k +90').status, 0);
  assert.equal(fs.readFileSync(term, 'utf8'), '\n\n*** WARNING ***\nThe system is going down in 1 hours 30 minutes!\n');
  assert.equal(shutdownInNs("-r now 'back in 5'").status, 0);
  assert.equal(fs.readFileSync(term, 'utf8'), 'back in 5\n');
  assert.equal(oneRequest(fifo.read()).action, 'r');
  assert.equal(shutdownInNs("-c 'cancelled'").status, 0);
  assert.equal(fs.readFileSync(term, 'utf8'), 'cancelled\n');
  assert.equal(fifo.read().toString('latin1'), 'c');
});

test('hpr -f -p as pid 1 of a pid namespace: reboot(2) ends that namespace with SIGINT', () => {
  const r = hprAsNamespaceInit('-f -p');
  assert.notEqual(r.status, 99, 'not in a fresh pid namespace: t6-hpr was not run');
  assert.equal(r.signal, 'SIGINT', JSON.stringify(r));
});

test('hpr -f -n -r as pid 1 of a pid namespace: SIGHUP (restart); -f -n -h: SIGINT', () => {
  let r = hprAsNamespaceInit('-fnr');
  assert.equal(r.signal, 'SIGHUP', JSON.stringify(r));
  r = hprAsNamespaceInit('-f -n -h');
  assert.equal(r.signal, 'SIGINT', JSON.stringify(r));
});

// --- t6-telinit -------------------------------------------------------------------------

test('telinit runs BASEDIR/scripts/runlevel RL through a real t6-svscan and exits with its code', async () => {
  const sd = tmpdir();
  const base = tmpdir();
  const out = path.join(base, 'runlevel.out');
  fs.mkdirSync(path.join(base, 'scripts'));
  // Exit 3 unless asked for 0; signal itself for "kill"; record the argument and the parent.
  fs.writeFileSync(path.join(base, 'scripts', 'runlevel'), `#!/bin/sh
echo "$1 $PPID" >> '${out}'
[ "$1" = kill ] && kill -TERM $$
[ "$1" = 0 ] && exit 0
exit 3
`, { mode: 0o755 });
  // A shutdown FIFO where t6-hpr (after telinit 0) expects it: a service that is down.
  makeService(path.join(sd, 's6-linux-init-shutdownd'), { run: '#!/bin/sh\nexec sleep 1000\n', down: true });
  const shutdownd = new Fifo(shutdowndFifo(sd));
  const tree = await Tree.start(sd);
  try {
    await until('the runner socket', () => fs.existsSync(path.join(sd, '.s6-svscan', 'run')));
    let r = await cliAsync('telinit', ['-c', base, '--scandir', sd, '2']);
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(fs.readFileSync(out, 'utf8').trim().split(' '), ['2', '1'], 'argument 2, run by pid 1 of the tree');

    r = await cliAsync('telinit', ['-c', base, '--scandir', sd, 'kill']);
    assert.equal(r.status, 128 + 15, r.stderr);

    // 6 with a failing runlevel change: its code, and no reboot request.
    r = await cliAsync('telinit', ['-c', base, '--scandir', sd, '6']);
    assert.equal(r.status, 3);
    assert.match(r.stderr, /runlevel 6 exited 3: not rebooting/);
    assert.equal(shutdownd.read().length, 0);

    // 0 that succeeds: then as t6-hpr -p. s6-linux-init's own options are ignored.
    r = await cliAsync('telinit', ['-c', base, '-m', '0022', '-p', '/bin', '-s', '/run/kenv', '-N', '--scandir', sd, '0']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(shutdownd.read().toString('hex'), `70${'00'.repeat(16)}`);
    assert.deepEqual(fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => l.split(' ')[0]), ['2', 'kill', '6', '0']);
  } finally {
    shutdownd.close();
    await tree.stop();
  }
});

test('telinit without a running t6-svscan: exit 111, naming the runner socket; no runlevel: usage', async () => {
  const r = await cliAsync('telinit', ['-c', work, '--scandir', path.join(work, 'no-scandir'), '3']);
  assert.equal(r.status, 111);
  assert.match(r.stderr, /^t6-telinit: fatal: unable to run .*\/scripts\/runlevel 3: unable to reach the oneshot runner/);
  assert.equal((await cliAsync('telinit', [])).status, 100);
});
