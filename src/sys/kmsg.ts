/**
 * The kernel's log, as /dev/kmsg gives it: one record per read(2),
 * `prio,seq,usec,flags;message`, where usec is the printk time (CLOCK_MONOTONIC µs, as
 * local_clock() reads it; it may lead what user space reads by a few ms). Opened
 * non-blocking, so that reading stops at the newest record (EAGAIN) instead of waiting.
 */
import fs from 'node:fs';
import { errorCode } from './errors.ts';

/** Longest record the kernel hands out (CONSOLE_EXT_LOG_MAX is 8 KiB). */
const RECORD_MAX = 8192;
/** A bound on the records read, whatever the ring holds. */
const MAX_RECORDS = 100_000;

/**
 * The first record in the kernel's log whose message matches `pattern`: its printk time in
 * ms and its message; undefined when none does or /dev/kmsg cannot be read (not root, no
 * such device, a container's). Never throws.
 */
export function kernelLogRecord(pattern: RegExp, kmsg = '/dev/kmsg'): { ms: number; message: string } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(kmsg, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  const buf = Buffer.alloc(RECORD_MAX);
  try {
    for (let n = 0; n < MAX_RECORDS; n++) {
      let len: number;
      try {
        len = fs.readSync(fd, buf, 0, RECORD_MAX, null);
      } catch (err) {
        // EPIPE: the record we were at was overwritten; the next read goes on from the oldest.
        if (errorCode(err) === 'EPIPE') continue;
        return undefined; // EAGAIN: no more records
      }
      if (len === 0) return undefined;
      const text = buf.toString('utf8', 0, len);
      const semi = text.indexOf(';');
      if (semi < 0) continue;
      const eol = text.indexOf('\n', semi);
      const message = text.slice(semi + 1, eol < 0 ? undefined : eol);
      if (!pattern.test(message)) continue;
      const usec = Number(text.slice(0, semi).split(',')[2]);
      return Number.isFinite(usec) ? { ms: usec / 1000, message } : undefined;
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}
