#!/usr/bin/env node
// Builds issue 16's reference machine: the Debian image of scripts/debian/build.mjs booted by
// systemd instead of t6, for bench/debian-boot.mjs. It starts from the same base layer
// (.cache/debian/base-KEY.tar: the same packages, kernel modules, hostname, fstab, network
// interfaces, root's empty password) and adds, instead of t6 and examples/debian:
//
//   - systemd-sysv, installed with apt-get in a chroot (no Recommends: no dbus, no
//     systemd-timesyncd), services kept from starting there by a policy-rc.d;
//   - the same services as the t6 image, enabled: serial-getty@ttyS0, ssh, cron, rsyslog,
//     networking (ifupdown: lo and eth0 by DHCP); tmp.mount (t6's image mounts a tmpfs on
//     /tmp); udev, fsck, remount, hostname, random seed and sysctl are systemd's own units;
//   - ssh-keys.service: `ssh-keygen -A` before ssh.service, as t6's ssh-keys oneshot; the host
//     keys the base layer got from openssh-server's postinst are removed, so they are made at
//     boot, not baked in;
//   - masked: what t6's image does not run (MASKED), so that both boot the same work as far
//     as systemd lets;
//   - root's authorized ssh key, the same file as the t6 image's (.cache/debian/id_ed25519).
//
// Output: .cache/debian/debian-systemd.img (ext4, label t6root like the t6 image), rebuilt
// only when the base layer or this file changes (debian-systemd.img.key). The kernel and
// initrd.img are scripts/debian/build.mjs's: boot it with init=/lib/systemd/systemd.
//
// Usage: node scripts/debian/build-systemd.mjs [--force]   (as root; needs Debian's mirror)
// Prints a JSON summary on stdout.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mirror, sha, tools } from './common.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cache = path.join(root, '.cache/debian');
const started = Date.now();

/** Units enabled beside systemd's defaults (what t6's image starts). */
const ENABLED = ['serial-getty@ttyS0.service', 'ssh.service', 'cron.service', 'rsyslog.service', 'networking.service', 'ssh-keys.service', 'tmp.mount'];
/**
 * Masked: units t6's image has no counterpart for. logind needs dbus (not installed) and no
 * login needs it (no libpam-systemd); without logind, getty-static would start gettys on
 * tty2-6 (the image has only the serial console); the timers are periodic jobs of apt, dpkg,
 * e2scrub and fstrim; the rest are mounts and helpers of the kernel's extra filesystems.
 */
const MASKED = ['systemd-logind.service', 'getty@tty1.service', 'getty-static.service', 'e2scrub_reap.service', 'e2scrub_all.timer', 'fstrim.timer', 'apt-daily.timer',
  'apt-daily-upgrade.timer', 'dpkg-db-backup.timer', 'systemd-timesyncd.service', 'systemd-pstore.service', 'systemd-binfmt.service',
  'proc-sys-fs-binfmt_misc.automount', 'sys-kernel-debug.mount', 'sys-kernel-tracing.mount', 'sys-kernel-config.mount',
  'sys-fs-fuse-connections.mount', 'dev-hugepages.mount', 'dev-mqueue.mount', 'systemd-networkd.service', 'systemd-resolved.service'];

/** Our own unit: the host keys at boot, before sshd, as t6's ssh-keys oneshot. */
const SSH_KEYS_UNIT = `[Unit]
Description=SSH host keys (made at boot when missing)
DefaultDependencies=no
After=systemd-remount-fs.service systemd-random-seed.service
Before=ssh.service
Requires=systemd-remount-fs.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/ssh-keygen -A

[Install]
RequiredBy=ssh.service
`;

const { fail, run, tryRun } = tools('build-systemd');

/** The t6 image's layers (base tarball, kernel, initrd, ssh key), built or found cached. */
function t6Layers() {
  const r = spawnSync(process.execPath, [path.join(root, 'scripts/debian/build.mjs')], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) fail(`scripts/debian/build.mjs failed (${r.status}): ${r.stderr.trim().slice(-2000)}`);
  return JSON.parse(r.stdout);
}

/** apt-get in the chroot with /proc mounted (dpkg's scripts look there), always unmounted. */
function aptInstall(tree, packages) {
  const policy = path.join(tree, 'usr/sbin/policy-rc.d');
  fs.writeFileSync(policy, '#!/bin/sh\n# Nothing starts in the chroot.\nexit 101\n', { mode: 0o755 });
  const resolv = path.join(tree, 'etc/resolv.conf');
  const hadResolv = fs.existsSync(resolv);
  if (!hadResolv) fs.copyFileSync('/etc/resolv.conf', resolv);
  fs.writeFileSync(path.join(tree, 'etc/apt/sources.list'), `deb ${mirror()} bookworm main\n`);
  const proc = path.join(tree, 'proc');
  run('mount', ['-t', 'proc', 'proc', proc]);
  let failure;
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' };
    tryRun('chroot', [tree, 'apt-get', '-q', 'update'], { env });
    tryRun('chroot', [tree, 'apt-get', '-q', '-y', '--no-install-recommends', 'install', ...packages], { env });
    tryRun('chroot', [tree, 'apt-get', 'clean'], { env });
  } catch (err) {
    failure = err.message;
  } finally {
    spawnSync('umount', [proc]);
    fs.rmSync(policy, { force: true });
    if (!hadResolv) fs.rmSync(resolv, { force: true });
  }
  // Only now: fail() exits at once, and the chroot's /proc must be gone first.
  if (failure !== undefined) fail(failure);
  fs.rmSync(path.join(tree, 'var/lib/apt/lists'), { recursive: true, force: true });
  fs.mkdirSync(path.join(tree, 'var/lib/apt/lists/partial'), { recursive: true });
}

/** Units enabled and masked (systemctl works offline on a tree), host keys removed, the ssh key. */
function configure(tree, sshKey) {
  const at = (p) => path.join(tree, p);
  fs.writeFileSync(at('etc/systemd/system/ssh-keys.service'), SSH_KEYS_UNIT);
  // tmp.mount: Debian ships it as an example only.
  const tmpMount = ['usr/share/systemd/tmp.mount', 'lib/systemd/system/tmp.mount'].map(at).find((p) => fs.existsSync(p));
  if (tmpMount !== undefined && !fs.existsSync(at('lib/systemd/system/tmp.mount'))) fs.copyFileSync(tmpMount, at('etc/systemd/system/tmp.mount'));
  run('chroot', [tree, 'systemctl', 'enable', ...ENABLED]);
  run('chroot', [tree, 'systemctl', 'mask', ...MASKED]);
  run('chroot', [tree, 'systemctl', 'set-default', 'multi-user.target']);
  for (const f of fs.readdirSync(at('etc/ssh'))) if (/^ssh_host_.*_key(\.pub)?$/.test(f)) fs.rmSync(at(`etc/ssh/${f}`));
  fs.mkdirSync(at('root/.ssh'), { recursive: true, mode: 0o700 });
  fs.copyFileSync(`${sshKey}.pub`, at('root/.ssh/authorized_keys'));
  // A fresh machine id at the first boot, as a cloned image should get (empty: systemd makes one).
  fs.writeFileSync(at('etc/machine-id'), '');
  return run('chroot', [tree, 'dpkg-query', '-W', '-f', '${Version}', 'systemd']).trim();
}

/** The image: base + systemd-sysv, an ext4 image made with `mkfs.ext4 -d` like the t6 image. */
function imageLayer(layers) {
  const img = path.join(cache, 'debian-systemd.img');
  const stamp = `${img}.key`;
  const key = sha(path.basename(layers.base.tar), fs.readFileSync(fileURLToPath(import.meta.url), 'utf8'));
  if (fs.existsSync(img) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').startsWith(`${key} `) && !process.argv.includes('--force')) {
    return { img, built: false, systemd: fs.readFileSync(stamp, 'utf8').split(' ')[1], ms: 0 };
  }
  const t0 = Date.now();
  const tree = path.join(cache, 'systemd-tree');
  fs.rmSync(tree, { recursive: true, force: true });
  fs.mkdirSync(tree);
  run('tar', ['-C', tree, '--numeric-owner', '-xpf', layers.base.tar]);
  aptInstall(tree, ['systemd-sysv']);
  const systemd = configure(tree, layers.sshKey);
  // The same size rule as the t6 image: the tree's size plus half, at least 1.5 GiB.
  const mib = Math.max(1536, Math.ceil(Number(run('du', ['-sm', tree]).split('\t')[0]) * 1.5));
  fs.rmSync(`${img}.tmp`, { force: true });
  run('mkfs.ext4', ['-q', '-F', '-L', 't6root', '-d', tree, `${img}.tmp`, `${mib}M`]);
  fs.renameSync(`${img}.tmp`, img);
  fs.writeFileSync(stamp, `${key} ${systemd}`);
  fs.rmSync(tree, { recursive: true, force: true });
  return { img, built: true, systemd, ms: Date.now() - t0 };
}

if (process.getuid?.() !== 0) fail('needs root (chroot, mount, files owned by root in the image)');
const layers = t6Layers();
const image = imageLayer(layers);
process.stdout.write(`${JSON.stringify({
  image: image.img, t6Image: layers.image, initrd: layers.initrd, kernel: layers.kernel, sshKey: layers.sshKey, base: layers.base.tar,
  systemd: image.systemd, built: image.built, imageMs: image.ms, masked: MASKED, enabled: ENABLED, ms: Date.now() - started,
}, null, 2)}\n`);
