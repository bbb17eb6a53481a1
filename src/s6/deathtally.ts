/**
 * `supervise/death_tally`: 14-byte records, oldest first: TAI64N (12), exit code (1; 128+sig
 * for a signal death), signal (1).
 */
import { type Tain, tainPack, tainUnpack } from './tai.ts';

export const DEATH_RECORD_SIZE = 14;
/** s6's ceiling for max-death-tally. */
export const MAX_DEATH_TALLY = 4096;
/** s6's default max-death-tally. */
export const DEFAULT_DEATH_TALLY = 100;

/** One death of a service. */
export interface DeathRecord {
  stamp: Tain;
  exitCode: number;
  signal: number;
}

/** Builds a record from a wait status, as s6-supervise does. */
export function deathFromWstat(stamp: Tain, wstat: number): DeathRecord {
  const sig = wstat & 0x7f;
  if (sig === 0) return { stamp, exitCode: (wstat >> 8) & 0xff, signal: 0 };
  return { stamp, exitCode: (128 + sig) & 0xff, signal: sig };
}

/** Encodes records. */
export function encodeDeathTally(records: readonly DeathRecord[]): Buffer {
  const buf = Buffer.alloc(records.length * DEATH_RECORD_SIZE);
  records.forEach((r, i) => {
    const off = i * DEATH_RECORD_SIZE;
    tainPack(r.stamp, buf, off);
    buf[off + 12] = r.exitCode & 0xff;
    buf[off + 13] = r.signal & 0xff;
  });
  return buf;
}

/** Decodes records; a size that is not a multiple of 14 counts as empty (as s6 does). */
export function decodeDeathTally(buf: Buffer): DeathRecord[] {
  if (buf.length % DEATH_RECORD_SIZE !== 0) return [];
  const out: DeathRecord[] = [];
  for (let off = 0; off < buf.length; off += DEATH_RECORD_SIZE) {
    out.push({ stamp: tainUnpack(buf, off), exitCode: buf[off + 12]!, signal: buf[off + 13]! });
  }
  return out;
}
