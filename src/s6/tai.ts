/**
 * TAI64N timestamps as skalibs writes them: 12 bytes, big-endian seconds label
 * 2^62 + unix + 37 (10 s + 27 leap seconds; no leap second since 2017), then nanoseconds.
 * Text form: '@' + 24 lowercase hex digits.
 *
 * `tainNow` reads the real-time clock at each call (as skalibs' tain_now does), so stamps
 * follow the clock when it is set; deadlines use the monotonic clock, never these.
 */
import { realtimeNow } from '../sys/clock.ts';

/** A TAI64N instant: the 64-bit seconds label (2^62-based) and nanoseconds. */
export interface Tain {
  readonly sec: bigint;
  readonly nano: number;
}

const TAI_OFFSET = (1n << 62n) + 37n;

/** The TAI64N label of a wall-clock time given in unix milliseconds (plus extra nanoseconds). */
export function tainFromUnixMs(unixMs: number, extraNs = 0): Tain {
  const whole = Math.floor(unixMs / 1000);
  const nano = Math.round((unixMs - whole * 1000) * 1e6) + extraNs;
  return { sec: TAI_OFFSET + BigInt(whole) + BigInt(Math.floor(nano / 1e9)), nano: nano % 1e9 };
}

/** Now, as TAI64N: the real-time clock (CLOCK_REALTIME) read at this call, in nanoseconds. */
export function tainNow(): Tain {
  const { sec, nsec } = realtimeNow();
  return { sec: TAI_OFFSET + sec, nano: nsec };
}

/** Unix time in milliseconds of a TAI64N label. */
export function tainToUnixMs(t: Tain): number {
  return Number(t.sec - TAI_OFFSET) * 1000 + t.nano / 1e6;
}

/** Packs into 12 bytes at `offset` of `buf`. */
export function tainPack(t: Tain, buf: Buffer, offset = 0): void {
  buf.writeBigUInt64BE(t.sec, offset);
  buf.writeUInt32BE(t.nano, offset + 8);
}

/** Unpacks 12 bytes at `offset`. */
export function tainUnpack(buf: Buffer, offset = 0): Tain {
  return { sec: buf.readBigUInt64BE(offset), nano: buf.readUInt32BE(offset + 8) };
}

/** The 25-character text form `@<24 hex>`. */
export function tainFormat(t: Tain): string {
  const buf = Buffer.alloc(12);
  tainPack(t, buf);
  return `@${buf.toString('hex')}`;
}

/** Parses `@<24 hex>` (the `@` optional); undefined if malformed. */
export function tainParse(text: string): Tain | undefined {
  const hex = text.startsWith('@') ? text.slice(1) : text;
  if (!/^[0-9a-fA-F]{24}$/.test(hex)) return undefined;
  return tainUnpack(Buffer.from(hex, 'hex'));
}

/** Whole seconds from `from` to `to` (0 if `from` is in the future, as s6-svstat clamps). */
export function tainSecondsBetween(from: Tain, to: Tain): number {
  if (from.sec > to.sec || (from.sec === to.sec && from.nano > to.nano)) return 0;
  let s = to.sec - from.sec;
  if (to.nano < from.nano) s -= 1n;
  return Number(s);
}
