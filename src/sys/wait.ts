/** Raw wait statuses (Linux encoding, the 16 bits s6 stores), decoded. Pure: no libc. */

/** Decoded wait status. */
export interface WaitStatus {
  exited: boolean;
  exitCode: number;
  signaled: boolean;
  signal: number;
}

/** Splits a raw wait status into exit code or signal. */
export function decodeWaitStatus(wstat: number): WaitStatus {
  const low = wstat & 0x7f;
  const exited = low === 0;
  const signaled = !exited && ((low + 1) >> 1) > 0 && low !== 0x7f;
  return { exited, exitCode: exited ? (wstat >> 8) & 0xff : 0, signaled, signal: signaled ? low : 0 };
}

/** A wait status in words, for messages: `exited 3`, `was killed by signal 9`. */
export function describeWaitStatus(wstat: number): string {
  const ws = decodeWaitStatus(wstat);
  return ws.signaled ? `was killed by signal ${ws.signal}` : `exited ${ws.exitCode}`;
}
