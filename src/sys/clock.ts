/**
 * The real-time clock, read through clock_gettime(2) at nanosecond resolution. Stamps (the
 * status files, log lines, archive names) come from here, read when each one is made, so an
 * NTP step or a board that boots in 1970 and sets its clock later shows in the next stamp.
 * Deadlines and throttles never use it: they run on the monotonic clock (performance.now()).
 *
 * Node has no nanosecond wall clock (Date.now() is in milliseconds; performance.timeOrigin
 * plus performance.now() is frozen to the clock at start), hence the libc call. One call
 * costs about 70 ns through koffi (one shared buffer, no allocation), close to Date.now().
 */
import { c, errno } from './libc.ts';
import { SysError } from './errors.ts';

const CLOCK_REALTIME = 0;

/** struct timespec { time_t tv_sec; long tv_nsec; } on x86_64: 16 bytes, read at once. */
const timespec = Buffer.alloc(16);

/** The real-time clock now: whole seconds since the epoch and nanoseconds (CLOCK_REALTIME). */
export function realtimeNow(): { sec: bigint; nsec: number } {
  if (c.clock_gettime(CLOCK_REALTIME, timespec) !== 0) throw new SysError('clock_gettime', errno(), 'CLOCK_REALTIME');
  return { sec: timespec.readBigInt64LE(0), nsec: timespec.readUInt32LE(8) };
}

/**
 * CLOCK_MONOTONIC in milliseconds (libuv's hrtime reads it): the clock of the kernel's
 * printk stamps and of /proc/uptime, the same in every process, unlike performance.now(),
 * which starts at 0 with each process.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
