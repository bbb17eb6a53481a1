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

/** The errno number for a name such as 'ENOENT'. */
export function errnoOf(name: string): number {
  return errnos()[name] ?? -1;
}

/** The errno name of any error thrown by Node's fs or by t6's sys layer, or undefined. */
export function errorCode(err: unknown): string | undefined {
  if (err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

/** A short reason for a person: "No such file or directory" style text when known. */
export function describeError(err: unknown): string {
  if (err instanceof SysError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
