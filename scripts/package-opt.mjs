#!/usr/bin/env node
// Builds a self-contained t6 folder, the shape of /opt/t6 on a target (an initramfs, a
// container's root): it runs without npm, the repository or a Node on PATH.
//
//   bin/                              the command wrappers: they find ../dist and
//                                     ../node_modules/node/bin/node beside themselves
//   dist/                             the bundles (*.cjs), commands.json, t6-linux-init's
//                                     startup snapshot and its stamp (times kept: bin/init
//                                     trusts a blob only if it is not newer than its stamp)
//   node_modules/node/bin/node        the pinned Node, the real file (stripped by default)
//   node_modules/koffi/…              what `require('koffi')` loads on linux-x64, nothing else
//   node_modules/@koromix/koffi-linux-x64/…  its glibc x64 addon (the bundles open it directly)
//
// Source maps are left out by default: they are half of dist/ (about 8 of 17 MB) and no
// bundle enables them at run time (--source-maps keeps them).
//
// --system-node=PATH: for an image that already has Node 24 (a node:24-slim one), the folder
// carries no Node of its own: node_modules/node/bin/node is a link to PATH, and the startup
// snapshot (made by, and only readable by, the pinned Node) is left out. About 3 MB then.
//
// Usage: node scripts/package-opt.mjs [--no-strip] [--source-maps] [--system-node=PATH] [OUT]   (default .cache/opt-t6)
// Needs `npm run build` first. Prints the size in MB, total and per part, on stdout.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// What `require('koffi')` resolves and loads on linux-x64 (traced through
// Module._resolveFilename), plus the package.json files that resolution reads.
const KOFFI_FILES = [
  'koffi/package.json', 'koffi/index.cjs', 'koffi/src/koffi/index.cjs', 'koffi/src/koffi/src/static.cjs',
  '@koromix/koffi-linux-x64/package.json', '@koromix/koffi-linux-x64/index.js', '@koromix/koffi-linux-x64/linux_x64/koffi.node',
];

function which(cmd) {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir || '.', cmd);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return undefined;
}

/** Bytes of the regular files under `p` (symbolic links not followed). */
export function treeBytes(p) {
  const st = fs.lstatSync(p);
  if (!st.isDirectory()) return st.isFile() ? st.size : 0;
  let n = 0;
  for (const name of fs.readdirSync(p)) n += treeBytes(path.join(p, name));
  return n;
}

function copyFile(from, to, mode) {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(from, to); // follows symbolic links: the real file
  fs.chmodSync(to, mode ?? (fs.statSync(from).mode & 0o7777));
}

/**
 * Writes the t6 folder into `out` (replaced if it exists). Returns the sizes in bytes per
 * part, whether node was stripped, and how long it took. Throws if the build is missing.
 */
export function packageOpt(out, { strip = true, sourceMaps = false, systemNode = undefined } = {}) {
  if (systemNode !== undefined && !path.isAbsolute(systemNode)) throw new Error(`--system-node needs an absolute path, got ${systemNode}`);
  const started = Date.now();
  const node = path.join(ROOT, 'node_modules/node/bin/node');
  for (const f of [node, path.join(ROOT, 'dist/t6-svscan.cjs'), path.join(ROOT, 'bin/t6-svscan'), ...KOFFI_FILES.map((k) => path.join(ROOT, 'node_modules', k))]) {
    if (!fs.existsSync(f)) throw new Error(`${path.relative(ROOT, f)} is missing (npm ci, then npm run build)`);
  }
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  for (const f of fs.readdirSync(path.join(ROOT, 'bin'))) copyFile(path.join(ROOT, 'bin', f), path.join(out, 'bin', f));
  for (const f of fs.readdirSync(path.join(ROOT, 'dist'))) {
    if (f.endsWith('.map') && !sourceMaps) continue;
    // The snapshot blob and its stamp: only the Node that made them can start from them.
    if (systemNode !== undefined && /\.blob(\.ok)?$/.test(f)) continue;
    const from = path.join(ROOT, 'dist', f);
    copyFile(from, path.join(out, 'dist', f));
    const { atime, mtime } = fs.statSync(from);
    fs.utimesSync(path.join(out, 'dist', f), atime, mtime);
  }
  const outNode = path.join(out, 'node_modules/node/bin/node');
  let stripped = false;
  if (systemNode === undefined) {
    copyFile(node, outNode, 0o755);
    // -s keeps .dynsym, which koffi needs to find napi_* (BOOT-LAB.md); it saves about 18 MB.
    if (strip && which('strip')) stripped = spawnSync('strip', ['-s', outNode], { stdio: 'inherit' }).status === 0;
  } else {
    fs.mkdirSync(path.dirname(outNode), { recursive: true });
    fs.symlinkSync(systemNode, outNode);
  }
  for (const k of KOFFI_FILES) copyFile(path.join(ROOT, 'node_modules', k), path.join(out, 'node_modules', k));
  const parts = {
    bin: treeBytes(path.join(out, 'bin')),
    dist: treeBytes(path.join(out, 'dist')),
    node: treeBytes(outNode),
    koffi: treeBytes(path.join(out, 'node_modules/koffi')) + treeBytes(path.join(out, 'node_modules/@koromix')),
  };
  return { out, totalBytes: treeBytes(out), parts, stripped, sourceMaps, ms: Date.now() - started };
}

const mb = (n) => (n / 1e6).toFixed(1);

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const systemNode = args.find((a) => a.startsWith('--system-node='))?.slice('--system-node='.length);
  const flags = { strip: !args.includes('--no-strip'), sourceMaps: args.includes('--source-maps'), systemNode };
  const rest = args.filter((a) => !a.startsWith('--'));
  const unknown = args.filter((a) => a.startsWith('--') && !['--no-strip', '--source-maps'].includes(a) && !a.startsWith('--system-node='));
  if (unknown.length > 0 || rest.length > 1) {
    process.stderr.write('usage: package-opt.mjs [--no-strip] [--source-maps] [--system-node=PATH] [OUT]\n');
    process.exit(100);
  }
  try {
    const r = packageOpt(path.resolve(rest[0] ?? path.join(ROOT, '.cache/opt-t6')), flags);
    process.stdout.write(`${r.out}: ${mb(r.totalBytes)} MB (bin ${mb(r.parts.bin)}, dist ${mb(r.parts.dist)}, node ${systemNode === undefined ? mb(r.parts.node) : `a link to ${systemNode}`}${r.stripped ? ' stripped' : ''}, koffi ${mb(r.parts.koffi)}) in ${r.ms} ms\n`);
  } catch (err) {
    process.stderr.write(`package-opt: ${err.message}\n`);
    process.exit(1);
  }
}
