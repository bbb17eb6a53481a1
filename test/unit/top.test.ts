/**
 * t6 top without a tree: the model (events, sorting, filtering, selection), rows in fixed
 * widths of terminal cells on an 80-column screen, the keys, the sampler's once-a-second
 * bound and its CPU arithmetic on a fake /proc, and a logdir's last line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { type ServiceJson, unknownService } from '../../src/s6/servicejson.ts';
import type { T6Event } from '../../src/supervise/events.ts';
import { SORT_KEYS, TopModel, shownState } from '../../src/top/model.ts';
import { cellWidth, fit, formatBytes, formatDuration, formatRow, layout, sanitize } from '../../src/top/format.ts';
import { renderScreen, renderTable } from '../../src/top/screen.ts';
import { type KeyState, applyKey, decodeKeys } from '../../src/top/keys.ts';
import { ProcSampler, type ProcSource, SAMPLE_INTERVAL_MS } from '../../src/top/sampler.ts';
import { parseProcStat } from '../../src/sys/procstat.ts';
import { LogTails, lastLine, logdirOf } from '../../src/top/logtail.ts';
import { tmpdir } from '../lib/harness.ts';

const NOW = Date.parse('2026-12-06T12:00:00.000Z');

/** A supervised service's object: up since `upForMs` (or down), with these restarts. */
function svc(name: string, over: Partial<ServiceJson> & { upForMs?: number } = {}): ServiceJson {
  const { upForMs, ...rest } = over;
  const up = upForMs !== undefined;
  return {
    ...unknownService(name, 'longrun', 'none'), supervised: true, want: up ? 'up' : 'down', state: up ? 'up' : 'down',
    pid: up ? 100 : null, since: new Date(NOW - (upForMs ?? 5000)).toISOString(), ready: up ? false : null, restarts: 0,
    normallyUp: true, paused: false, deathTally: 0, ...rest,
  };
}

function event(kind: T6Event['kind'], service?: string, more: Partial<T6Event> = {}): T6Event {
  return { seq: 1, time: new Date(NOW).toISOString(), mono: 1, kind, ...(service === undefined ? {} : { service }), ...more };
}

function model(...facts: ServiceJson[]): TopModel {
  const m = new TopModel();
  for (const f of facts) m.setFacts(f);
  return m;
}

const names = (m: TopModel): string[] => m.visible(NOW).map((r) => r.name);

test('rows sort by name, state (trouble first), cpu, rss, restarts (biggest first) and uptime (shortest first), cycling with s', () => {
  const m = model(
    svc('web', { upForMs: 90_000, restarts: 2 }), svc('db', { upForMs: 10_000 }), svc('cron'),
    svc('api', { upForMs: 500_000, restarts: 7 }), svc('mail', { state: 'down', want: 'up' }),
  );
  m.setUsage(new Map([['web', { cpuPercent: 12, rssBytes: 50e6, processes: 2 }], ['db', { cpuPercent: 40, rssBytes: 10e6, processes: 1 }], ['api', { cpuPercent: 1, rssBytes: 90e6, processes: 3 }]]));
  m.row('mail')!.note = 'throttled';
  const seen: Record<string, string[]> = {};
  for (const key of SORT_KEYS) {
    assert.equal(m.sort, key);
    seen[key] = names(m);
    m.cycleSort();
  }
  assert.equal(m.sort, 'name', 'the cycle comes back to name');
  assert.deepEqual(seen, {
    name: ['api', 'cron', 'db', 'mail', 'web'],
    state: ['mail', 'cron', 'api', 'db', 'web'],
    cpu: ['db', 'web', 'api', 'cron', 'mail'],
    rss: ['api', 'web', 'db', 'cron', 'mail'],
    restarts: ['api', 'web', 'cron', 'db', 'mail'],
    uptime: ['db', 'web', 'api', 'cron', 'mail'],
  });
});

test('the filter keeps rows whose name or state contains the text, in any case; the selection follows the name', () => {
  const m = model(svc('web', { upForMs: 1000 }), svc('web/log', { insideScanner: 'logger', type: 'inside-scanner', supervised: false, state: null }), svc('db'));
  m.setFilter('WEB');
  assert.deepEqual(names(m), ['web', 'web/log']);
  m.setFilter('down');
  assert.deepEqual(names(m), ['db']);
  m.setFilter('');
  m.move(m.visible(NOW), 2);
  assert.equal(m.selected(m.visible(NOW)), 'web/log');
  m.move(m.visible(NOW), 10);
  assert.equal(m.selected(m.visible(NOW)), 'web/log', 'clamped at the end');
  m.setFilter('db');
  assert.equal(m.selected(m.visible(NOW)), 'db', 'the selected row is filtered out: the first one shown');
});

test('events: a named service is read again, throttled and given-up show until it is up again, lost means read everything', () => {
  const m = model(svc('web', { want: 'up' }), svc('web/log', { insideScanner: 'logger', supervised: false, state: null }));
  assert.deepEqual(m.applyEvent(event('throttled', 'web', { delayMs: 1000 })), { refresh: ['web'], rescan: false });
  assert.equal(shownState(m.row('web')!), 'throttled');
  m.applyEvent(event('up', 'web', { pid: 5 }));
  assert.equal(shownState(m.row('web')!), 'starting', 'the note went; the facts say up once read again');
  m.applyEvent(event('given-up', 'web'));
  assert.equal(shownState(m.row('web')!), 'gave-up');
  m.applyEvent(event('logger-blocked', 'web/log', { blockedMs: 1500 }));
  assert.equal(shownState(m.row('web/log')!), 'blocked');
  m.applyEvent(event('logger-resumed', 'web/log'));
  assert.equal(shownState(m.row('web/log')!), 'logger');
  assert.deepEqual(m.applyEvent(event('supervised', 'new')), { refresh: ['new'], rescan: false }, 'a new service is read');
  assert.deepEqual(m.applyEvent(event('rc', 'oneshot-x', { action: 'start', phase: 'done' })), { refresh: [], rescan: false }, 'an rc service that is no row');
  assert.deepEqual(m.applyEvent(event('lost', undefined, { lost: 3 })), { refresh: [], rescan: true });
  assert.deepEqual(m.applyEvent(event('scanner', undefined, { phase: 're-executed' })), { refresh: [], rescan: true });
  assert.deepEqual(m.counts(), { total: 2, up: 0, down: 1, other: 1 });
});

test('cells: wide characters take two, control characters are shown as ?, fit pads or cuts to the exact width', () => {
  assert.equal(cellWidth('日本'), 4);
  assert.equal(sanitize('a\x1b[2Jb\tc'), 'a?[2Jb c');
  assert.equal(fit('abc', 5), 'abc  ');
  assert.equal(fit('abc', 5, true), '  abc');
  assert.equal(fit('abcdef', 4), 'abc…');
  assert.equal(cellWidth(fit('日本語のログ', 5)), 5);
  assert.deepEqual(['0s', '59s', '1m00s', '59m59s', '1h00m', '23h59m', '1d00h', '999d+'].map((x) => x),
    [0, 59_999, 60_000, 3_599_999, 3_600_000, 86_399_999, 86_400_000, 1000 * 86_400_000].map(formatDuration));
  assert.deepEqual([1000, 5e6, 150e6, 3e9, 200e9].map(formatBytes), ['1K', '4.8M', '143M', '2.79G', '186G']);
});

test('on 80 columns every row is exactly 80 cells, whatever the name and the log line hold', () => {
  const m = model(
    svc('a-service-with-a-very-long-name-indeed', { upForMs: 3_723_000, restarts: 12345 }),
    svc('crashy', { want: 'up', lastExit: { code: null, signal: 'SIGSEGV', signum: 11, at: null } }),
    svc('日本語サービス', { upForMs: 10 }),
  );
  m.row('crashy')!.logLine = 'panic: \x1b[31mred\x1b[0m ' + 'x'.repeat(200);
  m.row('日本語サービス')!.logLine = 'ログ行'.repeat(30);
  m.setUsage(new Map([['a-service-with-a-very-long-name-indeed', { cpuPercent: 123.456, rssBytes: 1.5e9, processes: 9 }]]));
  const widths = layout(80, 40);
  const rows = m.visible(NOW).map((r) => formatRow(r, widths, NOW, r.name === 'crashy'));
  for (const row of rows) assert.equal(cellWidth(row), 80, JSON.stringify(row));
  assert.match(rows[0]!, /^  a-service-wit… up {13}no   1h02m  12k 123\.5  1\.40G {20}$/);
  assert.match(rows[1]!, /^> crashy {9}starting SEGV {16}0 {14}panic: \?\[31mred\?\[0…$/);
  const screen = renderScreen(m, { width: 80, height: 24, nowMs: NOW, scandir: '/run/service', samples: 7, pidsVerified: true, editing: undefined, message: '' });
  assert.equal(screen.lines.length, 24);
  for (const line of screen.lines) assert.equal(cellWidth(line), 80, JSON.stringify(line));
  assert.match(screen.lines[0]!, /^t6 top \/run\/service  3 services: 2 up, 1 down, 0 other +sort: name  12:00:00$/);
  assert.match(screen.lines[23]!, /samples 7$/);
  assert.deepEqual(screen.highlight, [1, 2], 'the titles and the selected row (the first)');
});

test('a screen scrolls to keep the selection in sight, and says when pids are another namespace\'s', () => {
  const m = model(...Array.from({ length: 50 }, (_, i) => svc(`s${String(i).padStart(2, '0')}`, { upForMs: 1000 })));
  m.move(m.visible(NOW), 40);
  const info = { width: 80, height: 24, nowMs: NOW, scandir: '/s', samples: 1, pidsVerified: false, editing: undefined, message: '' };
  const screen = renderScreen(m, info);
  assert.equal(screen.lines.length, 24);
  const selected = screen.lines.findIndex((l) => l.startsWith('> s40'));
  assert.ok(selected > 1 && screen.highlight.includes(selected), 'the selected row is shown, reversed');
  assert.match(screen.lines[22]!, /pids are not this pid namespace's/);
  const tiny = renderScreen(m, { ...info, width: 20, height: 3 });
  assert.deepEqual(tiny.lines.map(cellWidth), [20, 20, 20]);
  const narrow = renderScreen(m, { ...info, width: 40, samples: 123 });
  assert.match(narrow.lines[23]!, /^jk\/↑↓ move  s sort  \/ filte… samples 123$/, 'the sample count stays when the keys do not fit');
  const table = renderTable(m, { width: 80, nowMs: NOW, scandir: '/s', samples: 1, pidsVerified: undefined });
  assert.equal(table.length, 52, 'the plain table has every row');
});

test('keys: moves, sort, filter typed and cleared, commands on the selected service, quit', () => {
  const m = model(svc('a', { upForMs: 1 }), svc('b', { upForMs: 1 }), svc('c', { upForMs: 1 }));
  const state: KeyState = { editing: undefined };
  const type = (bytes: string): unknown[] => decodeKeys(bytes).map((k) => applyKey(m, state, m.visible(NOW), k, 20)).filter((c) => c !== undefined);
  assert.deepEqual(decodeKeys('\x1b[A\x1b[Bj\x1b[6~\x1b[99Zq\x1b'), [
    { name: 'up' }, { name: 'down' }, { name: 'char', char: 'j' }, { name: 'pagedown' }, { name: 'char', char: 'q' }, { name: 'escape' },
  ]);
  type('j');
  assert.deepEqual(type('r'), [{ kind: 'control', service: 'b', letter: 't' }], 'r restarts as t6-svc -t');
  type('\x1b[B');
  assert.deepEqual(type('ud'), [{ kind: 'control', service: 'c', letter: 'u' }, { kind: 'control', service: 'c', letter: 'd' }]);
  type('g');
  assert.equal(m.selected(m.visible(NOW)), 'a');
  type('s');
  assert.equal(m.sort, 'state');
  type('/bq');
  assert.equal(state.editing, 'bq', 'q is text while the filter is typed');
  type('\x7f\r');
  assert.deepEqual([state.editing, m.filter, names(m)], [undefined, 'b', ['b']]);
  type('\x1b');
  assert.equal(m.filter, '', 'Esc clears the filter');
  assert.deepEqual(type('q'), [{ kind: 'quit' }]);
  assert.deepEqual(type('\x03'), [{ kind: 'quit' }]);
});

/** A fake /proc: processes by pid, a clock for the rate limit, and a count of tree walks. */
function fakeProc(): { source: ProcSource; procs: Map<number, { ppid: number; ticks: number; start: number; rss: number; cwd: string }>; clock: { now: number; up: number }; stats: { n: number } } {
  const procs = new Map<number, { ppid: number; ticks: number; start: number; rss: number; cwd: string }>();
  const clock = { now: 0, up: 1000 };
  const stats = { n: 0 };
  const source: ProcSource = {
    stat: (pid) => {
      stats.n++;
      const p = procs.get(pid);
      return p === undefined ? undefined : { pid, ppid: p.ppid, cpuTicks: p.ticks, startTicks: p.start, rssPages: p.rss };
    },
    children: (pid) => [...procs].filter(([, p]) => p.ppid === pid).map(([c]) => c),
    cwd: (pid) => procs.get(pid)?.cwd,
    uptime: () => clock.up,
    pageSize: 4096,
  };
  return { source, procs, clock, stats };
}

test('the sampler reads /proc at most once a second, sums a process tree, and counts CPU since the previous sample', () => {
  const { source, procs, clock, stats } = fakeProc();
  const sampler = new ProcSampler(source, () => clock.now);
  procs.set(10, { ppid: 1, ticks: 25_000, start: 50_000, rss: 100, cwd: '/s/web' }); // started at 500 s, up 1000 s: half a CPU on average
  procs.set(11, { ppid: 10, ticks: 0, start: 90_000, rss: 50, cwd: '/' });
  procs.set(12, { ppid: 11, ticks: 0, start: 90_000, rss: 25, cwd: '/' });
  const targets = [{ name: 'web', pid: 10, dir: '/s/web' }, { name: 'gone', pid: 99, dir: '/s/gone' }];
  const first = sampler.sample(targets)!;
  assert.deepEqual(first.get('web'), { cpuPercent: 50, rssBytes: 175 * 4096, processes: 3 });
  assert.equal(first.has('gone'), false);
  assert.equal(sampler.pidsVerified, true);
  const reads = stats.n;
  clock.now += SAMPLE_INTERVAL_MS - 1;
  assert.equal(sampler.sample(targets), undefined, 'too soon: nothing read');
  assert.equal(stats.n, reads);
  assert.equal(sampler.msUntilDue(), 1);
  clock.now += 1;
  clock.up += 2;
  procs.get(10)!.ticks += 50; // a quarter of a CPU over 2 s
  procs.get(12)!.ticks += 100; // half
  procs.set(13, { ppid: 10, ticks: 20, start: 100_100, rss: 1, cwd: '/' }); // born 1 s ago, 20 ticks since
  assert.equal(Math.round(sampler.sample(targets)!.get('web')!.cpuPercent), 85);
  assert.equal(sampler.samples, 2);
});

test('the sampler shows nothing for pids that are not the services\' (another pid namespace)', () => {
  const { source, procs, clock } = fakeProc();
  const sampler = new ProcSampler(source, () => clock.now);
  procs.set(7, { ppid: 2, ticks: 9, start: 10, rss: 1, cwd: '/' }); // a kernel thread, say
  assert.equal(sampler.sample([{ name: 'web', pid: 7, dir: '/s/web' }])!.size, 0);
  assert.equal(sampler.pidsVerified, false);
});

test('/proc/PID/stat parses with spaces and parentheses in the command name', () => {
  const text = '42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 1000000 256 18446744073709551615';
  assert.deepEqual(parseProcStat(42, text), { pid: 42, ppid: 1, cpuTicks: 10, startTicks: 12345, rssPages: 256 });
  assert.equal(parseProcStat(42, 'garbage'), undefined);
});

test('the last log line: read from the tail of current, stamps removed, a logdir found from t6-log or log/run', () => {
  assert.equal(lastLine('a\nb\n', false), 'b');
  assert.equal(lastLine('a\nb\npartial', false), 'b');
  assert.equal(lastLine('cut line\n', true), undefined, 'the start of a cut tail is not a line');
  const base = tmpdir('t6-top-unit-');
  const inproc = path.join(base, 'web');
  fs.mkdirSync(path.join(inproc, 'log', 'main'), { recursive: true });
  fs.writeFileSync(path.join(inproc, 'log', 't6-log'), '# comment\nn3\n./main\n');
  assert.equal(logdirOf(inproc), path.join(inproc, 'log', 'main'));
  const external = path.join(base, 'db');
  fs.mkdirSync(path.join(base, 'var-log-db'), { recursive: true });
  fs.mkdirSync(path.join(external, 'log'), { recursive: true });
  fs.writeFileSync(path.join(external, 'log', 'run'), `#!/bin/sh\nexec s6-log -b n20 s1000000 t ${path.join(base, 'var-log-db')}\n`);
  assert.equal(logdirOf(external), undefined, 'no current yet: not known to be a logdir');
  const current = path.join(base, 'var-log-db', 'current');
  fs.writeFileSync(current, `${'x'.repeat(10_000)}\n@400000006756b8a0000000aa second line\n`);
  assert.equal(logdirOf(external), path.join(base, 'var-log-db'));
  assert.equal(logdirOf(path.join(base, 'none')), undefined);
  const tails = new LogTails();
  assert.equal(tails.read(path.join(base, 'var-log-db')), 'second line');
  fs.appendFileSync(current, '2026-12-06 12:00:00.123456789  third\n');
  assert.equal(tails.read(path.join(base, 'var-log-db')), 'third');
});
