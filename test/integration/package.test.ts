/**
 * Installing t6 as software is installed (issue 16): scripts/package.mjs's tarball and
 * Debian package, and `npm pack`'s package. One build serves every check: the .deb is read
 * with dpkg-deb, unpacked and installed into a scratch root, and its commands are run
 * through their /usr/bin links; lintian (when present, required under CI) must report no
 * error; the tarball extracts under a directory and runs there; every command has its
 * manual page; the npm package installs into a scratch prefix (from the npm cache, else
 * from the registry; skipped with no network and no cache) and its commands run. Needs a
 * build (npm run build).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { buildPackages, type PackagesResult } from '../../scripts/package.mjs';
import { DEPENDS } from '../../scripts/package-deb.mjs';
import { BIN, ROOT, tmpdir } from '../lib/harness.ts';

const COMMANDS = fs.readdirSync(BIN).sort();
const CI = process.env.CI === 'true';

/** The absolute path of `cmd` on PATH, or undefined. */
function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir || '.', cmd);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return undefined;
}

/** Runs `cmd` to completion; its status and output. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  return { status: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error?.message ?? ''}` };
}

const work = tmpdir('t6-package-');

/** Starts `cmd` with its output in files (read when it ends), so the checks that follow can run meanwhile. */
function runInBackground(cmd: string, args: string[], cwd: string): Promise<{ status: number | null; output: string }> {
  const file = path.join(work, `${cmd}.out`);
  const fd = fs.openSync(file, 'w');
  const child = spawn(cmd, args, { cwd, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  return new Promise((resolve) => {
    child.on('error', (err) => resolve({ status: null, output: String(err) }));
    child.on('close', (status) => resolve({ status, output: fs.readFileSync(file, 'utf8') }));
  });
}

let built: PackagesResult;
let deb = '';
let lintian: Promise<{ status: number | null; output: string }> | undefined;
let shlibdeps: Promise<{ status: number | null; output: string }> | undefined;
/** The .deb's files, unpacked once (dpkg-deb -x) for the checks that run or read them. */
const unpacked = path.join(work, 'unpacked');

before(() => {
  // The .deb in gzip -1: the same files, 40 s sooner than the release's xz.
  built = buildPackages(path.join(work, 'out'), { fast: true });
  deb = built.deb!.path;
  // lintian takes half a minute: it runs while the other checks do (its test comes last).
  if (which('lintian') !== undefined) lintian = runInBackground('lintian', [deb], work);
  assert.equal(run('dpkg-deb', ['-x', deb, unpacked]).status, 0);
  // dpkg-shlibdeps reads every symbol of Node's 100 MB: several seconds, also meanwhile.
  if (which('dpkg-shlibdeps') !== undefined) {
    const dir = path.join(work, 'shlibs');
    fs.mkdirSync(path.join(dir, 'debian'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'debian/control'), 'Source: t6\n\nPackage: t6\nArchitecture: amd64\n');
    const lib = path.join(unpacked, 'usr/lib/t6/node_modules');
    shlibdeps = runInBackground('dpkg-shlibdeps', ['-O', path.join(lib, 'node/bin/node'), path.join(lib, '@koromix/koffi-linux-x64/linux_x64/koffi.node')], dir);
  }
});

/** dpkg-deb --contents as entries: mode string, owner, path (without ./), link target. */
function debContents(): { mode: string; owner: string; path: string; target?: string }[] {
  const r = run('dpkg-deb', ['--contents', deb]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').map((line) => {
    const f = line.split(/\s+/);
    return { mode: f[0]!, owner: f[1]!, path: f[5]!.replace(/^\.\//, ''), ...(f[6] === '->' ? { target: f[7] } : {}) };
  });
}

test('the .deb: its control fields, everything under /usr and root\'s, /usr/bin linking into /usr/lib/t6, a page per command', () => {
  const field = (name: string): string => run('dpkg-deb', ['--field', deb, name]).stdout.trim();
  assert.equal(field('Package'), 't6');
  assert.equal(field('Architecture'), 'amd64');
  assert.equal(field('Section'), 'admin');
  assert.equal(field('Priority'), 'optional');
  assert.equal(field('Depends'), DEPENDS);
  assert.match(field('Maintainer'), /^[^<>]+ <[^<>\s]+@[^<>\s]+>$/);
  assert.match(field('Description'), /^init system.*\n \S/);
  assert.ok(Number(field('Installed-Size')) > 50_000, field('Installed-Size'));
  const entries = debContents();
  const paths = new Set(entries.map((e) => e.path));
  for (const e of entries) {
    assert.ok(e.path === '' || e.path.startsWith('usr/'), `${e.path}: only /usr (no /opt, no /sbin/init, no /etc)`);
    assert.equal(e.owner, 'root/root', e.path);
    if (e.target === undefined) assert.ok(e.mode[5] !== 'w' && e.mode[8] !== 'w', `${e.mode} ${e.path}`);
    assert.ok(!e.path.endsWith('.map'), e.path);
  }
  for (const name of COMMANDS) {
    assert.ok(entries.some((e) => e.path === `usr/bin/${name}` && e.target === `../lib/t6/bin/${name}`), `usr/bin/${name} -> ../lib/t6/bin/${name}`);
    assert.ok(paths.has(`usr/lib/t6/bin/${name}`), name);
    assert.ok(paths.has(`usr/share/man/man1/${name}.1.gz`) || paths.has(`usr/share/man/man8/${name}.8.gz`), `a manual page for ${name}`);
  }
  for (const p of ['usr/share/doc/t6/copyright', 'usr/share/doc/t6/changelog.Debian.gz', 'usr/share/doc/t6/README.Debian', 'usr/lib/t6/node_modules/node/bin/node', 'usr/lib/t6/dist/t6-linux-init.blob']) {
    assert.ok(paths.has(p), p);
  }
  assert.ok(built.deb!.bytes > 10e6 && built.deb!.installedBytes > 50e6, JSON.stringify(built.deb));
});

test('the .deb unpacked: a command run through its /usr/bin link finds /usr/lib/t6\'s Node; the maker writes a boot tree on that tree', () => {
  const root = unpacked;
  for (const [argv0, args, want] of [
    [path.join(root, 'usr/bin/t6-svstat'), ['--help'], /^usage: t6-svstat /],
    [path.join(root, 'usr/bin/t6'), ['svok', '--help'], /^usage: t6-svok /],
  ] as const) {
    const r = run('sh', ['-x', argv0, ...args], { cwd: '/' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, want);
    const exec = r.stderr.split('\n').find((l) => l.startsWith('+ exec ')) ?? '';
    assert.ok(exec.startsWith(`+ exec ${root}/usr/lib/t6/bin/../node_modules/node/bin/node `), exec);
  }
  for (const name of fs.readdirSync(path.join(root, 'usr/lib/t6/bin'))) {
    assert.ok(!fs.readFileSync(path.join(root, 'usr/lib/t6/bin', name), 'utf8').includes(ROOT), `${name} names the build tree`);
  }
  const tree = path.join(root, 'etc/t6-linux-init/current');
  fs.mkdirSync(path.dirname(tree), { recursive: true });
  const made = run(path.join(root, 'usr/bin/t6-linux-init-maker'), [tree]);
  assert.equal(made.status, 0, made.stderr);
  const init = fs.readFileSync(path.join(tree, 'bin/init'), 'utf8');
  assert.ok(init.includes(`exec ${root}/usr/lib/t6/node_modules/node/bin/node `), init);
});

test('the .deb installs with dpkg -i into an empty root, and removes cleanly', { skip: which('dpkg') === undefined && 'no dpkg' }, () => {
  const root = tmpdir('t6-package-dpkg-');
  fs.mkdirSync(path.join(root, 'var/lib/dpkg/info'), { recursive: true });
  fs.mkdirSync(path.join(root, 'var/lib/dpkg/updates'));
  fs.writeFileSync(path.join(root, 'var/lib/dpkg/status'), '');
  // The scratch root has no libc6 to satisfy Depends: the package's own steps are what is tested.
  const dpkg = (...args: string[]) => run('dpkg', [`--root=${root}`, '--force-depends', '--force-not-root', '--force-script-chrootless', ...args]);
  const installed = dpkg('-i', deb);
  assert.equal(installed.status, 0, installed.stderr);
  assert.equal(fs.readlinkSync(path.join(root, 'usr/bin/t6-svscan')), '../lib/t6/bin/t6-svscan');
  assert.equal(run(path.join(root, 'usr/bin/t6-svok'), ['--help']).status, 0);
  assert.ok(!fs.existsSync(path.join(root, 'sbin')) && !fs.existsSync(path.join(root, 'usr/sbin')), 'nothing in /sbin');
  assert.equal(dpkg('-r', 't6').status, 0);
  assert.ok(!fs.existsSync(path.join(root, 'usr/lib/t6')) && !fs.existsSync(path.join(root, 'usr/bin/t6')));
});

test('Depends: asks at least what dpkg-shlibdeps finds the pinned Node and koffi need', { skip: which('dpkg-shlibdeps') === undefined && 'no dpkg-shlibdeps (dpkg-dev)' }, async () => {
  const r = await shlibdeps!;
  assert.equal(r.status, 0, r.output);
  const line = r.output.split('\n').find((l) => l.startsWith('shlibs:Depends='));
  assert.ok(line !== undefined, r.output);
  const parse = (s: string) => new Map(s.replace(/^shlibs:Depends=/, '').trim().split(/,\s*/).map((d) => {
    const m = /^(\S+)(?: \(>= ([^)]+)\))?$/.exec(d);
    assert.ok(m !== null, d);
    return [m[1]!, m[2] ?? '0'] as const;
  }));
  const declared = parse(DEPENDS);
  for (const [pkg, version] of parse(line)) {
    assert.ok(declared.has(pkg), `${pkg} missing from Depends`);
    assert.equal(run('dpkg', ['--compare-versions', declared.get(pkg)!, 'ge', version]).status, 0, `${pkg} (>= ${version}) needed, Depends says ${declared.get(pkg)}`);
  }
});


test('the tarball: one t6/ directory, root\'s, that runs from wherever it is extracted, with its pages and copyright', () => {
  const tar = built.tar!.path;
  const listing = run('tar', ['-tvzf', tar, '--numeric-owner']);
  assert.equal(listing.status, 0, listing.stderr);
  for (const line of listing.stdout.trim().split('\n')) {
    const f = line.split(/\s+/);
    assert.equal(f[1], '0/0', line);
    assert.match(f[5]!, /^t6(\/|$)/, line);
  }
  const opt = tmpdir('t6-package-opt-');
  assert.equal(run('tar', ['-C', opt, '-xzf', tar]).status, 0);
  const r = run(path.join(opt, 't6/bin/t6-svstat'), ['--help'], { cwd: '/' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^usage: t6-svstat /);
  for (const name of COMMANDS) {
    assert.ok(fs.existsSync(path.join(opt, 't6/share/man/man1', `${name}.1.gz`)) || fs.existsSync(path.join(opt, 't6/share/man/man8', `${name}.8.gz`)), name);
  }
  assert.match(fs.readFileSync(path.join(opt, 't6/share/doc/t6/copyright'), 'utf8'), /^Format: https:\/\/www\.debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\//);
});

test('the manual pages: gzip -9n, each with its sections; options and exit codes from the command\'s help; the s6 counterpart', () => {
  const opt = tmpdir('t6-package-man-');
  assert.equal(run('tar', ['-C', opt, '-xzf', built.tar!.path, 't6/share/man']).status, 0);
  const pages = new Map<string, string>();
  for (const section of ['man1', 'man8']) {
    for (const file of fs.readdirSync(path.join(opt, 't6/share/man', section))) {
      const gz = fs.readFileSync(path.join(opt, 't6/share/man', section, file));
      // No file name (FLG.FNAME) and no time (MTIME) in the header: the same bytes at every build.
      assert.ok((gz[3]! & 0x08) === 0 && gz.readUInt32LE(4) === 0, file);
      pages.set(file.replace(/\.\d\.gz$/, ''), zlib.gunzipSync(gz).toString('utf8'));
    }
  }
  assert.deepEqual([...pages.keys()].sort(), COMMANDS);
  for (const [name, page] of pages) {
    for (const section of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'SEE ALSO']) assert.match(page, new RegExp(`^\\.SH ${section}$`, 'm'), `${name}: ${section}`);
    assert.match(page, new RegExp(`^\\.TH ${name.toUpperCase()} [18] `, 'm'));
  }
  const svc = pages.get('t6-svc')!;
  assert.match(svc, /^\.SH OPTIONS\n[^]*\\-wu[^]*^\.SH EXIT STATUS\n.*102 not supervised/m);
  assert.match(svc, /^\.UR https:\/\/skarnet\.org\/software\/s6\/s6-svc\.html$/m);
  assert.match(pages.get('t6-with-contenv')!, /^\.SH EXIT STATUS\n.*111/m);
});

test('npm pack: a package that declares every command and page, carries its build, and installs with npm install -g', { skip: which('npm') === undefined && 'no npm' }, (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; man: string[] };
  assert.deepEqual(Object.keys(pkg.bin).sort(), COMMANDS);
  for (const [name, file] of Object.entries(pkg.bin)) assert.equal(file, `bin/${name}`);
  // "man" names each command's page in the section docs/man/pages.json gives it.
  const sections = JSON.parse(fs.readFileSync(path.join(ROOT, 'docs/man/pages.json'), 'utf8')) as Record<string, { section: number }>;
  const pages = COMMANDS.map((name) => `man${sections[name]?.section}/${name}.${sections[name]?.section}.gz`);
  assert.deepEqual([...pkg.man].sort(), pages.map((p) => `man/${p}`).sort());
  // prepare builds (relocatable wrappers), postpack builds this checkout's again.
  const dest = tmpdir('t6-package-npm-');
  const packed = run('npm', ['pack', '--pack-destination', dest], { cwd: ROOT });
  assert.equal(packed.status, 0, packed.stderr);
  const tgz = path.join(dest, packed.stdout.trim().split('\n').at(-1)!);
  const files = run('tar', ['-tzf', tgz]).stdout.trim().split('\n');
  for (const name of COMMANDS) assert.ok(files.includes(`package/bin/${name}`), name);
  for (const page of pages) assert.ok(files.includes(`package/man/${page}`), page);
  assert.ok(files.includes('package/dist/t6-svscan.cjs') && files.includes('package/dist/commands.json'));
  assert.deepEqual(files.filter((f) => f.endsWith('.map') || f.startsWith('package/src/') || f.startsWith('package/test/')), []);
  const wrapper = run('tar', ['-xzOf', tgz, 'package/bin/t6-svok']).stdout;
  assert.ok(wrapper.startsWith('#!/bin/sh') && !wrapper.includes(ROOT), wrapper);

  // From the npm cache alone if it has everything; else from the registry.
  const prefix = tmpdir('t6-package-prefix-');
  const install = (mode: string) => run('npm', ['install', '-g', '--prefix', prefix, mode, '--no-audit', '--no-fund', tgz], { cwd: prefix });
  let inst = install('--offline');
  if (inst.status !== 0 && /ENOTCACHED/.test(inst.stderr)) inst = install('--prefer-offline');
  if (inst.status !== 0 && /ENOTCACHED|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH/.test(inst.stderr)) {
    t.skip(`no network and the npm cache lacks t6's dependencies: ${inst.stderr.split('\n').find((l) => /npm error/.test(l))}`);
    return;
  }
  assert.equal(inst.status, 0, inst.stderr);
  for (const name of COMMANDS) assert.ok(fs.existsSync(path.join(prefix, 'bin', name)), `${prefix}/bin/${name}`);
  for (const page of pages) assert.ok(fs.existsSync(path.join(prefix, 'share/man', page)), `${prefix}/share/man/${page}`);
  // A PATH whose node (if any) is the system's: the installed commands must find the pinned one.
  for (const [cmd, args, want] of [['t6-svstat', ['--help'], /^usage: t6-svstat /], ['t6', ['--help'], /^usage: t6 <tool>/]] as const) {
    const r = run('sh', ['-x', path.join(prefix, 'bin', cmd), ...args], { cwd: '/', env: { PATH: '/usr/bin:/bin' } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, want);
    const exec = r.stderr.split('\n').find((l) => l.startsWith('+ exec ')) ?? '';
    assert.match(exec, new RegExp(`^\\+ exec ${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/lib/node_modules/t6-init/bin/\\.\\./(\\.\\./)?node(_modules/node)?/bin/node `), exec);
  }
});

test('lintian reports no error on the .deb', { skip: which('lintian') === undefined && !CI && 'lintian not installed (apt-get install lintian)' }, async (t) => {
  assert.ok(lintian !== undefined, 'lintian is installed (.ci/run installs it)');
  const { status, output } = await lintian;
  const tags = output.split('\n').filter((l) => /^[EWIP]: /.test(l));
  for (const tag of tags) t.diagnostic(tag);
  assert.ok(status !== null, output);
  assert.deepEqual(tags.filter((l) => l.startsWith('E: ')), []);
});
