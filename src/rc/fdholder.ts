/**
 * Pipeline pipes in s6's fd holder (s6-fdholder-daemon), for a scanner that is not
 * t6-svscan: t6-svscan holds them itself (supervise/plumbing.ts); Debian's s6-svscan
 * does not, so t6-rc keeps them where s6-rc does. One pipe per consumer, both ends
 * stored under s6-rc's identifiers, `pipe:s6rc-r-CONSUMER` and `pipe:s6rc-w-CONSUMER`:
 * the consumer's run script retrieves the read end as its stdin, each producer's the
 * write end as its stdout, so either side restarts without losing what is in the pipe.
 *
 * The ends go in through s6's own client, `s6-fdholder-store`, which stores its stdin.
 */
import { spawnSync } from 'node:child_process';
import { close, pipe } from '../sys/fd.ts';
import { strerror } from '../sys/errors.ts';

/** The fd holder's identifier for one end of a consumer's pipe (s6-rc's names). */
export function pipeId(end: 'r' | 'w', consumer: string): string {
  return `pipe:s6rc-${end}-${consumer}`;
}

/** A failure to store a pipe end, with the command's own words when it said any. */
export class FdholderError extends Error {
  override name = 'FdholderError';
}

/**
 * Makes one pipe per consumer and stores both ends in the fd holder listening on
 * `socket`, with `storeProg` (s6-fdholder-store). Throws FdholderError on the first
 * failure (the pipes stored until then stay).
 */
export function storePipes(storeProg: string, socket: string, consumers: readonly string[]): void {
  for (const consumer of consumers) {
    const [readEnd, writeEnd] = pipe();
    try {
      storeEnd(storeProg, socket, pipeId('r', consumer), readEnd);
      storeEnd(storeProg, socket, pipeId('w', consumer), writeEnd);
    } finally {
      close(readEnd);
      close(writeEnd);
    }
  }
}

function storeEnd(storeProg: string, socket: string, id: string, fd: number): void {
  // No shell: the identifier is one argv word, whatever the consumer's name holds.
  const r = spawnSync(storeProg, [socket, id], { stdio: [fd, 'ignore', 'pipe'], timeout: 10_000 });
  if (r.error !== undefined) throw new FdholderError(`unable to run ${storeProg}: ${strerror(r.error)}`);
  if (r.status === 0) return;
  const said = r.stderr.toString('utf8').trim().split('\n').pop() ?? '';
  const how = r.status === null ? `was killed by signal ${r.signal ?? '?'}` : `exited ${r.status}`;
  throw new FdholderError(`unable to store ${id} in ${socket}: ${storeProg} ${how}${said === '' ? '' : ` (${said})`}`);
}

/**
 * Deletes both ends of each consumer's pipe from the fd holder with `deleteProg`
 * (s6-fdholder-delete); an end that is not there is fine. Throws FdholderError otherwise.
 */
export function deletePipes(deleteProg: string, socket: string, consumers: readonly string[]): void {
  for (const consumer of consumers) {
    for (const id of [pipeId('r', consumer), pipeId('w', consumer)]) {
      const r = spawnSync(deleteProg, [socket, id], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
      if (r.error !== undefined) throw new FdholderError(`unable to run ${deleteProg}: ${strerror(r.error)}`);
      // s6-fdholder-delete says ENOENT (exit 1) for an identifier the holder does not have.
      if (r.status === 0 || r.status === 1) continue;
      throw new FdholderError(`unable to delete ${id} from ${socket}: ${deleteProg} exited ${r.status ?? r.signal}`);
    }
  }
}
