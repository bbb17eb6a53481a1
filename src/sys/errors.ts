/** Errors from the system layer: a failed libc call, with errno, call and path. */

// Loaded on first need, not at start-up: node:os costs every client about a millisecond.
let errnoTable: Record<string, number> | undefined;
let errnoNames: Map<number, string> | undefined;
function errnos(): Record<string, number> {
  errnoTable ??= process.getBuiltinModule('node:os').constants.errno as Record<string, number>;
  return errnoTable;
}
function errnoName(errno: number): string | undefined {
  if (errnoNames === undefined) {
    errnoNames = new Map();
    for (const [name, value] of Object.entries(errnos())) errnoNames.set(value, name);
  }
  return errnoNames.get(errno);
}

/** errno's name (ECONNREFUSED…), or `E<number>` for one Node does not name. */
export function errnoCode(errno: number): string {
  return errnoName(errno) ?? `E${errno}`;
}

/** A failed system call: `code` is the errno name (ENOENT…), `syscall` the call, `path` what it was about. */
export class SysError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
  readonly path: string | undefined;
  constructor(syscall: string, errno: number, path?: string, detail?: string) {
    const code = errnoCode(errno);
    super(`${syscall}${path === undefined ? '' : ` ${path}`}: ${detail ?? code}`);
    this.name = 'SysError';
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
    this.path = path;
  }
}

/** The errno name of any error thrown by Node's fs or by t6's sys layer, or undefined. */
export function errorCode(err: unknown): string | undefined {
  if (err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

// glibc's strerror texts (what s6 prints) for every errno Node names; libuv's wording
// differs for some (EISDIR is "illegal operation on a directory" there).
const STRERROR: Record<string, string> = {
  E2BIG: 'Argument list too long', EACCES: 'Permission denied',
  EADDRINUSE: 'Address already in use', EADDRNOTAVAIL: 'Cannot assign requested address',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EAGAIN: 'Resource temporarily unavailable', EALREADY: 'Operation already in progress',
  EBADF: 'Bad file descriptor', EBADMSG: 'Bad message', EBUSY: 'Device or resource busy',
  ECANCELED: 'Operation canceled', ECHILD: 'No child processes',
  ECONNABORTED: 'Software caused connection abort', ECONNREFUSED: 'Connection refused',
  ECONNRESET: 'Connection reset by peer', EDEADLK: 'Resource deadlock avoided',
  EDESTADDRREQ: 'Destination address required', EDOM: 'Numerical argument out of domain',
  EDQUOT: 'Disk quota exceeded', EEXIST: 'File exists', EFAULT: 'Bad address',
  EFBIG: 'File too large', EHOSTUNREACH: 'No route to host', EIDRM: 'Identifier removed',
  EILSEQ: 'Invalid or incomplete multibyte or wide character',
  EINPROGRESS: 'Operation now in progress', EINTR: 'Interrupted system call',
  EINVAL: 'Invalid argument', EIO: 'Input/output error',
  EISCONN: 'Transport endpoint is already connected', EISDIR: 'Is a directory',
  ELOOP: 'Too many levels of symbolic links', EMFILE: 'Too many open files',
  EMLINK: 'Too many links', EMSGSIZE: 'Message too long', EMULTIHOP: 'Multihop attempted',
  ENAMETOOLONG: 'File name too long', ENETDOWN: 'Network is down',
  ENETRESET: 'Network dropped connection on reset', ENETUNREACH: 'Network is unreachable',
  ENFILE: 'Too many open files in system', ENOBUFS: 'No buffer space available',
  ENODATA: 'No data available', ENODEV: 'No such device', ENOENT: 'No such file or directory',
  ENOEXEC: 'Exec format error', ENOLCK: 'No locks available', ENOLINK: 'Link has been severed',
  ENOMEM: 'Cannot allocate memory', ENOMSG: 'No message of desired type',
  ENOPROTOOPT: 'Protocol not available', ENOSPC: 'No space left on device',
  ENOSR: 'Out of streams resources', ENOSTR: 'Device not a stream',
  ENOSYS: 'Function not implemented', ENOTCONN: 'Transport endpoint is not connected',
  ENOTDIR: 'Not a directory', ENOTEMPTY: 'Directory not empty',
  ENOTSOCK: 'Socket operation on non-socket', ENOTSUP: 'Operation not supported',
  ENOTTY: 'Inappropriate ioctl for device', ENXIO: 'No such device or address',
  EOPNOTSUPP: 'Operation not supported', EOVERFLOW: 'Value too large for defined data type',
  EPERM: 'Operation not permitted', EPIPE: 'Broken pipe', EPROTO: 'Protocol error',
  EPROTONOSUPPORT: 'Protocol not supported', EPROTOTYPE: 'Protocol wrong type for socket',
  ERANGE: 'Numerical result out of range', EROFS: 'Read-only file system', ESPIPE: 'Illegal seek',
  ESRCH: 'No such process', ESTALE: 'Stale file handle', ETIME: 'Timer expired',
  ETIMEDOUT: 'Connection timed out', ETXTBSY: 'Text file busy',
  EWOULDBLOCK: 'Resource temporarily unavailable', EXDEV: 'Invalid cross-device link',
};

/**
 * The reason for a message in s6's shape, `unable to open X: <reason>`: glibc's strerror
 * text for an error that carries an errno (Node's fs, SysError), "No such file or
 * directory"; the message of any other error. The caller names the file and the action.
 */
export function strerror(err: unknown): string {
  const code = errorCode(err);
  if (code === undefined || !/^E[A-Z0-9]+$/.test(code)) return err instanceof Error ? err.message : String(err);
  const known = STRERROR[code];
  if (known !== undefined) return known;
  const num = (err as { errno?: unknown }).errno;
  let text: string | undefined;
  try {
    // fs errors carry libuv's negative errno, SysError the positive one.
    if (typeof num === 'number' && num !== 0) text = process.getBuiltinModule('node:util').getSystemErrorMessage(num < 0 ? num : -num);
  } catch { /* unknown number: fall through to the code */ }
  if (text === undefined || text === '' || text.startsWith('Unknown system error')) return code;
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** `err` as an Error (something thrown that is not one is wrapped), to reject or rethrow with. */
export function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** A bug's description for the log: the stack when there is one (an internal error, not a system call's failure). */
export function bugText(err: unknown): string {
  return err instanceof Error ? err.stack ?? err.message : String(err);
}
