/**
 * The bin/ wrappers (written by scripts/build.mjs) find t6's Node and bundles from $0, also
 * when $0 has no slash: a wrapper found through an empty PATH entry, `sh t6` in bin/,
 * `bash t6` (bash looks the script up in PATH), a symbolic link run by its bare name. And
 * the boot tree t6-linux-init-maker writes then names t6's real bin/ (absolute paths, no $0),
 * and its bin/init runs t6's Node on the bundle with no second shell. A client (t6-svok,
 * t6-svstat) runs found through PATH with a bare $0, through a symbolic link, from a copied
 * bin/ alone (it falls back to the tree it was built in) and from a copied tree (bin/, dist/,
 * node_modules/node/ side by side: it runs its own), and from a tree without its Node (as
 * npm installs it: a hoisted one, else a recent enough one on PATH). The long-lived commands
 * get their heap limit. Needs a build.
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
  // halt runs t6's Node on the t6-hpr bundle itself (the wrapper's shell skipped), and it runs.
  const root = path.dirname(BIN);
  assert.ok(halt.includes(`&& exec ${root}/node_modules/node/bin/node ${root}/dist/t6-hpr.cjs -h "$@"\n`), halt);
  const help = spawnSync('/bin/sh', [path.join(out, 'bin/halt'), '--help'], { env: { PATH: SYSTEM_PATH }, encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^usage: t6-hpr /);
  const init = fs.readFileSync(path.join(out, 'bin/init'), 'utf8');
  assert.doesNotMatch(init, /\$0/);
  // bin/init execs t6's Node itself, with the t6-linux-init wrapper's options, on its bundle.
  const flags = /"\$node" (.*)"\$t6\/dist\/t6-linux-init\.cjs"/.exec(fs.readFileSync(path.join(BIN, 't6-linux-init'), 'utf8'))?.[1];
  assert.ok(flags !== undefined, 'the t6-linux-init wrapper names its Node options');
  assert.ok(init.includes(`\nexec ${root}/node_modules/node/bin/node ${flags}${root}/dist/t6-linux-init.cjs -c `), init);
  const initArgv = /^exec (\S+) .* (\S+\.cjs) -c /m.exec(init);
  for (const file of [initArgv?.[1], initArgv?.[2]]) assert.ok(file !== undefined && fs.existsSync(file), `${file} exists`);
});

/** Runs `argv` (a t6 client on a directory no one supervises); expects t6-svok's answer: exit 1, silent. */
function runsSvok(argv: string[], cwd: string, pathVar: string): void {
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd, env: { PATH: pathVar }, encoding: 'utf8' });
  assert.equal(r.status, 1, `${argv.join(' ')} in ${cwd} with PATH=${pathVar}: ${r.stderr}`);
  assert.equal(r.stderr, '', argv.join(' '));
}

test('a client runs found through PATH with a bare $0, through a symbolic link, from a copied bin/, from a copied tree', () => {
  const dir = tmpdir('t6-wrapper-');
  // (a) Found through PATH: by exec (the kernel gets the full path) and, through an empty
  // PATH entry or `sh NAME`, with $0 = the bare name.
  runsSvok(['/bin/sh', '-c', 't6-svok /'], dir, `${BIN}:${SYSTEM_PATH}`);
  runsSvok(['/bin/sh', '-c', 't6-svok /'], BIN, `:${SYSTEM_PATH}`);
  runsSvok(['/bin/sh', 't6-svok', '/'], BIN, SYSTEM_PATH);
  // (b) A symbolic link to bin/t6-svok, by path and by bare name, and a link to the link.
  fs.mkdirSync(path.join(dir, 'links'));
  fs.symlinkSync(path.join(BIN, 't6-svok'), path.join(dir, 'links', 'svok'));
  fs.symlinkSync('svok', path.join(dir, 'links', 'svok2'));
  runsSvok([path.join(dir, 'links', 'svok'), '/'], '/', SYSTEM_PATH);
  runsSvok(['/bin/sh', '-c', 'svok2 /'], path.join(dir, 'links'), `:${SYSTEM_PATH}`);
  runsSvok(['/bin/sh', '-c', 'svok /'], '/', `${path.join(dir, 'links')}:${SYSTEM_PATH}`);
  // (c) bin/ copied alone (no ../dist beside it): the commands run from the tree they were built in.
  fs.cpSync(BIN, path.join(dir, 'alone', 'bin'), { recursive: true });
  runsSvok([path.join(dir, 'alone', 'bin', 't6-svok'), '/'], '/', SYSTEM_PATH);
  runsSvok(['/bin/sh', '-c', 't6-svok /'], path.join(dir, 'alone', 'bin'), `:${SYSTEM_PATH}`);
  // (d) A copied tree (bin/, dist/, node_modules/node/): it runs its own bundles.
  const tree = path.join(dir, 'tree');
  fs.cpSync(BIN, path.join(tree, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(tree, 'dist'));
  fs.mkdirSync(path.join(tree, 'node_modules'));
  fs.symlinkSync(fs.realpathSync(path.join(path.dirname(BIN), 'node_modules', 'node')), path.join(tree, 'node_modules', 'node'));
  fs.writeFileSync(path.join(tree, 'dist', 't6-svstat.cjs'), "process.stdout.write('the copy\\n');\n");
  const r = spawnSync('/bin/sh', ['-c', 't6-svstat /'], { cwd: '/', env: { PATH: `${path.join(tree, 'bin')}:${SYSTEM_PATH}` }, encoding: 'utf8' });
  assert.equal(r.stdout, 'the copy\n', r.stderr);
  // …and the real one behind a copied tree's symbolic link.
  fs.symlinkSync(path.join(tree, 'bin', 't6-svstat'), path.join(dir, 'links', 'svstat'));
  assert.equal(spawnSync(path.join(dir, 'links', 'svstat'), ['/'], { encoding: 'utf8' }).stdout, 'the copy\n');
});

test('t6-svscan and t6-linux-init run with the heap limit of src/sys/heap.ts and no memory reducer; the other commands with V8\'s own', () => {
  for (const name of ['t6-svscan', 't6-linux-init']) {
    assert.match(fs.readFileSync(path.join(BIN, name), 'utf8'), new RegExp(`"\\$node" --max-semi-space-size=1 --max-old-space-size=${HEAP_LIMIT_MB} --no-memory-reducer "`), name);
  }
  assert.doesNotMatch(fs.readFileSync(path.join(BIN, 't6-rc'), 'utf8'), /max-old-space-size|memory-reducer/);
});

test('a tree without its Node (an npm install) takes one hoisted beside it, else a node >= 24 on PATH, else says what is missing', () => {
  const dir = tmpdir('t6-wrapper-');
  // node_modules/t6-init/{bin,dist} as npm lays a package out, with no node_modules/node inside.
  const pkg = path.join(dir, 'node_modules', 't6-init');
  fs.cpSync(BIN, path.join(pkg, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(pkg, 'dist'));
  fs.writeFileSync(path.join(pkg, 'dist', 't6-svstat.cjs'), "process.stdout.write(`${process.execPath}\\n`);\n");
  // A `node` on PATH that is too old: refused, with a message naming what was looked for.
  const fake = path.join(dir, 'path');
  fs.mkdirSync(fake);
  fs.writeFileSync(path.join(fake, 'node'), '#!/bin/sh\n[ "$1" = -p ] && echo false\nexit 0\n', { mode: 0o755 });
  const old = spawnSync(path.join(pkg, 'bin', 't6-svstat'), ['/'], { env: { PATH: `${fake}:${SYSTEM_PATH}` }, encoding: 'utf8' });
  assert.equal(old.status, 111, old.stderr);
  assert.match(old.stderr, /^t6-svstat: no Node\.js 24: neither .*node_modules\/node, .*\.\.\/node nor a node >= 24 on PATH\n$/);
  // One on PATH that is recent enough (the pinned one) runs the bundle.
  const pinned = fs.realpathSync(path.join(path.dirname(BIN), 'node_modules', 'node', 'bin', 'node'));
  const onPath = spawnSync(path.join(pkg, 'bin', 't6-svstat'), ['/'], { env: { PATH: `${path.dirname(pinned)}:${SYSTEM_PATH}` }, encoding: 'utf8' });
  assert.equal(onPath.stdout, `${pinned}\n`, onPath.stderr);
  // Hoisted: node_modules/node beside node_modules/t6-init wins over PATH.
  fs.mkdirSync(path.join(dir, 'node_modules', 'node', 'bin'), { recursive: true });
  fs.symlinkSync(pinned, path.join(dir, 'node_modules', 'node', 'bin', 'node'));
  const hoisted = spawnSync('sh', ['-x', path.join(pkg, 'bin', 't6-svstat'), '/'], { env: { PATH: `${fake}:${SYSTEM_PATH}` }, encoding: 'utf8' });
  assert.equal(hoisted.status, 0, hoisted.stderr);
  assert.ok(hoisted.stderr.includes(`+ exec ${pkg}/bin/../../node/bin/node `), hoisted.stderr);
});

test('--version: t6 and every t6-* command print their name and the version, and exit 0', () => {
  const version = JSON.parse(fs.readFileSync(path.join(BIN, '../package.json'), 'utf8')).version as string;
  for (const argv of [['t6', '--version'], ['t6', 'svc', '--version'], ['t6-svstat', '--version'], ['t6-rc', '--version'], ['t6-linux-init', '--version']]) {
    const r = spawnSync(path.join(BIN, argv[0]!), argv.slice(1), { encoding: 'utf8' });
    assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}`);
    const name = argv[0] === 't6' && argv.length === 3 ? `t6-${argv[1]}` : argv[0];
    assert.equal(r.stdout, `${name} ${version}\n`, argv.join(' '));
  }
});
