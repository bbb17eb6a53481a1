// `npm run test:stress`: the suite of `npm test`, run while every CPU is kept busy by other
// processes, as on a loaded CI machine. Tests wait on events, never on fixed sleeps: a
// test that passes alone and fails here waits on time somewhere.
//
// The load: 2 × the CPU count of busy-loop processes at normal priority, started here and
// stopped here by pid when the suite ends, however it ends (also on Ctrl-C). Each also
// ends by itself once this script is gone, so none can outlive it.
//
//   npm run test:stress                       the whole suite (package.json's "test")
//   npm run test:stress -- test/unit/x.test.ts …   only these files (node --test, no build)
//   T6_STRESS_LOAD=n                          n busy processes instead of 2 × nproc
// The suite runs with T6_STRESS=1: the few tests that time a promise the issue makes
// (adoption within 1 s) relax the bound, and keep every check of behaviour.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cpus = os.availableParallelism();
const load = process.env.T6_STRESS_LOAD === undefined ? 2 * cpus : Number(process.env.T6_STRESS_LOAD);
if (!Number.isInteger(load) || load < 0) {
  process.stderr.write(`test-stress: T6_STRESS_LOAD must be a whole number, not ${JSON.stringify(process.env.T6_STRESS_LOAD)}\n`);
  process.exit(100);
}

// A busy loop that looks up now and then whether its parent (this script) is still there.
const BUSY = `const parent = ${process.pid};
let sum = 0;
for (;;) {
  for (let i = 0; i < 1e7; i++) sum = (sum + i) | 0;
  if (process.ppid !== parent) process.exit(sum === 0.5 ? 1 : 0);
}`;

const busy = [];
function stopLoad() {
  for (const child of busy.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  }
}
process.on('exit', stopLoad);

// The suite: package.json's own test command, or node --test on the files given.
const files = process.argv.slice(2);
const testScript = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).scripts.test;
const suite = files.length === 0
  ? spawn('sh', ['-c', testScript], { cwd: root, stdio: 'inherit', env: { ...process.env, T6_STRESS: '1', PATH: `${path.join(root, 'node_modules/.bin')}:${process.env.PATH ?? ''}` } })
  : spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=600000', ...files], { cwd: root, stdio: 'inherit', env: { ...process.env, T6_STRESS: '1' } });

// Passed on to the suite; the load is stopped when it has ended.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { try { suite.kill(sig); } catch { /* gone */ } });
}

for (let i = 0; i < load; i++) {
  const child = spawn(process.execPath, ['-e', BUSY], { stdio: 'ignore' });
  child.on('error', () => { /* counted out below */ });
  busy.push(child);
}
const started = performance.now();
process.stderr.write(`test-stress: ${busy.length} busy processes on ${cpus} CPUs (pids ${busy.map((c) => c.pid).join(' ')}); running ${files.length === 0 ? 'npm test' : files.join(' ')}\n`);

suite.on('exit', (code, signal) => {
  stopLoad();
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  const result = code === 0 ? 'passed' : `FAILED (${signal ?? `exit ${code}`})`;
  process.stderr.write(`test-stress: the suite ${result} in ${seconds} s under a load of ${load} busy processes on ${cpus} CPUs\n`);
  process.exit(code ?? 1);
});
