/** Errors from the system layer: a failed libc call, with errno, call and path. */
import os from 'node:os';

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(os.constants.errno)) errnoNames.set(value, name);

/** A failed system call: `code` is the errno name (ENOENT…), `syscall` the call, `path` what it was about. */
export class SysError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
  readonly path: string | undefined;
  constructor(syscall: string, errno: number, path?: string, detail?: string) {
    const code = errnoNames.get(errno) ?? `E${errno}`;
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
  return (os.constants.errno as Record<string, number>)[name] ?? -1;
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
