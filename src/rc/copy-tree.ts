/**
 * Copying a compiled servicedir into a live directory, fast: t6-rc-init copies every
 * longrun's, so the per-file cost is what counts.
 */
import fs from 'node:fs';
import path from 'node:path';

/**
 * Copies a compiled servicedir (regular files, directories, symbolic links; modes kept):
 * what fs.cpSync does, without its checks per entry and the ownership and time stamps
 * copyFileSync sets, which cost more than the copy itself for files this small.
 */
export function copyTree(src: string, dst: string, umask = currentUmask()): void {
  const mode = fs.statSync(src).mode & 0o7777;
  fs.mkdirSync(dst, { mode });
  if ((mode & umask) !== 0) fs.chmodSync(dst, mode);
  for (const e of fs.readdirSync(src, { withFileTypes: true })) {
    const from = path.join(src, e.name);
    const to = path.join(dst, e.name);
    if (e.isDirectory()) copyTree(from, to, umask);
    else if (e.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(from), to);
    else if (e.isFile()) copyFile(from, to, umask);
    // A compiled servicedir holds nothing else; anything else (a FIFO…) is not copied.
  }
}

function copyFile(from: string, to: string, umask: number): void {
  const fd = fs.openSync(from, 'r');
  try {
    const st = fs.fstatSync(fd);
    const mode = st.mode & 0o7777;
    const data = Buffer.allocUnsafe(st.size);
    let n = 0;
    while (n < st.size) {
      const got = fs.readSync(fd, data, n, st.size - n, n);
      if (got === 0) break;
      n += got;
    }
    fs.writeFileSync(to, data.subarray(0, n), { mode, flag: 'wx' });
    if ((mode & umask) !== 0) fs.chmodSync(to, mode);
  } finally {
    fs.closeSync(fd);
  }
}

/** The process umask (read by setting it and setting it back). */
function currentUmask(): number {
  const mask = process.umask(0o022);
  process.umask(mask);
  return mask;
}
