/**
 * Pipelines held by t6-svscan: a servicedir's `producer-for` names the scan dir entry its
 * stdout feeds. The pipe belongs to the scanner, so the consumer (here Debian's real s6-log)
 * can be restarted again and again while the producer writes, and no line is lost.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, Tree, WAIT_MS, makeService, readStatus, run, tmpdir, until } from '../lib/harness.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

function logged(logdir: string): string {
  if (!fs.existsSync(logdir)) return '';
  const archives = fs.readdirSync(logdir).filter((n) => /^@[0-9a-f]{24}\.[su]$/.test(n)).sort();
  return [...archives, 'current'].map((n) => { try { return fs.readFileSync(path.join(logdir, n), 'utf8'); } catch { return ''; } }).join('');
}

test('a consumer restarted 10 times while its producer writes 3,000 lines loses none', { timeout: 300_000 }, async () => {
  const sd = tmpdir();
  const logdir = path.join(sd, '..', `${path.basename(sd)}-logdir`);
  const done = `${logdir}.done`;
  cleanups.push(() => { fs.rmSync(logdir, { recursive: true, force: true }); fs.rmSync(done, { force: true }); });
  makeService(path.join(sd, 'prod'), {
    run: `#!/bin/sh\ni=1\nwhile [ $i -le 3000 ]; do echo "line $i"; [ $((i % 100)) = 0 ] && sleep 0.03; i=$((i+1)); done\ntouch "${done}"\nexec sleep 3600\n`,
    files: { 'producer-for': 'cons\n' },
  });
  makeService(path.join(sd, 'cons'), { run: `#!/bin/sh\nexec s6-log -b n100 s4096 "${logdir}"\n` });
  const t = await Tree.start(sd);
  cleanups.push(() => t.stop());
  const cons = path.join(sd, 'cons');
  for (let i = 0; i < 10; i++) {
    const pid = await until('cons up', () => { const st = readStatus(cons); return st !== undefined && st.pid > 0 && !st.finishing ? st.pid : undefined; });
    assert.equal(run('s6-svc', ['-t', cons]).status, 0); // SIGTERM: s6-log finishes its line and exits
    await until('cons restarted', () => { const st = readStatus(cons); return st !== undefined && st.pid > 0 && st.pid !== pid; });
  }
  await until('the producer to finish', () => fs.existsSync(done), 120_000, 50);
  await until('the last line to be logged', () => logged(logdir).includes('line 3000\n'), WAIT_MS, 50);
  const lines = logged(logdir).split('\n').filter(Boolean);
  assert.deepEqual(lines, Array.from({ length: 3000 }, (_, i) => `line ${i + 1}`), 'every line once, in order');
  assert.ok(fs.readFileSync(path.join(sd, 'cons', 'supervise', 'death_tally')).length / 14 >= 10, 'the consumer really died 10 times');
});

test('a funnel: two producers into one consumer; a bad producer-for is a named warning', async () => {
  const sd = tmpdir();
  const out = `${sd}-funnel`;
  cleanups.push(() => fs.rmSync(out, { force: true }));
  makeService(path.join(sd, 'a'), { run: '#!/bin/sh\necho from-a\nexec sleep 3600\n', files: { 'producer-for': 'sink\n' } });
  makeService(path.join(sd, 'b'), { run: '#!/bin/sh\necho from-b\nexec sleep 3600\n', files: { 'producer-for': 'sink\n' } });
  makeService(path.join(sd, 'bad'), { run: '#!/bin/sh\nexec sleep 3600\n', files: { 'producer-for': '../etc\n' } });
  makeService(path.join(sd, 'sink'), { run: `#!/bin/sh\nexec cat > "${out}"\n` });
  const t = await Tree.start(sd);
  cleanups.push(() => t.stop());
  await until('both lines in the sink', () => { try { const s = fs.readFileSync(out, 'utf8'); return s.includes('from-a') && s.includes('from-b'); } catch { return false; } });
  await t.output.waitFor(new RegExp(`invalid ${sd}/bad/producer-for: "\\.\\./etc" is not the name of a service`));
});

test('s6-rc pipelines: compiled, linked with a prefix by t6-rc-init, brought up by t6-rc, the producer feeds its consumer', async () => {
  const base = tmpdir();
  const src = path.join(base, 'source');
  const out = path.join(base, 'consumed');
  const svc = (name: string, files: Record<string, string>): void => {
    fs.mkdirSync(path.join(src, name), { recursive: true });
    for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(src, name, f), text, { mode: f === 'run' ? 0o755 : 0o644 });
  };
  svc('prod', { type: 'longrun\n', run: '#!/bin/sh\necho "through the pipeline"\nexec sleep 3600\n', 'producer-for': 'cons\n' });
  svc('cons', { type: 'longrun\n', run: `#!/bin/sh\nexec cat > "${out}"\n`, 'consumer-for': 'prod\n', 'pipeline-name': 'pipe1\n' });
  const compiled = path.join(base, 'compiled');
  const compile = run(path.join(BIN, 't6-rc-compile'), [compiled, src]);
  assert.equal(compile.status, 0, compile.stderr);
  const scandir = path.join(base, 'scan');
  fs.mkdirSync(scandir);
  const t = await Tree.start(scandir);
  cleanups.push(() => t.stop());
  const live = path.join(base, 'live');
  const init = run(path.join(BIN, 't6-rc-init'), ['-c', compiled, '-l', live, '-p', 'rc-', scandir]);
  assert.equal(init.status, 0, init.stderr);
  assert.equal(fs.readFileSync(path.join(live, 'servicedirs', 'prod', 'producer-for'), 'utf8'), 'rc-cons\n');
  const up = run(path.join(BIN, 't6-rc'), ['-l', live, '-u', 'change', 'pipe1']);
  assert.equal(up.status, 0, up.stderr);
  await until('the consumer to receive the producer\'s line', () => { try { return fs.readFileSync(out, 'utf8') === 'through the pipeline\n'; } catch { return false; } });
  assert.equal(run(path.join(BIN, 't6-rc'), ['-l', live, '-da', 'change']).status, 0);
  fs.rmSync(base, { recursive: true, force: true });
});
