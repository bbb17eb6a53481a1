/**
 * The client commands' argument handling, messages and exit codes, run in-process against
 * fake service directories (a control FIFO the test reads, a status file it writes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { type CommandIo, FatalError, type Main, UsageError } from '../../src/cli/_run.ts';
import { main as svc } from '../../src/cli/svc.ts';
import { main as svstat } from '../../src/cli/svstat.ts';
import { main as svwait } from '../../src/cli/svwait.ts';
import { main as svok } from '../../src/cli/svok.ts';
import { main as svscanctl } from '../../src/cli/svscanctl.ts';
import { encodeStatus } from '../../src/s6/status.ts';
import { tainFromUnixMs } from '../../src/s6/tai.ts';
import { O_NONBLOCK, O_RDONLY, close, mkfifo, open, readNonblocking } from '../../src/sys/fd.ts';
import { tmpdir } from '../lib/harness.ts';
import { assertValid, loadSchema } from '../lib/jsonschema.ts';
import { type ServiceJson, unknownService } from '../../src/s6/servicejson.ts';

const SERVICE = loadSchema('service');

/** Runs a command as runMain would: exit code, stdout, stderr. */
async function cli(prog: string, main: Main, args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CommandIo = { prog, out: (t) => { out += t; }, err: (t) => { err += t; } };
  try {
    return { code: await main(args, io), out, err };
  } catch (e) {
    if (e instanceof UsageError) return { code: 100, out, err: `${err}${prog}: usage: ${e.message}\n` };
    if (e instanceof FatalError) return { code: e.exitCode, out, err: `${err}${prog}: fatal: ${e.message}\n` };
    throw e;
  }
}

/** A service directory whose control FIFO the test reads (a "listening supervisor"). */
function listeningService(base: string, name: string, pid = 0): { dir: string; read(): string; close(): void } {
  const dir = path.join(base, name);
  fs.mkdirSync(path.join(dir, 'supervise'), { recursive: true });
  const now = tainFromUnixMs(Date.now());
  fs.writeFileSync(path.join(dir, 'supervise', 'status'), encodeStatus({
    stamp: now, readyStamp: now, pid, wstat: 0, paused: false, finishing: false, wantUp: true, ready: false,
  }));
  mkfifo(path.join(dir, 'supervise', 'control'), 0o600);
  const fd = open(path.join(dir, 'supervise', 'control'), O_RDONLY | O_NONBLOCK);
  return { dir, read: () => readNonblocking(fd)?.toString('latin1') ?? '', close: () => close(fd) };
}

test('t6-svc sends the letters in command-line order, -s mapped to its letter', async () => {
  const base = tmpdir();
  const s = listeningService(base, 'a');
  try {
    assert.deepEqual(await cli('t6-svc', svc, ['-dx', '-s', 'SIGHUP', '-s', '9', '-sstop', '-P', '-l', '--', s.dir]), { code: 0, out: '', err: '' });
    assert.equal(s.read(), 'dxhkpPl');
  } finally {
    s.close();
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('t6-svc with several directories goes on after a failure and exits with the last failure code', async () => {
  const base = tmpdir();
  const a = listeningService(base, 'a');
  const b = listeningService(base, 'b');
  fs.mkdirSync(path.join(base, 'lonely'));
  try {
    const r = await cli('t6-svc', svc, ['-u', path.join(base, 'lonely'), a.dir, path.join(base, 'missing'), b.dir]);
    assert.equal(r.code, 111);
    assert.equal(r.err,
      `t6-svc: warning: unable to control ${path.join(base, 'lonely')}: supervisor not listening\n` +
      `t6-svc: warning: unable to control ${path.join(base, 'missing')}: No such file or directory\n`);
    assert.equal(a.read(), 'u');
    assert.equal(b.read(), 'u');
    assert.equal((await cli('t6-svc', svc, ['-u', a.dir, path.join(base, 'lonely')])).code, 102);
  } finally {
    a.close();
    b.close();
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('t6-svc refuses bad command lines with s6s messages and exit 100', async () => {
  const usage = /^t6-svc: usage: t6-svc \[ -wu \| -wU/;
  assert.match((await cli('t6-svc', svc, [])).err, usage);
  assert.match((await cli('t6-svc', svc, ['-u'])).err, usage);
  assert.match((await cli('t6-svc', svc, ['-Z', 'x'])).err, usage);
  assert.match((await cli('t6-svc', svc, ['-wz', 'x'])).err, usage);
  assert.match((await cli('t6-svc', svc, ['-T', 'soon', 'x'])).err, usage);
  assert.deepEqual(await cli('t6-svc', svc, ['-s', 'SEGV', 'x']), { code: 100, out: '', err: 't6-svc: fatal: SEGV is not in the list of user-available signals\n' });
  assert.deepEqual(await cli('t6-svc', svc, ['-s', 'NOPE', 'x']), { code: 100, out: '', err: 't6-svc: fatal: invalid signal: NOPE\n' });
  assert.deepEqual(await cli('t6-svc', svc, ['-u', '']), { code: 100, out: '', err: 't6-svc: fatal: invalid service path\n' });
  assert.deepEqual(await cli('t6-svc', svc, [`-${'u'.repeat(62)}`, 'x']), { code: 111, out: '', err: 't6-svc: fatal: unable to control x: No such file or directory\n' });
  assert.deepEqual(await cli('t6-svc', svc, [`-${'u'.repeat(63)}`, 'x']), { code: 100, out: '', err: 't6-svc: fatal: too many commands\n' });
  const help = await cli('t6-svc', svc, ['--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /^usage: t6-svc/);
});

test('t6-svc -wu with a command subscribes, sends, and waits; -T bounds it', async () => {
  const base = tmpdir();
  const s = listeningService(base, 'a');
  try {
    const r = await cli('t6-svc', svc, ['-T', '200', '-wu', '-u', s.dir]);
    assert.deepEqual(r, { code: 99, out: '', err: 't6-svc: fatal: timed out\n' });
    assert.equal(s.read(), 'u', 'the command was sent after subscribing');
    assert.deepEqual(fs.readdirSync(path.join(s.dir, 'event')), [], 'the listener is gone');
    const lonely = path.join(base, 'lonely');
    fs.mkdirSync(path.join(lonely, 'supervise'), { recursive: true });
    fs.copyFileSync(path.join(s.dir, 'supervise', 'status'), path.join(lonely, 'supervise', 'status'));
    const r2 = await cli('t6-svc', svc, ['-T', '2000', '-wu', '-u', lonely]);
    assert.deepEqual(r2, { code: 1, out: '', err: `t6-svc: fatal: something is wrong with the ${lonely}/supervise directory: No such file or directory\n` });
  } finally {
    s.close();
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('t6-svwait: no directory is success, a bad -t is usage, a missing status is 111', async () => {
  assert.equal((await cli('t6-svwait', svwait, [])).code, 0);
  assert.equal((await cli('t6-svwait', svwait, ['-t', 'x', 'd'])).code, 100);
  const base = tmpdir();
  try {
    const r = await cli('t6-svwait', svwait, ['-u', base]);
    assert.equal(r.code, 111);
    assert.match(r.err, /^t6-svwait: fatal: unable to read status for .*: No such file or directory\n$/);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('t6-svstat: fields, too many fields, -a text and JSON', async () => {
  const base = tmpdir();
  const s = listeningService(base, 'svc', 77);
  try {
    assert.deepEqual(await cli('t6-svstat', svstat, ['-upg', '-o', 'wantedup,ready', s.dir]), { code: 0, out: 'true 77 77 true false\n', err: '' });
    assert.match((await cli('t6-svstat', svstat, [s.dir])).out, /^up \(pid 77\) \d+ seconds\n$/);
    const json = JSON.parse((await cli('t6-svstat', svstat, ['--json', s.dir])).out) as ServiceJson;
    assertValid(SERVICE, json, 't6-svstat --json');
    assert.deepEqual([json.name, json.state, json.pid, json.deathTally], ['svc', 'up', 77, 0]);
    assert.equal((await cli('t6-svstat', svstat, ['-uuuuuuuuuuuuuuuu', s.dir])).code, 0);
    assert.deepEqual(await cli('t6-svstat', svstat, ['-uuuuuuuuuuuuuuuuu', s.dir]), { code: 100, out: '', err: 't6-svstat: fatal: too many option fields\n' });
    assert.deepEqual(await cli('t6-svstat', svstat, ['-o', ',', s.dir]), { code: 100, out: '', err: 't6-svstat: fatal: invalid null option field\n' });
    const all = await cli('t6-svstat', svstat, ['-a', base, '-o', 'up,pid']);
    assert.deepEqual(all, { code: 0, out: 'svc: true 77\n', err: '' });
    const allJson = JSON.parse((await cli('t6-svstat', svstat, ['--json', '-a', base])).out) as ServiceJson[];
    assert.deepEqual(allJson.map((e) => [e.name, e.pid]), [['svc', 77]]);
    for (const e of allJson) assertValid(SERVICE, e, 't6-svstat -a --json');
    assert.equal((await cli('t6-svstat', svstat, ['-a', path.join(base, 'nope')])).code, 111);
  } finally {
    s.close();
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test("t6-svstat on what t6-svscan does itself (the catch-all logger, the shutdown daemon): said so, not 'not supervised'", async () => {
  // As t6-linux-init-maker lays them out in /run/service.
  const base = tmpdir();
  try {
    fs.mkdirSync(path.join(base, 's6-svscan-log'));
    fs.writeFileSync(path.join(base, 's6-svscan-log', 't6-log'), 't\n/run/uncaught-logs\n');
    fs.mkdirSync(path.join(base, 's6-linux-init-shutdownd'));
    mkfifo(path.join(base, 's6-linux-init-shutdownd', 'fifo'), 0o600);
    fs.mkdirSync(path.join(base, 'gone'));
    fs.writeFileSync(path.join(base, 'gone', 'run'), '#!/bin/sh\n', { mode: 0o755 });
    assert.deepEqual(await cli('t6-svstat', svstat, ['-a', base]), {
      code: 0, err: '',
      out: 'gone: not supervised\n'
        + 's6-linux-init-shutdownd: the shutdown daemon inside t6-svscan (its fifo), not a supervised process\n'
        + 's6-svscan-log: a logger inside t6-svscan (by its t6-log file), not a supervised process\n',
    });
    const json = JSON.parse((await cli('t6-svstat', svstat, ['--json', '-a', base])).out) as ServiceJson[];
    assert.deepEqual(json, [
      { ...unknownService('gone', 'longrun', 'none'), normallyUp: true },
      { ...unknownService('s6-linux-init-shutdownd', 'inside-scanner', 'none'), insideScanner: 'shutdownd' },
      { ...unknownService('s6-svscan-log', 'inside-scanner', 'none'), insideScanner: 'logger' },
    ]);
    for (const e of json) assertValid(SERVICE, e, 't6-svstat -a --json');
    assert.deepEqual(await cli('t6-svstat', svstat, [path.join(base, 's6-linux-init-shutdownd')]), {
      code: 1, out: '', err: `t6-svstat: fatal: ${base}/s6-linux-init-shutdownd: the shutdown daemon inside t6-svscan (its fifo), not a supervised process: no status of its own\n`,
    });
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('t6-svok and t6-svscanctl: exit codes', async () => {
  const base = tmpdir();
  try {
    assert.equal((await cli('t6-svok', svok, [base])).code, 1);
    assert.equal((await cli('t6-svok', svok, [])).code, 100);
    fs.mkdirSync(path.join(base, '.s6-svscan'));
    mkfifo(path.join(base, '.s6-svscan', 'control'), 0o600);
    assert.deepEqual(await cli('t6-svscanctl', svscanctl, ['-an', base]), { code: 102, out: '', err: `t6-svscanctl: fatal: unable to control ${base}: supervisor not listening\n` });
    const fd = open(path.join(base, '.s6-svscan', 'control'), O_RDONLY | O_NONBLOCK);
    assert.equal((await cli('t6-svscanctl', svscanctl, ['-an', base])).code, 0);
    assert.equal(readNonblocking(fd)?.toString(), 'an');
    close(fd);
    assert.equal((await cli('t6-svscanctl', svscanctl, ['-p', base])).code, 100);
    fs.rmSync(path.join(base, '.s6-svscan', 'control'));
    assert.deepEqual(await cli('t6-svscanctl', svscanctl, ['-a', base]), {
      code: 1, out: '', err: `t6-svscanctl: fatal: something is wrong with the ${base}/.s6-svscan directory. errno reported: No such file or directory\n`,
    });
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});
