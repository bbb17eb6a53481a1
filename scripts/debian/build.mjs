#!/usr/bin/env node
// Builds the Debian bookworm disk image that `npm run demo:debian` and test/boot/debian.test.ts
// boot with t6 as init, in layers, each cached in .cache/debian/ and rebuilt only when what
// it is made from changes:
//
//   1. base-KEY.tar    debootstrap --variant=minbase with PACKAGES, the kernel's whole modules
//                      tree (depmod run in the chroot), and the settings of a demo machine:
//                      hostname, fstab, network interfaces, root with an empty password
//                      (serial console only: sshd refuses empty passwords) and ssh's key.
//                      KEY covers the package list, the kernel and BASE_VERSION: rebuilding
//                      t6 never runs debootstrap again. About 80 s of debootstrap here.
//   2. debian.img      the base, plus t6 (installT6: the .deb of scripts/package.mjs), examples/debian compiled into
//                      /etc/t6-rc/compiled, and a boot tree from t6-linux-init-maker;
//                      an ext4 image made with `mkfs.ext4 -d` (no loop mount).
//   3. initrd.img      t6's own small initramfs (initramfs-init, static busybox, the virtio
//                      block modules): the cloud kernel has virtio as modules.
//
// Usage: node scripts/debian/build.mjs [--force]   (as root: debootstrap, chroot, owners)
// Prints a JSON summary on stdout: the files, the kernel, the ssh key, what was rebuilt, ms.
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mirror, sha, tools } from './common.mjs';
import { packageOpt } from '../package-opt.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cache = path.join(root, '.cache/debian');
const started = Date.now();

/** Bump when the base layer's recipe changes (what debootstrap gets or what is set in it). */
const BASE_VERSION = 1;
const SUITE = 'bookworm';
/** The packages of issue 16, with ifupdown's DHCP client (a Recommends, which debootstrap skips). */
const PACKAGES = ['udev', 'kmod', 'procps', 'iproute2', 'ifupdown', 'isc-dhcp-client', 'rsyslog', 'cron', 'openssh-server', 'e2fsprogs'];
const HOSTNAME = 't6-debian';
/** Where t6 lives in the image (the package's layout: /usr/lib/t6, commands linked from /usr/bin). */
const T6_DIR = '/usr/lib/t6';
const BASEDIR = '/etc/t6-linux-init/current';

const { fail, run } = tools('build-debian');
/** The hash of every file under `dir` (names, modes and contents). */
function treeHash(dir) {
  const h = crypto.createHash('sha256');
  const walk = (d) => {
    for (const ent of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(d, ent.name);
      h.update(`${path.relative(dir, p)}\0${fs.lstatSync(p).mode}\0`);
      if (ent.isDirectory()) walk(p);
      else if (ent.isSymbolicLink()) h.update(fs.readlinkSync(p));
      else h.update(fs.readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex').slice(0, 16);
}

/** The cloud kernel of the boot tests (scripts/vm/fetch-kernel.sh) and its version. */
function kernel() {
  const out = run('sh', [path.join(root, 'scripts/vm/fetch-kernel.sh'), path.join(root, '.cache/vm')]).trim().split('\n').pop();
  return { vmlinuz: out, version: path.basename(out).replace(/^vmlinuz-/, '') };
}

/** The kernel's whole modules tree, from its package (downloaded, never installed), into `dest`. */
function addModules(dest, version) {
  const dl = path.join(cache, 'kernel-deb');
  fs.mkdirSync(dl, { recursive: true });
  let deb = fs.readdirSync(dl).find((f) => f.startsWith(`linux-image-${version}_`));
  if (deb === undefined) {
    run('apt-get', ['download', '-q', `linux-image-${version}`], { cwd: dl });
    deb = fs.readdirSync(dl).find((f) => f.startsWith(`linux-image-${version}_`)) ?? fail(`apt-get download linux-image-${version} gave nothing`);
  }
  run('bash', ['-c', 'set -o pipefail; dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" "./lib/modules/$3"', 'bash', path.join(dl, deb), dest, version]);
  run('chroot', [dest, 'depmod', '-a', version]);
}

/** Files a demo machine needs set, written into the base tree. */
function configureBase(dir) {
  const w = (p, text, mode = 0o644) => { fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true }); fs.writeFileSync(path.join(dir, p), text, { mode }); };
  w('etc/hostname', `${HOSTNAME}\n`);
  w('etc/hosts', `127.0.0.1\tlocalhost\n127.0.1.1\t${HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n`);
  w('etc/fstab', '# The root is checked and remounted read-write by the fsck-root and remount-root services.\nLABEL=t6root\t/\text4\tdefaults,errors=remount-ro\t0\t1\n');
  w('etc/network/interfaces', 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n');
  // A demo: root logs in on the serial console without a password (sshd refuses an empty one).
  const shadow = path.join(dir, 'etc/shadow');
  fs.writeFileSync(shadow, fs.readFileSync(shadow, 'utf8').replace(/^root:[^:]*:/m, 'root::'));
  fs.rmSync(path.join(dir, 'var/cache/apt/archives'), { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'var/cache/apt/archives/partial'), { recursive: true });
}

/** Layer 1: the debootstrapped tree as a tarball, made once per key. */
function baseLayer(k) {
  // The key also covers the text of the two functions that fill the tree, so editing them
  // rebuilds it without a BASE_VERSION bump being forgotten.
  const key = sha(String(BASE_VERSION), SUITE, PACKAGES.join(','), k.version, fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').match(/function (configureBase|addModules)[\s\S]*?\n}\n/g).join(''));
  const tar = path.join(cache, `base-${key}.tar`);
  if (fs.existsSync(tar) && !process.argv.includes('--force')) return { tar, built: false, ms: 0 };
  const t0 = Date.now();
  const tree = path.join(cache, 'base-tree');
  fs.rmSync(tree, { recursive: true, force: true });
  run('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, SUITE, tree, mirror()]);
  addModules(tree, k.version);
  configureBase(tree);
  run('tar', ['-C', tree, '--numeric-owner', '-cf', `${tar}.tmp`, '.']);
  fs.renameSync(`${tar}.tmp`, tar);
  for (const f of fs.readdirSync(cache)) if (/^base-[0-9a-f]+\.tar$/.test(f) && path.join(cache, f) !== tar) fs.rmSync(path.join(cache, f));
  fs.rmSync(tree, { recursive: true, force: true });
  return { tar, built: true, ms: Date.now() - t0 };
}

/**
 * Installs t6 into the tree at `dir`: from the Debian package when the repository can make
 * one (scripts/package.mjs), with dpkg in the chroot; else the self-contained folder of
 * scripts/package-opt.mjs at /usr/lib/t6 with its commands linked from /usr/bin.
 */
function installT6(dir) {
  if (fs.existsSync(path.join(root, 'scripts/package.mjs'))) {
    // --fast: gzip -1, the image is the only one to unpack it.
    run(process.execPath, [path.join(root, 'scripts/package.mjs'), '--deb-only', '--fast']);
    const pkgDir = path.join(root, '.cache/package');
    const deb = fs.readdirSync(pkgDir).filter((f) => /^t6_.*_amd64\.deb$/.test(f)).sort().pop() ?? fail('scripts/package.mjs made no .deb');
    fs.copyFileSync(path.join(pkgDir, deb), path.join(dir, 'tmp/t6.deb'));
    run('chroot', [dir, 'dpkg', '-i', '/tmp/t6.deb']);
    fs.rmSync(path.join(dir, 'tmp/t6.deb'));
    return `dpkg -i ${deb}`;
  }
  const at = path.join(dir, T6_DIR.slice(1));
  packageOpt(at, { strip: true });
  for (const cmd of fs.readdirSync(path.join(at, 'bin'))) fs.symlinkSync(`../lib/t6/bin/${cmd}`, path.join(dir, 'usr/bin', cmd));
  return 'scripts/package-opt.mjs';
}

/** examples/debian: its scripts, its source compiled, and a boot tree made by the maker. */
function installServices(dir) {
  const ex = path.join(root, 'examples/debian');
  const at = (p) => path.join(dir, p);
  fs.cpSync(path.join(ex, 'source'), at('etc/t6-rc/source'), { recursive: true });
  fs.cpSync(path.join(ex, 'scripts'), at('etc/t6-rc/scripts'), { recursive: true });
  const bin = (cmd) => path.join(root, 'bin', cmd);
  run(bin('t6-rc-compile'), [at('etc/t6-rc/compiled'), at('etc/t6-rc/source')]);
  fs.mkdirSync(path.dirname(at(BASEDIR)), { recursive: true });
  // -1: the catch-all log on the console too; -r: pid 1 runs t6-rc's boot and shutdown;
  // -d /dev: a devtmpfs, unless the initramfs handed one over (then it is kept).
  run(bin('t6-linux-init-maker'), ['-1', '-r', '-d', '/dev', '-c', BASEDIR, '-T', `${T6_DIR}/bin`, '-b', '/etc/t6-rc/compiled', '-l', '/run/t6-rc',
    '-p', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', at(BASEDIR)]);
  // t6 is this system's init: /sbin/init and the shutdown commands are the boot tree's.
  for (const name of ['init', 'halt', 'poweroff', 'reboot', 'shutdown', 'telinit']) {
    fs.rmSync(at(`sbin/${name}`), { force: true });
    fs.symlinkSync(`${BASEDIR}/bin/${name}`, at(`sbin/${name}`));
  }
}

/** The ssh key the demo and the test log in with (made once, kept in the cache). */
function sshKey(dir) {
  const key = path.join(cache, 'id_ed25519');
  if (!fs.existsSync(key)) run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 't6-debian-demo', '-f', key]);
  fs.mkdirSync(path.join(dir, 'root/.ssh'), { recursive: true, mode: 0o700 });
  fs.copyFileSync(`${key}.pub`, path.join(dir, 'root/.ssh/authorized_keys'));
  return key;
}

/** Layer 2: base + t6 + the services, as an ext4 image. */
function imageLayer(base) {
  const inputs = [base.tar, treeHash(path.join(root, 'dist')), treeHash(path.join(root, 'examples/debian')), fs.readFileSync(fileURLToPath(import.meta.url), 'utf8')];
  const key = sha(...inputs);
  const img = path.join(cache, 'debian.img');
  const stamp = `${img}.key`;
  if (fs.existsSync(img) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === key && !process.argv.includes('--force')) {
    return { img, built: false, key: path.join(cache, 'id_ed25519'), how: 'cached', ms: 0 };
  }
  const t0 = Date.now();
  const tree = path.join(cache, 'image-tree');
  fs.rmSync(tree, { recursive: true, force: true });
  fs.mkdirSync(tree);
  run('tar', ['-C', tree, '--numeric-owner', '-xpf', base.tar]);
  const how = installT6(tree);
  installServices(tree);
  // openssh-server's postinst made host keys inside debootstrap: every copy of the image
  // would share them. The ssh-keys oneshot makes this machine's own at its first boot.
  for (const f of fs.readdirSync(path.join(tree, 'etc/ssh'))) if (f.startsWith('ssh_host_')) fs.rmSync(path.join(tree, 'etc/ssh', f));
  const sshKeyFile = sshKey(tree);
  // Room for logs and the test's files: the tree's size plus half, at least 1.5 GiB.
  const mib = Math.max(1536, Math.ceil(Number(run('du', ['-sm', tree]).split('\t')[0]) * 1.5));
  fs.rmSync(`${img}.tmp`, { force: true });
  run('mkfs.ext4', ['-q', '-F', '-L', 't6root', '-d', tree, `${img}.tmp`, `${mib}M`]);
  fs.renameSync(`${img}.tmp`, img);
  fs.writeFileSync(stamp, key);
  fs.rmSync(tree, { recursive: true, force: true });
  return { img, built: true, key: sshKeyFile, how, ms: Date.now() - t0 };
}

/** The kernel package's file in the cache (downloaded by addModules, or now). Not shared with addModules: its text is part of the base layer's key. */
function kernelPackage(version) {
  const dl = path.join(cache, 'kernel-deb');
  const find = () => fs.readdirSync(dl).find((f) => f.startsWith(`linux-image-${version}_`));
  fs.mkdirSync(dl, { recursive: true });
  if (find() === undefined) run('apt-get', ['download', '-q', `linux-image-${version}`], { cwd: dl });
  return path.join(dl, find() ?? fail(`apt-get download linux-image-${version} gave nothing`));
}

/** The NIC's driver and what it needs (virtio_net, net_failover, failover), extracted from the kernel package into `dest`. */
function netModules(version, dest) {
  const tmp = fs.mkdtempSync(path.join(cache, 'netmods-'));
  const wanted = ['kernel/net/core/failover.ko', 'kernel/drivers/net/net_failover.ko', 'kernel/drivers/net/virtio_net.ko'].map((m) => `./lib/modules/${version}/${m}`);
  run('bash', ['-c', 'set -o pipefail; dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" "${@:3}"', 'bash', kernelPackage(version), tmp, ...wanted]);
  for (const m of wanted) fs.copyFileSync(path.join(tmp, m), path.join(dest, path.basename(m)));
  fs.rmSync(tmp, { recursive: true, force: true });
}

/**
 * Layer 3: the initramfs (static busybox, the virtio block modules, initramfs-init), and the
 * virtio NIC's driver: Debian's own initramfs loads the driver of every device it finds (its
 * udev coldplug), so eth0 is there when the system starts, not only once the system's udev
 * has replayed every device; both images boot this initramfs.
 */
function initrdLayer(k) {
  const mods = path.join(root, '.cache/vm/kernel', `modules-${k.version}`);
  const init = path.join(root, 'scripts/debian/initramfs-init');
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p)) ?? fail('busybox not found (apt-get install busybox-static)');
  // The initramfs has no libraries: Debian's dynamically linked `busybox` package cannot run there.
  if (spawnSync('ldd', [busybox], { encoding: 'utf8' }).stdout.includes('=>')) fail(`${busybox} is dynamically linked (apt-get install busybox-static)`);
  const initrd = path.join(cache, 'initrd.img');
  const stamp = `${initrd}.key`;
  const key = sha(fs.readFileSync(init, 'utf8'), treeHash(mods), fs.readFileSync(busybox).length, netModules.toString());
  if (fs.existsSync(initrd) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === key) return { initrd, built: false };
  const stage = path.join(cache, 'initrd-tree');
  fs.rmSync(stage, { recursive: true, force: true });
  for (const d of ['bin', 'dev', 'proc', 'sys', 'newroot', 'lib/modules']) fs.mkdirSync(path.join(stage, d), { recursive: true });
  fs.copyFileSync(busybox, path.join(stage, 'bin/busybox'));
  fs.chmodSync(path.join(stage, 'bin/busybox'), 0o755);
  for (const applet of execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a !== '' && a !== 'busybox')) {
    fs.symlinkSync('busybox', path.join(stage, 'bin', applet));
  }
  fs.copyFileSync(init, path.join(stage, 'init'));
  fs.chmodSync(path.join(stage, 'init'), 0o755);
  for (const f of fs.readdirSync(mods)) fs.copyFileSync(path.join(mods, f), path.join(stage, 'lib/modules', f));
  netModules(k.version, path.join(stage, 'lib/modules'));
  run('bash', ['-c', 'set -o pipefail; cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -6 > "$2"', 'bash', stage, `${initrd}.tmp`]);
  fs.renameSync(`${initrd}.tmp`, initrd);
  fs.writeFileSync(stamp, key);
  fs.rmSync(stage, { recursive: true, force: true });
  return { initrd, built: true };
}

if (process.getuid?.() !== 0) fail('needs root (debootstrap, chroot, and files owned by root in the image)');
for (const tool of ['debootstrap', 'mkfs.ext4', 'cpio', 'ssh-keygen', 'chroot']) {
  if (spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool]).status !== 0) fail(`${tool} not found (apt-get install debootstrap e2fsprogs cpio openssh-client)`);
}
if (!fs.existsSync(path.join(root, 'dist/t6-linux-init.cjs'))) fail('dist/ is missing: npm run build first');
fs.mkdirSync(cache, { recursive: true });
const k = kernel();
const base = baseLayer(k);
const image = imageLayer(base);
const initrd = initrdLayer(k);
process.stdout.write(`${JSON.stringify({
  image: image.img, initrd: initrd.initrd, kernel: k.vmlinuz, sshKey: path.join(cache, 'id_ed25519'),
  base: { tar: base.tar, built: base.built, ms: base.ms }, imageBuilt: image.built, imageMs: image.ms, t6From: image.how, initrdBuilt: initrd.built,
  ms: Date.now() - started,
}, null, 2)}\n`);
