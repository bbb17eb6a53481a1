#!/usr/bin/env node
// Builds the boot bench's floor image (bench/boot.mjs, issue 12: t6 boot ≤ floor + 400 ms):
// t6's demo image, unchanged but for /sbin/init, which is a script run by the image's own
// pinned Node (the same binary t6's pid 1 runs, through a #! line: the kernel execs Node
// directly). It writes `t6-demo: demo up` to /dev/kmsg, the line the bench measures t6 and
// s6 to, and nothing else; then, outside the measured span, it finds the two records the
// bench needs in /dev/kmsg and prints their times on the console (with `quiet`, info
// records are not printed there, and there is no shell to run dmesg). pid 1 must not
// exit (the kernel would panic), so a timer keeps it alive.
//
// The kernel mounts no devtmpfs on an initramfs, and Node cannot mount one without FFI:
// the image gets a /dev/kmsg node (c 1 11; making it needs root).
//
// Usage: node scripts/bench/build-floor-image.mjs [--out FILE]   (default .cache/floor-boot/initramfs.img)
// Prints build-initramfs.mjs's JSON summary.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cache = path.join(root, '.cache/floor-boot');
/** Where build-initramfs.mjs puts the pinned Node in the image. */
const IMAGE_NODE = '/opt/t6/node_modules/node/bin/node';

/** The floor's init. The console line's words are what bench/boot.mjs matches. */
export const FLOOR_INIT = `#!${IMAGE_NODE}
'use strict';
const fs = require('node:fs');
fs.writeFileSync('/dev/kmsg', '<6>t6-demo: demo up\\n');
// Not measured from here on: the two records' times (µs), for the bench.
const fd = fs.openSync('/dev/kmsg', fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
const buf = Buffer.alloc(8192);
const at = {};
for (;;) {
  let n;
  try { n = fs.readSync(fd, buf, 0, buf.length, null); } catch (err) { if (err.code === 'EPIPE') continue; break; }
  const rec = buf.toString('utf8', 0, n);
  const m = /^\\d+,\\d+,(\\d+),[^;]*;(Run \\/sbin\\/init as init process|t6-demo: demo up)/.exec(rec);
  if (m !== null) at[m[2].startsWith('Run') ? 'run' : 'up'] = m[1];
}
fs.writeSync(1, \`floor: run-init \${at.run} demo-up \${at.up}\\n\`);
setInterval(() => {}, 1 << 30);
`;

function main() {
  const argv = process.argv.slice(2);
  const out = argv[0] === '--out' && argv[1] !== undefined ? path.resolve(argv[1]) : path.join(cache, 'initramfs.img');
  fs.mkdirSync(cache, { recursive: true });
  const init = path.join(cache, 'init');
  fs.writeFileSync(init, FLOOR_INIT, { mode: 0o755 });
  const overlay = path.join(cache, 'overlay');
  fs.rmSync(overlay, { recursive: true, force: true });
  fs.mkdirSync(path.join(overlay, 'dev'), { recursive: true });
  const mknod = spawnSync('mknod', ['-m', '644', path.join(overlay, 'dev/kmsg'), 'c', '1', '11'], { encoding: 'utf8' });
  if (mknod.status !== 0) {
    process.stderr.write(`build-floor-image: mknod /dev/kmsg: ${(mknod.stderr || mknod.error?.message || '').trim()} (needs root)\n`);
    process.exit(1);
  }
  const r = spawnSync(process.execPath, [path.join(root, 'scripts/vm/build-initramfs.mjs'), '--out', out, '--init', init, '--overlay', overlay], { encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(`build-floor-image: build-initramfs failed: ${r.stderr.trim()}\n`);
    process.exit(1);
  }
  process.stdout.write(r.stdout);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
