/**
 * Whether io_uring can carry probe connections here (sys/uringprobe.ts), checked once, and
 * which transport probes use.
 */
import { toError } from './errors.ts';
import { OP_ASYNC_CANCEL, OP_CLOSE, OP_CONNECT, OP_RECV, OP_SEND, OP_SOCKET, Ring } from './uring.ts';

const CANCEL_ALL = 1 << 0;
const CANCEL_FD = 1 << 1;
const CANCEL_FD_FIXED = 1 << 3;
const EINVAL = 22;

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
        ring.push({ op: OP_ASYNC_CANCEL, flags: 0, ioprio: 0, fd: 0, off: 0, addr: 0, len: 0, opFlags: CANCEL_ALL | CANCEL_FD | CANCEL_FD_FIXED, userLo: 1, userHi: 0, fileIndex: 0 });
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

/** The probe transport to use: `epoll` (TcpProbes) when T6_PROBE_TRANSPORT=epoll or io_uring is unavailable, else `uring`. */
export function probeTransport(env: NodeJS.ProcessEnv = process.env): 'epoll' | 'uring' {
  if (env.T6_PROBE_TRANSPORT === 'epoll') return 'epoll';
  return uringUnavailable() === undefined ? 'uring' : 'epoll';
}
