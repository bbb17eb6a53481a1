/** Pipe capacity (F_SETPIPE_SZ): a logger enlarges its input pipe so a fast writer and the logger are woken less often. */
import { c } from './libc.ts';

const F_SETPIPE_SZ = 1031;

/**
 * Asks for a pipe capacity of `bytes` (the kernel rounds up to a power of two of pages and
 * caps unprivileged callers at /proc/sys/fs/pipe-max-size). Returns the new capacity, or
 * undefined if the kernel refused (EPERM, EBUSY, not a pipe): a logger then simply keeps
 * the capacity it had.
 */
export function setPipeSize(fd: number, bytes: number): number | undefined {
  const n = c.fcntl(fd, F_SETPIPE_SZ, 'int', bytes);
  return n < 0 ? undefined : n;
}
