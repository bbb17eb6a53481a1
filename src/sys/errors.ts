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

/** A failed system call: `code` is the errno name (ENOENT…), `syscall` the call, `path` what it was about. */
export class SysError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
  readonly path: string | undefined;
  constructor(syscall: string, errno: number, path?: string, detail?: string) {
    const code = errnoName(errno) ?? `E${errno}`;
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

// glibc's strerror texts (what s6 prints) where libuv's wording differs by more than case.
const STRERROR: Record<string, string> = {
  EIO: 'Input/output error',
  ELOOP: 'Too many levels of symbolic links',
  ENOMEM: 'Cannot allocate memory',
  EAGAIN: 'Resource temporarily unavailable',
  EINTR: 'Interrupted system call',
  ENOSPC: 'No space left on device',
  EMFILE: 'Too many open files',
  ENFILE: 'Too many open files in system',
  EBADF: 'Bad file descriptor',
  ENXIO: 'No such device or address',
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

/** A short reason for a person: "No such file or directory" style text when known. */
export function describeError(err: unknown): string {
  if (err instanceof SysError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
