/**
 * The bin/ wrappers (written by scripts/build.mjs) find t6's Node and bundles from $0, also
 * when $0 has no slash: a wrapper found through an empty PATH entry, `sh t6` in bin/,
 * `bash t6` (bash looks the script up in PATH), a symbolic link run by its bare name. And
 * the boot tree t6-linux-init-maker writes then names t6's real bin/ (absolute paths, no $0).
 * The long-lived commands get their heap limit. Needs a build.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, tmpdir } from '../lib/harness.ts';
import { HEAP_LIMIT_MB } from '../../src/sys/heap.ts';

const SYSTEM_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
const shells = ['/bin/sh', '/bin/bash', '/bin/busybox'].filter((s) => fs.existsSync(s));

/** Runs `argv` in `cwd` with PATH `pathVar`; expects t6's multicall usage on stdout. */
function runsT6(argv: string[], cwd: string, pathVar: string): void {
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd, env: { PATH: pathVar }, encoding: 'utf8' });
  assert.equal(r.status, 0, `${argv.join(' ')} in ${cwd} with PATH=${pathVar}: ${r.stderr}`);
  assert.match(r.stdout, /^usage: t6 <tool>/, argv.join(' '));
}

test('a wrapper found in PATH runs, also through an empty PATH entry (then $0 has no slash)', () => {
  for (const shell of shells) {
    const sh = shell.endsWith('busybox') ? [shell, 'sh'] : [shell];
    runsT6([...sh, '-c', 't6 --help'], '/', `${BIN}:${SYSTEM_PATH}`);
    runsT6([...sh, '-c', 't6 --help'], BIN, `:${SYSTEM_PATH}`);
  }
});

test('a wrapper run as `sh NAME`: in bin/, or found in PATH by bash', () => {
  runsT6(['/bin/sh', 't6', '--help'], BIN, SYSTEM_PATH);
  if (fs.existsSync('/bin/bash')) runsT6(['/bin/bash', 't6', '--help'], '/', `${BIN}:${SYSTEM_PATH}`);
});

test('a symbolic link to a wrapper, run by its bare name, finds the real bin/', () => {
  const dir = tmpdir('t6-wrapper-');
  fs.symlinkSync(path.join(BIN, 't6'), path.join(dir, 't6'));
  runsT6(['/bin/sh', 't6', '--help'], dir, SYSTEM_PATH);
  runsT6(['/bin/sh', '-c', 't6 --help'], dir, `:${SYSTEM_PATH}`);
});

test('t6-linux-init-maker run through PATH writes scripts that call t6 by absolute paths', () => {
  const out = path.join(tmpdir('t6-wrapper-'), 'tree');
  const r = spawnSync('/bin/sh', ['-c', `t6-linux-init-maker ${out}`], { cwd: BIN, env: { PATH: `:${SYSTEM_PATH}` }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const halt = fs.readFileSync(path.join(out, 'bin/halt'), 'utf8');
  assert.match(halt, new RegExp(`^exec ${BIN.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/t6-hpr -h "\\$@"$`, 'm'));
  assert.doesNotMatch(fs.readFileSync(path.join(out, 'bin/init'), 'utf8'), /\$0/);
});

test('t6-svscan and t6-linux-init run with the heap limit of src/sys/heap.ts and no memory reducer; the other commands with V8\'s own', () => {
  for (const name of ['t6-svscan', 't6-linux-init']) {
    assert.match(fs.readFileSync(path.join(BIN, name), 'utf8'), new RegExp(`/node" --max-semi-space-size=1 --max-old-space-size=${HEAP_LIMIT_MB} --no-memory-reducer "`), name);
  }
  assert.doesNotMatch(fs.readFileSync(path.join(BIN, 't6-rc'), 'utf8'), /max-old-space-size|memory-reducer/);
});
