/**
 * The service object of every `--json` output (src/s6/servicejson.ts, servicefacts.ts)
 * against docs/service.schema.json, and the test validator itself (test/lib/jsonschema.ts):
 * it must reject what the schema forbids, or the integration test proves nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  INSIDE_SCANNER_KINDS, LOGGER_KINDS, SERVICE_STATES, SERVICE_TYPES, type ServiceJson,
  oneshotService, supervisedService, unknownService, withRcBit,
} from '../../src/s6/servicejson.ts';
import { describeServicedir, loggerOf, serviceNameOf } from '../../src/s6/servicefacts.ts';
import type { SupervisorStatus } from '../../src/s6/status.ts';
import { deathFromWstat, encodeDeathTally } from '../../src/s6/deathtally.ts';
import { ClientError } from '../../src/s6/client.ts';
import { tainFromUnixMs, tainParse } from '../../src/s6/tai.ts';
import { formatJson, parseLine } from '../../src/log/reader.ts';
import { mkfifo } from '../../src/sys/fd.ts';
import { type Schema, assertValid, loadSchema, validate } from '../lib/jsonschema.ts';
import { makeService, tmpdir } from '../lib/harness.ts';

const SERVICE = loadSchema('service');
const STAMP = tainParse('@400000006b06c71c0f0bfc65')!;
const READY = tainParse('@400000006b06c71c2115df12')!;
const ISO = (t: typeof STAMP): string => new Date(Number(t.sec - (1n << 62n) - 37n) * 1000 + Math.floor(t.nano / 1e6)).toISOString();

function status(over: Partial<SupervisorStatus>): SupervisorStatus {
  return { stamp: STAMP, readyStamp: READY, pid: 0, wstat: 0, paused: false, finishing: false, wantUp: true, ready: false, ...over };
}

const view = (over: Partial<SupervisorStatus>, normallyUp = true) => ({ status: status(over), normallyUp, now: { sec: STAMP.sec + 5n, nano: 0 } });

// --- The validator can fail ---------------------------------------------------------------

test('the validator rejects every kind of bad service object, and accepts a good one', () => {
  const good = supervisedService('svc', 'none', view({ pid: 12 }), []);
  assert.deepEqual(validate(SERVICE, good), []);
  const bad = (patch: Record<string, unknown>, why: RegExp): void => {
    const errors = validate(SERVICE, { ...good, ...patch });
    assert.ok(errors.some((e) => why.test(e)), `${JSON.stringify(patch)} gave ${JSON.stringify(errors)}`);
  };
  bad({ extra: 1 }, /property extra is not allowed/);
  bad({ state: 'running' }, /"running" is not one of/);
  bad({ pid: '12' }, /not of type integer or null/);
  bad({ pid: 1.5 }, /not of type integer or null/);
  bad({ pid: 0 }, /0 is below 1/);
  bad({ since: '2026-01-01 10:00:00' }, /not an RFC 3339 date-time/);
  bad({ since: '2026-13-01T10:00:00Z' }, /not an RFC 3339 date-time/);
  bad({ deathTally: -1 }, /-1 is below 0/);
  bad({ name: '' }, /shorter than 1/);
  bad({ logger: null }, /null is not one of/);
  bad({ lastExit: { code: 0, signal: 'SIGTERM', signum: 15, at: null } }, /matches 0 of oneOf/);
  bad({ lastExit: { code: null, signal: 'TERM', signum: 15, at: null } }, /matches 0 of oneOf/);
  bad({ lastExit: { code: 0, signal: null, signum: null } }, /matches 0 of oneOf/);
  const missing: Partial<ServiceJson> = { ...good };
  delete missing.restarts;
  assert.deepEqual(validate(SERVICE, missing), ['$: required property restarts is missing']);
  assert.match(validate(SERVICE, [good]).join('\n'), /^\$: \[.*\] is not of type object$/);
  assert.throws(() => validate({ type: 'object', const: 1 } as Schema, {}), /keyword const is not supported/);
  assert.throws(() => validate({ type: 'string', format: 'email' } as Schema, 'x'), /format email is not supported/);
  assert.throws(() => assertValid(SERVICE, { ...good, state: 'x' }, 'this object'), /this object does not follow t6 service:\n {2}\$\.state/);
});

test("the schema's lists and the code's are the same lists, and the schema requires every field the builders fill", () => {
  const props = SERVICE.properties as Record<string, Schema>;
  const without = (xs: unknown): unknown[] => (xs as unknown[]).filter((x) => x !== null);
  assert.deepEqual(props.type!.enum, [...SERVICE_TYPES]);
  assert.deepEqual(without(props.state!.enum), [...SERVICE_STATES]);
  assert.deepEqual(props.logger!.enum, [...LOGGER_KINDS]);
  assert.deepEqual(without(props.insideScanner!.enum), [...INSIDE_SCANNER_KINDS]);
  const fields = Object.keys(unknownService('x', 'longrun', 'none'));
  assert.deepEqual([...(SERVICE.required as string[])].sort(), [...fields].sort());
  assert.deepEqual(Object.keys(props).sort(), [...fields].sort());
});

// --- The builders --------------------------------------------------------------------------

test('a supervised service: state, pid, times, readiness, last exit and restarts from status and death tally', () => {
  const up = supervisedService('svc', 'external', view({ pid: 4979, ready: true, wstat: 0x000f }), [deathFromWstat(READY, 0x000f)]);
  assertValid(SERVICE, up, 'up');
  assert.deepEqual(up, {
    name: 'svc', type: 'longrun', supervised: true, insideScanner: null, rc: null, want: 'up', state: 'up', pid: 4979,
    since: ISO(STAMP), ready: true, readySince: ISO(READY), normallyUp: true, paused: false,
    lastExit: { code: null, signal: 'SIGTERM', signum: 15, at: ISO(READY) },
    deathTally: 1, restarts: 1, logger: 'external', health: null, error: null,
  });
  const finishing = supervisedService('svc', 'none', view({ pid: 77, finishing: true, wstat: 0x0300 }), [deathFromWstat(STAMP, 0x0300)]);
  assertValid(SERVICE, finishing, 'finishing');
  assert.deepEqual([finishing.state, finishing.pid, finishing.ready, finishing.readySince, finishing.restarts], ['finishing', null, false, null, 0]);
  assert.deepEqual(finishing.lastExit, { code: 3, signal: null, signum: null, at: ISO(STAMP) });
  const fresh = supervisedService('svc', 'none', view({ wantUp: false, ready: true }, false), []);
  assertValid(SERVICE, fresh, 'fresh');
  assert.deepEqual([fresh.state, fresh.want, fresh.normallyUp, fresh.ready, fresh.lastExit, fresh.deathTally, fresh.restarts], ['down', 'down', false, false, null, 0, 0]);
  // No tally (max-death-tally 0): the status record still knows the end, not its time.
  const untallied = supervisedService('svc', 'none', view({ wstat: 0x0009 }), []);
  assert.deepEqual(untallied.lastExit, { code: null, signal: 'SIGKILL', signum: 9, at: null });
  assertValid(SERVICE, untallied, 'untallied');
  const deaths = [0x0100, 0x0200, 0x0300].map((w) => deathFromWstat(STAMP, w));
  assert.equal(supervisedService('svc', 'none', view({ wstat: 0x0300 }), deaths).restarts, 2, 'down: the last death was not followed by a start');
  assert.equal(supervisedService('svc', 'none', view({ pid: 9, wstat: 0x0300 }), deaths).restarts, 3, 'up: every death was');
  // A stamp in the future reads as now, as t6-svstat has it.
  const future = supervisedService('svc', 'none', { ...view({ pid: 9 }), now: { sec: STAMP.sec - 5n, nano: 0 } }, []);
  assert.equal(future.since, ISO({ sec: STAMP.sec - 5n, nano: 0 }));
});

test('a oneshot is what t6-rc knows: its bit as want, state and readiness, nothing else', () => {
  const o = oneshotService('setup', true);
  assertValid(SERVICE, o, 'oneshot');
  assert.deepEqual(o, { ...unknownService('setup', 'oneshot', 'none'), rc: 'up', want: 'up', state: 'up', ready: true });
  const l = withRcBit(supervisedService('l', 'none', view({ wantUp: false }), []), true);
  assert.deepEqual([l.rc, l.want], ['up', 'down']);
  assertValid(SERVICE, oneshotService('setup', false), 'oneshot down');
});

// --- Reading service directories ----------------------------------------------------------

test('describeServicedir: the logger from log/ and producer-for, the down file, inside-scanner directories, read errors', () => {
  const base = tmpdir();
  const now = tainFromUnixMs(Date.now());
  const dir = (name: string): string => path.join(base, name);
  makeService(dir('plain'), { run: '#!/bin/sh\n', down: true });
  makeService(dir('ext'), { run: '#!/bin/sh\n', log: { run: '#!/bin/sh\n' } });
  makeService(dir('inproc'), { run: '#!/bin/sh\n', log: { files: { 't6-log': 't\n./logdir\n' } } });
  makeService(dir('producer'), { run: '#!/bin/sh\n', files: { 'producer-for': 'consumer\n' } });
  makeService(dir('s6-linux-init-shutdownd'), {});
  mkfifo(path.join(dir('s6-linux-init-shutdownd'), 'fifo'), 0o600);
  assert.deepEqual(['plain', 'ext', 'inproc', 'producer'].map((n) => loggerOf(dir(n))), ['none', 'external', 'in-process', 'external']);
  const plain = describeServicedir({ name: 'plain', dir: dir('plain'), supervised: false }, now);
  assert.deepEqual(plain, { ...unknownService('plain', 'longrun', 'none'), normallyUp: false });
  const logger = describeServicedir({ name: 'inproc/log', dir: path.join(dir('inproc'), 'log'), supervised: false }, now);
  assert.deepEqual(logger, { ...unknownService('inproc/log', 'inside-scanner', 'none'), insideScanner: 'logger' });
  const daemon = describeServicedir({ name: 's6-linux-init-shutdownd', dir: dir('s6-linux-init-shutdownd'), supervised: false }, now);
  assert.equal(daemon.insideScanner, 'shutdownd');
  const failed = describeServicedir({ name: 'ext', dir: dir('ext'), supervised: 'error', error: new ClientError('system', dir('ext'), 'unable to read status for x: Permission denied') }, now);
  assert.deepEqual(failed, { ...unknownService('ext', 'longrun', 'external'), error: 'unable to read status for x: Permission denied' });
  // Supervised: the death tally is read; a bad one is an error in the object, not a throw.
  fs.mkdirSync(path.join(dir('ext'), 'supervise'));
  fs.writeFileSync(path.join(dir('ext'), 'supervise', 'death_tally'), encodeDeathTally([deathFromWstat(STAMP, 0x000b)]));
  const ext = describeServicedir({ name: 'ext', dir: dir('ext'), supervised: true, status: status({ pid: 5 }), normallyUp: true }, now);
  assert.deepEqual([ext.deathTally, ext.restarts, ext.lastExit?.signal], [1, 1, 'SIGSEGV']);
  fs.rmSync(path.join(dir('ext'), 'supervise', 'death_tally'));
  fs.mkdirSync(path.join(dir('ext'), 'supervise', 'death_tally'));
  const unreadable = describeServicedir({ name: 'ext', dir: dir('ext'), supervised: true, status: status({ pid: 5 }), normallyUp: true }, now);
  assert.match(unreadable.error ?? '', /^unable to read .*death_tally: /);
  for (const o of [plain, logger, daemon, failed, ext, unreadable] as ServiceJson[]) assertValid(SERVICE, o, o.name);
  assert.deepEqual([serviceNameOf(dir('ext')), serviceNameOf(`${dir('ext')}/log/`), serviceNameOf('.')], ['ext', 'ext/log', path.basename(process.cwd())]);
});

test('a log line of t6-log --json follows docs/log-line.schema.json; a bad one does not', () => {
  const schema = loadSchema('log-line');
  const stamped = JSON.parse(formatJson(parseLine('/var/log/x', 'current', '@400000006b06c71c0f0bfc65 hello', { sec: undefined, nano: 0 }))) as Record<string, unknown>;
  assertValid(schema, stamped, 'a stamped line');
  assert.match(String(stamped.time), /\.\d{9}Z$/);
  assertValid(schema, JSON.parse(formatJson(parseLine('/var/log/x', 'current', 'bare', { sec: undefined, nano: 0 }))), 'a bare line');
  assert.ok(validate(schema, { ...stamped, tai: '@1234' }).length > 0);
  assert.ok(validate(schema, { ...stamped, file: 'previous' }).length > 0);
  assert.ok(validate(schema, { ...stamped, time: 'yesterday' }).length > 0);
});
