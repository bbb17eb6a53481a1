/**
 * The event log and its parts without a tree: numbering and the ring (and its hand-over),
 * what a supervisor's bytes become, the request parsers (bad input refused, not thrown),
 * the human format, and the block alarm.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT_KINDS, EventLog, type T6Event } from '../../src/supervise/events.ts';
import { ServiceEvents } from '../../src/supervise/service-events.ts';
import { parseSubscribe } from '../../src/supervise/event-server.ts';
import { parsePublishRequest } from '../../src/supervise/runner-protocol.ts';
import { BlockAlarm } from '../../src/supervise/block-alarm.ts';
import { formatEvent } from '../../src/cli/events.ts';

function clock(): { now: number; ms: () => number } {
  const c = { now: 1000, ms: () => c.now };
  return c;
}

test('EventLog numbers from 1 without gaps, keeps a bounded ring, and hands both over', () => {
  const c = clock();
  const log = new EventLog(c.ms, 4);
  const seen: T6Event[] = [];
  const off = log.subscribe((e) => seen.push(e));
  for (let i = 0; i < 6; i++) { c.now += 10; log.publish({ kind: 'up', service: `s${i}`, pid: 100 + i }); }
  assert.deepEqual(seen.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(seen.map((e) => e.mono), [1010, 1020, 1030, 1040, 1050, 1060]);
  assert.ok(seen.every((e) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(e.time)));
  assert.equal(log.oldestSeq, 3);
  assert.deepEqual(log.since(0).map((e) => e.seq), [3, 4, 5, 6]);
  assert.deepEqual(log.since(5).map((e) => e.seq), [5, 6]);
  assert.deepEqual(log.since(7), []);
  off();
  log.publish({ kind: 'ready', service: 's0' });
  assert.equal(seen.length, 6, 'an unsubscribed subscriber gets nothing more');
  // Re-exec: the next image numbers on, with the ring.
  const next = new EventLog(c.ms, 4);
  next.restore(JSON.parse(JSON.stringify(log.snapshot())));
  assert.equal(next.publish({ kind: 'scanner', phase: 're-executed' }).seq, 8);
  assert.deepEqual(next.since(0).map((e) => e.seq), [5, 6, 7, 8]);
  // A damaged snapshot is taken for what it is worth, never thrown on.
  const other = new EventLog(c.ms, 4);
  other.restore({ nextSeq: Number.NaN, ring: [null as unknown as T6Event, { seq: 1 } as T6Event] });
  assert.equal(other.publish({ kind: 'scanner' }).seq, 1);
});

test('ServiceEvents: a supervisor\'s bytes become records, throttled once per streak of short runs', () => {
  const c = clock();
  const log = new EventLog(c.ms);
  const records = new ServiceEvents(log);
  const status = { pid: 0, wstat: 0, finishing: false };
  const sup = { name: 'web', status };
  const kinds = (): string[] => log.since(0).map((e) => `${e.kind}${e.pid === undefined ? '' : `:${e.pid}`}${e.exitCode === undefined ? '' : `=${e.exitCode}`}${e.signal === undefined ? '' : `!${e.signal}`}${e.delayMs === undefined ? '' : `+${e.delayMs}`}`);
  records.supervisor(sup, 's', undefined);
  status.pid = 10;
  records.supervisor(sup, 'u', undefined);
  c.now += 100; // dies after 100 ms: a crash loop starts
  status.wstat = 3 << 8;
  records.supervisor(sup, 'dD', { restartInMs: 900 });
  status.pid = 11;
  c.now += 900;
  records.supervisor(sup, 'u', undefined);
  c.now += 50;
  records.supervisor(sup, 'dD', { restartInMs: 950 });
  assert.deepEqual(kinds(), ['supervised', 'up:10', 'down=3', 'restart-scheduled+900', 'throttled+900', 'up:11', 'down=3', 'restart-scheduled+950']);
  // A run that lived: no longer throttled; the next short one starts a new streak.
  status.pid = 12;
  c.now += 950;
  records.supervisor(sup, 'uU', undefined);
  c.now += 5000;
  status.wstat = 9; // killed by SIGKILL
  status.finishing = true;
  status.pid = 13;
  records.supervisor(sup, 'd', undefined);
  status.finishing = false;
  records.supervisor(sup, 'OD', { finishWstat: 125 << 8 });
  assert.deepEqual(kinds().slice(8), ['up:12', 'ready', 'down!9', 'finish-started:13', 'given-up', 'finish-ended=125']);
  records.supervisor(sup, 'x', undefined);
  assert.equal(log.since(0).at(-1)!.kind, 'supervisor-exited');
});

test('requests: a subscription and an rc record are checked, and refused with a reason', () => {
  assert.deepEqual(parseSubscribe('{"since":3,"follow":false}'), { since: 3, follow: false });
  assert.deepEqual(parseSubscribe('{}'), { since: null, follow: true });
  for (const bad of ['', 'x', '[]', '{"since":-1}', '{"since":1.5}', '{"since":"1"}', '{"follow":1}']) assert.equal(typeof parseSubscribe(bad), 'string', bad);
  assert.deepEqual(parsePublishRequest('{"id":3,"event":{"kind":"rc","service":"web","action":"start","phase":"failed","reason":"exited 1"}}'),
    { kind: 'rc', service: 'web', action: 'start', phase: 'failed', reason: 'exited 1' });
  assert.equal(parsePublishRequest('{"id":3,"argv":["true"]}'), undefined, 'not an event request');
  for (const bad of [
    '{"event":[]}', '{"event":{"kind":"up","service":"x","action":"start","phase":"done"}}',
    '{"event":{"kind":"rc","service":"","action":"start","phase":"done"}}',
    `{"event":{"kind":"rc","service":"${'x'.repeat(1025)}","action":"start","phase":"done"}}`,
    '{"event":{"kind":"rc","service":"x","action":"restart","phase":"done"}}',
    '{"event":{"kind":"rc","service":"x","action":"start","phase":"maybe"}}',
  ]) assert.equal(typeof parsePublishRequest(bad), 'string', bad);
  assert.ok(EVENT_KINDS.includes('rc'));
});

test('formatEvent: one aligned line for people, colour only when asked', () => {
  const e: T6Event = { seq: 42, time: '2026-12-06T17:02:03.456Z', mono: 1, kind: 'down', service: 'web', signal: 15 };
  assert.equal(formatEvent(e, false), '2026-12-06 17:02:03.456      42  web                   down               killed by signal 15 (SIGTERM)');
  assert.match(formatEvent(e, true), /\x1b\[33mdown {13}\x1b\[0m/);
  assert.match(formatEvent({ ...e, kind: 'rc', action: 'start', phase: 'failed', reason: 'exited 1', signal: undefined }, false), /rc {17}start failed: exited 1$/);
});

test('BlockAlarm: tells of a block that lasts, once, and of its end; a short pause is nothing', async () => {
  let now = 0;
  const told: [boolean, number][] = [];
  const alarm = new BlockAlarm(20, () => now, (blocked, forMs) => told.push([blocked, forMs]));
  alarm.blocked();
  alarm.resumed();
  assert.deepEqual(told, []);
  alarm.blocked();
  alarm.blocked();
  await new Promise<void>((resolve) => {
    const t = setInterval(() => { now += 5; if (told.length > 0) { clearInterval(t); resolve(); } }, 5);
  });
  assert.equal(told.length, 1);
  assert.equal(told[0]![0], true);
  now += 100;
  alarm.resumed();
  assert.equal(told.length, 2);
  assert.equal(told[1]![0], false);
  assert.ok(told[1]![1] >= 100);
  alarm.close();
});

test('EventServer: a replay far past highWater, and a burst to a follower, arrive whole (the socket took each write at once: no drain comes)', { timeout: 30_000 }, async () => {
  const { EventServer } = await import('../../src/supervise/event-server.ts');
  const { readEvents } = await import('../../src/supervise/event-client.ts');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't6-events-'));
  const socketPath = path.join(dir, 'events');
  const log = new EventLog(() => performance.now());
  const server = EventServer.listen(socketPath, log, () => {});
  try {
    // 1,000 records of about 110 bytes: 110 KB, nearly twice highWater (64 KiB).
    for (let i = 0; i < 1000; i++) log.publish({ kind: 'up', service: `service-number-${i}`, pid: 10_000 + i });
    const replayed: number[] = [];
    await readEvents(socketPath, { since: 0, follow: false }, (e) => replayed.push(e.seq)).done;
    assert.equal(replayed.length, 1000);
    assert.deepEqual([replayed[0], replayed.at(-1)], [1, 1000]);
    // A follower, then 2,000 records in one turn of the loop (within the backlog of 2,048).
    const followed: number[] = [];
    let connected!: () => void;
    const served = new Promise<void>((resolve) => { connected = resolve; });
    let all!: () => void;
    const complete = new Promise<void>((resolve) => { all = resolve; });
    const reader = readEvents(socketPath, { since: null, follow: true, onConnect: () => connected() }, (e) => {
      followed.push(e.seq);
      if (followed.length === 2000) all();
    });
    await served;
    for (let i = 0; i < 2000; i++) log.publish({ kind: 'down', service: `service-number-${i}`, exitCode: 1 });
    await complete;
    reader.stop();
    await reader.done;
    assert.deepEqual([followed[0], followed.at(-1)], [1001, 3000]);
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
