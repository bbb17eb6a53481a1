/**
 * `npm run demo` (demo/demo.mjs) end to end: with DEMO_SECONDS and its output on a pipe it
 * runs the tree for a few seconds, prints one line per event, stops as on Ctrl-C and says
 * whether the shutdown was clean. Needs a build (bin/t6-svscan), as `npm test` makes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../lib/harness.ts';

const NODE = path.join(ROOT, 'node_modules', '.bin', 'node');
const DEMO = path.join(ROOT, 'demo', 'demo.mjs');

interface DemoRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the demo to its end (killing it after `timeoutMs`). */
async function runDemo(env: Record<string, string>, timeoutMs = 60_000): Promise<DemoRun> {
  const proc = spawn(NODE, [DEMO], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  proc.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const timer = setTimeout(() => proc.kill('SIGTERM'), timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => proc.on('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}

/** Processes whose cwd or command line lies inside `dir`. */
function processesIn(dir: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = fs.readlinkSync(`/proc/${entry}/cwd`);
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'latin1').replaceAll('\0', ' ');
      if (cwd.startsWith(dir) || cmdline.includes(dir)) found.push(`${entry}: ${cmdline}`);
    } catch { /* gone, or not ours to read */ }
  }
  return found;
}

function count(text: string, re: RegExp): number {
  return [...text.matchAll(re)].length;
}

async function checkDemo(env: Record<string, string>, expectNamespace: boolean): Promise<void> {
  // The demo's own clock: in 6 s crashy starts at least 3 times (a second apart) and
  // finisher's 2-second job ends, with room for a loaded machine.
  const run = await runDemo({ DEMO_SECONDS: '6', ...env });
  const out = run.stdout;
  const context = `\n--- stdout ---\n${out}\n--- stderr ---\n${run.stderr}`;
  assert.equal(run.code, 0, `the demo exits 0${context}`);

  const scandir = out.match(/^demo: scan directory (\S+)/m)?.[1];
  assert.ok(scandir !== undefined, `the demo names its scan directory${context}`);
  const namespace = out.match(/^demo: t6-svscan is pid 1 of a private pid namespace \(unshare pid (\d+), t6-svscan host pid (\d+)\)$/m);
  const subreaper = out.match(/^demo: t6-svscan is a child subreaper \(pid (\d+)\)$/m);
  if (expectNamespace) assert.ok(namespace !== null, `as root, t6-svscan runs in a private pid namespace${context}`);
  else assert.ok(subreaper !== null, `t6-svscan runs as a subreaper${context}`);

  for (const name of ['ready', 'crashy', 'finisher']) {
    assert.match(out, new RegExp(`^\\[[ \\d.]+s\\] event ${name} u: up \\(pid \\d+\\)$`, 'm'), `${name} was seen up${context}`);
  }
  assert.match(out, /^\[[ \d.]+s\] event ready U: ready /m, `ready became ready through its notification fd${context}`);
  assert.ok(count(out, /^\[[ \d.]+s\] event crashy u: up /gm) >= 3, `crashy was restarted at least twice${context}`);
  assert.ok(count(out, /^\[[ \d.]+s\] event crashy d: down \(exit 1\)/gm) >= 2, `crashy died with exit code 1 at least twice${context}`);

  // finisher exits 3 after 2 seconds; its ./finish gets: exit code, signal, name, run's pid.
  const finish = out.match(/^\[[ \d.]+s\] \| finisher\/finish: exit code 3, signal 0, name finisher \(run's pid was (\d+)\)$/m);
  assert.ok(finish !== null, `finisher's finish ran with (3, 0, finisher, pid)${context}`);
  assert.match(out, new RegExp(`^\\[[ \\d.]+s\\] event finisher u: up \\(pid ${finish[1]}\\)$`, 'm'), `finish's 4th argument is run's pid${context}`);

  const lines = out.trimEnd().split('\n');
  assert.equal(lines.at(-1), 'demo: clean shutdown', `the last line says the shutdown was clean${context}`);
  assert.match(out, /^demo: t6-svscan exited \(exit code 0\)/m, `t6-svscan exited 0${context}`);

  // Nothing of the demo is left: neither unshare / t6-svscan, nor a service, nor the scan directory.
  for (const pid of [namespace?.[1], namespace?.[2], subreaper?.[1]]) {
    if (pid === undefined) continue;
    let cmdline = '';
    try { cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1'); } catch { /* gone: good */ }
    assert.ok(!cmdline.includes(scandir), `pid ${pid} (${cmdline}) is gone${context}`);
  }
  const tmp = path.dirname(scandir);
  assert.deepEqual(processesIn(tmp), [], `no process is left in ${tmp}${context}`);
  assert.equal(fs.existsSync(tmp), false, `the demo removed ${tmp}`);
}

const root = process.getuid?.() === 0;

test('the demo runs its three services, restarts crashy, runs finish, and shuts down cleanly', async () => {
  await checkDemo({}, root);
});

test('the demo also runs t6-svscan as a subreaper outside a pid namespace', { skip: root ? false : 'not root: the first test already ran the subreaper variant' }, async () => {
  await checkDemo({ DEMO_NO_NAMESPACE: '1' }, false);
});
