/**
 * t6 metrics: the output parses with a Prometheus text-format parser (an npm package made
 * for it), names every service, t6-svscan and its in-process loggers, and its counters
 * move as the services do: a crash-looper's restarts, a logger's lines and bytes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, Tree, makeService, readStatus, tmpdir, until } from '../lib/harness.ts';
import { writeDb } from '../lib/rcdb.ts';

interface Sample { labels?: Record<string, string>; value: string }
interface Family { name: string; help: string; type: string; metrics: Sample[] }
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

function scrape(scandir: string, live = path.join(scandir, '..', 'live')): Map<string, Family> {
  const r = spawnSync(path.join(BIN, 't6-metrics'), ['-s', scandir, '-l', live], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return new Map(parsePrometheus(r.stdout).map((f) => [f.name, f]));
}

function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const f = families.get(name);
  assert.ok(f, `${name} is there`);
  const s = f.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  assert.ok(s, `${name}${JSON.stringify(labels)} is there`);
  return Number(s.value);
}

test('t6 metrics: Prometheus text that parses, with counters that move as the services do', async () => {
  const base = tmpdir('t6-metrics-');
  const scandir = path.join(base, 'service');
  const logdir = path.join(base, 'logs', 'chatty');
  fs.mkdirSync(scandir);
  fs.mkdirSync(path.dirname(logdir));
  makeService(path.join(scandir, 'steady'), { run: '#!/bin/sh\nexec sleep 1000\n' });
  makeService(path.join(scandir, 'crashy'), { run: '#!/bin/sh\nexit 7\n' });
  makeService(path.join(scandir, 'chatty'), {
    run: '#!/bin/sh\nwhile :; do echo "a line of chatty output"; sleep 0.05; done\n',
    log: { files: { 't6-log': `t\ns4096\n${logdir}\n` } },
  });
  const tree = await Tree.start(scandir);
  cleanups.push(async () => { await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  await until('steady up', () => readStatus(path.join(scandir, 'steady'))?.pid);
  await until('crashy restarted', () => fs.readFileSync(path.join(scandir, 'crashy', 'supervise', 'death_tally')).length >= 2 * 20);

  const first = scrape(scandir);
  for (const f of first.values()) {
    assert.ok(f.help.length > 0 && ['gauge', 'counter'].includes(f.type.toLowerCase()), f.name);
    assert.match(f.name, /^t6_[a-z_]+$/);
  }
  assert.equal(value(first, 't6_service_supervised', { service: 'steady' }), 1);
  assert.equal(value(first, 't6_service_up', { service: 'steady' }), 1);
  assert.equal(value(first, 't6_service_want_up', { service: 'crashy' }), 1);
  assert.equal(value(first, 't6_service_last_exit_code', { service: 'crashy' }), 7);
  assert.ok(value(first, 't6_service_state_since_seconds', { service: 'steady' }) > Date.now() / 1000 - 3600);
  assert.ok(value(first, 't6_svscan_resident_memory_bytes') > 1 << 20);
  assert.ok(value(first, 't6_svscan_open_fds') > 3);
  assert.ok(value(first, 't6_svscan_supervisors') >= 3);
  assert.ok(value(first, 't6_events_published_total') > 0);
  assert.ok(value(first, 't6_svscan_event_loop_delay_seconds') >= 0);

  // The counters move: more restarts of crashy, more lines and bytes through chatty's logger.
  const restarts = value(first, 't6_service_restarts_total', { service: 'crashy' });
  const lines = value(first, 't6_logger_lines_total', { logger: 'chatty/log' });
  const bytes = value(first, 't6_logger_bytes_total', { logger: 'chatty/log' });
  let later = first;
  await until('counters moving', () => {
    later = scrape(scandir);
    return value(later, 't6_service_restarts_total', { service: 'crashy' }) > restarts
      && value(later, 't6_logger_lines_total', { logger: 'chatty/log' }) > lines + 5;
  });
  const moreLines = value(later, 't6_logger_lines_total', { logger: 'chatty/log' }) - lines;
  assert.equal(value(later, 't6_logger_bytes_total', { logger: 'chatty/log' }) - bytes, moreLines * 'a line of chatty output'.length);
  // Rotations too: `current` holds 4,096 bytes at most.
  await until('chatty rotated', () => value(scrape(scandir), 't6_logger_rotations_total', { logger: 'chatty/log' }) > 0);
  assert.ok(fs.readdirSync(logdir).some((f) => f.startsWith('@')));

  // t6-rc's last change: how long each transition took.
  const compiled = path.join(base, 'compiled');
  writeDb(compiled, [{ name: 'pause', type: 'oneshot', up: ['sleep', '0.3'] }]);
  assert.equal(spawnSync(path.join(BIN, 't6-rc-init'), ['-c', compiled, '-l', path.join(base, 'live'), scandir]).status, 0);
  assert.equal(spawnSync(path.join(BIN, 't6-rc'), ['-l', path.join(base, 'live'), '-u', 'change', 'pause']).status, 0);
  const rc = scrape(scandir);
  assert.ok(value(rc, 't6_rc_transition_duration_seconds', { service: 'pause', action: 'start' }) >= 0.29);
  assert.equal(value(rc, 't6_rc_transition_failed', { service: 'pause', action: 'start' }), 0);
  assert.equal(value(rc, 't6_rc_last_change_seq'), 1);

  // Without t6-svscan, -p still gives the services' figures; without -p, an error.
  await tree.stop();
  const down = spawnSync(path.join(BIN, 't6-metrics'), ['-s', scandir], { encoding: 'utf8' });
  assert.equal(down.status, 111);
  const partial = spawnSync(path.join(BIN, 't6-metrics'), ['-p', '-s', scandir], { encoding: 'utf8' });
  assert.equal(partial.status, 0);
  const left = new Map(parsePrometheus(partial.stdout).map((f) => [f.name, f]));
  assert.equal(value(left, 't6_service_supervised', { service: 'steady' }), 0);
  assert.equal(left.get('t6_svscan_supervisors'), undefined);
});
