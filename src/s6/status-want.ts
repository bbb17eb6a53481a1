/**
 * One flag of `supervise/status` (layout in status.ts): whether the supervisor wants its
 * service up. Apart from status.ts, which brings the clock (and libc) with its stamps, so
 * that `t6-rc diff`'s short bundle reads the flag with plain Node and nothing else.
 */
import fs from 'node:fs';

/** The status record's size and its flags byte's offset and want-up bit (status.ts). */
const STATUS_SIZE = 35;
const FLAGS_AT = 34;
const WANT_UP = 4;

/** The want-up flag of `DIR/supervise/status`; undefined when the file is missing, short or unreadable. */
export function readWantUp(dir: string): boolean | undefined {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(`${dir}/supervise/status`);
  } catch {
    return undefined;
  }
  return buf.length < STATUS_SIZE ? undefined : (buf[FLAGS_AT]! & WANT_UP) !== 0;
}
