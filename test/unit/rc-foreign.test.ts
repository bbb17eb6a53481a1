/**
 * The internal services t6-rc-init writes for a scanner other than t6-svscan
 * (src/rc/foreign.ts): names reach the fd holder exactly, whatever they hold, through
 * execlineb with and without substitution; missing tools are named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MissingToolError, execlineWord, findForeignTools, wrapPipelined } from '../../src/rc/foreign.ts';

const EXECLINEB = '/usr/lib/execline/bin/execlineb';
const hasExecline = fs.existsSync(EXECLINEB);
const NAMES = ['plain', 'with space', 'quote"d', 'back\\slash', 'dollar$1', '${HOME}', 'brace{ }', 'tab\there', "it's"];

test('execlineWord: execlineb reads every name back as one word, exactly, with -P and with arguments pushed', { skip: !hasExecline && 'no execline' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't6-foreign-'));
  try {
    for (const flag of ['-P', '']) {
      const script = path.join(dir, `s${flag}`);
      fs.writeFileSync(script, `#!${EXECLINEB} ${flag}\n/usr/bin/printf "%s\\n" ${NAMES.map((n) => execlineWord(n)).join(' ')}\n`, { mode: 0o755 });
      const r = spawnSync(script, ['ARG1'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(r.stdout.split('\n').slice(0, -1), NAMES, flag);
    }
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('findForeignTools names every missing program and where it looked', () => {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 't6-foreign-bin-'));
  try {
    assert.throws(() => findForeignTools(['PATH=/nonexistent'], bin, false), (err: unknown) => {
      assert.ok(err instanceof MissingToolError);
      assert.match(err.message, /missing: t6-rc-oneshot-runner, t6-rc-fdholder-filler \(searched /);
      return true;
    });
    for (const own of ['t6-rc-oneshot-runner', 't6-rc-fdholder-filler']) fs.writeFileSync(path.join(bin, own), '', { mode: 0o755 });
    assert.equal(findForeignTools(['PATH=/nonexistent'], bin, false).pipes, undefined);
    assert.throws(() => findForeignTools(['PATH=/nonexistent'], bin, true), /s6-fdholder-daemon, s6-fdholder-retrieve, s6-fdholder-store/);
  } finally {
    fs.rmSync(bin, { recursive: true });
  }
});

test('wrapPipelined: the producer part comes first, then the consumer part, then the service\'s own script', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't6-foreign-wrap-'));
  try {
    fs.writeFileSync(path.join(dir, 'run'), '#!/bin/sh\necho mine\n', { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'finish'), '#!/bin/sh\n', { mode: 0o755 });
    const pipes = {
      execlineb: '/x/execlineb', fdmove: '/x/fdmove', fdswap: '/x/fdswap', fdclose: '/x/fdclose', piperw: '/x/piperw',
      background: '/x/background', elgetpositionals: '/x/elgetpositionals', emptyenv: '/x/emptyenv', daemon: '/y/d', retrieve: '/y/r', store: '/y/s', delete: '/y/x',
    };
    wrapPipelined(dir, { t6Bin: '/t6', pipes }, 'next', 'middle');
    assert.equal(fs.readFileSync(path.join(dir, 'run.user'), 'utf8'), '#!/bin/sh\necho mine\n');
    assert.equal(fs.readFileSync(path.join(dir, 'run'), 'utf8'), [
      '#!/x/execlineb -P',
      '"/x/fdmove" 1 0', '"/y/r" "../s6rc-fdholder/s" "pipe:s6rc-w-next"', '"/x/fdswap" 0 1',
      '"/y/r" "../s6rc-fdholder/s" "pipe:s6rc-r-middle"',
      './run.user', '',
    ].join('\n'));
    assert.match(fs.readFileSync(path.join(dir, 'finish'), 'utf8'), /^#!\/x\/execlineb\n[^]*\n"\/x\/elgetpositionals" "\/x\/emptyenv" -P \.\/finish\.user \$@\n$/);
    assert.equal(fs.statSync(path.join(dir, 'run')).mode & 0o777, 0o755);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('a wrapped finish gets its arguments, and a name holding `$1` stays as it is', { skip: !hasExecline && 'no execline' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't6-foreign-finish-'));
  try {
    // A stand-in for s6-fdholder-retrieve: records the identifier, then execs the rest
    // with the environment untouched (execlineb -s2 sets no variables; a shell, or Node,
    // would drop those named 0…9).
    const el = (n: string): string => path.join('/usr/lib/execline/bin', n);
    const retrieve = path.join(dir, 'retrieve');
    fs.writeFileSync(retrieve, `#!${EXECLINEB} -s2\n${el('foreground')} { ${el('redirfd')} -a 1 ${dir}/ids /usr/bin/printf "%s\\n" $2 }\n$@\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'finish'), `#!/bin/sh\nprintf '%s|' "$@" > ${dir}/args\nenv | grep -c '^[#0-9]=' >> ${dir}/args || true\n`, { mode: 0o755 });
    const pipes = {
      execlineb: EXECLINEB, fdmove: el('fdmove'), fdswap: el('fdswap'), fdclose: el('fdclose'), piperw: el('piperw'),
      background: el('background'), elgetpositionals: el('elgetpositionals'), emptyenv: el('emptyenv'), daemon: '/y/d', retrieve, store: '/y/s', delete: '/y/x',
    };
    wrapPipelined(dir, { t6Bin: '/t6', pipes }, undefined, 'dollar$1 "x"');
    const r = spawnSync(path.join(dir, 'finish'), ['256', '15', 'x y'], { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.readFileSync(path.join(dir, 'ids'), 'utf8'), 'pipe:s6rc-r-dollar$1 "x"\n');
    assert.equal(fs.readFileSync(path.join(dir, 'args'), 'utf8'), '256|15|x y|0\n', 'arguments passed, positional variables popped');
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
