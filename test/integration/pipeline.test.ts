/**
 * Pipelines held by t6-svscan: a servicedir's `producer-for` names the scan dir entry its
 * stdout feeds. The pipe belongs to the scanner, so the consumer (here Debian's real s6-log)
 * can be restarted again and again while the producer writes, and no line is lost.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Tree, makeService, readStatus, run, tmpdir, until } from '../lib/harness.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

function logged(logdir: string): string {
  if (!fs.existsSync(logdir)) return '';
  const archives = fs.readdirSync(logdir).filter((n) => /^@[0-9a-f]{24}\.[su]$/.test(n)).sort();
  return [...archives, 'current'].map((n) => { try { return fs.readFileSync(path.join(logdir, n), 'utf8'); } catch { return ''; } }).join('');
}

test('a consumer restarted 10 times while its producer writes 3,000 lines loses none', { timeout: 120_000 }, async () => {
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
    await until('cons restarted', () => { const st = readStatus(cons); return st !== undefined && st.pid > 0 && st.pid !== pid; }, 10_000);
  }
  await until('the producer to finish', () => fs.existsSync(done), 60_000, 50);
  await until('the last line to be logged', () => logged(logdir).includes('line 3000\n'), 10_000, 50);
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
