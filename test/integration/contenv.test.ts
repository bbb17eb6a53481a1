import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { tmpdir } from '../lib/harness.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const WITH_CONTENV = path.join(ROOT, 'bin', 't6-with-contenv');
const PRINTCONTENV = path.join(ROOT, 'bin', 't6-printcontenv');

/** A container environment dir as t6-container (and s6-overlay ≥ 3.2.2) writes it, plus files as images write them by hand. */
function envDir(): string {
  const dir = tmpdir('t6-contenv-');
  const files: Record<string, string> = {
    HOME: '/root\n', // value and a newline: the dump's format
    TZ: 'Europe/Paris', // no newline: older s6-overlay, or an image's printf
    MULTI: 'line one\nline two\n\n', // one final newline is the format's; the rest is the value's
    'WITH-DASH': 'ok\n',
    SPACES: '  two  words  \n',
    QUOTES: `it's "$HOME" \`id\` $(id)\n`, // never evaluated
    EMPTY: '', // unsets
    PATH: '/usr/bin:/bin\n',
    '.hidden': 'no\n',
  };
  for (const [name, value] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), value);
  return dir;
}

/** The environment a program run through t6-with-contenv sees, as NAME → value. */
function seenEnv(env: NodeJS.ProcessEnv): Map<string, string> {
  const r = spawnSync(WITH_CONTENV, [process.execPath, '-e', 'process.stdout.write(JSON.stringify(process.env))'], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', 'nothing said on a normal run');
  return new Map(Object.entries(JSON.parse(r.stdout) as Record<string, string>));
}

test('t6-with-contenv: the saved environment replaces the caller\'s, values byte for byte, nothing evaluated', () => {
  const dir = envDir();
  const seen = seenEnv({ T6_CONTENV_DIR: dir, PATH: process.env.PATH, SECRET_OF_CALLER: 'x', EMPTY: 'was set' });
  assert.equal(seen.get('HOME'), '/root');
  assert.equal(seen.get('TZ'), 'Europe/Paris');
  assert.equal(seen.get('MULTI'), 'line one\nline two\n');
  assert.equal(seen.get('WITH-DASH'), 'ok');
  assert.equal(seen.get('SPACES'), '  two  words  ');
  assert.equal(seen.get('QUOTES'), `it's "$HOME" \`id\` $(id)`);
  assert.equal(seen.get('PATH'), '/usr/bin:/bin', 'the saved PATH wins');
  assert.equal(seen.has('EMPTY'), false, 'an empty file unsets');
  assert.equal(seen.has('.hidden'), false);
  assert.equal(seen.has('SECRET_OF_CALLER'), false, 'the caller\'s environment is cleared');
});

test('t6-with-contenv: S6_KEEP_ENV keeps the caller\'s environment; a missing dir is exit 111; no program is 100', () => {
  const seen = seenEnv({ T6_CONTENV_DIR: '/nonexistent', PATH: process.env.PATH, S6_KEEP_ENV: '1', MINE: 'kept' });
  assert.equal(seen.get('MINE'), 'kept');
  const missing = spawnSync(WITH_CONTENV, ['true'], { env: { T6_CONTENV_DIR: '/nonexistent', PATH: process.env.PATH }, encoding: 'utf8' });
  assert.equal(missing.status, 111);
  assert.match(missing.stderr, /unable to read \/nonexistent/);
  assert.equal(spawnSync(WITH_CONTENV, [], { encoding: 'utf8' }).status, 100);
});

test('t6-with-contenv keeps the fds it was given (a run script\'s notification-fd 3), and its arguments as they are', () => {
  const dir = envDir();
  const out = path.join(tmpdir('t6-contenv-fd-'), 'fd3');
  const fd = fs.openSync(out, 'w');
  try {
    const r = spawnSync(WITH_CONTENV, ['sh', '-c', 'echo ready >&3; printf "%s|" "$@"', 'sh', 'a b', '', '*', '-u=x'], {
      env: { T6_CONTENV_DIR: dir, PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'a b||*|-u=x|');
  } finally {
    fs.closeSync(fd);
  }
  assert.equal(fs.readFileSync(out, 'utf8'), 'ready\n');
});

test('t6-printcontenv: the file and a newline, as s6-overlay prints it; 1 when unset; 100 for a bad name', () => {
  const dir = envDir();
  const run = (args: string[], extra: NodeJS.ProcessEnv = {}) => spawnSync(PRINTCONTENV, args, { env: { T6_CONTENV_DIR: dir, PATH: process.env.PATH, ...extra }, encoding: 'utf8' });
  assert.equal(run(['HOME']).stdout, '/root\n\n');
  assert.equal(run(['TZ']).stdout, 'Europe/Paris\n');
  assert.equal(run(['NOPE']).status, 1);
  assert.equal(run(['../etc/passwd']).status, 100);
  assert.equal(run([]).status, 100);
  const kept = run(['MINE'], { S6_KEEP_ENV: '1', MINE: 'mine' });
  assert.equal(kept.stdout, 'mine\n');
  assert.equal(run(['UNSET'], { S6_KEEP_ENV: '1' }).status, 1);
});
