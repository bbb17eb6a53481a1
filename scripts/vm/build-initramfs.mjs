#!/usr/bin/env node
// Builds the initramfs that boots t6 on a real kernel in qemu (test/boot, `npm run demo:vm`):
// a newc cpio archive, uncompressed by default: the kernel unpacks it about 1 s sooner under
// TCG than the zstd or gzip one (3 boots each, 2.3-2.7 s vs 3.3-4.6 s to stage 1 on a busy
// 2-core host; BOOT-LAB.md saw the same order), for 107 MiB in the gitignored cache instead
// of 39. --compress zstd|gzip gives the smaller image. It holds
//
//   /bin/busybox + a relative symlink per applet (sh, getty, login, mount, poweroff, …)
//   /etc/passwd, /etc/group  passwordless root login, as in the article; /etc/profile
//   /opt/t6/                 scripts/package-opt.mjs's folder: bin/ wrappers, dist/, the pinned
//                            Node (stripped), koffi's linux-x64 addon
//   /lib…, /lib64…           the shared libraries node and koffi.node need (from ldd), and
//                            busybox's or the --init file's if they are linked dynamically
//   /etc/t6-linux-init/current/   the boot tree, written by t6-linux-init-maker as the
//                            article does it (-1 -G "getty 38400 ttyS0"), plus -d /dev since an
//                            initramfs has no /dev of its own, and -U: busybox's sh runs its own
//                            halt/poweroff applets, which send SIGUSR1/SIGUSR2 the busybox way;
//                            and -r: pid 1 runs t6-rc's boot and shutdown changes itself (under
//                            software emulation each Node start costs about 0.3 s)
//   /sbin/init               a link to that tree's bin/init (--init FILE puts another file there);
//                            /sbin/{halt,poweroff,reboot,shutdown,telinit} link to its bin/ too,
//                            replacing busybox's applets, as the article copies bin/* to /sbin
//   /etc/t6-rc/source, /etc/t6-rc/compiled   the article's demo services (compiled here)
//   /lib/modules/t6/         the kernel's virtio block modules (scripts/vm/fetch-kernel.sh)
//
// Everything under scripts/vm/rootfs is copied as is; --overlay DIR adds more (after it).
//
// Usage: node scripts/vm/build-initramfs.mjs [--out FILE] [--init FILE] [--overlay DIR]… [--remove PATH]…
//          [--compress zstd|gzip|none] [--no-strip] [--busybox PATH]
// Default output: .cache/vm/initramfs.img. Prints a JSON summary on stdout.
// Needs: busybox (best static: Debian's busybox-static; a dynamically linked one gets its
// libraries copied, and the build refuses one whose libraries it cannot find), cpio, ldd;
// zstd or gzip if asked for; strip if present (saves about 18 MB of debug info in node).
// Before packing, every ELF file in the image is checked for its interpreter and libraries
// (elf.ts): an image whose /bin/sh cannot load panics the kernel at boot.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyboxLibraries, isElf, missingInImage, sharedLibraries } from './elf.ts';
import { BIN_DIR, DEFAULT_BASEDIR } from '../../src/s6/initctl.ts';
import { packageOpt } from '../package-opt.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const started = Date.now();

function usage(message) {
  process.stderr.write(`build-initramfs: ${message}\nusage: build-initramfs.mjs [--out FILE] [--init FILE] [--overlay DIR]… [--remove PATH]… [--compress zstd|gzip|none] [--no-strip] [--busybox PATH]\n`);
  process.exit(100);
}

const opts = { out: path.join(root, '.cache/vm/initramfs.img'), init: undefined, overlays: [], removals: [], compress: undefined, strip: true, busybox: undefined };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const value = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
  if (a === '--out') opts.out = path.resolve(value());
  else if (a === '--init') opts.init = path.resolve(value());
  else if (a === '--overlay') opts.overlays.push(path.resolve(value()));
  else if (a === '--remove') opts.removals.push(value());
  else if (a === '--compress') opts.compress = value();
  else if (a === '--no-strip') opts.strip = false;
  else if (a === '--busybox') opts.busybox = path.resolve(value());
  else usage(`unknown argument ${a}`);
}

function which(cmd) {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir || '.', cmd);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return undefined;
}
function fail(message) {
  process.stderr.write(`build-initramfs: ${message}\n`);
  process.exit(1);
}

const compress = opts.compress ?? 'none';
if (!['zstd', 'gzip', 'none'].includes(compress)) usage(`unknown compression ${compress}`);
if (compress !== 'none' && !which(compress)) fail(`${compress} not found`);
if (!which('cpio')) fail('cpio not found (apt-get install cpio)');
const busybox = opts.busybox ?? ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p)) ?? which('busybox');
if (busybox === undefined) fail('busybox not found (apt-get install busybox-static)');
// Debian's `busybox` package (dynamically linked) replaces busybox-static: its libraries go
// into the image too, or the build stops here.
let busyboxLibs;
try { busyboxLibs = busyboxLibraries(busybox); } catch (err) { fail(err.message); }
const node = path.join(root, 'node_modules/node/bin/node');
const koffiNode = path.join(root, 'node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node');
for (const f of [node, koffiNode, path.join(root, 'dist/t6-svscan.cjs'), path.join(root, 'bin/t6-svscan')]) {
  if (!fs.existsSync(f)) fail(`${path.relative(root, f)} is missing (npm ci, then npm run build)`);
}

const outDir = path.dirname(opts.out);
const stage = path.join(outDir, 'rootfs');
fs.rmSync(stage, { recursive: true, force: true });
fs.mkdirSync(stage, { recursive: true });
const at = (p) => path.join(stage, p);
const mkdir = (p) => fs.mkdirSync(at(p), { recursive: true });
function copy(from, to, mode) {
  mkdir(path.dirname(to));
  fs.copyFileSync(from, at(to)); // follows symbolic links: the image gets the real file
  fs.chmodSync(at(to), mode ?? (fs.statSync(from).mode & 0o7777));
}
/** Removes what is at `p` in the stage, also a dangling symbolic link (which fs.rmSync, following it, leaves). */
function removeEntry(p) {
  const st = fs.lstatSync(at(p), { throwIfNoEntry: false });
  if (st === undefined) return;
  if (st.isDirectory()) fs.rmSync(at(p), { recursive: true, force: true });
  else fs.unlinkSync(at(p));
}

/**
 * Recreates a FIFO or a device node (s6-linux-init's boot tree has FIFOs; the boot bench's
 * floor image a /dev/kmsg node): Node has no mkfifo or mknod, the tools do. Needs root for
 * a device node.
 */
function copySpecial(src, dst, st) {
  mkdir(path.dirname(dst));
  removeEntry(dst);
  const kind = st.isFIFO() ? ['p'] : [st.isCharacterDevice() ? 'c' : 'b', String((st.rdev >> 8) & 0xfff), String((st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00))];
  const r = spawnSync('mknod', ['-m', (st.mode & 0o7777).toString(8), at(dst), ...kind], { encoding: 'utf8' });
  if (r.status !== 0) fail(`mknod ${dst} (from ${src}): ${(r.stderr || r.error?.message || '').trim()}`);
}

/** Copies a directory tree, keeping modes, symbolic links, FIFOs and device nodes. */
function copyTree(from, to, filter = () => true) {
  for (const ent of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, ent.name);
    const dst = path.join(to, ent.name);
    if (!filter(src, ent)) continue;
    if (ent.isDirectory()) { mkdir(dst); fs.chmodSync(at(dst), fs.statSync(src).mode & 0o7777); copyTree(src, dst, filter); }
    else if (ent.isSymbolicLink()) { mkdir(path.dirname(dst)); removeEntry(dst); fs.symlinkSync(fs.readlinkSync(src), at(dst)); }
    else if (ent.isFile()) { fs.rmSync(at(dst), { force: true }); copy(src, dst); }
    else if (ent.isFIFO() || ent.isCharacterDevice() || ent.isBlockDevice()) copySpecial(src, dst, fs.lstatSync(src));
  }
}

for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'root', 'opt/t6']) mkdir(d);
fs.chmodSync(at('tmp'), 0o1777);
fs.chmodSync(at('root'), 0o700);

// busybox and its applets, as relative links (never `busybox --install`, which would link
// to the staging path). init and linuxrc are left out: /sbin/init is ours.
copy(busybox, 'bin/busybox', 0o755);
const applets = execFileSync(busybox, ['--list-full'], { encoding: 'utf8' }).split('\n').filter(Boolean);
for (const rel of applets) {
  if (/(^|\/)(init|linuxrc|busybox)$/.test(rel)) continue;
  mkdir(path.dirname(rel));
  fs.symlinkSync(path.relative(path.dirname(rel), 'bin/busybox'), at(rel));
}

// The pinned Node and t6: the self-contained folder of scripts/package-opt.mjs, laid out
// as in the repository so bin/ wrappers and koffi's package resolution work unchanged.
let stripped = false;
try { stripped = packageOpt(at('opt/t6'), { strip: opts.strip }).stripped; } catch (err) { fail(err.message); }

// Shared libraries, at the paths ldd names (glibc searches the multiarch folders without
// an ld.so.cache): node's, koffi.node's, busybox's and the --init file's.
const libs = new Set(busyboxLibs);
const elves = [node, koffiNode];
if (opts.init !== undefined && isElf(opts.init)) elves.push(opts.init);
for (const elf of elves) {
  try { for (const lib of sharedLibraries(elf)) libs.add(lib); } catch (err) { fail(`${elf}: ${err.message}`); }
}
for (const lib of libs) copy(lib, lib.slice(1));

// Login files and the service sources; then the boot tree, made by t6 itself.
copyTree(path.join(root, 'scripts/vm/rootfs'), '.');
const t6 = (cmd, args) => {
  const r = spawnSync(path.join(root, 'bin', cmd), args, { encoding: 'utf8' });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')}: ${r.stderr}`);
};
t6('t6-rc-compile', [at('etc/t6-rc/compiled'), at('etc/t6-rc/source')]);
const basedir = DEFAULT_BASEDIR;
mkdir(path.dirname(basedir.slice(1)));
t6('t6-linux-init-maker', ['-1', '-U', '-r', '-G', 'getty 38400 ttyS0', '-d', '/dev', '-c', basedir, '-T', '/opt/t6/bin',
  '-b', '/etc/t6-rc/compiled', '-l', '/run/t6-rc', '-p', '/opt/t6/bin:/usr/sbin:/usr/bin:/sbin:/bin', at(basedir.slice(1))]);
for (const name of ['halt', 'poweroff', 'reboot', 'shutdown', 'telinit']) {
  for (const dir of ['bin', 'sbin', 'usr/bin', 'usr/sbin']) fs.rmSync(at(`${dir}/${name}`), { force: true });
  fs.symlinkSync(`${basedir}/${BIN_DIR}/${name}`, at(`sbin/${name}`));
}
fs.rmSync(at('sbin/init'), { force: true });
if (opts.init !== undefined) copy(opts.init, 'sbin/init', 0o755);
else fs.symlinkSync(`${basedir}/${BIN_DIR}/init`, at('sbin/init'));
const kernelDir = path.join(root, '.cache/vm/kernel');
const modulesDir = fs.existsSync(kernelDir) ? fs.readdirSync(kernelDir).filter((d) => d.startsWith('modules-')).sort().pop() : undefined;
if (modulesDir !== undefined) for (const f of fs.readdirSync(path.join(kernelDir, modulesDir))) copy(path.join(kernelDir, modulesDir, f), `lib/modules/t6/${f}`);
for (const dir of opts.overlays) copyTree(dir, '.');
// --remove PATH: take something out of the image (tests of a broken boot tree).
for (const p of opts.removals) fs.rmSync(at(p.replace(/^\/+/, '')), { recursive: true, force: true });
fs.chmodSync(at('etc/passwd'), 0o644);
// Every binary must be able to run in the image (overlays included).
const missing = missingInImage(stage);
if (missing.length > 0) fail(`these binaries cannot run in the image, their interpreter or libraries are missing:\n  ${missing.join('\n  ')}`);

// newc archive, owned by root; sorted so that directories come before their contents.
const tmp = `${opts.out}.tmp`;
const packer = { zstd: ' | zstd -q -3 -T0', gzip: ' | gzip -6', none: '' }[compress];
const r = spawnSync('bash', ['-c', `set -eo pipefail; find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet${packer} > "$1"`, 'bash', tmp], { cwd: stage, stdio: 'inherit' });
if (r.status !== 0) fail(`cpio${packer} failed`);
fs.renameSync(tmp, opts.out);

const du = (dir) => {
  let n = 0;
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) n += du(p);
    else if (ent.isFile()) n += fs.statSync(p).size;
  }
  return n;
};
process.stdout.write(JSON.stringify({
  image: opts.out,
  compress,
  imageBytes: fs.statSync(opts.out).size,
  stagedBytes: du(stage),
  nodeStripped: stripped,
  libraries: [...libs].sort(),
  busyboxLinked: busyboxLibs.length === 0 ? 'static' : 'dynamic',
  applets: applets.length,
  init: opts.init ?? 'scripts/vm/rootfs/sbin/init',
  ms: Date.now() - started,
}, null, 2) + '\n');
