/**
 * Receiving one datagram from an AF_UNIX socket with its ancillary data, by recvmsg(2)
 * through koffi: the C structures are laid out by hand in Buffers, because koffi cannot
 * pass a structure whose pointers point into other Buffers that the kernel writes.
 *
 * Layouts (LP64: x86_64 and arm64 agree, checked against <sys/socket.h> on both):
 *
 *   struct msghdr   56 bytes  name ptr @0, namelen u32 @8, iov ptr @16, iovlen size_t @24,
 *                             control ptr @32, controllen size_t @40, flags int @48
 *   struct iovec    16 bytes  base ptr @0, len size_t @8
 *   struct cmsghdr  16 bytes  len size_t @0, level int @8, type int @12, data @16;
 *                             each header and its data padded to 8 bytes (CMSG_ALIGN)
 *   struct ucred    12 bytes  pid int @0, uid u32 @4, gid u32 @8
 *
 * The control buffer holds the credentials and as many fds as a sender can pass in one
 * message (SCM_MAX_FD, 253): every fd the kernel installs in our table is seen, and closed.
 */
import { addressOf, c, errno } from './libc.ts';
import { SysError } from './errors.ts';

const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const SCM_CREDENTIALS = 2;
/** Ask for the datagram's real length even when it does not fit (datagram sockets). */
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
/** Received fds are close-on-exec from the start: none leaks into a spawn before we close it. */
const MSG_CMSG_CLOEXEC = 0x40000000;
const EAGAIN = 11;
const EINTR = 4;
const EINVAL = 22;
const ENAMETOOLONG = 36;
const AF_UNIX = 1;

const MSGHDR_SIZE = 56;
const IOVEC_SIZE = 16;
const CMSG_HEADER = 16;
const UCRED_SIZE = 12;
/** The kernel's bound on fds in one message (SCM_MAX_FD). */
const MAX_FDS_PER_MESSAGE = 253;
/** sockaddr_un's sun_path: 108 bytes, after the 2-byte family. */
const SUN_PATH_MAX = 108;

const align8 = (n: number): number => (n + 7) & ~7;
/** Credentials, then a full load of fds: what one message can carry. */
export const CONTROL_BYTES = align8(CMSG_HEADER + UCRED_SIZE) + align8(CMSG_HEADER + 4 * MAX_FDS_PER_MESSAGE);

/** Who sent a datagram, as the kernel vouches for it (SCM_CREDENTIALS). */
export interface Credentials {
  pid: number;
  uid: number;
  gid: number;
}

/** What one recvmsg brought. */
export interface Datagram {
  /** The datagram's real length (more than the buffer when it was cut: see `payload`). */
  bytes: number;
  /** A copy of the payload; undefined when the datagram did not fit the buffer. */
  payload: Buffer | undefined;
  credentials: Credentials | undefined;
  /** How many fds came with it (already closed). */
  fdsClosed: number;
}

/** What the ancillary data of one message held. */
export interface Ancillary {
  credentials: Credentials | undefined;
  fds: number[];
}

/**
 * The credentials and fds in `length` bytes of ancillary data (a sequence of cmsghdr).
 * A header whose length runs past the data ends the walk: the kernel never writes one,
 * and what follows could not be trusted.
 */
export function parseAncillary(control: Buffer, length: number): Ancillary {
  const out: Ancillary = { credentials: undefined, fds: [] };
  let off = 0;
  while (off + CMSG_HEADER <= length) {
    const len = Number(control.readBigUInt64LE(off));
    if (len < CMSG_HEADER || off + len > length) break;
    const level = control.readInt32LE(off + 8);
    const type = control.readInt32LE(off + 12);
    const data = off + CMSG_HEADER;
    if (level === SOL_SOCKET && type === SCM_CREDENTIALS && len >= CMSG_HEADER + UCRED_SIZE) {
      out.credentials = { pid: control.readInt32LE(data), uid: control.readUInt32LE(data + 4), gid: control.readUInt32LE(data + 8) };
    } else if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let p = data; p + 4 <= off + len; p += 4) out.fds.push(control.readInt32LE(p));
    }
    off += align8(len);
  }
  return out;
}

/**
 * sockaddr_un for `address`: `@name` is an abstract name (sun_path starts with a NUL, the
 * length counts the name's bytes only, as NOTIFY_SOCKET clients send to it); otherwise an
 * absolute path, NUL-terminated. Throws SysError (EINVAL, ENAMETOOLONG) naming the address.
 */
export function sockaddrUn(address: string): Buffer {
  const abstract = address.startsWith('@');
  if (!abstract && !address.startsWith('/')) throw new SysError('bind', EINVAL, address, 'not @name or an absolute path');
  const name = Buffer.from(abstract ? address.slice(1) : address, 'utf8');
  // Both forms take one byte besides the name: the leading NUL, or the trailing one.
  if (name.length + 1 > SUN_PATH_MAX || (abstract && name.length === 0) || name.includes(0)) {
    throw new SysError('bind', name.includes(0) || name.length === 0 ? EINVAL : ENAMETOOLONG, address);
  }
  const addr = Buffer.alloc(2 + name.length + 1);
  addr.writeUInt16LE(AF_UNIX, 0);
  // Abstract: NUL then the name, and no trailing NUL (it would be part of the name).
  // A path: the name then its NUL. The same length either way.
  name.copy(addr, abstract ? 3 : 2);
  return addr;
}

/** Throws unless this file's struct layouts (LP64: x86_64, arm64) are this machine's. */
export function checkLayoutKnown(): void {
  if (process.arch !== 'x64' && process.arch !== 'arm64') {
    throw new Error(`recvmsg: struct layouts are known for x64 and arm64, not ${process.arch}`);
  }
}

/**
 * A reusable recvmsg: one msghdr pointing at one payload buffer and one control buffer,
 * all owned here (the addresses stay valid as long as this object lives).
 */
export class DatagramReader {
  readonly #payload: Buffer;
  readonly #iov = Buffer.alloc(IOVEC_SIZE);
  readonly #control = Buffer.alloc(CONTROL_BYTES);
  readonly #msg = Buffer.alloc(MSGHDR_SIZE);

  /** `maxBytes`: the largest datagram taken whole; a longer one comes back without payload. */
  constructor(maxBytes: number) {
    checkLayoutKnown();
    this.#payload = Buffer.alloc(maxBytes);
    this.#iov.writeBigUInt64LE(addressOf(this.#payload), 0);
    this.#iov.writeBigUInt64LE(BigInt(maxBytes), 8);
    this.#msg.writeBigUInt64LE(addressOf(this.#iov), 16);
    this.#msg.writeBigUInt64LE(1n, 24);
    this.#msg.writeBigUInt64LE(addressOf(this.#control), 32);
  }

  /**
   * Takes the next datagram from non-blocking `fd`, or undefined when there is none
   * (EAGAIN). Every fd it carried is closed before this returns. Throws SysError for any
   * other failure.
   */
  receive(fd: number): Datagram | undefined {
    for (;;) {
      // The kernel rewrites both: the control length to what it used, the flags to what happened.
      this.#msg.writeBigUInt64LE(BigInt(CONTROL_BYTES), 40);
      this.#msg.writeInt32LE(0, 48);
      const n = Number(c.recvmsg(fd, this.#msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC));
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        if (e === EAGAIN) return undefined;
        throw new SysError('recvmsg', e, `fd ${fd}`);
      }
      const controlLength = Math.min(Number(this.#msg.readBigUInt64LE(40)), CONTROL_BYTES);
      const { credentials, fds } = parseAncillary(this.#control, controlLength);
      for (const received of fds) c.close(received);
      const fits = n <= this.#payload.length && (this.#msg.readInt32LE(48) & MSG_TRUNC) === 0;
      return { bytes: n, payload: fits ? Buffer.from(this.#payload.subarray(0, n)) : undefined, credentials, fdsClosed: fds.length };
    }
  }
}
