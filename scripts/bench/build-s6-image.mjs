#!/usr/bin/env node
// Builds the initramfs that boots the real s6 stack on the same demo as t6's image, for
// bench/boot.mjs (issue 12: t6 beside s6 in the same run, same kernel, same qemu). It is
// t6's image (scripts/vm/build-initramfs.mjs: same busybox, same login files, same kernel
// modules, same service sources and scripts) with t6 taken out and s6 put in:
//
//   s6 2.11.3.2, execline 2.9.3.0   Debian's packages (apt-get install -y s6 execline),
//                                   every file of theirs outside /usr/share, at Debian's paths
//   s6-rc 0.5.4.1                   scripts/bench/build-s6-rc.sh's build, at its path in .cache
//                                   (its libexec programs are named by absolute path), and
//                                   /usr/bin/s6-rc* links to it (the rest is found through PATH)
//   s6-linux-init 1.1.1.0           scripts/bench/build-s6-linux-init.sh's build, at its path
//   the shared libraries of all of those (elf.ts)
//   /etc/s6-linux-init/current      made by the real s6-linux-init-maker as t6's is made by
//                                   t6-linux-init-maker: -1, -G "getty 38400 ttyS0", -d /dev;
//                                   its scripts: rc.init runs s6-rc-init, then `s6-rc -up
//                                   change default`; rc.shutdown `s6-rc -bDa change`
//   /etc/s6-rc/compiled             the real s6-rc-compile of t6's demo source tree
//                                   (scripts/vm/rootfs/etc/t6-rc/source, unchanged)
//   /sbin/init, halt, poweroff, …   links to that tree's bin/. busybox's ash runs its own
//                                   poweroff applet for a bare `poweroff`, which sends SIGUSR2,
//                                   and s6-linux-init halts on SIGUSR2: type /sbin/poweroff
//   /etc/profile                    PS1='[s6]# '
//
// Usage: node scripts/bench/build-s6-image.mjs [--out FILE]     (default .cache/s6-boot/initramfs.img)
// Sources: $S6_RC_SRC and $S6_LINUX_INIT_SRC, as the two build scripts take them (else they
// clone from GitHub). The image is rebuilt only when its inputs changed (.cache/s6-boot/key).
// Prints a JSON summary on stdout; exits 1 with the reason on stderr when s6 is not there.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isElf, sharedLibraries } from '../vm/elf.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cache = path.join(root, '.cache/s6-boot');
const SOURCE = path.join(root, 'scripts/vm/rootfs/etc/t6-rc/source');
const BASEDIR = '/etc/s6-linux-init/current';
const LIVE = '/run/s6-rc';

function fail(message) {
  process.stderr.write(`build-s6-image: ${message}\n`);
  process.exit(1);
}

function run(cmd, args, env = process.env) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env });
  if (r.status !== 0) fail(`${path.basename(cmd)} ${args.join(' ')}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
  return r.stdout.trim();
}

/** The installation prefixes of s6-rc and s6-linux-init, built if need be (they say why not). */
function buildSkarnet() {
  const s6rc = path.dirname(path.dirname(run('sh', [path.join(root, 'scripts/bench/build-s6-rc.sh')]).split('\n').pop()));
  const s6li = run('sh', [path.join(root, 'scripts/bench/build-s6-linux-init.sh')]).split('\n').pop();
  return { s6rc, s6li };
}

/** Debian's s6 and execline: their files (not docs), and their versions. */
function debianFiles() {
  const versions = {};
  for (const pkg of ['s6', 'execline']) {
    const r = spawnSync('dpkg-query', ['-W', '-f', '${Status} ${Version}', pkg], { encoding: 'utf8' });
    if (r.status !== 0 || !r.stdout.startsWith('install ok installed')) fail(`Debian's ${pkg} is not installed (apt-get install -y s6 execline)`);
    versions[pkg] = r.stdout.split(' ').pop();
  }
  const files = run('dpkg', ['-L', 's6', 'execline']).split('\n')
    .filter((f) => f.startsWith('/') && !f.startsWith('/usr/share/'))
    .filter((f) => { const st = fs.lstatSync(f, { throwIfNoEntry: false }); return st !== undefined && (st.isFile() || st.isSymbolicLink()); });
  return { files, versions };
}

/** Every regular file under a directory (recursively). */
function filesUnder(dir) {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => path.join(e.parentPath, e.name));
}

/** What the image is made of: a change in any of these means a new image. */
function inputsKey(s6, debian) {
  const h = crypto.createHash('sha256');
  const self = fileURLToPath(import.meta.url);
  for (const f of [self, path.join(root, 'scripts/vm/build-initramfs.mjs'), path.join(root, 'scripts/vm/elf.ts'), ...filesUnder(path.join(root, 'scripts/vm/rootfs')).sort()]) {
    h.update(f).update(fs.readFileSync(f));
  }
  for (const f of [...filesUnder(s6.s6rc), ...filesUnder(s6.s6li), '/bin/busybox'].sort()) {
    const st = fs.statSync(f, { throwIfNoEntry: false });
    h.update(`${f} ${st?.size} ${st?.mtimeMs}\n`);
  }
  h.update(JSON.stringify(debian.versions));
  const kernelDir = path.join(root, '.cache/vm/kernel');
  if (fs.existsSync(kernelDir)) h.update(fs.readdirSync(kernelDir).sort().join(','));
  return h.digest('hex');
}

/** The overlay's file operations, paths inside the image. */
function overlay(dir) {
  const at = (p) => path.join(dir, p.replace(/^\/+/, ''));
  const mkdir = (p) => fs.mkdirSync(at(p), { recursive: true });
  return {
    at,
    mkdir,
    copy(from, to = from) {
      mkdir(path.dirname(to));
      const st = fs.lstatSync(from);
      if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(from), at(to));
      else { fs.copyFileSync(from, at(to)); fs.chmodSync(at(to), st.mode & 0o7777); }
    },
    link(target, p) { mkdir(path.dirname(p)); fs.rmSync(at(p), { force: true }); fs.symlinkSync(target, at(p)); },
    write(p, text, mode = 0o644) { mkdir(path.dirname(p)); fs.writeFileSync(at(p), text); fs.chmodSync(at(p), mode); },
  };
}

/** The binaries: Debian's s6 and execline, s6-rc and s6-linux-init at their build paths, their libraries. */
function stageBinaries(o, s6, debian) {
  const elves = [];
  for (const f of debian.files) {
    o.copy(f);
    if (fs.lstatSync(f).isFile() && isElf(f)) elves.push(f);
  }
  for (const prefix of [s6.s6rc, s6.s6li]) {
    for (const sub of ['bin', 'libexec']) {
      if (!fs.existsSync(path.join(prefix, sub))) continue;
      for (const f of filesUnder(path.join(prefix, sub))) {
        o.copy(f);
        if (isElf(f)) elves.push(f);
      }
    }
  }
  // s6-rc is built to find its own commands through PATH (only libexec is absolute).
  for (const name of fs.readdirSync(path.join(s6.s6rc, 'bin'))) o.link(path.join(s6.s6rc, 'bin', name), `/usr/bin/${name}`);
  const libs = new Set();
  for (const elf of elves) {
    try { for (const lib of sharedLibraries(elf)) libs.add(lib); } catch (err) { fail(`${elf}: ${err.message}`); }
  }
  for (const lib of libs) o.copy(fs.realpathSync(lib), lib);
  return [...libs].sort();
}

/** s6-linux-init-maker's skeleton scripts: s6-rc brings up the default bundle and takes it down. */
function writeSkeleton(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const script = (name, body) => fs.writeFileSync(path.join(dir, name), `#!/bin/sh -e\n${body}`, { mode: 0o755 });
  script('rc.init', `# Stage 2 of the s6 image (bench/boot.mjs): s6-rc's live state on the scan directory
# s6-svscan runs, then the runlevel (default) with s6-rc.
rl="$1"
shift
s6-rc-init -c /etc/s6-rc/compiled -l ${LIVE} /run/service
exec ${BASEDIR}/scripts/runlevel "$rl"
`);
  script('runlevel', `test "$#" -gt 0 || { echo 'runlevel: fatal: too few arguments' 1>&2 ; exit 100 ; }
exec s6-rc -v2 -l ${LIVE} -up change "$1"
`);
  script('rc.shutdown', `exec s6-rc -v2 -l ${LIVE} -bDa change\n`);
  script('rc.shutdown.final', '');
}

/** The boot tree (s6-linux-init-maker), the compiled services (s6-rc-compile), /sbin links, profile. */
function stageBootTree(o, s6) {
  const skel = path.join(cache, 'skel');
  writeSkeleton(skel);
  o.mkdir(path.dirname(BASEDIR));
  const PATH = '/usr/bin:/usr/sbin:/bin:/sbin:/usr/lib/execline/bin';
  run(path.join(s6.s6li, 'bin/s6-linux-init-maker'), ['-1', '-G', 'getty 38400 ttyS0', '-d', '/dev', '-c', BASEDIR,
    '-p', PATH, '-f', skel, o.at(BASEDIR)]);
  o.mkdir('/etc/s6-rc');
  run(path.join(s6.s6rc, 'bin/s6-rc-compile'), [o.at('/etc/s6-rc/compiled'), SOURCE]);
  for (const name of ['init', 'halt', 'poweroff', 'reboot', 'shutdown', 'telinit']) o.link(`${BASEDIR}/bin/${name}`, `/sbin/${name}`);
  o.write('/etc/profile', `export PATH=${PATH}\nPS1='[s6]# '\n`);
}

function main() {
  const argv = process.argv.slice(2);
  const out = argv[0] === '--out' && argv[1] !== undefined ? path.resolve(argv[1]) : path.join(cache, 'initramfs.img');
  const started = Date.now();
  const debian = debianFiles();
  const s6 = buildSkarnet();
  const key = inputsKey(s6, debian);
  const keyFile = `${out}.key`;
  if (fs.existsSync(out) && fs.existsSync(keyFile) && fs.readFileSync(keyFile, 'utf8') === key) {
    process.stdout.write(`${JSON.stringify({ image: out, cached: true, versions: debian.versions, ms: Date.now() - started })}\n`);
    return;
  }
  const dir = path.join(cache, 'overlay');
  fs.rmSync(dir, { recursive: true, force: true });
  const o = overlay(dir);
  const libraries = stageBinaries(o, s6, debian);
  stageBootTree(o, s6);
  // On t6's image: its Node, its dist and its boot tree go; busybox's applets that would shadow
  // s6-linux-init's links are not there (build-initramfs puts t6's links in their place).
  run(process.execPath, [path.join(root, 'scripts/vm/build-initramfs.mjs'), '--out', out, '--overlay', dir,
    '--remove', '/opt/t6', '--remove', '/etc/t6-linux-init', '--remove', '/etc/t6-rc/compiled']);
  fs.writeFileSync(keyFile, key);
  process.stdout.write(`${JSON.stringify({ image: out, cached: false, versions: debian.versions, s6rc: s6.s6rc, s6LinuxInit: s6.s6li, libraries, imageBytes: fs.statSync(out).size, ms: Date.now() - started })}\n`);
}

main();
