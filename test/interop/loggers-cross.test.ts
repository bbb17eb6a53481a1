/**
 * Loggers across supervisors: Debian's real s6-log as `log/run` under t6-svscan, and
 * t6-log as `log/run` under real s6-svscan. Each service writes numbered lines; each
 * logger must receive all of them, in order, in its logdir.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, Tree, WAIT_MS, makeService, tmpdir, until } from '../lib/harness.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

function logged(logdir: string): string[] {
  if (!fs.existsSync(logdir)) return [];
  const files = fs.readdirSync(logdir).filter((n) => /^@[0-9a-f]{24}\.[su]$/.test(n)).sort();
  return [...files, 'current'].flatMap((n) => { try { return fs.readFileSync(path.join(logdir, n), 'utf8').split('\n').filter(Boolean); } catch { return []; } });
}

const producer = '#!/bin/sh\ni=1\nwhile [ $i -le 500 ]; do echo "line $i"; i=$((i+1)); done\nexec sleep 3600\n';
const expected = Array.from({ length: 500 }, (_, i) => `line ${i + 1}`);

test('real s6-log as log/run under t6-svscan receives every line of its service', async () => {
  const sd = tmpdir();
  const logdir = path.join(tmpdir(), 'logdir');
  makeService(path.join(sd, 'svc'), { run: producer, log: { run: `#!/bin/sh\nexec s6-log -b n5 s4096 "${logdir}"\n` } });
  const t = await Tree.start(sd);
  cleanups.push(() => t.stop());
  await until('500 lines in the s6-log logdir', () => logged(logdir).length >= 500, WAIT_MS, 50);
  assert.deepEqual(logged(logdir), expected);
});

test('t6-log as log/run under real s6-svscan receives every line of its service', async () => {
  const sd = tmpdir();
  const logdir = path.join(tmpdir(), 'logdir');
  makeService(path.join(sd, 'svc'), { run: producer, log: { run: `#!/bin/sh\nexec "${path.join(BIN, 't6-log')}" -b n5 s4096 "${logdir}"\n` } });
  const t = await Tree.start(sd, { command: ['s6-svscan', '-d', '3'] });
  cleanups.push(() => t.stop());
  await until('500 lines in the t6-log logdir', () => logged(logdir).length >= 500, WAIT_MS, 50);
  assert.deepEqual(logged(logdir), expected);
  assert.ok(fs.readdirSync(logdir).some((n) => n.startsWith('@')), 'rotated at least once (s4096)');
});
