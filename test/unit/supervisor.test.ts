/**
 * The Supervisor state machine with a fake host (test/lib/supervisorhost.ts): no process is
 * started, the clock and timers are simulated, so each rule of supervise-protocol.md §3 and
 * servicedir.md §4–8 is checked in milliseconds. Files (status, events) are real, in a temp
 * directory.
 */
import { test, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ACTIONS, Supervisor } from '../../src/supervise/supervisor.ts';
import { SUPERVISE_COMMANDS } from '../../src/s6/control.ts';
import { decodeStatus } from '../../src/s6/status.ts';
import { decodeDeathTally } from '../../src/s6/deathtally.ts';
import { tmpdir } from '../lib/harness.ts';
import { FakeFiles, FakeHost } from '../lib/supervisorhost.ts';
import { SysError } from '../../src/sys/errors.ts';
import { mkfifo } from '../../src/sys/fd.ts';

const open: Supervisor[] = [];
// Every supervisor holds its control FIFO open; end them all so the test process can exit.
afterEach(() => { for (const sup of open.splice(0)) sup.request('quit'); });

function setup(files: Record<string, string> = {}, opts: { finish?: string; down?: boolean; host?: FakeHost } = {}) {
  const dir = path.join(tmpdir(), 'svc');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'run'), '#!/bin/sh\n', { mode: 0o755 });
  if (opts.finish !== undefined) fs.writeFileSync(path.join(dir, 'finish'), opts.finish, { mode: 0o755 });
  if (opts.down === true) fs.writeFileSync(path.join(dir, 'down'), '');
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  const host = opts.host ?? new FakeHost();
  const sup = Supervisor.open('svc', dir, host);
  open.push(sup);
  const status = () => decodeStatus(fs.readFileSync(path.join(dir, 'supervise/status')))!;
  return { dir, host, sup, status };
}

const EXIT = (code: number): number => code << 8;

test('the table has a cell for every state and every control byte, and only known actions', () => {
  for (const [state, row] of Object.entries(ACTIONS)) {
    for (const byte of SUPERVISE_COMMANDS) assert.ok(byte in row, `${state} lacks ${byte}`);
    for (const input of ['timeout', 'death', 'term', 'hup', 'quit']) assert.ok(input in row, `${state} lacks ${input}`);
  }
});

test('the table matches supervise-protocol.md §3.3 for the state-changing bytes', () => {
  // Transcribed from the spec's table, one string per state: o d u D U x O Q.
  const spec = {
    down: ['wantdownStart', 'wantdown', 'wantupStart', 'wantDOWN', 'wantUPstart', 'bail', 'wantdown', 'wantDOWN'],
    up: ['wantdown', 'stop', 'wantup', 'wantDOWNstop', 'wantUP', 'lastupClose', 'wantdown', 'wantDOWN'],
    finish: ['wantdown', 'wantdown', 'wantup', 'wantDOWN', 'wantUP', 'lastfinishClose', 'wantdown', 'wantDOWN'],
    lastup: ['wantdown', 'stop', 'wantup', 'wantDOWNstop', 'wantUP', 'close', 'wantdown', 'wantDOWN'],
    lastfinish: ['wantdown', 'wantdown', 'wantup', 'wantDOWN', 'wantUP', 'close', 'wantdown', 'wantDOWN'],
  } as const;
  for (const [state, actions] of Object.entries(spec)) {
    [...'oduDUxOQ'].forEach((byte, i) => assert.equal(ACTIONS[state as keyof typeof ACTIONS][byte as 'o'], actions[i], `${state}/${byte}`));
  }
  // Signal bytes act only while run lives (UP, LASTUP).
  for (const byte of 'abqhkti12y') {
    assert.equal(ACTIONS.up[byte as 'a'], 'sig');
    assert.equal(ACTIONS.lastup[byte as 'a'], 'sig');
    assert.equal(ACTIONS.down[byte as 'a'], 'nop');
    assert.equal(ACTIONS.finish[byte as 'a'], 'nop');
  }
});

test('at start: status written (down, ready, want up), event s, then run spawned with ./run NAME', () => {
  const { host, sup, status } = setup();
  assert.equal(host.eventText, 'su');
  assert.deepEqual(host.last().argv, ['./run', 'svc']);
  assert.equal(sup.state, 'up');
  const st = status();
  assert.equal(st.pid, 100);
  assert.equal(st.wantUp, true);
  assert.equal(st.ready, false);
});

test('a down file keeps the service down at start', () => {
  const { host, sup, status } = setup({}, { down: true });
  assert.equal(host.eventText, 's');
  assert.equal(sup.state, 'down');
  assert.equal(status().wantUp, false);
  assert.equal(status().ready, true);
});

test('in UP, d sends the down-signal then SIGCONT and clears want-up; no event until death', () => {
  const { host, sup, status } = setup({ 'down-signal': 'SIGUSR1\n' });
  sup.command('d');
  assert.deepEqual(host.kills, [[100, 10], [100, 18]]);
  assert.equal(status().wantUp, false);
  assert.equal(host.eventText, 'su');
  host.last().onExit(10); // killed by SIGUSR1
  assert.equal(host.eventText, 'sudD');
  assert.equal(sup.state, 'down');
  assert.equal(status().wstat, 10);
  host.advance(5000);
  assert.equal(host.spawned.length, 1, 'not restarted: want down');
});

test('moved (its directory renamed, the scanner says where to): status, settings, down file and run are found at the new path; a status write that failed meanwhile is done at once', () => {
  const { dir, host, sup } = setup({ 'down-signal': 'SIGUSR1\n' });
  const moved = `${dir}-moved`;
  fs.renameSync(dir, moved);
  sup.command('d'); // before the scanner has seen the rename: the status write fails
  assert.ok(host.reports.some((r) => r.startsWith(`warning: unable to write ${dir}/supervise/status`)), host.reports.join('\n'));
  sup.moveTo(moved);
  assert.equal(sup.dir, moved);
  const status = () => decodeStatus(fs.readFileSync(path.join(moved, 'supervise/status')))!;
  assert.equal(status().wantUp, false, 'written at once at the new path');
  assert.ok(host.reports.includes(`info: ${moved}/supervise/status is being written again`), host.reports.join('\n'));
  host.last().onExit(10);
  assert.equal(status().pid, 0);
  sup.command('U'); // removes the down file, starts run
  assert.equal(host.last().path, path.join(moved, 'run'));
  sup.command('D'); // creates the down file, stops with the down-signal read at the new path
  assert.ok(fs.existsSync(path.join(moved, 'down')));
  assert.deepEqual(host.kills.slice(-2), [[host.last().pid, 10], [host.last().pid, 18]]);
  const reports = host.reports.length;
  host.advance(1000); // the status retry armed by the failure finds nothing left to write
  assert.equal(host.reports.length, reports);
});

test('without readiness a dead service restarts one second after it went down', () => {
  const { host } = setup();
  host.last().onExit(EXIT(1));
  assert.equal(host.eventText, 'sudD');
  host.advance(999);
  assert.equal(host.spawned.length, 1);
  host.advance(1);
  assert.equal(host.spawned.length, 2);
  assert.equal(host.eventText, 'sudDu');
});

test('a service ready for more than a second restarts at once; one ready less than a second ago waits for that second', async () => {
  const { host } = setup({ 'notification-fd': '3\n' });
  const notify = async (text: string): Promise<void> => {
    const ready = host.nextEvent('U'); // the supervisor reads the pipe on a later turn of the loop
    const fd = host.last().childFds.get(3)!;
    fs.writeSync(fd, text);
    fs.closeSync(fd);
    await ready;
  };
  await notify('\n');
  assert.equal(host.eventText, 'suU');
  host.advance(1500);
  host.last().onExit(9);
  assert.equal(host.spawned.length, 2, 'restarted in the same turn');
  assert.equal(host.eventText, 'suUdDu');
  // Second life: ready at once, killed 300 ms later ⇒ waits until 1 s after readiness.
  await notify('ready\n');
  host.advance(300);
  host.last().onExit(9);
  assert.equal(host.spawned.length, 2);
  host.advance(699);
  assert.equal(host.spawned.length, 2);
  host.advance(2);
  assert.equal(host.spawned.length, 3);
});

test('idle: a service up and ready leaves no timer armed; a wait for the one-second rule or timeout-kill only until it ends', async () => {
  const { host, sup } = setup({ 'notification-fd': '3\n', 'timeout-kill': '500\n' });
  assert.deepEqual(host.liveTimers(), [], 'up, not yet ready');
  const ready = host.nextEvent('U');
  const fd = host.last().childFds.get(3)!;
  fs.writeSync(fd, '\n');
  fs.closeSync(fd);
  await ready;
  assert.deepEqual(host.liveTimers(), [], 'up and ready');
  host.advance(300);
  host.last().onExit(9);
  assert.equal(host.liveTimers().length, 1, 'the restart waits for the second since readiness');
  host.advance(700);
  assert.equal(host.spawned.length, 2);
  assert.deepEqual(host.liveTimers(), [], 'up again');
  sup.command('d');
  assert.equal(host.liveTimers().length, 1, 'timeout-kill');
  host.last().onExit(15);
  assert.deepEqual(host.liveTimers(), [], 'down: nothing left to wait for');
});

test('finish runs with exit code, signal, name and pid; exit 125 gives O then D and clears want-up', () => {
  const { host, sup, status } = setup({}, { finish: '#!/bin/sh\n' });
  host.last().onExit(EXIT(3));
  const fin = host.last();
  assert.deepEqual(fin.argv, ['./finish', '3', '0', 'svc', '100']);
  assert.equal(sup.state, 'finish');
  assert.equal(status().pid, fin.pid, 'status shows the finish pid');
  assert.equal(status().finishing, true);
  assert.equal(host.eventText, 'sud');
  fin.onExit(EXIT(125));
  assert.equal(host.eventText, 'sudOD');
  assert.equal(status().wantUp, false);
  assert.equal(status().ready, true);
  host.advance(10_000);
  assert.equal(host.spawned.length, 2, 'no restart after a permanent failure');
});

test('a signal death gives finish 256 and the signal number', () => {
  const { host } = setup({}, { finish: '#!/bin/sh\n' });
  host.last().onExit(15);
  assert.deepEqual(host.last().argv.slice(1, 4), ['256', '15', 'svc']);
});

test('timeout-finish kills finish with SIGCONT+SIGKILL and re-arms', () => {
  const { host } = setup({ 'timeout-finish': '200\n' }, { finish: '#!/bin/sh\n' });
  host.last().onExit(EXIT(0));
  const fin = host.last().pid;
  host.advance(199);
  assert.deepEqual(host.kills, []);
  host.advance(1);
  assert.deepEqual(host.kills, [[fin, 18], [fin, 9]]);
  assert.match(host.reports.join('\n'), /finish script lifetime reached maximum value/);
});

test('timeout-kill: SIGKILL after the delay if the service ignores its down-signal', () => {
  const { host, sup } = setup({ 'timeout-kill': '300\n' });
  sup.command('d');
  host.advance(299);
  assert.equal(host.kills.length, 2);
  host.advance(1);
  assert.deepEqual(host.kills.slice(2), [[100, 9], [100, 18]]);
});

test('x in UP: the supervisor ends once the service is down, and never restarts it', () => {
  const { host, sup } = setup();
  sup.command('x');
  assert.equal(sup.state, 'lastup');
  assert.equal(host.exitedCount, 0);
  host.last().onExit(EXIT(0));
  assert.equal(sup.state, 'gone');
  assert.equal(host.exitedCount, 1);
  assert.equal(host.eventText, 'sudDx');
  host.advance(5000);
  assert.equal(host.spawned.length, 1);
});

test('term from the scanner in UP: down-signal, then exit after death (s6-svc -xd)', () => {
  const { host, sup } = setup();
  sup.request('term');
  assert.deepEqual(host.kills, [[100, 15], [100, 18]]);
  host.last().onExit(15);
  assert.equal(sup.state, 'gone');
});

test('D creates ./down and stops; U removes it and starts', () => {
  const { host, sup, dir } = setup();
  sup.command('D');
  assert.ok(fs.existsSync(path.join(dir, 'down')));
  host.last().onExit(15);
  sup.command('U');
  assert.ok(!fs.existsSync(path.join(dir, 'down')));
  assert.equal(host.spawned.length, 2);
});

test('p and c pause and continue, with the paused flag in status', () => {
  const { host, sup, status } = setup();
  sup.command('p');
  assert.equal(status().paused, true);
  sup.command('c');
  assert.equal(status().paused, false);
  assert.deepEqual(host.kills, [[100, 19], [100, 18]]);
});

test('unknown bytes are ignored; several commands in one write run in order', () => {
  const { host, sup, status } = setup();
  sup.command('\u0000zZ!dO');
  assert.equal(status().wantUp, false);
  assert.deepEqual(host.kills, [[100, 15], [100, 18]]);
});

test('a spawn failure keeps the service down, says why, and retries in 10 seconds', () => {
  const { host, sup } = setup({}, { down: true });
  host.failSpawn = 'ENOENT';
  fs.rmSync(path.join(sup.dir, 'run'));
  sup.command('u');
  assert.equal(sup.state, 'down');
  assert.match(host.reports.join('\n'), /unable to spawn .*\/run: no such file - waiting 10 seconds/);
  host.failSpawn = undefined;
  host.advance(10_000);
  assert.equal(sup.state, 'up');
});

test('a spawn that fails for lack of fds is tried again half a second later', () => {
  const { host, sup } = setup({}, { down: true });
  host.failSpawn = 'EMFILE';
  sup.command('u');
  assert.equal(sup.state, 'down');
  assert.match(host.reports.join('\n'), /unable to spawn .*\/run: Too many open files - waiting 0.5 seconds/);
  host.failSpawn = undefined;
  host.advance(499);
  assert.equal(sup.state, 'down');
  host.advance(1);
  assert.equal(sup.state, 'up');
});

test('death tally: one 14-byte record per death, exit code or 128+signal, capped by max-death-tally', () => {
  const { host, dir } = setup({ 'max-death-tally': '2\n' });
  host.last().onExit(EXIT(3));
  host.advance(1000);
  host.last().onExit(9);
  host.advance(1000);
  host.last().onExit(EXIT(4));
  const records = decodeDeathTally(fs.readFileSync(path.join(dir, 'supervise/death_tally')));
  assert.deepEqual(records.map((r) => [r.exitCode, r.signal]), [[137, 9], [4, 0]]);
});

test('notification-fd equal to lock-fd: not started, and said so', () => {
  const { host, sup } = setup({ 'notification-fd': '4\n', 'lock-fd': '4\n' }, { down: true });
  sup.command('u');
  assert.equal(host.spawned.length, 0);
  assert.match(host.reports.join('\n'), /notification-fd and lock-fd are both 4/);
});

test('the state changes in one place: #enter is the only assignment of #state', () => {
  const source = fs.readFileSync(new URL('../../src/supervise/supervisor.ts', import.meta.url), 'utf8');
  const assignments = [...source.matchAll(/#state\s*=(?!=)/g)];
  assert.equal(assignments.length, 1);
  const enter = source.indexOf('#enter(next: ');
  assert.ok(enter >= 0 && assignments[0]!.index > enter && assignments[0]!.index < source.indexOf('\n  }', enter), 'the assignment is inside #enter');
});

/** How many fds this process has open. */
function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

test('while taking supervise/lock keeps failing, the retries every 2 seconds leak no fd', () => {
  const files = new FakeFiles({ tryLock: () => { throw new SysError('fcntl', 37 /* ENOLCK */, 'supervise/lock'); } });
  const before = openFds();
  const { host, sup } = setup({}, { host: new FakeHost(files) });
  assert.match(host.reports.join('\n'), /unable to lock .*supervise\/lock: .* - running svc without its control files; retrying every 2 seconds/);
  assert.equal(sup.state, 'up', 'the service runs all the same');
  host.advance(20_000); // ten retries
  assert.equal(files.held.size, 0);
  assert.equal(openFds(), before, 'no fd left open by the failed set-ups');
});

test('P, C and K signal the process group of run, and nothing when no run pid is known (kill(-0) is t6-svscan\'s own group)', () => {
  const { host, sup } = setup();
  sup.command('PCK');
  assert.deepEqual(host.kills, [[-100, 19], [-100, 18], [-100, 9]]);
  // A host that answered a spawn with pid 0: UP, but no pid to signal.
  const zero = new FakeHost();
  zero.nextPid = 0;
  const second = setup({}, { host: zero });
  assert.equal(second.sup.state, 'up');
  second.sup.command('PCKpcd');
  assert.deepEqual(zero.kills.filter(([pid]) => pid <= 0), []);
});

test('a listener FIFO in event/ that cannot be removed does not stop the supervisor: the dead service still restarts', (t) => {
  const { host, sup, dir } = setup();
  // A listener that went away, on a filesystem where nothing can be removed any more.
  mkfifo(path.join(dir, 'event', `ftrig1:@${'4'.padEnd(24, '0')}:gone00`), 0o600);
  const rmSync = fs.rmSync;
  const rm = mock.method(fs, 'rmSync', (file: fs.PathLike, opts?: fs.RmOptions) => {
    if (String(file).includes('/event/')) throw Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' });
    rmSync(file, opts);
  });
  t.after(() => rm.mock.restore());
  host.last().onExit(EXIT(1));
  assert.equal(sup.state, 'down');
  assert.equal(host.eventText, 'sudD');
  host.advance(1000);
  assert.equal(sup.state, 'up', 'restarted one second later');
  assert.equal(host.eventText, 'sudDu');
  assert.deepEqual(host.reports.filter((r) => r.includes('internal error')), []);
});

test('timeout-kill with flag-timeout-killpg: SIGKILL then SIGCONT to the whole process group of run', () => {
  const { host, sup } = setup({ 'timeout-kill': '300\n', 'flag-timeout-killpg': '' });
  sup.command('d');
  host.advance(300);
  assert.deepEqual(host.kills.slice(2), [[-100, 9], [-100, 18]]);
  assert.match(host.reports.join('\n'), /timeout-kill reached - sending SIGKILL to process group 100/);
  host.advance(5000); // still alive: again, every 5 seconds
  assert.deepEqual(host.kills.slice(4), [[-100, 9], [-100, 18]]);
});

test('flag-newpidns: run (not finish) is spawned as pid 1 of a new pid namespace; a failure names the flag and is retried', () => {
  const { host, sup, dir } = setup({ 'flag-newpidns': '' }, { finish: '#!/bin/sh\n' });
  assert.equal(host.last().newPidNamespace, true);
  host.last().onExit(EXIT(0));
  assert.equal(host.last().argv[0], './finish');
  assert.equal(host.last().newPidNamespace, false);
  host.last().onExit(EXIT(0));
  host.failSpawn = 'EPERM';
  host.advance(1000);
  assert.equal(sup.state, 'down');
  assert.ok(host.reports.some((r) => r.includes(`unable to spawn ${dir}/run as pid 1 of a new pid namespace (${dir}/flag-newpidns): Operation not permitted - waiting 10 seconds`)), host.reports.join('\n'));
  host.failSpawn = undefined;
  fs.rmSync(path.join(dir, 'flag-newpidns'));
  host.advance(10_000);
  assert.equal(sup.state, 'up');
  assert.equal(host.last().newPidNamespace, false);
});
