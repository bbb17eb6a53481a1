/**
 * The event stream (issue 13): a tree of 100 services, 10 of them crash-looping, a t6-rc
 * change and a t6-svc -d. The stream has every transition in order, numbered without a
 * gap, and agrees with what the real s6-svstat says; a subscriber that never reads is
 * dropped with a `lost` record while t6-svscan's memory stays bounded; a follower carries
 * on across a re-exec without a gap.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BIN, Tree, makeService, tmpdir, until } from '../lib/harness.ts';
import { writeDb } from '../lib/rcdb.ts';
import { eventSocket, readEvents } from '../../src/supervise/event-client.ts';
import type { T6Event } from '../../src/supervise/events.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const hasS6 = spawnSync('sh', ['-c', 'command -v s6-svstat'], { stdio: 'ignore' }).status === 0;

/** A follower of a tree's stream, collecting every record. */
function follow(scandir: string, since: number | null = 0): { events: T6Event[]; stop(): Promise<void> } {
  const events: T6Event[] = [];
  const reader = readEvents(eventSocket(scandir), { since, follow: true }, (e) => events.push(e));
  return { events, stop: async () => { reader.stop(); await reader.done; } };
}

function vmRssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

/** Sends `count` t6-rc transition records on one runner session, and waits for every answer. */
async function publishMany(scandir: string, count: number): Promise<void> {
  const sock = net.connect(path.join(scandir, '.s6-svscan', 'run'));
  let answered = 0;
  let buf = '';
  const done = new Promise<void>((resolve, reject) => {
    sock.setEncoding('utf8');
    sock.on('error', reject);
    sock.on('data', (c: string) => {
      buf += c;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      answered += lines.filter((l) => l.includes('"published":true')).length;
      if (answered === count) { sock.end(); resolve(); }
    });
  });
  sock.write('{"id":0}\n');
  for (let i = 1; i <= count; i++) sock.write(`${JSON.stringify({ id: i, event: { kind: 'rc', service: `svc${i % 100}`, action: 'start', phase: 'requested' } })}\n`);
  await done;
}

/** Seq numbers run 1, 2, 3… with no gap and no repeat. */
function assertNoGaps(events: T6Event[]): void {
  const seqs = events.filter((e) => e.kind !== 'lost').map((e) => e.seq);
  assert.ok(seqs.length > 0);
  for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1]! + 1, `record after ${seqs[i - 1]} is ${seqs[i]}`);
}

test('100 services, 10 crash-looping, a t6-rc change and a t6-svc -d: every transition in order, no gap, as s6-svstat says', { skip: hasS6 ? false : 's6-svstat is not installed' }, async () => {
  const base = tmpdir('t6-events-');
  const scandir = path.join(base, 'service');
  fs.mkdirSync(scandir);
  for (let i = 0; i < 100; i++) {
    const crash = i < 10;
    makeService(path.join(scandir, `s${String(i).padStart(3, '0')}`), { run: crash ? '#!/bin/sh\nexit 3\n' : '#!/bin/sh\nexec sleep 1000\n' });
  }
  const compiled = path.join(base, 'compiled');
  const live = path.join(base, 'live');
  const mark = path.join(base, 'oneshot-ran');
  writeDb(compiled, [
    { name: 'setup', type: 'oneshot', up: ['touch', mark] },
    { name: 'web', type: 'longrun', run: '#!/bin/sh\nexec sleep 1000\n', deps: ['setup'] },
  ]);
  const tree = await Tree.start(scandir);
  const stream = follow(scandir);
  cleanups.push(async () => { await stream.stop(); await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  const { events } = stream;
  const of = (service: string, kind?: T6Event['kind']): T6Event[] => events.filter((e) => e.service === service && (kind === undefined || e.kind === kind));

  // Every service comes up; the crash-loopers come up, die, are throttled, and come up again.
  await until('100 services up', () => new Set(events.filter((e) => e.kind === 'up').map((e) => e.service)).size >= 100);
  await until('a crash-looper restarted twice', () => of('s000', 'up').length >= 3);

  assert.equal(spawnSync(path.join(BIN, 't6-rc-init'), ['-c', compiled, '-l', live, scandir], { encoding: 'utf8' }).status, 0);
  const change = spawnSync(path.join(BIN, 't6-rc'), ['-l', live, '-u', 'change', 'web'], { encoding: 'utf8' });
  assert.equal(change.status, 0, change.stderr);
  assert.equal(spawnSync(path.join(BIN, 't6-svc'), ['-wD', '-d', path.join(scandir, 's050')], { encoding: 'utf8' }).status, 0);
  await until('s050 down in the stream', () => of('s050', 'down').length > 0);
  await until('web done in the stream', () => events.some((e) => e.kind === 'rc' && e.service === 'web' && e.phase === 'done'));

  assertNoGaps(events);
  assert.equal(events[0]!.kind, 'scanner');
  for (const e of events) assert.ok(!Number.isNaN(Date.parse(e.time)) && e.mono > 0, JSON.stringify(e));

  // A crash-looper: up, down (exit 3), restart scheduled, again and again; throttled once per streak.
  const loop = of('s000').map((e) => e.kind).filter((k) => k !== 'supervised' && k !== 'throttled');
  const cycle = ['up', 'down', 'restart-scheduled'];
  assert.deepEqual(loop, loop.map((_, i) => cycle[i % 3]), loop.join(' '));
  assert.equal(of('s000', 'down')[0]!.exitCode, 3);
  assert.equal(of('s000', 'throttled').length, 1);

  // The t6-rc change: the oneshot before the longrun (its dependency), each requested then done.
  const rc = events.filter((e) => e.kind === 'rc').map((e) => `${e.service} ${e.action} ${e.phase}`);
  assert.deepEqual(rc, ['setup start requested', 'setup start done', 'web start requested', 'web start done']);
  const webUp = events.findIndex((e) => e.service === 'web' && e.kind === 'up');
  const webRequested = events.findIndex((e) => e.kind === 'rc' && e.service === 'web' && e.phase === 'requested');
  const webDone = events.findIndex((e) => e.kind === 'rc' && e.service === 'web' && e.phase === 'done');
  assert.ok(webRequested < webUp && webUp < webDone, `web: requested #${webRequested}, up #${webUp}, done #${webDone}`);

  // What s6-svstat says agrees: each steady service is up with the pid of its last `up`; s050 is down, killed by SIGTERM.
  for (const name of ['s010', 's042', 's099']) {
    const out = spawnSync('s6-svstat', ['-o', 'up,pid', path.join(scandir, name)], { encoding: 'utf8' }).stdout.trim();
    assert.equal(out, `true ${of(name, 'up').at(-1)!.pid}`, name);
  }
  assert.equal(spawnSync('s6-svstat', ['-o', 'up,signal', path.join(scandir, 's050')], { encoding: 'utf8' }).stdout.trim(), 'false SIGTERM');
  assert.equal(of('s050', 'down').at(-1)!.signal, 15);
  assert.equal(of('s050', 'restart-scheduled').length, 0, 'a service wanted down is not restarted');
});

test('a subscriber that never reads is dropped with a lost record; t6-svscan holds no more for it', async () => {
  const base = tmpdir('t6-events-slow-');
  const scandir = path.join(base, 'service');
  fs.mkdirSync(scandir);
  for (let i = 0; i < 100; i++) makeService(path.join(scandir, `s${i}`), { run: '#!/bin/sh\nexec sleep 1000\n' });
  const tree = await Tree.start(scandir);
  cleanups.push(async () => { await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  const stream = follow(scandir);
  await until('100 up', () => stream.events.filter((e) => e.kind === 'up').length >= 100);
  await stream.stop();

  // The stuck subscriber: asks, then never reads.
  const stuck = net.connect(eventSocket(scandir));
  stuck.write('{"since":null,"follow":true}\n');
  stuck.pause();
  await new Promise((r) => stuck.once('connect', r));
  const rssBefore = vmRssKb(tree.pid1);
  // Records by the thousand, more than the socket buffers and the backlog hold together
  // (about 4,500): t6-rc transition records, sent on a runner session as t6-rc sends them.
  await publishMany(scandir, 6000);
  const rssAfter = vmRssKb(tree.pid1);

  // Now read what the stuck one was sent: records, then a lost record, then the end.
  stuck.resume();
  const text = await new Promise<string>((resolve) => {
    let buf = '';
    stuck.setEncoding('utf8');
    stuck.on('data', (c: string) => { buf += c; });
    stuck.on('close', () => resolve(buf));
  });
  const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const last = lines.at(-1)!;
  assert.equal(last.kind, 'lost', `last line: ${JSON.stringify(last)}`);
  assert.equal(last.reason, 'slow');
  assert.ok(Number(last.lost) > 0);
  const records = lines.filter((l) => typeof l.seq === 'number' && l.kind !== 'lost');
  assert.ok(records.length < 5000, `${records.length} records were held for the stuck subscriber`);
  assert.equal(last.seq, Number(records.at(-1)!.seq) + 1, 'the lost record starts right after the last record sent');
  // 6,000 records went by; the stuck subscriber held at most its bounded backlog.
  assert.ok(rssAfter - rssBefore < 40_000, `t6-svscan grew by ${rssAfter - rssBefore} kB`);
});

test('a follower carries on across a re-exec of t6-svscan, without a gap', async () => {
  const base = tmpdir('t6-events-reexec-');
  const scandir = path.join(base, 'service');
  fs.mkdirSync(scandir);
  const a = makeService(path.join(scandir, 'a'), { run: '#!/bin/sh\nexec sleep 1000\n' });
  const tree = await Tree.start(scandir);
  const stream = follow(scandir);
  cleanups.push(async () => { await stream.stop(); await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  await until('a up', () => stream.events.some((e) => e.service === 'a' && e.kind === 'up'));
  assert.equal(spawnSync(path.join(BIN, 't6-svscanctl'), ['-R', scandir]).status, 0);
  await until('the re-exec in the stream', () => stream.events.some((e) => e.kind === 'scanner' && e.phase === 're-executed'));
  assert.equal(spawnSync(path.join(BIN, 't6-svc'), ['-wD', '-d', a]).status, 0);
  await until('a down after the re-exec', () => stream.events.some((e) => e.service === 'a' && e.kind === 'down'));
  assertNoGaps(stream.events);
  // The ring came over too: a new subscriber from 0 sees the records of before the re-exec.
  const all: T6Event[] = [];
  await readEvents(eventSocket(scandir), { since: 0, follow: false }, (e) => all.push(e)).done;
  assert.deepEqual(all.map((e) => e.seq), stream.events.map((e) => e.seq).slice(0, all.length));
  assert.equal(all[0]!.seq, 1);
});
