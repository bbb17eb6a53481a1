/**
 * Readiness and restart policy beyond s6 (issue 14), against t6-svscan as pid 1 of a pid
 * namespace, with real senders and real servers: Debian's systemd-notify speaking
 * sd_notify, a stranger that is refused, TCP and HTTP probes against servers this test
 * runs, a watchdog, and backoff with a give-up that t6-svc -u clears (and that Debian's
 * s6-svstat reads as a down service). Every wait is on an event byte, a status change or
 * an output line; the timing bounds are on measured intervals.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { BIN, EventLog, Tree, makeService, readStatus, tmpdir, until, t6 } from '../lib/harness.ts';
import { readHealth } from '../../src/s6/healthfile.ts';
import { notifyAddress } from '../../src/supervise/notify-hub.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const SYSTEMD_NOTIFY = ['/usr/bin/systemd-notify', '/bin/systemd-notify'].find((p) => fs.existsSync(p));
const sh = (script: string): string => `#!/bin/sh\n${script}\n`;

async function tree(scandir: string): Promise<Tree> {
  const t = await Tree.start(scandir);
  cleanups.push(() => t.stop());
  return t;
}

function events(dir: string): EventLog {
  fs.mkdirSync(path.join(dir, 'event'), { recursive: true });
  const log = new EventLog(dir);
  cleanups.push(() => log.close());
  return log;
}

function svstat(dir: string): string {
  const r = t6('svstat', [dir]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

function svstatJson(dir: string): { ready: boolean; health: ReturnType<typeof readHealth> } {
  const r = t6('svstat', ['--json', dir]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { ready: boolean; health: ReturnType<typeof readHealth> };
}

test('sd_notify with Debian\'s systemd-notify: STATUS= shows, READY=1 is the U event, MAINPID= outside the tree is refused', { skip: SYSTEMD_NOTIFY === undefined && 'no systemd-notify' }, async () => {
  const sd = tmpdir();
  // `other` is a process of the namespace outside `daemon`'s tree, whose pid daemon claims.
  const other = makeService(path.join(sd, 'other'), { run: sh('echo $$ > pid; exec sleep 3600') });
  const daemon = makeService(path.join(sd, 'daemon'), {
    run: sh([
      `${SYSTEMD_NOTIFY} --status="warming up"`,
      'while [ ! -e pid-of-other ]; do sleep 0.02; done',
      `${SYSTEMD_NOTIFY} MAINPID=$(cat pid-of-other) STATUS=claimed`,
      'while [ ! -e go ]; do sleep 0.02; done',
      `${SYSTEMD_NOTIFY} --ready --status="serving"`,
      'exec sleep 3600',
    ].join('\n')),
  });
  fs.writeFileSync(path.join(daemon, 'flag-sd-notify'), '');
  const ev = events(daemon);
  const t = await tree(sd);
  await ev.waitFor(/u/);
  await until('STATUS=warming up', () => readHealth(daemon)?.statusText === 'warming up');
  assert.match(svstat(daemon), /^up \(pid \d+\) \d+ seconds, status "warming up"\n$/);
  assert.equal(svstatJson(daemon).ready, false);
  const otherPid = await until('other\'s pid', () => fs.existsSync(path.join(other, 'pid')) && fs.readFileSync(path.join(other, 'pid'), 'utf8').trim());
  fs.writeFileSync(path.join(daemon, 'pid-of-other'), otherPid);
  await until('STATUS=claimed', () => readHealth(daemon)?.statusText === 'claimed');
  await t.output.waitFor(new RegExp(`daemon: MAINPID=${otherPid} refused: not a process of the service`));
  assert.equal(readHealth(daemon)?.mainPid, null);
  assert.doesNotMatch(ev.text, /U/, 'not ready before READY=1');
  fs.writeFileSync(path.join(daemon, 'go'), '');
  await ev.waitFor(/uU/);
  await until('STATUS=serving', () => readHealth(daemon)?.statusText === 'serving');
  const json = svstatJson(daemon);
  assert.equal(json.ready, true);
  assert.equal(json.health?.statusText, 'serving');
  // Debian's s6-svstat reads the same status: up and ready.
  const s6 = spawnSync('s6-svstat', [daemon], { encoding: 'utf8' });
  if (s6.status !== null && s6.error === undefined) assert.match(s6.stdout, /^up \(pid \d+\) \d+ seconds, ready \d+ seconds\n$/);
});

test('a stranger sending READY=1 to the notify socket does not make a service ready', async () => {
  const sd = tmpdir();
  const daemon = makeService(path.join(sd, 'daemon'), { run: sh('exec sleep 3600') });
  fs.writeFileSync(path.join(daemon, 'flag-sd-notify'), '');
  // A process of another service, which knows the address: not of daemon's tree.
  const address = notifyAddress(sd);
  makeService(path.join(sd, 'stranger'), {
    // One message, then it stays up: a run that exited would be restarted a second later and send again.
    run: sh(`while [ ! -e go ]; do sleep 0.02; done\npython3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b"READY=1\\nSTATUS=hijacked", "\\0" + sys.argv[1][1:])' '${address}'\nexec sleep 3600`),
  });
  const ev = events(daemon);
  const t = await tree(sd);
  await ev.waitFor(/u/);
  fs.writeFileSync(path.join(sd, 'stranger', 'go'), '');
  await t.output.waitFor(/an sd_notify message from pid \d+ was refused: not a process of a service with flag-sd-notify/);
  // And from outside the namespace (the test itself): refused too, and counted.
  const outside = spawnSync('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b"READY=1", "\\0" + sys.argv[1][1:])', address]);
  assert.equal(outside.status, 0, String(outside.stderr));
  const metrics = await until('two refusals counted', () => {
    const m = spawnSync(path.join(BIN, 't6'), ['metrics', '-s', sd], { encoding: 'utf8' });
    const n = Number(/^t6_sdnotify_refused_total (\d+)$/m.exec(m.stdout)?.[1] ?? 0);
    return n >= 2 ? m.stdout : undefined;
  });
  assert.match(metrics, /^t6_sdnotify_refused_total 2$/m);
  assert.doesNotMatch(ev.text, /U/);
  assert.equal(readStatus(daemon)?.ready, false);
  assert.equal(readHealth(daemon)?.statusText ?? null, null);
});

/** An HTTP server in this process whose answer the test sets. */
async function httpServer(): Promise<{ port: number; status: { code: number; body: string }; hits: () => number }> {
  const status = { code: 503, body: 'starting' };
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits++;
    res.writeHead(status.code, { 'content-type': 'text/plain' });
    res.end(status.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as net.AddressInfo).port, status, hits: () => hits };
}

test('HTTP probe: ready at the first success; liveness failures restart the service, the reason recorded', async () => {
  const server = await httpServer();
  const sd = tmpdir();
  const web = makeService(path.join(sd, 'web'), { run: sh('exec sleep 3600') });
  fs.mkdirSync(path.join(web, 'probe'));
  fs.writeFileSync(path.join(web, 'probe', 'http'), `http://127.0.0.1:${server.port}/health\n`);
  fs.writeFileSync(path.join(web, 'probe', 'http-body'), 'ok\n');
  fs.writeFileSync(path.join(web, 'probe', 'interval'), '50\n');
  fs.writeFileSync(path.join(web, 'probe', 'liveness'), '3\n');
  const ev = events(web);
  const t = await tree(sd);
  await ev.waitFor(/u/);
  await until('a few failed attempts', () => server.hits() >= 3);
  assert.doesNotMatch(ev.text, /U/);
  server.status.code = 200;
  server.status.body = 'all ok';
  await ev.waitFor(/uU/);
  const firstPid = readStatus(web)!.pid;
  server.status.code = 500;
  await ev.waitFor(/uU.*d.*u/s);
  await t.output.waitFor(/web: liveness probe http:\/\/127\.0\.0\.1:\d+\/health failed 3 times: [^\n]*- restarting the service/);
  assert.notEqual(readStatus(web)!.pid, firstPid);
  assert.match(readHealth(web)?.lastFailure ?? '', /liveness probe .* failed 3 times/);
  assert.match(svstat(web), /last failure: liveness probe/);
  assert.match(svstatJson(web).health?.lastFailure ?? '', /liveness probe/);
  const r = spawnSync(path.join(BIN, 't6'), ['events', '-s', sd, '--json', 'web'], { encoding: 'utf8' });
  const unhealthy = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; reason?: string }).filter((e) => e.kind === 'unhealthy');
  assert.equal(unhealthy.length, 1, r.stdout);
  assert.match(unhealthy[0]!.reason ?? '', /^liveness probe http:\/\/127\.0\.0\.1:\d+\/health failed 3 times/);
});

test('TCP probe: ready once something listens on the port', async () => {
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer();
    probe.listen(0, '127.0.0.1', () => { const p = (probe.address() as net.AddressInfo).port; probe.close(() => resolve(p)); });
  });
  const sd = tmpdir();
  const db = makeService(path.join(sd, 'db'), { run: sh('exec sleep 3600') });
  fs.mkdirSync(path.join(db, 'probe'));
  fs.writeFileSync(path.join(db, 'probe', 'tcp'), `127.0.0.1:${port}\n`);
  fs.writeFileSync(path.join(db, 'probe', 'interval'), '50\n');
  const ev = events(db);
  await tree(sd);
  await ev.waitFor(/u/);
  const listener = net.createServer((c) => c.destroy());
  await new Promise<void>((resolve) => listener.listen(port, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => listener.close(() => resolve())));
  await ev.waitFor(/uU/);
});

test('watchdog: a service that stops its keep-alives is restarted within watchdog-timeout + 10%', { skip: SYSTEMD_NOTIFY === undefined && 'no systemd-notify' }, async () => {
  const sd = tmpdir();
  const stamp = path.join(sd, '..', `${path.basename(sd)}-last-ping`);
  cleanups.push(() => fs.rmSync(stamp, { force: true }));
  const dog = makeService(path.join(sd, 'dog'), {
    run: sh([
      `${SYSTEMD_NOTIFY} --ready`,
      `for i in 1 2 3 4; do ${SYSTEMD_NOTIFY} WATCHDOG=1; sleep 0.2; done`,
      // The last keep-alive was taken before this stamp (systemd-notify waits for its barrier): the restart is due 4 s after it at the latest.
      `${SYSTEMD_NOTIFY} WATCHDOG=1; date +%s%N > "${stamp}"`,
      'exec sleep 3600',
    ].join('\n')),
  });
  fs.writeFileSync(path.join(dog, 'flag-sd-notify'), '');
  fs.writeFileSync(path.join(dog, 'watchdog-timeout'), '4000\n');
  const ev = events(dog);
  const t = await tree(sd);
  await ev.waitFor(/uU/);
  await ev.waitFor(/uU.*d.*u/s, 20_000);
  const lastPing = Number(BigInt(fs.readFileSync(stamp, 'utf8').trim()) / 1_000_000n);
  const restartedAt = Date.now() - (performance.now() - ev.events.findLast((e) => e.byte === 'u')!.at);
  const after = restartedAt - lastPing;
  assert.ok(after >= 3900, `restarted ${after} ms after the last keep-alive: too early`);
  assert.ok(after <= 4400, `restarted ${after} ms after the last keep-alive: later than watchdog-timeout + 10%`);
  await t.output.waitFor(/dog: watchdog: no keep-alive \(WATCHDOG=1\) within 4000 ms - restarting the service/);
  assert.match(readHealth(dog)?.lastFailure ?? '', /watchdog/);
});

test('backoff and give-up: delays follow the series, the service is given up, s6-svstat sees it down, t6-svc -u clears it', async () => {
  const sd = tmpdir();
  const crashy = makeService(path.join(sd, 'crashy'), { run: sh('exit 3') });
  for (const [f, v] of Object.entries({ 'backoff-initial': '100', 'backoff-factor': '2', 'give-up-deaths': '5', 'give-up-window': '60000' })) {
    fs.writeFileSync(path.join(crashy, f), `${v}\n`);
  }
  const ev = events(crashy);
  await tree(sd);
  await ev.waitFor(/(u.*d.*){5}.*O/s, 20_000);
  // Five deaths: restarts after 100, 200, 400 and 800 ms, then given up (no sixth start).
  const ups = ev.events.filter((e) => e.byte === 'u').map((e) => e.at);
  const downs = ev.events.filter((e) => e.byte === 'd').map((e) => e.at);
  assert.equal(ups.length, 5);
  const gaps = [1, 2, 3, 4].map((i) => ups[i]! - downs[i - 1]!);
  [100, 200, 400, 800].forEach((want, i) => {
    assert.ok(gaps[i]! >= want - 5 && gaps[i]! <= want + 150, `restart ${i + 1} after ${Math.round(gaps[i]!)} ms, wanted ${want}: ${gaps.map(Math.round).join(', ')}`);
  });
  const status = readStatus(crashy)!;
  assert.equal(status.wantUp, false);
  assert.match(svstat(crashy), /^down \(exitcode 3\) \d+ seconds, normally up, ready \d+ seconds, given up: 5 deaths within 60000 ms/);
  const s6 = spawnSync('s6-svstat', [crashy], { encoding: 'utf8' });
  if (s6.error === undefined) assert.match(s6.stdout, /^down \(exitcode 3\) \d+ seconds, normally up, ready \d+ seconds\n$/);
  const u = t6('svc', ['-u', crashy]);
  assert.equal(u.status, 0, u.stderr);
  await ev.waitFor(/O.*u/s);
  await until('the give-up cleared', () => readHealth(crashy)?.givenUp === null || readHealth(crashy) === null);
});

interface Rig { base: string; scandir: string; live: string }

/** Compiles `source` (name → file → text) with t6-rc-compile, starts t6-svscan, runs t6-rc-init. */
async function rcRig(source: Record<string, Record<string, string>>): Promise<Rig> {
  const base = tmpdir('t6-health-rc-');
  for (const [name, files] of Object.entries(source)) {
    for (const [f, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(base, 'src', name, f)), { recursive: true });
      fs.writeFileSync(path.join(base, 'src', name, f), text, { mode: f === 'run' ? 0o755 : 0o644 });
    }
  }
  const compiled = path.join(base, 'compiled');
  const c = spawnSync(path.join(BIN, 't6-rc-compile'), [compiled, path.join(base, 'src')], { encoding: 'utf8' });
  assert.equal(c.status, 0, `t6-rc-compile: ${c.stderr}`);
  const scandir = path.join(base, 'service');
  const live = path.join(base, 'live');
  fs.mkdirSync(scandir);
  await tree(scandir);
  const init = spawnSync(path.join(BIN, 't6-rc-init'), ['-c', compiled, '-l', live, scandir], { encoding: 'utf8' });
  assert.equal(init.status, 0, `t6-rc-init: ${init.stderr}`);
  return { base, scandir, live };
}

/** Runs t6-rc in the background: its exit status and stderr once it ends. */
function rcAsync(r: Rig, args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(path.join(BIN, 't6-rc'), ['-l', r.live, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    p.on('close', (status) => resolve({ status, stderr }));
  });
}

test('sd_notify readiness gates a dependent: t6-rc starts dep only after READY=1', { skip: SYSTEMD_NOTIFY === undefined && 'no systemd-notify' }, async () => {
  const marker = path.join(tmpdir(), 'marker');
  const r = await rcRig({
    daemon: {
      type: 'longrun\n', 'flag-sd-notify': '',
      run: sh(`${SYSTEMD_NOTIFY} --status=starting\nwhile [ ! -e go ]; do sleep 0.02; done\n${SYSTEMD_NOTIFY} --ready\nexec sleep 3600`),
    },
    dep: { type: 'oneshot\n', up: `touch ${marker}\n`, dependencies: 'daemon\n' },
  });
  const daemon = path.join(r.scandir, 'daemon');
  const change = rcAsync(r, ['-u', 'change', 'dep']);
  // daemon runs and has spoken, but is not ready: dep waits.
  await until('daemon to say STATUS=starting', () => readHealth(daemon)?.statusText === 'starting');
  assert.equal(fs.existsSync(marker), false);
  assert.equal(readStatus(daemon)?.ready, false);
  fs.writeFileSync(path.join(daemon, 'go'), '');
  const done = await change;
  assert.equal(done.status, 0, done.stderr);
  assert.ok(fs.existsSync(marker), "dep's up ran");
  assert.equal(readStatus(daemon)?.ready, true);
});

test('a probe that never succeeds: t6-rc says it timed out after timeout-up waiting for readiness', async () => {
  const marker = path.join(tmpdir(), 'marker');
  const r = await rcRig({
    app: { type: 'longrun\n', run: sh('exec sleep 3600'), 'timeout-up': '700\n', 'probe/tcp': '127.0.0.1:1\n', 'probe/interval': '50\n' },
    dep: { type: 'oneshot\n', up: `touch ${marker}\n`, dependencies: 'app\n' },
  });
  const done = await rcAsync(r, ['-u', 'change', 'dep']);
  assert.equal(done.status, 1, done.stderr);
  assert.match(done.stderr, /app: timed out after 700 ms waiting for readiness/);
  assert.equal(fs.existsSync(marker), false);
});

test('re-exec: the notify socket and the health record go to the next image; READY=1 after it still counts, and Debian\'s s6-svwait -U sees it', { skip: SYSTEMD_NOTIFY === undefined && 'no systemd-notify' }, async () => {
  const sd = tmpdir();
  const daemon = makeService(path.join(sd, 'daemon'), {
    run: sh(`${SYSTEMD_NOTIFY} --status="before the re-exec"\nwhile [ ! -e go ]; do sleep 0.02; done\n${SYSTEMD_NOTIFY} --ready\nexec sleep 3600`),
  });
  fs.writeFileSync(path.join(daemon, 'flag-sd-notify'), '');
  const ev = events(daemon);
  const t = await tree(sd);
  await until('STATUS= said', () => readHealth(daemon)?.statusText === 'before the re-exec');
  const address = readFileEnv(t, daemon, 'NOTIFY_SOCKET');
  t.control('R');
  await t.output.waitFor(/re-executed \(/);
  // The record came over in the hand-over (the file was not rewritten from scratch).
  assert.equal(readHealth(daemon)?.statusText, 'before the re-exec');
  const svwait = new Promise<number | null>((resolve) => spawn('s6-svwait', ['-U', '-t', '20000', daemon], { stdio: 'ignore' }).on('exit', resolve).on('error', () => resolve(0)));
  fs.writeFileSync(path.join(daemon, 'go'), '');
  await ev.waitFor(/uU/);
  assert.equal(await svwait, 0);
  assert.equal(readFileEnv(t, daemon, 'NOTIFY_SOCKET'), address, 'the same address');
  // The event stream has the STATUS= text, from before the re-exec (the ring travels too).
  const r = spawnSync(path.join(BIN, 't6'), ['events', '-s', sd, '--json', 'daemon'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; text?: string });
  assert.ok(records.some((e) => e.kind === 'status-text' && e.text === 'before the re-exec'), r.stdout);
  assert.ok(records.some((e) => e.kind === 'ready'), r.stdout);
});

/** A variable of the environment of daemon's run, as its process has it (read through /proc from outside). */
function readFileEnv(t: Tree, dir: string, name: string): string | undefined {
  const pid = t.hostPid(readStatus(dir)!.pid);
  const env = fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
  return env.find((kv) => kv.startsWith(`${name}=`))?.slice(name.length + 1);
}
