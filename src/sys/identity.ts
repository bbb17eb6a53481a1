/**
 * Acting with another user's rights, as `s6-setuidgid user prog` makes a program do: that
 * user's uid and gid, and no supplementary groups.
 *
 * For file operations (`withFileRights`): Linux checks file access against the filesystem
 * ids, and setfsuid/setfsgid (and the setgroups system call itself, not glibc's wrapper,
 * which changes every thread) change them for the calling thread only. t6 runs JavaScript
 * and every synchronous fs call on its main thread, so a synchronous operation wrapped here
 * runs with the user's rights while libuv's thread pool, working for the rest of pid 1 at
 * the same time, keeps root's. The switch is undone in a `finally`, and checked. Changing
 * the filesystem ids also resets the process's "dumpable" flag (to fs.suid_dumpable,
 * usually 0): it is put back as it was. The real and saved uids never change, so no signal
 * from that user is allowed in meanwhile (kill(2) checks those).
 *
 * For a program (`asUserArgv`): the switch cannot be made in the parent for the child
 * (posix_spawn has no attribute for it, and a thread whose real uid is the user's could be
 * signalled by that user, pid 1 included). So the child starts as Node itself with a few
 * lines that drop to the user and exec the program (about 40 ms: for rare programs, such
 * as a logdir's processor): a handler on the two signals Node ignores (SIGPIPE, SIGXFSZ)
 * makes exec reset them to their defaults, as posix_spawn's SETSIGDEF did for Node.
 */
import { c, errno, koffiPath } from './libc.ts';
import { SysError } from './errors.ts';

/** A user to act as: uid and gid (supplementary groups: none). */
export interface Identity {
  readonly uid: number;
  readonly gid: number;
}

const PR_GET_DUMPABLE = 3;
const PR_SET_DUMPABLE = 4;
const EPERM = 1;
/** setgroups(2)'s number, for the per-thread system call (glibc's wrapper changes every thread). */
const SYS_SETGROUPS: Partial<Record<string, number>> = { x64: 116, arm64: 159 };
/** Groups read back at most (NGROUPS_MAX is 65536; a process has a handful). */
const MAX_GROUPS = 65536;
/** setfsuid(-1) changes nothing and answers the current value. */
const ASK = 0xffffffff;

/** This thread's supplementary groups. */
function getGroups(): Uint32Array {
  const n = c.getgroups(0, null);
  if (n < 0) throw new SysError('getgroups', errno());
  const list = new Uint32Array(Math.min(n, MAX_GROUPS));
  if (n > 0 && c.getgroups(list.length, list) < 0) throw new SysError('getgroups', errno());
  return list;
}

/** setgroups for this thread only. */
function setThreadGroups(groups: Uint32Array): void {
  const nr = SYS_SETGROUPS[process.arch];
  if (nr === undefined) throw new SysError('setgroups', 38 /* ENOSYS */, undefined, `no system call number for ${process.arch}`);
  if (c.syscall(nr, 'long', groups.length, 'void *', groups.length === 0 ? null : groups) !== 0) throw new SysError('setgroups', errno());
}

function dumpable(): number {
  return c.prctl(PR_GET_DUMPABLE, 'unsigned long', 0, 'unsigned long', 0, 'unsigned long', 0, 'unsigned long', 0);
}

let active: Identity | undefined;

/**
 * Runs `fn` (synchronous) with the file rights of `who` on this thread: filesystem uid and
 * gid, no supplementary groups. `undefined` runs it as we are. Needs root (CAP_SETUID,
 * CAP_SETGID). Nested calls for the same identity run inside the outer one.
 */
export function withFileRights<T>(who: Identity | undefined, fn: () => T): T {
  if (who === undefined) return fn();
  if (active !== undefined) {
    if (active.uid === who.uid && active.gid === who.gid) return fn();
    throw new Error(`file rights of ${who.uid}:${who.gid} asked inside those of ${active.uid}:${active.gid}`);
  }
  const groups = getGroups();
  const wasDumpable = dumpable();
  setThreadGroups(new Uint32Array(0));
  const fsgid = c.setfsgid(who.gid);
  const fsuid = c.setfsuid(who.uid);
  active = who;
  try {
    if (c.setfsuid(ASK) !== who.uid || c.setfsgid(ASK) !== who.gid) throw new SysError('setfsuid', EPERM, `${who.uid}:${who.gid}`);
    return fn();
  } finally {
    active = undefined;
    restore(fsuid, fsgid, groups, wasDumpable);
  }
}

/** Puts this thread's filesystem ids, groups and the dumpable flag back. Throws (a bug) if it could not. */
function restore(fsuid: number, fsgid: number, groups: Uint32Array, wasDumpable: number): void {
  c.setfsuid(fsuid);
  c.setfsgid(fsgid);
  setThreadGroups(groups);
  if (wasDumpable !== dumpable() && (wasDumpable === 0 || wasDumpable === 1)) {
    c.prctl(PR_SET_DUMPABLE, 'unsigned long', wasDumpable, 'unsigned long', 0, 'unsigned long', 0, 'unsigned long', 0);
  }
  if (c.setfsuid(ASK) !== fsuid || c.setfsgid(ASK) !== fsgid) {
    throw new Error(`unable to take back filesystem ids ${fsuid}:${fsgid} after acting as another user`);
  }
}

/**
 * The step that drops to the user and execs the program, run by Node (`-e`): arguments
 * koffi's path, uid, gid, the fds to pass on (comma-separated), program, argv[0]… Node
 * marks every inherited fd above 2 close-on-exec when it starts, so the step clears that
 * flag (fcntl through koffi, as pid 1 loaded it) on the fds the program must get. On
 * failure it says why on stderr and exits 111 (s6's "system call failed").
 */
const DROP_AND_EXEC = [
  "const [koffi, uid, gid, keep, file, ...argv] = process.argv.slice(1);",
  "try {",
  "  const fcntl = require(koffi).load('libc.so.6').func('int fcntl(int fd, int cmd, int arg)');",
  "  for (const fd of keep.split(',').filter((f) => f !== '')) {",
  "    if (fcntl(Number(fd), 2 /* F_SETFD */, 0) !== 0) throw new Error(`fd ${fd} is not open`);",
  "  }",
  "  for (const s of ['SIGPIPE', 'SIGXFSZ']) process.on(s, () => {});",
  "  process.setgroups([]); process.setgid(Number(gid)); process.setuid(Number(uid));",
  "  process.execve(file, argv, process.env);",
  "} catch (err) {",
  "  process.stderr.write(`t6: unable to run ${file} as ${uid}:${gid}: ${err.message}\\n`);",
  "  process.exit(111);",
  "}",
].join('\n');

/**
 * The program and argv that run `path` with `argv` as `who` (uid, gid, no supplementary
 * groups): this Node with the drop-and-exec step. `path` must be absolute (no PATH search);
 * `keepFds` are the child's fds above 2 that the program must get.
 */
export function asUserArgv(who: Identity, path: string, argv: readonly string[], keepFds: readonly number[]): { path: string; argv: string[] } {
  const node = process.execPath;
  const step = [node, '--no-warnings', '-e', DROP_AND_EXEC, '--', koffiPath(), String(who.uid), String(who.gid), keepFds.join(',')];
  return { path: node, argv: [...step, path, ...argv] };
}
