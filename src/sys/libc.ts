/**
 * The one place where t6 reaches libc, through koffi. Everything here is a thin, typed
 * binding; the wrappers in the sibling modules turn -1/errno into SysError.
 * Struct sizes and constants: shared/SYSCALLS.md (x86_64 glibc), checked in test/unit/sys.
 */
import { createRequire } from 'node:module';

// koffi ships no precise types for every call shape we use; `KoffiFn` below narrows them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const koffi: any = loadKoffi();

/**
 * Loads koffi's native module for glibc x86_64 directly (about 1 ms) rather than through
 * koffi's JS loader, which probes ELF headers and wraps deprecated calls (about 6 ms, paid
 * by every client call). Any other platform, or any surprise, takes the ordinary path.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function loadKoffi(): any {
  const require = createRequire(import.meta.url);
  if (process.platform === 'linux' && process.arch === 'x64') {
    try {
      // On musl this dlopen fails at once, and koffi's loader picks the right build.
      const pkg = require.resolve('@koromix/koffi-linux-x64/package.json');
      return require(`${pkg.slice(0, -'package.json'.length)}linux_x64/koffi.node`);
    } catch {
      // fall through to koffi's own loader
    }
  }
  return require('koffi');
}

// A koffi function: takes JS values, returns the C result. Callers pass exactly what the
// prototype string says; the typed wrappers in this folder are the only callers.
type KoffiFn = (...args: unknown[]) => number;

const lib = koffi.load('libc.so.6');
const fn = (proto: string): KoffiFn => lib.func(proto) as KoffiFn;

export const c = {
  posix_spawn: fn('int posix_spawn(_Out_ int *pid, const char *path, void *fa, void *attr, const char **argv, const char **envp)'),
  posix_spawnp: fn('int posix_spawnp(_Out_ int *pid, const char *file, void *fa, void *attr, const char **argv, const char **envp)'),
  fa_init: fn('int posix_spawn_file_actions_init(void *fa)'),
  fa_destroy: fn('int posix_spawn_file_actions_destroy(void *fa)'),
  fa_adddup2: fn('int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)'),
  fa_addopen: fn('int posix_spawn_file_actions_addopen(void *fa, int fd, const char *path, int flags, uint32 mode)'),
  fa_addclose: fn('int posix_spawn_file_actions_addclose(void *fa, int fd)'),
  fa_addchdir: fn('int posix_spawn_file_actions_addchdir_np(void *fa, const char *path)'),
  fa_addclosefrom: fn('int posix_spawn_file_actions_addclosefrom_np(void *fa, int from)'),
  attr_init: fn('int posix_spawnattr_init(void *attr)'),
  attr_destroy: fn('int posix_spawnattr_destroy(void *attr)'),
  attr_setflags: fn('int posix_spawnattr_setflags(void *attr, short flags)'),
  attr_setsigmask: fn('int posix_spawnattr_setsigmask(void *attr, void *set)'),
  attr_setsigdefault: fn('int posix_spawnattr_setsigdefault(void *attr, void *set)'),
  attr_setpgroup: fn('int posix_spawnattr_setpgroup(void *attr, int pgid)'),
  sigemptyset: fn('int sigemptyset(void *set)'),
  sigfillset: fn('int sigfillset(void *set)'),
  waitpid: fn('int waitpid(int pid, _Out_ int *status, int options)'),
  kill: fn('int kill(int pid, int sig)'),
  getpid: fn('int getpid()'),
  getppid: fn('int getppid()'),
  setsid: fn('int setsid()'),
  pipe2: fn('int pipe2(_Out_ int *fds, int flags)'),
  mkfifo: fn('int mkfifo(const char *path, uint32 mode)'),
  dup2: fn('int dup2(int oldfd, int newfd)'),
  dup3: fn('int dup3(int oldfd, int newfd, int flags)'),
  close: fn('int close(int fd)'),
  open: fn('int open(const char *path, int flags, uint32 mode)'),
  fcntl: fn('int fcntl(int fd, int cmd, ...)'),
  prctl: fn('int prctl(int option, ...)'),
  setrlimit: fn('int setrlimit(int resource, void *rlim)'),
  getrlimit: fn('int getrlimit(int resource, void *rlim)'),
  umask: fn('uint32 umask(uint32 mask)'),
  mount: fn('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
  umount2: fn('int umount2(const char *target, int flags)'),
  reboot: fn('int reboot(int cmd)'),
  sync: fn('void sync()'),
  execve: fn('int execve(const char *path, const char **argv, const char **envp)'),
  ioctl: fn('int ioctl(int fd, unsigned long request, ...)'),
  madvise: fn('int madvise(uintptr_t addr, size_t length, int advice)'),
  strerror: lib.func('const char *strerror(int errnum)') as (errnum: number) => string,
};

/** errno of the last failed call on this thread. */
export function errno(): number {
  return koffi.errno() as number;
}
