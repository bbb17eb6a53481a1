/**
 * Failures that stop dependents (issue 14), against t6-svscan as pid 1 of a pid namespace:
 * a longrun with a settle time (its `up-settle`, or `t6-rc --settle`) counts as up only
 * once it stayed up that long (or at readiness), and a death before fails its start at
 * once, leaving its dependents down and naming them, the service and its exit code.
 * Without a settle time, s6-rc's rule: up at `u`. A longrun's timeout says what it waited
 * for. Sources go through t6-rc-compile, so up-settle is read as a user writes it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, Tree, readStatus, tmpdir, until } from '../lib/harness.ts';
import { tainToUnixMs } from '../../src/s6/tai.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

interface Rig {
  base: string;
  scandir: string;
  live: string;
}

type Source = Record<string, Record<string, string>>;

/** Compiles `source` with t6-rc-compile, starts t6-svscan on a scandir, runs t6-rc-init. */
async function rig(source: Source): Promise<Rig> {
  const base = tmpdir('t6-rc-settle-');
  for (const [name, files] of Object.entries(source)) {
    fs.mkdirSync(path.join(base, 'src', name), { recursive: true });
    for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(base, 'src', name, f), text, { mode: f === 'run' ? 0o755 : 0o644 });
  }
  const compiled = path.join(base, 'compiled');
  const c = spawnSync(path.join(BIN, 't6-rc-compile'), [compiled, path.join(base, 'src')], { encoding: 'utf8' });
  assert.equal(c.status, 0, `t6-rc-compile: ${c.stderr}`);
  const scandir = path.join(base, 'service');
  const live = path.join(base, 'live');
  fs.mkdirSync(scandir);
  const tree = await Tree.start(scandir);
  cleanups.push(async () => { await tree.stop(); fs.rmSync(base, { recursive: true, force: true }); });
  const init = spawnSync(path.join(BIN, 't6-rc-init'), ['-c', compiled, '-l', live, scandir], { encoding: 'utf8' });
  assert.equal(init.status, 0, `t6-rc-init: ${init.stderr}`);
  return { base, scandir, live };
}

function rc(r: Rig, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const p = spawnSync(path.join(BIN, 't6-rc'), ['-l', r.live, ...args], { encoding: 'utf8' });
  return { status: p.status, stdout: p.stdout, stderr: p.stderr };
}

const sh = (script: string): string => `#!/bin/sh\n${script}\n`;

/** `app`, whose run cannot exec its program (exit 127), and the oneshot `dep` that needs it and touches `marker`. */
function brokenApp(base: string, appExtra: Record<string, string> = {}): Source {
  return {
    app: { type: 'longrun\n', run: sh('exec /nonexistent-binary'), ...appExtra },
    dep: { type: 'oneshot\n', up: `touch ${path.join(base, 'marker')}\n`, dependencies: 'app\n' },
  };
}

/** After a failed start, app is as s6-rc leaves a failed longrun: sent down, not counted up. */
async function assertLeftDown(r: Rig): Promise<void> {
  const sd = path.join(r.scandir, 'app');
  await until('app to be down and wanted down', () => readStatus(sd)?.pid === 0 && readStatus(sd)?.wantUp === false);
  assert.equal(rc(r, ['-a', 'list']).stdout, '');
}

test("app's up-settle: app dies (exit 127) before settling, dep's up never runs, exit 1, the message names app, 127 and dep", async () => {
  const base = tmpdir('t6-rc-settle-src-');
  cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
  const r = await rig(brokenApp(base, { 'up-settle': '2000\n' }));
  const p = rc(r, ['-u', 'change', 'dep']);
  assert.equal(p.status, 1, p.stderr);
  assert.equal(fs.existsSync(path.join(base, 'marker')), false, "dep's up did not run");
  assert.match(p.stderr, /^t6-rc: warning: unable to start service app: died \d+ ms after starting \(exit code 127\) - not starting: dep\n$/);
  await assertLeftDown(r);
});

test('t6-rc --settle for the whole change: the same failure, and no more waiting than the death takes', async () => {
  const base = tmpdir('t6-rc-settle-src-');
  cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
  const r = await rig(brokenApp(base, { 'timeout-up': '0\n' }));
  const t0 = performance.now();
  const p = rc(r, ['--settle=600000', '-u', 'change', 'dep']);
  assert.equal(p.status, 1, p.stderr);
  assert.ok(performance.now() - t0 < 300_000, 'the death ended it, not the 10-minute settle time');
  assert.equal(fs.existsSync(path.join(base, 'marker')), false);
  assert.match(p.stderr, /unable to start service app: died \d+ ms after starting \(exit code 127\) - not starting: dep\n$/);
  await assertLeftDown(r);
});

test("without a settle time, s6-rc's rule: app is up at u, dep starts, exit 0", async () => {
  const base = tmpdir('t6-rc-settle-src-');
  cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
  const r = await rig(brokenApp(base));
  const p = rc(r, ['-u', 'change', 'dep']);
  assert.equal(p.status, 0, p.stderr);
  assert.equal(p.stderr, '');
  assert.ok(fs.existsSync(path.join(base, 'marker')));
  assert.equal(rc(r, ['-a', 'list']).stdout, 'app\ndep\n');
});

test('a longrun that stays up: its dependent starts only once the settle time has passed since it started', async () => {
  const base = tmpdir('t6-rc-settle-src-');
  cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
  const stamps = path.join(base, 'stamps');
  const r = await rig({
    app: { type: 'longrun\n', run: sh('exec sleep 3600'), 'up-settle': '400\n' },
    dep: { type: 'oneshot\n', up: `sh -c "date +%s%N >> ${stamps}"\n`, dependencies: 'app\n' },
  });
  const p = rc(r, ['-u', 'change', 'dep']);
  assert.equal(p.status, 0, p.stderr);
  // When the supervisor spawned app (its status stamp, written before the `u` t6-rc times
  // the settle from), against when dep's up ran: both on the real-time clock.
  const spawned = tainToUnixMs(readStatus(path.join(r.scandir, 'app'))!.stamp);
  const depAt = Number(BigInt(fs.readFileSync(stamps, 'utf8').trim()) / 1_000_000n);
  assert.ok(depAt - spawned >= 399, `dep started ${depAt - spawned} ms after app`);
});

test('a readiness longrun that dies before it is ready fails at once with a settle time, though it has no timeout', async () => {
  const base = tmpdir('t6-rc-settle-src-');
  cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
  const r = await rig({
    app: { type: 'longrun\n', run: sh('exit 3'), 'notification-fd': '3\n' },
    dep: { type: 'oneshot\n', up: `touch ${path.join(base, 'marker')}\n`, dependencies: 'app\n' },
  });
  const p = rc(r, ['--settle=0', 'change', 'dep']);
  assert.equal(p.status, 1, p.stderr);
  assert.match(p.stderr, /unable to start service app: died \d+ ms after starting, before it was ready \(exit code 3\) - not starting: dep\n$/);
  assert.equal(fs.existsSync(path.join(base, 'marker')), false);
  await assertLeftDown(r);
});

test('a readiness longrun never ready within timeout-up 300: "timed out after 300 ms waiting for readiness", with and without a settle time', async () => {
  const base = tmpdir('t6-rc-settle-src-');
  cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
  const r = await rig({
    app: { type: 'longrun\n', run: sh('exec sleep 3600'), 'notification-fd': '3\n', 'timeout-up': '300\n' },
    dep: { type: 'oneshot\n', up: `touch ${path.join(base, 'marker')}\n`, dependencies: 'app\n' },
  });
  for (const args of [[], ['--settle=100']]) {
    const p = rc(r, [...args, 'change', 'dep']);
    assert.equal(p.status, 1, p.stderr);
    assert.equal(p.stderr, 't6-rc: warning: unable to start service app: timed out after 300 ms waiting for readiness - not starting: dep\n');
    assert.equal(fs.existsSync(path.join(base, 'marker')), false);
    await assertLeftDown(r);
  }
});
