/**
 * `t6-container legacy services-up|services-down` against a real t6-svscan, pid 1 of its own
 * pid namespace: /etc/services.d copied, linked and started, the wait for up and for ready
 * (notification-fd), the bound on that wait, and the way down with a logger. Every wait is
 * on an event, a status change, an output line or a process's exit.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, OutputLog, Tree, WAIT_MS, makeService, readStatus, run, tmpdir, until } from '../lib/harness.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

/** A scandir with a t6-svscan on it, and a legacy layout next to it. */
async function setup(): Promise<{ tree: Tree; root: string; scandir: string; etc: string; copies: string }> {
  const root = tmpdir('t6-legacy-int-');
  const scandir = path.join(root, 'service');
  fs.mkdirSync(scandir);
  const tree = await Tree.start(scandir);
  cleanups.push(() => tree.stop());
  const etc = path.join(root, 'etc');
  fs.mkdirSync(path.join(etc, 'services.d'), { recursive: true });
  return { tree, root, scandir, etc, copies: path.join(root, 'legacy-services') };
}

/** Runs `t6-container legacy … STEP` in the background: its output and its exit code. */
function legacy(s: { scandir: string; etc: string; copies: string }, step: string, env: Record<string, string> = {}): { output: OutputLog; code: Promise<number | null>; done(): boolean } {
  const proc = spawn(path.join(BIN, 't6-container'), ['legacy', '-l', s.etc, '-s', s.scandir, '-c', s.copies, step], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  const output = new OutputLog();
  output.attach(proc.stdout);
  output.attach(proc.stderr);
  let finished = false;
  const code = new Promise<number | null>((resolve) => proc.on('close', (c) => { finished = true; resolve(c); }));
  const t = setTimeout(() => proc.kill('SIGKILL'), WAIT_MS);
  void code.then(() => clearTimeout(t));
  return { output, code, done: () => finished };
}

test('services-up copies, links and starts services.d, waits for up and for ready; services-down takes them and their loggers down', async () => {
  const s = await setup();
  const sd = path.join(s.etc, 'services.d');
  const alphaLog = path.join(s.root, 'alpha.log');
  makeService(path.join(sd, 'alpha'), {
    run: '#!/bin/sh\necho hello from alpha\nexec sleep 1000\n',
    files: { 'data-file': 'kept\n' },
    log: { run: `#!/bin/sh\nexec cat > ${alphaLog}\n` },
  });
  fs.symlinkSync('data-file', path.join(sd, 'alpha', 'data-link'));
  const gate = path.join(s.root, 'gate');
  assert.equal(run('mkfifo', [gate]).status, 0);
  makeService(path.join(sd, 'beta'), {
    run: `#!/bin/sh\nread x < ${gate}\necho >&3\nexec sleep 1000\n`,
    files: { 'notification-fd': '3\n' },
  });
  fs.writeFileSync(path.join(sd, 'not-a-directory'), '');
  fs.mkdirSync(path.join(sd, '.hidden'));

  const up = legacy(s, 'services-up', { S6_CMD_WAIT_FOR_SERVICES: '1', S6_BEHAVIOUR_IF_STAGE2_FAILS: '2' });
  const beta = path.join(s.copies, 'beta');
  await until('beta to be up', () => (readStatus(beta)?.pid ?? 0) > 0);
  assert.equal(up.done(), false, 'beta is up but not ready: services-up still waits');
  fs.writeFileSync(gate, 'go\n'); // beta's run reads it, then says it is ready
  assert.equal(await up.code, 0, up.output.text);
  assert.equal(readStatus(beta)?.ready, true, 'it returned once beta was ready');
  assert.ok((readStatus(path.join(s.copies, 'alpha'))?.pid ?? 0) > 0, 'alpha is up');
  assert.deepEqual(fs.readdirSync(s.copies).sort(), ['alpha', 'beta'], 'directories only, dot entries skipped');
  assert.equal(fs.readlinkSync(path.join(s.scandir, 'alpha')), path.join(s.copies, 'alpha'));
  assert.equal(fs.statSync(path.join(s.copies, 'alpha', 'run')).mode & 0o777, 0o755, 'modes kept');
  assert.equal(fs.readlinkSync(path.join(s.copies, 'alpha', 'data-link')), 'data-file', 'links copied as links');
  assert.equal(fs.statSync(s.copies).mode & 0o777, 0o755);
  assert.match(up.output.text, /info: services-up: starting alpha\n.*info: services-up: starting beta\n/s);
  await until("alpha's line in its logger's output", () => fs.existsSync(alphaLog) && fs.readFileSync(alphaLog, 'utf8').includes('hello from alpha'));

  const down = legacy(s, 'services-down');
  assert.equal(await down.code, 0, down.output.text);
  assert.deepEqual(fs.readdirSync(s.scandir).filter((n) => !n.startsWith('.')), [], 'the links are gone');
  for (const d of ['alpha', 'alpha/log', 'beta']) {
    assert.equal(readStatus(path.join(s.copies, d))?.pid, 0, `${d} is down when services-down returns`);
  }
  assert.doesNotMatch(down.output.text, /warning/);
});

test('services-up: the wait is bounded by S6_CMD_WAIT_FOR_SERVICES_MAXTIME; the stage-2 policy decides the code', async () => {
  const s = await setup();
  makeService(path.join(s.etc, 'services.d', 'never-ready'), {
    run: '#!/bin/sh\nexec sleep 1000\n',
    files: { 'notification-fd': '3\n' },
  });
  const strict = legacy(s, 'services-up', { S6_CMD_WAIT_FOR_SERVICES: '1', S6_CMD_WAIT_FOR_SERVICES_MAXTIME: '300', S6_BEHAVIOUR_IF_STAGE2_FAILS: '2' });
  assert.equal(await strict.code, 1, strict.output.text);
  assert.match(strict.output.text, /error: services-up: not up in time: never-ready\n/);
  assert.match(strict.output.text, /error: services-up: 1 failure; stopping/);
  assert.equal(await legacy(s, 'services-down').code, 0);
  // Up again from a fresh copy; with the default policy the same failure is no failure.
  const lenient = legacy(s, 'services-up', { S6_CMD_WAIT_FOR_SERVICES: '1', S6_CMD_WAIT_FOR_SERVICES_MAXTIME: '300' });
  assert.equal(await lenient.code, 0, lenient.output.text);
  assert.doesNotMatch(lenient.output.text, /failure/);
  assert.equal(await legacy(s, 'services-down').code, 0);
});

test('services-up without S6_CMD_WAIT_FOR_SERVICES returns once the scanner is told; the services start on their own', async () => {
  const s = await setup();
  makeService(path.join(s.etc, 'services.d', 'gamma'), { run: '#!/bin/sh\nexec sleep 1000\n', files: { 'notification-fd': '3\n' } });
  const up = legacy(s, 'services-up');
  assert.equal(await up.code, 0, up.output.text);
  await until('gamma to be up', () => (readStatus(path.join(s.copies, 'gamma'))?.pid ?? 0) > 0);
  const down = legacy(s, 'services-down', { S6_SERVICES_GRACETIME: '5000' });
  assert.equal(await down.code, 0, down.output.text);
  assert.equal(readStatus(path.join(s.copies, 'gamma'))?.pid, 0);
});
