/**
 * Whether io_uring can carry probe connections here (sys/uringprobe.ts), checked once, and
 * which transport probes use.
 */
import { addressOf } from './libc.ts';
import { toError } from './errors.ts';
import {
  OP_ASYNC_CANCEL, OP_CLOSE, OP_CONNECT, OP_RECV, OP_SEND, OP_SOCKET, OP_URING_CMD, Ring, SQE_FIXED_FILE, SQE_IO_HARDLINK, SQE_IO_LINK, type Sqe,
} from './uring.ts';

const CANCEL_ALL = 1 << 0;
const CANCEL_FD = 1 << 1;
const CANCEL_FD_FIXED = 1 << 3;
const EINVAL = 22;
const AF_INET = 2;
const SOCK_STREAM = 1;
/** A socket command's cmd_op (io_uring.h): setsockopt. */
export const SOCKET_URING_OP_SETSOCKOPT = 3;
const IPPROTO_TCP = 6;
const TCP_QUICKACK = 12;
/** `addr` of a setsockopt command: level (u32 @16) and optname (u32 @20). */
export const TCP_QUICKACK_OPTION = IPPROTO_TCP + TCP_QUICKACK * 2 ** 32;

let unavailable: string | null | undefined;

/**
 * Why io_uring cannot carry probes here (ENOSYS, EPERM from seccomp or the io_uring_disabled
 * sysctl, a kernel without SOCKET or fixed files…), or undefined when it can. Tried once.
 */
export function uringUnavailable(): string | undefined {
  if (unavailable === undefined) {
    unavailable = null;
    let ring: Ring | undefined;
    try {
      ring = new Ring(8, 16);
      const missing = ring.missingOps([OP_SOCKET, OP_CONNECT, OP_SEND, OP_RECV, OP_CLOSE, OP_ASYNC_CANCEL]);
      if (missing.length > 0) unavailable = `io_uring lacks opcodes ${missing.join(', ')}`;
      else {
        ring.registerSparseFiles(1);
        // close() cancels by fixed slot (6.0 on); without it a RECV could outlive its slot
        // and write into the region of the slot's next connection. An older kernel says EINVAL.
        ring.push({ op: OP_ASYNC_CANCEL, flags: 0, ioprio: 0, fd: 0, off: 0, addr: 0, len: 0, opFlags: CANCEL_ALL | CANCEL_FD | CANCEL_FD_FIXED, userLo: 1, userHi: 0, fileIndex: 0, addr3: 0 });
        ring.enter(true);
        let res = 0;
        ring.reap((_lo, _hi, r) => { res = r; });
        if (res === -EINVAL) unavailable = 'io_uring cannot cancel by fixed file (kernel before 6.0)';
      }
    } catch (err) {
      unavailable = toError(err).message;
    } finally {
      ring?.close();
    }
  }
  return unavailable ?? undefined;
}

let socketCommands: boolean | undefined;

/**
 * Whether io_uring sets socket options on a direct descriptor here (SOCKET_URING_OP_SETSOCKOPT,
 * kernel 6.7 on): TCP_QUICKACK 0 on a probe's socket, set between SOCKET and CONNECT in its
 * chain. Tried once, on a socket of a ring of its own.
 */
export function uringSocketCommands(): boolean {
  if (socketCommands !== undefined) return socketCommands;
  socketCommands = false;
  if (uringUnavailable() !== undefined) return false;
  let ring: Ring | undefined;
  try {
    ring = new Ring(8, 16);
    if (ring.missingOps([OP_URING_CMD]).length > 0) return false;
    ring.registerSparseFiles(1);
    const optval = Buffer.alloc(4);
    const blank: Sqe = { op: 0, flags: 0, ioprio: 0, fd: 0, off: 0, addr: 0, len: 0, opFlags: 0, userLo: 0, userHi: 0, fileIndex: 0, addr3: 0 };
    ring.push({ ...blank, op: OP_SOCKET, flags: SQE_IO_LINK, fd: AF_INET, off: SOCK_STREAM, userLo: 1, fileIndex: 1 });
    ring.push({
      ...blank, op: OP_URING_CMD, flags: SQE_FIXED_FILE | SQE_IO_HARDLINK, off: SOCKET_URING_OP_SETSOCKOPT, addr: TCP_QUICKACK_OPTION,
      userLo: 2, fileIndex: optval.length, addr3: Number(addressOf(optval)),
    });
    ring.push({ ...blank, op: OP_CLOSE, userLo: 3, fileIndex: 1 });
    ring.enter(true);
    ring.reap((lo, _hi, res) => { if (lo === 2) socketCommands = res === 0; });
  } catch {
    socketCommands = false;
  } finally {
    ring?.close();
  }
  return socketCommands;
}

/** The probe transport to use: `epoll` (TcpProbes) when T6_PROBE_TRANSPORT=epoll or io_uring is unavailable, else `uring`. */
export function probeTransport(env: NodeJS.ProcessEnv = process.env): 'epoll' | 'uring' {
  if (env.T6_PROBE_TRANSPORT === 'epoll') return 'epoll';
  return uringUnavailable() === undefined ? 'uring' : 'epoll';
}
