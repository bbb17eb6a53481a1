/**
 * The one place where t6 reaches libc, through koffi. Everything here is a thin, typed
 * binding; the wrappers in the sibling modules turn -1/errno into SysError.
 * Struct sizes and constants: shared/SYSCALLS.md (x86_64 glibc), checked in test/unit/sys.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startedFromSnapshot } from './snapshot.ts';

// koffi ships no precise types for every call shape we use; `KoffiFn` below narrows them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let koffi: any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let lib: any;

/** Loads koffi and libc on first use: a client that never calls libc never pays for them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function libc(): any {
  if (lib === undefined) {
    koffi = loadKoffi();
    lib = koffi.load('libc.so.6');
  }
  return lib;
}

/**
 * Loads koffi's native module for glibc x86_64 directly (about 1 ms) rather than through
 * koffi's JS loader, which probes ELF headers and wraps deprecated calls (about 6 ms, paid
 * by every client call). Any other platform, or any surprise, takes the ordinary path.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function loadKoffi(): any {
  const [module, from] = findKoffi();
  koffiFrom = from;
  return module;
}

/** Where koffi was loaded from. */
let koffiFrom: string | undefined;

/**
 * The module koffi was loaded from (loading it first if needed): a child Node that needs
 * libc before it execs (sys/identity.ts) loads the same one.
 */
export function koffiPath(): string {
  libc();
  return koffiFrom!;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function findKoffi(): [any, string] {
  // Where the bundle is: a CommonJS bundle has __filename; a start from a startup snapshot
  // has the bundle's path first (bin/init passes it, as a normal start has it); tests (ESM)
  // have neither and take the ordinary path below.
  const bundle = startedFromSnapshot() ? process.argv[1] : typeof __filename === 'string' ? __filename : undefined;
  if (bundle !== undefined && process.platform === 'linux' && process.arch === 'x64') {
    // The addon beside the bundle's tree, opened directly: require.resolve's walk through
    // node_modules and package.json files costs a cold process 3-7 ms (here), paid by every
    // command that calls libc, and a start from a snapshot would compile node:module for it.
    const native = path.join(path.dirname(bundle), '../node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node');
    if (fs.existsSync(native)) {
      try {
        const addon = { exports: {} };
        process.dlopen(addon, native);
        return [addon.exports, native];
      } catch {
        // musl: this build cannot load; koffi's loader below picks the right one
      }
    }
  }
  // The CommonJS bundles have `require`; under ESM (tests) it is made. node:module is not
  // loaded otherwise: it costs every client call some 4 ms to load.
  const load = startedFromSnapshot()
    ? process.getBuiltinModule('node:module').createRequire(process.argv[1] ?? '/')
    : typeof require === 'function' ? require : process.getBuiltinModule('node:module').createRequire(import.meta.url);
  if (process.platform === 'linux' && process.arch === 'x64') {
    try {
      // On musl this dlopen fails at once, and koffi's loader picks the right build.
      const pkg = load.resolve('@koromix/koffi-linux-x64/package.json');
      const native = `${pkg.slice(0, -'package.json'.length)}linux_x64/koffi.node`;
      return [load(native), native];
    } catch {
      // fall through to koffi's own loader
    }
  }
  const from = load.resolve('koffi');
  return [load(from), from];
}

// A koffi function: takes JS values, returns the C result. Callers pass exactly what the
// prototype string says; the typed wrappers in this folder are the only callers.
type KoffiFn = (...args: unknown[]) => number;

const PROTOTYPES = {
  posix_spawn: 'int posix_spawn(_Out_ int *pid, const char *path, void *fa, void *attr, const char **argv, const char **envp)',
  posix_spawnp: 'int posix_spawnp(_Out_ int *pid, const char *file, void *fa, void *attr, const char **argv, const char **envp)',
  fa_init: 'int posix_spawn_file_actions_init(void *fa)',
  fa_destroy: 'int posix_spawn_file_actions_destroy(void *fa)',
  fa_adddup2: 'int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)',
  fa_addopen: 'int posix_spawn_file_actions_addopen(void *fa, int fd, const char *path, int flags, uint32 mode)',
  fa_addclose: 'int posix_spawn_file_actions_addclose(void *fa, int fd)',
  fa_addchdir: 'int posix_spawn_file_actions_addchdir_np(void *fa, const char *path)',
  fa_addclosefrom: 'int posix_spawn_file_actions_addclosefrom_np(void *fa, int from)',
  attr_init: 'int posix_spawnattr_init(void *attr)',
  attr_destroy: 'int posix_spawnattr_destroy(void *attr)',
  attr_setflags: 'int posix_spawnattr_setflags(void *attr, short flags)',
  attr_setsigmask: 'int posix_spawnattr_setsigmask(void *attr, void *set)',
  attr_setsigdefault: 'int posix_spawnattr_setsigdefault(void *attr, void *set)',
  attr_setpgroup: 'int posix_spawnattr_setpgroup(void *attr, int pgid)',
  sigemptyset: 'int sigemptyset(void *set)',
  sigfillset: 'int sigfillset(void *set)',
  waitpid: 'int waitpid(int pid, _Out_ int *status, int options)',
  kill: 'int kill(int pid, int sig)',
  getpid: 'int getpid()',
  getppid: 'int getppid()',
  clock_gettime: 'int clock_gettime(int clockid, void *tp)',
  setsid: 'int setsid()',
  pipe2: 'int pipe2(_Out_ int *fds, int flags)',
  mkfifo: 'int mkfifo(const char *path, uint32 mode)',
  dup2: 'int dup2(int oldfd, int newfd)',
  dup3: 'int dup3(int oldfd, int newfd, int flags)',
  close: 'int close(int fd)',
  open: 'int open(const char *path, int flags, uint32 mode)',
  fcntl: 'int fcntl(int fd, int cmd, ...)',
  // The same call with one int argument, non-variadic: koffi runs only those asynchronously.
  fcntl_int: 'int fcntl(int fd, int cmd, int arg)',
  fcntl_ptr: 'int fcntl(int fd, int cmd, void *arg)',
  prctl: 'int prctl(int option, ...)',
  setrlimit: 'int setrlimit(int resource, void *rlim)',
  getrlimit: 'int getrlimit(int resource, void *rlim)',
  umask: 'uint32 umask(uint32 mask)',
  mount: 'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)',
  umount2: 'int umount2(const char *target, int flags)',
  reboot: 'int reboot(int cmd)',
  sync: 'void sync()',
  execve: 'int execve(const char *path, const char **argv, const char **envp)',
  ioctl: 'int ioctl(int fd, unsigned long request, ...)',
  madvise: 'int madvise(uintptr_t addr, size_t length, int advice)',
  unshare: 'int unshare(int flags)',
  setns: 'int setns(int fd, int nstype)',
  memfd_create: 'int memfd_create(const char *name, unsigned int flags)',
  epoll_create1: 'int epoll_create1(int flags)',
  epoll_ctl: 'int epoll_ctl(int epfd, int op, int fd, void *event)',
  epoll_wait: 'int epoll_wait(int epfd, void *events, int maxevents, int timeout)',
  eventfd: 'int eventfd(uint32 initval, int flags)',
  // Files relative to a directory fd (sys/dirfd.ts) and per-thread file rights (sys/identity.ts).
  openat: 'int openat(int dirfd, const char *path, int flags, uint32 mode)',
  mkdirat: 'int mkdirat(int dirfd, const char *path, uint32 mode)',
  unlinkat: 'int unlinkat(int dirfd, const char *path, int flags)',
  renameat: 'int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)',
  linkat: 'int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)',
  readlinkat: 'long readlinkat(int dirfd, const char *path, void *buf, size_t size)',
  getdents64: 'long getdents64(int fd, void *buf, size_t size)',
  fchownat: 'int fchownat(int dirfd, const char *path, uint32 uid, uint32 gid, int flags)',
  lseek: 'long lseek(int fd, long offset, int whence)',
  fa_addfchdir: 'int posix_spawn_file_actions_addfchdir_np(void *fa, int fd)',
  // glibc's setfsuid/setfsgid are plain system calls: they change the calling thread only.
  setfsuid: 'int setfsuid(uint32 uid)',
  setfsgid: 'int setfsgid(uint32 gid)',
  getgroups: 'int getgroups(int size, void *list)',
  // The sd_notify socket (sys/notifysocket.ts): an AF_UNIX datagram socket read with recvmsg.
  socket: 'int socket(int domain, int type, int protocol)',
  setsockopt: 'int setsockopt(int fd, int level, int name, void *value, uint32 length)',
  bind: 'int bind(int fd, void *addr, uint32 length)',
  recvmsg: 'long recvmsg(int fd, void *msg, int flags)',
  // Probe connections (sys/tcpprobe.ts): non-blocking TCP clients watched through one epoll set.
  connect: 'int connect(int fd, void *addr, uint32 length)',
  getsockopt: 'int getsockopt(int fd, int level, int name, void *value, void *length)',
  send: 'long send(int fd, void *buf, size_t length, int flags)',
  recv: 'long recv(int fd, void *buf, size_t length, int flags)',
  inet_pton: 'int inet_pton(int af, const char *src, void *dst)',
  // For the calls glibc has no wrapper for (openat2, pidfd_open: glibc wraps it only from
  // 2.36, musl not at all), or wraps for every thread (setgroups).
  syscall: 'long syscall(long number, ...)',
  // io_uring (sys/uring.ts): its three system calls as fixed prototypes (a variadic koffi call
  // parses its argument types on every call; these run on every turn that has probes), and
  // the mapping of its rings. On x86_64 and aarch64 Linux a variadic callee takes integer
  // and pointer arguments in the same registers as a fixed one.
  uring_setup: 'long syscall(long number, uint32 entries, void *params)',
  uring_enter: 'long syscall(long number, int fd, uint32 toSubmit, uint32 minComplete, uint32 flags, void *arg, size_t argSize)',
  uring_register: 'long syscall(long number, int fd, uint32 opcode, void *arg, uint32 count)',
  mmap: 'void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)',
  munmap: 'int munmap(void *addr, size_t length)',
} as const;

/**
 * The libc functions, each bound on its first use (then a plain property: no cost per call
 * after that). koffi itself is loaded by the first one.
 */
export const c = {} as Record<keyof typeof PROTOTYPES, KoffiFn> & { strerror: (errnum: number) => string };
for (const name of Object.keys(PROTOTYPES) as (keyof typeof PROTOTYPES)[]) {
  Object.defineProperty(c, name, {
    configurable: true,
    enumerable: true,
    get(): KoffiFn {
      const bound = libc().func(PROTOTYPES[name]) as KoffiFn;
      Object.defineProperty(c, name, { value: bound, enumerable: true });
      return bound;
    },
  });
}
Object.defineProperty(c, 'strerror', {
  configurable: true,
  get(): (errnum: number) => string {
    const bound = libc().func('const char *strerror(int errnum)') as (errnum: number) => string;
    Object.defineProperty(c, 'strerror', { value: bound });
    return bound;
  },
});

/**
 * The address of a Buffer's first byte, for C structures that point into other Buffers
 * (msghdr → iovec → payload). The Buffer must outlive every use of the address: V8 never
 * moves a Buffer's memory, but frees it with the Buffer.
 */
export function addressOf(buf: Buffer): bigint {
  libc();
  return koffi.address(buf) as bigint;
}

/** The address a koffi pointer (as mmap returns it) holds; 0n for null. */
export function pointerAddress(ptr: unknown): bigint {
  libc();
  return ptr === null ? 0n : (koffi.address(ptr) as bigint);
}

/**
 * An ArrayBuffer over `length` bytes of native memory at `ptr` (koffi.view: no copy). It
 * stays valid only while the memory is mapped: the caller unmaps it after its last use.
 */
export function nativeView(ptr: unknown, length: number): ArrayBuffer {
  libc();
  return koffi.view(ptr, length) as ArrayBuffer;
}

/** A libuv poll handle watching an fd (watchReadable). */
export interface FdWatch {
  /** Stops watching at once (the fd leaves libuv's epoll set now): the fd may be closed right after. */
  close(): void;
  /** Whether the watch keeps the event loop alive (it does from the start): a watch with nothing to wait for lets go. */
  setRef(on: boolean): void;
}

/**
 * Calls `onReadable` on the event loop whenever `fd` is readable (level-triggered: again on
 * the next turn of the loop while it stays readable), or with a negative libuv error code.
 * A libuv poll handle (uv_poll_t, through koffi's `node.poll`), for fds that Node's own
 * handles refuse (a unix datagram socket): the event loop itself waits, no thread does.
 * The handle keeps the event loop alive until closed.
 */
export function watchReadable(fd: number, onReadable: (status: number) => void): FdWatch {
  libc();
  // koffi's `node.poll` calls back with (status, events); its published typings say (events).
  const handle = koffi.node.poll(fd, { readable: true }, (status: number) => onReadable(status)) as { close(): void; ref(): void; unref(): void } | null;
  if (handle === null) throw new Error(`uv_poll on fd ${fd} could not start`);
  return { close: () => handle.close(), setRef: (on) => (on ? handle.ref() : handle.unref()) };
}

/** errno of the last failed call on this thread. */
export function errno(): number {
  libc();
  return koffi.errno() as number;
}
