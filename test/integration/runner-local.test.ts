/**
 * The runner reached from inside its own process (pid 1's t6-rc with -r): RunnerSession
 * with a local request function sends its requests to OneshotRunner.request, no socket
 * in between, and gets what a session over the socket gets: the pid, then the wait status;
 * errors as errors; a control request a runner does not serve as "unsupported", so the
 * engine falls back to the event FIFOs.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpdir } from '../lib/harness.ts';
import { OneshotRunner } from '../../src/supervise/runner.ts';
import { RunnerSession } from '../../src/rc/oneshot.ts';
import { Reaper, reapedSpawns } from '../../src/sys/reaper.ts';

const reaper = new Reaper({ onError: (err) => { throw err; } });
const onChild = (): void => reaper.reap();
process.on('SIGCHLD', onChild);
const dir = tmpdir('t6-runner-local-');
const reports: string[] = [];
const runner = OneshotRunner.listen(path.join(dir, 'run'), {
  ...reapedSpawns(reaper),
  kill: () => {},
  report: (level, message) => { reports.push(`${level}: ${message}`); },
});
after(() => { runner.close(); process.off('SIGCHLD', onChild); });

test('a oneshot through the in-process runner: no connection made, the wait status comes back', async () => {
  const session = new RunnerSession(path.join(dir, 'nobody-listens-here'), (line, reply) => runner.request(line, reply));
  const out = path.join(dir, 'out');
  const r = await session.run({ argv: ['sh', '-c', `echo "$RC_NAME" > ${out}; exit 3`], cwd: '/', env: null, setenv: ['RC_NAME=local'], timeoutMs: 0 });
  assert.deepEqual(r, { kind: 'exited', wstat: 3 << 8, timedOut: false });
  assert.equal(fs.readFileSync(out, 'utf8'), 'local\n');
  // Many at once, as a change sends every ready transition together.
  const many = await Promise.all(Array.from({ length: 20 }, (_v, i) => session.run({ argv: ['sh', '-c', `exit ${i}`], cwd: '/', env: null, timeoutMs: 0 })));
  assert.deepEqual(many.map((m) => (m !== 'unsupported' && m.kind === 'exited' ? m.wstat >> 8 : -1)), Array.from({ length: 20 }, (_v, i) => i));
  const timedOut = await session.run({ argv: ['sleep', '10'], cwd: '/', env: null, timeoutMs: 50 });
  assert.ok(timedOut !== 'unsupported' && timedOut.kind === 'exited' && timedOut.timedOut);
  assert.deepEqual(reports, []);
});

test('errors come back as errors; a control request this runner does not serve is "unsupported"', async () => {
  const session = new RunnerSession(path.join(dir, 'nobody-listens-here'), (line, reply) => runner.request(line, reply));
  const missing = await session.run({ argv: ['/nonexistent/t6-program'], cwd: '/', env: null, timeoutMs: 0 });
  assert.ok(missing !== 'unsupported' && missing.kind === 'error', JSON.stringify(missing));
  assert.match(missing.kind === 'error' ? missing.message : '', /unable to spawn \/nonexistent\/t6-program/);
  const control = await session.control({ svc: 'u', dir: path.join(dir, 'svc'), wait: 'u', timeoutMs: 0 });
  assert.equal(control.kind, 'unsupported');
});
