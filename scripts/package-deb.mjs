// The Debian package of scripts/package.mjs: lays the self-contained tree out as Debian
// wants it (/usr/lib/t6, links in /usr/bin, pages in /usr/share/man, /usr/share/doc/t6)
// with the control file and md5sums, then has dpkg-deb build it, every file root's.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { ROOT } from './package-opt.mjs';

/**
 * What the pinned Node (24.11.1) and koffi's addon need, as `dpkg-shlibdeps` computes it
 * on bookworm from their NEEDED libraries and symbol versions: glibc (libc, libm, libdl,
 * libpthread are all libc6), libstdc++ and libgcc_s. test/integration/package.test.ts
 * computes it again when dpkg-shlibdeps is there, so a new pin cannot leave it stale.
 */
export const DEPENDS = 'libc6 (>= 2.34), libgcc-s1 (>= 3.4), libstdc++6 (>= 10.2)';

const DESCRIPTION = `init system, process supervisor and service manager modelled on s6
 t6 supervises long-running services, brings services up and down in
 dependency order, and can be a Linux machine's init (pid 1) or a
 container's. It reads and writes s6's on-disk formats (service directories,
 supervise/ files and control FIFOs, s6-rc's source format, s6-log's scripts
 and log directories), so s6's tools and t6's can drive each other's trees.
 .
 The whole supervision tree is one Node.js process. The package carries the
 Node.js 24 runtime it runs on, in /usr/lib/t6, and does not use the
 system's nodejs. Installing it does not change how the machine boots:
 /usr/share/doc/t6/README.Debian explains how to boot t6 for one boot with
 init= on the kernel command line, the old init staying one reboot away.`;

/** package.json's author, the package's maintainer. */
function maintainer() {
  const { author } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  if (typeof author !== 'string' || !/^[^<>]+ <[^<>@\s]+@[^<>\s]+>$/.test(author)) throw new Error('package.json: author must be "Name <address>" (the Debian package\'s Maintainer)');
  return author;
}

/** `d` as a Debian changelog date: "Mon, 07 Dec 2026 02:00:00 +0000". */
function debianDate(d) {
  return d.toUTCString().replace(/ GMT$/, ' +0000');
}

/** Sets every directory to 0755 and every file to 0755 or 0644 (executable or not): nothing group- or world-writable. */
export function normalizeModes(p) {
  const st = fs.lstatSync(p);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    fs.chmodSync(p, 0o755);
    for (const name of fs.readdirSync(p)) normalizeModes(path.join(p, name));
  } else {
    fs.chmodSync(p, (st.mode & 0o111) !== 0 ? 0o755 : 0o644);
  }
}

/** Installed-Size as dpkg-gencontrol counts it: KiB per file rounded up, one per directory or link. */
function installedKiB(p) {
  const st = fs.lstatSync(p);
  if (!st.isDirectory()) return st.isFile() ? Math.max(1, Math.ceil(st.size / 1024)) : 1;
  return fs.readdirSync(p).reduce((n, name) => n + installedKiB(path.join(p, name)), 1);
}

/** Every regular file under `dir`, relative to `base`, sorted. */
function regularFiles(dir, base = dir) {
  const out = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    const st = fs.lstatSync(p);
    if (st.isDirectory()) out.push(...regularFiles(p, base));
    else if (st.isFile()) out.push(path.relative(base, p));
  }
  return out;
}

/** Copies `from` into `to` as hard links (cp -al): the tree is staged once for both packages. */
function linkCopy(from, to) {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  const r = spawnSync('cp', ['-al', '--', from, to], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cp -al ${from} ${to}: ${r.stderr}`);
}

/**
 * Lays out the package's files under `root` from the tarball's tree `tree`, and writes
 * DEBIAN/control and DEBIAN/md5sums. Returns the installed size in KiB.
 */
export function writeDebTree(tree, root, { debVersion, date, copyright }) {
  fs.rmSync(root, { recursive: true, force: true });
  for (const part of ['bin', 'dist', 'node_modules']) linkCopy(path.join(tree, part), path.join(root, 'usr/lib/t6', part));
  linkCopy(path.join(tree, 'share/man'), path.join(root, 'usr/share/man'));
  fs.mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
  // Links, not copies: the wrapper follows its $0 to /usr/lib/t6/bin and finds its tree there.
  for (const name of fs.readdirSync(path.join(tree, 'bin')).sort()) fs.symlinkSync(`../lib/t6/bin/${name}`, path.join(root, 'usr/bin', name));
  const doc = path.join(root, 'usr/share/doc/t6');
  fs.mkdirSync(doc, { recursive: true });
  fs.writeFileSync(path.join(doc, 'copyright'), copyright, { mode: 0o644 });
  fs.copyFileSync(path.join(ROOT, 'docs/debian/README.Debian'), path.join(doc, 'README.Debian'));
  fs.mkdirSync(path.join(root, 'usr/share/lintian/overrides'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'docs/debian/lintian-overrides'), path.join(root, 'usr/share/lintian/overrides/t6'));
  const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const changelog = `t6 (${debVersion}) unstable; urgency=medium\n\n  * t6 ${version}, packaged by scripts/package.mjs (issue 16).\n\n -- ${maintainer()}  ${debianDate(date)}\n`;
  fs.writeFileSync(path.join(doc, 'changelog.Debian.gz'), zlib.gzipSync(changelog, { level: 9 }));
  normalizeModes(root);
  const kib = installedKiB(path.join(root, 'usr'));
  fs.mkdirSync(path.join(root, 'DEBIAN'), { mode: 0o755 });
  fs.writeFileSync(path.join(root, 'DEBIAN/control'), [
    'Package: t6', `Version: ${debVersion}`, 'Architecture: amd64', `Maintainer: ${maintainer()}`,
    `Installed-Size: ${kib}`, `Depends: ${DEPENDS}`, 'Section: admin', 'Priority: optional',
    `Description: ${DESCRIPTION}`, '',
  ].join('\n'), { mode: 0o644 });
  const sums = regularFiles(path.join(root, 'usr'), root)
    .map((f) => `${crypto.createHash('md5').update(fs.readFileSync(path.join(root, f))).digest('hex')}  ${f}\n`).join('');
  fs.writeFileSync(path.join(root, 'DEBIAN/md5sums'), sums, { mode: 0o644 });
  for (const f of ['control', 'md5sums']) fs.chmodSync(path.join(root, 'DEBIAN', f), 0o644);
  return kib;
}

/** Builds `file` from `root` with dpkg-deb: every file owned by root:root, xz-compressed (`fast`: gzip -1, for tests). */
export function buildDeb(root, file, { fast = false } = {}) {
  // Written beside, then renamed: a failed build never leaves half a package under the name.
  const tmp = `${file}.tmp`;
  const r = spawnSync('dpkg-deb', ['--root-owner-group', ...(fast ? ['-Zgzip', '-z1'] : ['-Zxz', '-z6']), '--build', root, tmp], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`dpkg-deb --build: ${r.error?.message ?? r.stderr}`);
  }
  fs.renameSync(tmp, file);
}
