/**
 * `supervise/status`: the 35-byte record s6-supervise keeps and s6-svstat reads.
 * Layout: stamp (12, TAI64N) · readystamp (12) · pid (8, BE) · wstat (2, BE) · flags (1:
 * paused 1, finishing 2, wantup 4, ready 8). Encoding only; statusfile.ts does the I/O.
 */
import { type Tain, tainPack, tainUnpack } from './tai.ts';

/** Size of the status record. */
export const STATUS_SIZE = 35;

/** The decoded status record. */
export interface SupervisorStatus {
  /** Time of the last up/down transition. */
  stamp: Tain;
  /** Time of the last readiness, or of becoming down-and-ready. */
  readyStamp: Tain;
  /** pid of `run` when up, of `finish` while finishing, 0 when down. */
  pid: number;
  /** Raw wait status of the last death of `run`. */
  wstat: number;
  paused: boolean;
  finishing: boolean;
  wantUp: boolean;
  ready: boolean;
}

/** Encodes a status record into its 35 bytes. */
export function encodeStatus(s: SupervisorStatus): Buffer {
  const buf = Buffer.alloc(STATUS_SIZE);
  tainPack(s.stamp, buf, 0);
  tainPack(s.readyStamp, buf, 12);
  buf.writeBigUInt64BE(BigInt(s.pid), 24);
  buf.writeUInt16BE(s.wstat & 0xffff, 32);
  buf[34] = (s.paused ? 1 : 0) | (s.finishing ? 2 : 0) | (s.wantUp ? 4 : 0) | (s.ready ? 8 : 0);
  return buf;
}

/** Decodes a status record; undefined when the buffer is shorter than 35 bytes. */
export function decodeStatus(buf: Buffer): SupervisorStatus | undefined {
  if (buf.length < STATUS_SIZE) return undefined;
  const flags = buf[34]!;
  return {
    stamp: tainUnpack(buf, 0),
    readyStamp: tainUnpack(buf, 12),
    pid: Number(buf.readBigUInt64BE(24)),
    wstat: buf.readUInt16BE(32),
    paused: (flags & 1) !== 0,
    finishing: (flags & 2) !== 0,
    wantUp: (flags & 4) !== 0,
    ready: (flags & 8) !== 0,
  };
}

/** s6-svstat's notion of "up": a pid, and not the finish script's. */
export function isUp(s: SupervisorStatus): boolean {
  return s.pid !== 0 && !s.finishing;
}
