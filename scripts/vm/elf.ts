/**
 * Can this binary run in the initramfs? A statically linked ELF file runs anywhere; a
 * dynamically linked one needs its program interpreter (PT_INTERP) and its shared libraries
 * in the image too. build-initramfs.mjs asks here for every ELF file it copies, copies the
 * libraries, and checks the finished image with `missingInImage`.
 *
 * The interpreter is read from the program headers (no tool needed); the libraries come
 * from ldd, which resolves them as the dynamic loader would on this host (the image gets
 * the same files at the same paths).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const PT_DYNAMIC = 2;
const PT_INTERP = 3;

/** Reads `length` bytes at `position` (fewer at the end of the file). */
function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = fs.readSync(fd, buf, 0, length, position);
  return buf.subarray(0, n);
}

/** Whether `file` is an ELF file (its first four bytes). */
export function isElf(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    return readAt(fd, 0, 4).equals(ELF_MAGIC);
  } finally {
    fs.closeSync(fd);
  }
}

/** What an ELF file's program headers say about its linking. */
export interface ElfLinkage {
  /** The program interpreter it names (`/lib64/ld-linux-x86-64.so.2`); undefined for a library or a static executable. */
  interpreter: string | undefined;
  /** Whether it has a dynamic section: executables and libraries linked dynamically (and static-pie, which needs nothing). */
  dynamic: boolean;
}

/** Reads the program headers of an ELF file. Throws on a file that is not ELF or is cut short. */
export function elfLinkage(file: string): ElfLinkage {
  const fd = fs.openSync(file, 'r');
  try {
    const head = readAt(fd, 0, 64);
    if (head.length < 52 || !head.subarray(0, 4).equals(ELF_MAGIC)) throw new Error(`${file} is not an ELF file`);
    const wide = head[4] === 2; // ELFCLASS64
    const le = head[5] === 1; // ELFDATA2LSB
    const u16 = (b: Buffer, at: number): number => (le ? b.readUInt16LE(at) : b.readUInt16BE(at));
    const u32 = (b: Buffer, at: number): number => (le ? b.readUInt32LE(at) : b.readUInt32BE(at));
    const word = (b: Buffer, at: number): number => (wide ? Number(le ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at)) : u32(b, at));
    const phoff = word(head, wide ? 0x20 : 0x1c);
    const phentsize = u16(head, wide ? 0x36 : 0x2a);
    const phnum = u16(head, wide ? 0x38 : 0x2c);
    const linkage: ElfLinkage = { interpreter: undefined, dynamic: false };
    for (let i = 0; i < phnum; i++) {
      const ph = readAt(fd, phoff + i * phentsize, phentsize);
      if (ph.length < (wide ? 56 : 32)) throw new Error(`${file}: program headers cut short`);
      const type = u32(ph, 0);
      if (type === PT_DYNAMIC) linkage.dynamic = true;
      if (type !== PT_INTERP) continue;
      const offset = word(ph, wide ? 8 : 4);
      const size = word(ph, wide ? 32 : 16);
      linkage.interpreter = readAt(fd, offset, size).toString('latin1').replace(/\0.*$/s, '');
    }
    return linkage;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The files a dynamically linked ELF file (executable or library) needs at run time, as
 * absolute paths, the interpreter included; [] for a statically linked one. Throws an
 * Error naming every library the loader cannot find, or when ldd fails (the message does
 * not name `file`: the caller does).
 */
export function sharedLibraries(file: string): string[] {
  const { interpreter, dynamic } = elfLinkage(file);
  if (!dynamic) return [];
  const r = spawnSync('ldd', [file], { encoding: 'utf8' });
  if (r.error !== undefined) throw new Error(`unable to run ldd: ${r.error.message}`);
  if (/statically linked/.test(r.stdout)) return []; // static-pie: a dynamic section, nothing to load
  if (r.status !== 0) throw new Error(`ldd failed: ${r.stderr.trim() || `exit ${r.status}`}`);
  const libs = new Set<string>(interpreter === undefined ? [] : [interpreter]);
  const missing: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const notFound = /^\s*(\S+)\s+=>\s+not found/.exec(line);
    if (notFound !== null) { missing.push(notFound[1]!); continue; }
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m !== null) libs.add(m[1]!);
  }
  if (missing.length > 0) throw new Error(`needs ${missing.join(', ')} (not found on this machine)`);
  return [...libs];
}

/**
 * The libraries busybox needs in the image ([] for a static busybox, the usual case).
 * Throws an Error that names the package to install when a dynamically linked busybox
 * cannot have its libraries copied.
 */
export function busyboxLibraries(busybox: string): string[] {
  try {
    return sharedLibraries(busybox);
  } catch (err) {
    throw new Error(`${busybox} cannot run in the image: it ${(err as Error).message}; install a static busybox (apt-get install busybox-static) or name one with --busybox`);
  }
}

/** Whether `file` (a path inside the image) exists under `stage`, symbolic links followed inside the image. */
export function existsInImage(stage: string, file: string, hops = 0): boolean {
  const parts = file.split('/').filter((c) => c !== '');
  let at = '/';
  for (let i = 0; i < parts.length; i++) {
    const next = path.posix.join(at, parts[i]!);
    const st = fs.lstatSync(path.join(stage, next), { throwIfNoEntry: false });
    if (st === undefined) return false;
    if (st.isSymbolicLink()) {
      if (hops >= 40) return false; // ELOOP
      const target = fs.readlinkSync(path.join(stage, next));
      return existsInImage(stage, path.posix.join(path.posix.resolve(at, target), ...parts.slice(i + 1)), hops + 1);
    }
    at = next;
  }
  return true;
}

/**
 * What the ELF files under `stage` (the image's root) need and the image lacks: one
 * `file: needs what` line per missing interpreter or library, paths as seen inside the image.
 * Empty when every binary can run.
 */
export function missingInImage(stage: string): string[] {
  const problems: string[] = [];
  const walk = (dir: string): void => {
    for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (ent.isFile() && isElf(p)) {
        const inImage = `/${path.relative(stage, p)}`;
        let needs: string[];
        try {
          needs = sharedLibraries(p);
        } catch (err) {
          problems.push(`${inImage}: ${(err as Error).message}`);
          continue;
        }
        for (const lib of needs) if (!existsInImage(stage, lib)) problems.push(`${inImage}: needs ${lib}`);
      }
    }
  };
  walk(stage);
  return problems;
}
