/**
 * t6-svscan's in-process loggers, through the logging hub, on real pipes and logdirs in a
 * temporary directory (no supervisor, no child process).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Logger } from '../../src/log/engine.ts';
import { Logging } from '../../src/supervise/logging.ts';
import { tainNow } from '../../src/s6/tai.ts';
import { close, pipe } from '../../src/sys/fd.ts';
import { tmpdir, until } from '../lib/harness.ts';

/** A hub on a fresh scan dir; its reports are collected. */
function hub(): { logging: Logging; scandir: string; reports: string[] } {
  const scandir = tmpdir();
  const reports: string[] = [];
  const logging = new Logging({
    scandir,
    report: (level, message) => { reports.push(`${level}: ${message}`); },
    waitPid: () => new Promise<number>(() => {}),
    guard: (what, fn) => { try { fn(); } catch (err) { reports.push(`guard: ${what}: ${String(err)}`); } },
    monotonicMs: () => performance.now(),
    now: tainNow,
  });
  return { logging, scandir, reports };
}

/** A service directory whose log/t6-log holds `script`. */
function service(scandir: string, name: string, script: string): string {
  const dir = path.join(scandir, name);
  fs.mkdirSync(path.join(dir, 'log'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'log', 't6-log'), script);
  return dir;
}

function current(dir: string): string {
  try { return fs.readFileSync(path.join(dir, 'current'), 'utf8'); } catch { return ''; }
}

test('a reload whose old engine fails to end goes on with the new script, and says so naming the logger', { timeout: 30_000 }, async (t) => {
  const { logging, scandir, reports } = hub();
  const dir = service(scandir, 'svc', './one\n');
  const [r, w] = pipe();
  t.after(() => { close(r); close(w); });
  const logger = logging.logger('svc', dir, r);
  fs.writeSync(w, 'first\n');
  await until('the first line in ./one', () => current(path.join(dir, 'log', 'one')) === 'first\n');

  const realEnd = Logger.prototype.end;
  const end = t.mock.method(Logger.prototype, 'end');
  end.mock.mockImplementationOnce(async function (this: Logger) {
    await realEnd.call(this);
    throw new Error('planted failure');
  });
  fs.writeFileSync(path.join(dir, 'log', 't6-log'), './two\n');
  logger.rescan();
  fs.writeSync(w, 'second\n');
  await until('the second line in ./two', () => current(path.join(dir, 'log', 'two')) === 'second\n');
  assert.ok(reports.some((m) => m.includes('svc/log') && m.includes('planted failure')), `the failure is reported naming the logger: ${JSON.stringify(reports)}`);
  assert.equal(current(path.join(dir, 'log', 'one')), 'first\n', 'the old logdir kept what it had');
  await logging.closeAll();
});
