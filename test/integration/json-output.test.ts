/**
 * Every `--json` output of t6, taken from a real tree (t6-svscan as pid 1 of its own pid
 * namespace, with t6-rc's live state in the same scan directory), validated object by
 * object against docs/service.schema.json (t6-svstat, t6-rc), docs/log-line.schema.json
 * (t6-log) and docs/event.schema.json (t6 events), and checked to say what is true of the services.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { EventLog, ROOT, Tree, makeService, readStatus, t6, tmpdir, until, type ServiceSpec } from '../lib/harness.ts';
import { writeDb } from '../lib/rcdb.ts';
import { assertValid, loadSchema } from '../lib/jsonschema.ts';
import type { ServiceJson } from '../../src/s6/servicejson.ts';
import { O_NONBLOCK, O_WRONLY, close, mkfifo, open } from '../../src/sys/fd.ts';

const SERVICE = loadSchema('service');
const LOG_LINE = loadSchema('log-line');
const EVENT = loadSchema('event');

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

/** The commands that take --json: each has its outputs checked below (t6-rc's options are in _rc-read.ts, its small first bundle). */
const JSON_COMMANDS = ['_rc-read.ts', 'analyze.ts', 'events.ts', 'log.ts', 'svstat.ts'];

test('the commands with a --json option are the ones this file checks', () => {
  const cli = path.join(ROOT, 'src', 'cli');
  const withJson = fs.readdirSync(cli).filter((f) => /\bjson: 'flag'/.test(fs.readFileSync(path.join(cli, f), 'utf8'))).sort();
  assert.deepEqual(withJson, JSON_COMMANDS);
});

let validated = 0;

/** Runs bin/t6-CMD, expects `status`, parses stdout as one JSON value. */
function jsonOf(cmd: string, args: string[], status = 0): unknown {
  const r = t6(cmd, args);
  assert.equal(r.status, status, `t6-${cmd} ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Validates an array of service objects (or one) and returns them. */
function services(what: string, value: unknown): ServiceJson[] {
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  list.forEach((o, i) => { assertValid(SERVICE, o, `${what} [${i}]`); validated++; });
  return list as ServiceJson[];
}

/** Validates every line of t6-log's --json output; returns the objects. */
function logLines(args: string[]): { line: string }[] {
  const r = t6('log', args);
  assert.equal(r.status, 0, `t6-log ${args.join(' ')}: ${r.stderr}`);
  const out = r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { line: string });
  out.forEach((o, i) => { assertValid(LOG_LINE, o, `t6-log ${args.join(' ')} line ${i}`); validated++; });
  return out;
}

const sh = (body: string): string => `#!/bin/sh\n${body}\n`;
const by = (list: ServiceJson[], name: string): ServiceJson => {
  const o = list.find((e) => e.name === name);
  assert.ok(o !== undefined, `${name} in ${list.map((e) => e.name).join(' ')}`);
  return o;
};

test('every --json output of t6-svstat, t6-rc and t6-log follows its schema, and says what is true', async () => {
  const base = tmpdir('t6-json-');
  const scandir = path.join(base, 'service');
  const logdir = path.join(base, 'inproc-logs');
  const uncaught = path.join(base, 'uncaught');
  const release = path.join(base, 'release');
  fs.mkdirSync(scandir);
  mkfifo(release, 0o600);
  const events = new Map<string, EventLog>();
  const service = (name: string, spec: ServiceSpec): void => {
    const dir = makeService(path.join(scandir, name), spec);
    fs.mkdirSync(path.join(dir, 'event'));
    events.set(name, new EventLog(dir));
  };
  const sleeper = sh('exec sleep 3600');
  service('plain', { run: sleeper });
  service('ready', { run: sh('echo >&3\nexec sleep 3600 3>&-'), files: { 'notification-fd': '3\n' } });
  service('idle', { run: sleeper, down: true });
  service('crashy', { run: sh('[ -e ./first ] && { rm ./first; exit 3; }\nexec sleep 3600'), files: { first: '' } });
  // Its finish waits for the test to open the release FIFO: state "finishing" until then.
  service('finishing', { run: sleeper, finish: sh(`exec cat "${release}" >/dev/null`), files: { 'timeout-finish': '0\n' } });
  service('ext', { run: sleeper, log: { run: sh('exec cat >/dev/null') } });
  service('inproc', { run: sh('echo hello\nexec sleep 3600'), log: { files: { 't6-log': `t\n${logdir}\n` } } });
  service('prod', { run: sleeper, files: { 'producer-for': 'cons\n' } });
  service('cons', { run: sh('exec cat >/dev/null') });
  makeService(path.join(scandir, 's6-svscan-log'), { files: { 't6-log': `t\n${uncaught}\n` } });
  const tree = await Tree.start(scandir);
  // Opening the FIFO for writing and closing it ends finish's `cat` (ENXIO: not reading yet).
  const releaseFinish = (): number | undefined => {
    try { const fd = open(release, O_WRONLY | O_NONBLOCK); close(fd); return fd; } catch { return undefined; }
  };
  cleanups.push(async () => {
    releaseFinish(); // a failed test must not leave finish holding the tree up
    await tree.stop();
    for (const e of events.values()) e.close();
  });
  const wait = (name: string, re: RegExp): Promise<string> => events.get(name)!.waitFor(re);
  await Promise.all([
    wait('plain', /u/), wait('ready', /uU/), wait('idle', /s/), wait('crashy', /udDu/), wait('finishing', /u/),
    wait('ext', /u/), wait('inproc', /u/), wait('prod', /u/), wait('cons', /u/),
  ]);

  // t6-rc's live state in the same scan directory: a longrun, two oneshots, a bundle.
  const compiled = writeDb(path.join(base, 'compiled'), [
    { name: 'l1', type: 'longrun', run: sleeper },
    { name: 'o1', type: 'oneshot', up: ['true'], deps: ['l1'] },
    { name: 'o2', type: 'oneshot', up: ['true'] },
    { name: 'b', type: 'bundle', contents: ['o1', 'o2'] },
  ]);
  const live = path.join(base, 'live');
  assert.equal(t6('rc-init', ['-c', compiled, '-l', live, scandir]).status, 0);
  assert.equal(t6('rc', ['-l', live, '-u', 'change', 'o1']).status, 0);

  // A death by signal (plain), a service in its finish script (finishing), a logged line.
  assert.equal(t6('svc', ['-k', path.join(scandir, 'plain')]).status, 0);
  assert.equal(t6('svc', ['-d', path.join(scandir, 'finishing')]).status, 0);
  await Promise.all([wait('plain', /udDu/), wait('finishing', /ud/)]);
  assert.equal(readStatus(path.join(scandir, 'finishing'))!.finishing, true);
  await until('the in-process logger to write its line', () => fs.existsSync(path.join(logdir, 'current')) && fs.readFileSync(path.join(logdir, 'current'), 'utf8').includes('hello'));

  checkSvstat(scandir);
  checkRc(live, scandir);
  checkAnalyze(live);
  const lines = logLines(['cat', '--json', logdir]);
  assert.ok(lines.some((l) => l.line === 'hello'));
  logLines(['tail', '-n', '1', '--json', logdir, uncaught]);
  checkEvents(scandir);
  assert.ok(validated >= 35, `validated ${validated} objects`); // that the checks ran: 38 objects as written

  // Let finish end, so that the tree can stop.
  await until('finish to read the release FIFO', releaseFinish);
  await wait('finishing', /udD/);
});

/** t6 events --json: every record of the ring follows the schema, and says what happened. */
function checkEvents(scandir: string): void {
  const r = t6('events', ['-s', scandir, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  records.forEach((o, i) => { assertValid(EVENT, o, `t6 events --json record ${i}`); validated++; });
  const kinds = new Set(records.map((o) => o.kind));
  for (const k of ['scanner', 'supervised', 'up', 'ready', 'down', 'finish-started', 'rc']) assert.ok(kinds.has(k), `a ${k} record`);
  const crashy = records.find((o) => o.service === 'crashy' && o.kind === 'down');
  assert.equal(crashy?.exitCode, 3);
  // Only one service's, when asked.
  const only = t6('events', ['-s', scandir, '--json', 'plain']).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(only.length > 0 && only.every((o) => o.service === 'plain' || o.service === undefined));
}

/** t6-svstat -a --json, then t6-svstat --json on every supervised directory. */
function checkSvstat(scandir: string): void {
  const all = services('t6-svstat -a --json', jsonOf('svstat', ['--json', '-a', scandir]));
  assert.deepEqual(all.map((o) => o.name), [
    'cons', 'crashy', 'ext', 'ext/log', 'finishing', 'idle', 'inproc', 'inproc/log', 'l1', 'plain', 'prod', 'ready', 's6-svscan-log',
  ]);
  const plain = by(all, 'plain');
  assert.deepEqual([plain.type, plain.supervised, plain.want, plain.state, plain.ready, plain.readySince, plain.normallyUp, plain.logger],
    ['longrun', true, 'up', 'up', false, null, true, 'none']);
  assert.equal(plain.pid, readStatus(path.join(scandir, 'plain'))!.pid);
  assert.deepEqual([plain.lastExit?.signal, plain.lastExit?.code, plain.deathTally, plain.restarts], ['SIGKILL', null, 1, 1]);
  assert.ok(Date.parse(plain.lastExit!.at!) <= Date.parse(plain.since!), 'died, then started again');
  const ready = by(all, 'ready');
  assert.deepEqual([ready.ready, ready.lastExit, ready.deathTally, ready.restarts], [true, null, 0, 0]);
  assert.ok(Math.abs(Date.parse(ready.readySince!) - Date.now()) < 60_000, 'readySince is now-ish');
  const crashy = by(all, 'crashy');
  assert.deepEqual([crashy.state, crashy.lastExit?.code, crashy.restarts], ['up', 3, 1]);
  const idle = by(all, 'idle');
  assert.deepEqual([idle.state, idle.want, idle.normallyUp, idle.pid, idle.lastExit, idle.restarts], ['down', 'down', false, null, null, 0]);
  const finishing = by(all, 'finishing');
  assert.deepEqual([finishing.state, finishing.want, finishing.pid, finishing.lastExit?.signal, finishing.restarts], ['finishing', 'down', null, 'SIGTERM', 0]);
  assert.deepEqual(['ext', 'ext/log', 'inproc', 'prod', 'cons'].map((n) => by(all, n).logger), ['external', 'none', 'in-process', 'external', 'none']);
  for (const name of ['inproc/log', 's6-svscan-log']) {
    assert.deepEqual([by(all, name).type, by(all, name).supervised, by(all, name).insideScanner, by(all, name).state], ['inside-scanner', false, 'logger', null]);
  }
  assert.ok(all.every((o) => o.rc === null && o.error === null), 't6-svstat knows no t6-rc bit, and read everything');
  // One directory at a time: the same object (the time of reading aside).
  for (const o of all.filter((e) => e.supervised)) {
    const one = services(`t6-svstat --json ${o.name}`, jsonOf('svstat', ['--json', path.join(scandir, o.name)]))[0]!;
    assert.deepEqual(one, o, o.name);
  }
}

/** t6-analyze --json, against docs/analyze.schema.json: what it says of `t6-rc -u change o1` (o1 after l1). */
function checkAnalyze(live: string): void {
  const schema = loadSchema('analyze');
  const analyze = (def: string, args: string[]): unknown => {
    const value = jsonOf('analyze', ['--live', live, '--json', ...args]);
    assertValid({ $defs: schema.$defs, $ref: `#/$defs/${def}` }, value, `t6-analyze ${args.join(' ')}`);
    return value;
  };
  const record = analyze('record', ['plot']) as { kind: string; services: { name: string; direction: string }[] };
  assert.deepEqual([record.kind, record.services.map((t) => `${t.name} ${t.direction}`)], ['change', ['l1 up', 'o1 up']]);
  assert.deepEqual((analyze('blame', ['blame']) as { name: string }[]).map((e) => e.name).sort(), ['l1', 'o1']);
  assert.deepEqual((analyze('chain', ['critical-chain']) as { links: { name: string }[] }).links.map((l) => l.name), ['o1', 'l1']);
  assert.deepEqual((analyze('list', ['list']) as { change: number }[]).map((l) => l.change), [1]);
}

/** t6-rc list, listall and diff with --json, before and after a longrun is stopped behind t6-rc's back. */
function checkRc(live: string, scandir: string): void {
  const rc = (args: string[], status = 0): ServiceJson[] => services(`t6-rc ${args.join(' ')}`, jsonOf('rc', ['-l', live, '--json', ...args], status));
  const up = rc(['-a', 'list']);
  assert.deepEqual(up.map((o) => [o.name, o.type, o.rc, o.want, o.state]), [['l1', 'longrun', 'up', 'up', 'up'], ['o1', 'oneshot', 'up', 'up', 'up']]);
  const l1 = by(up, 'l1');
  assert.deepEqual([l1.supervised, l1.pid, l1.deathTally, l1.logger], [true, readStatus(path.join(scandir, 'l1'))!.pid, 0, 'none']);
  const o1 = by(up, 'o1');
  assert.deepEqual([o1.supervised, o1.pid, o1.since, o1.ready, o1.lastExit, o1.deathTally, o1.logger], [false, null, null, true, null, null, 'none']);
  assert.deepEqual(rc(['list', 'b']).map((o) => [o.name, o.state]), [['o1', 'up'], ['o2', 'down']]);
  assert.deepEqual(rc(['-d', 'list', 'l1']).map((o) => o.name), ['o1', 'o2']);
  assert.deepEqual(rc(['listall', 'b']).map((o) => o.name), ['l1', 'o1', 'o2']);
  assert.deepEqual(rc(['-d', 'listall', 'l1']).map((o) => o.name), ['l1', 'o1']);
  assert.deepEqual(rc(['diff']), []);
  const stopped = t6('svc', ['-wd', '-T', '30000', '-d', path.join(scandir, 'l1')]);
  assert.equal(stopped.status, 0, stopped.stderr);
  const [differs, ...more] = rc(['diff'], 1);
  assert.deepEqual(more, []);
  assert.deepEqual([differs!.name, differs!.rc, differs!.want, differs!.state, differs!.lastExit?.signal, differs!.restarts], ['l1', 'up', 'down', 'down', 'SIGTERM', 0]);
}
