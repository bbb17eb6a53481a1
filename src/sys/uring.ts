/**
 * A minimal io_uring ring on raw system calls (io_uring_setup/enter/register through koffi),
 * for the probe transport of sys/uringprobe.ts. The rings are mapped once and seen through
 * ArrayBuffers over the mapping (koffi.view): writing an SQE or reading a CQE is plain
 * typed-array access, no koffi call per field; only io_uring_enter crosses into C.
 *
 * Every offset inside the rings comes from the io_uring_params the kernel fills (sq_off,
 * cq_off); the SQE (64 bytes) and CQE (16 bytes) layouts are the kernel ABI
 * (linux/io_uring.h), little-endian on every Linux arch Node runs t6 on.
 *
 * Memory order: the kernel reads an SQE after it reads the SQ tail, and writes a CQE before
 * it moves the CQ tail. The tails and heads are read and written with Atomics on a
 * Uint32Array over the mapping (Atomics work on a non-shared ArrayBuffer too; V8 emits them
 * as sequentially consistent accesses: an xchg store on x86-64, ldar/stlr on aarch64), so
 * the SQE's bytes are visible before the new tail, and a CQE is read only after the tail
 * that covers it. x86-64 is TSO, where plain accesses would do as well; aarch64 is not.
 */
import { c, errno, nativeView, pointerAddress } from './libc.ts';
import { SysError } from './errors.ts';

// System call numbers: the same on x86_64 and aarch64 (the generic table from 5.1 on).
const SYS_IO_URING_SETUP = 425;
const SYS_IO_URING_ENTER = 426;
const SYS_IO_URING_REGISTER = 427;

/** Setup flags (linux/io_uring.h). */
export const SETUP_CQSIZE = 1 << 3;
export const SETUP_SUBMIT_ALL = 1 << 7;
export const SETUP_COOP_TASKRUN = 1 << 8;
export const SETUP_TASKRUN_FLAG = 1 << 9;
export const SETUP_SINGLE_ISSUER = 1 << 12;
export const SETUP_DEFER_TASKRUN = 1 << 13;
const FEAT_SINGLE_MMAP = 1 << 0;
const FEAT_NODROP = 1 << 1;
const ENTER_GETEVENTS = 1 << 0;
const SQ_CQ_OVERFLOW = 1 << 1;
const SQ_TASKRUN = 1 << 2;

/** Opcodes the probes use (enum io_uring_op). */
export const OP_ASYNC_CANCEL = 14;
export const OP_CONNECT = 16;
export const OP_CLOSE = 19;
export const OP_SEND = 26;
export const OP_RECV = 27;
export const OP_SOCKET = 45;
export const OP_URING_CMD = 46;

/** SQE flags (IOSQE_*). */
export const SQE_FIXED_FILE = 1 << 0;
export const SQE_IO_LINK = 1 << 2;
export const SQE_IO_HARDLINK = 1 << 3;
export const SQE_CQE_SKIP_SUCCESS = 1 << 6;

const REGISTER_FILES = 2;
const REGISTER_PROBE = 8;
const REGISTER_FILES2 = 13;
const RSRC_REGISTER_SPARSE = 1;
const OP_SUPPORTED = 1;

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MAP_POPULATE = 0x8000;
const OFF_SQ_RING = 0;
const OFF_SQES = 0x10000000;
const MAP_FAILED = 0xffffffffffffffffn;
const EINVAL = 22;
const EBADF = 9;

const SQE_SIZE = 64;
const CQE_SIZE = 16;
const PARAMS_SIZE = 120;
const TWO32 = 2 ** 32;

/** One SQE's fields, as the probes fill them (the rest stay zero). */
export interface Sqe {
  op: number;
  flags: number;
  /** ioprio (u16 @2): for SEND and RECV, IORING_RECVSEND_* flags. */
  ioprio: number;
  fd: number;
  /** `off` (u64 @8): connect's address length, socket's type. */
  off: number;
  /** `addr` (u64 @16): a buffer's native address. */
  addr: number;
  len: number;
  /** The op's flags word (@28): msg_flags, cancel_flags. */
  opFlags: number;
  userLo: number;
  userHi: number;
  /** file_index (@44): a direct descriptor's slot + 1 (0: none); a socket command's optlen. */
  fileIndex: number;
  /** addr3 (u64 @48): a socket command's optval, a native address (0: none). */
  addr3: number;
}

/** The flag sets tried in order at setup: the cheapest first, then fewer on EINVAL (older kernels). */
export const SETUP_TRIES: readonly number[] = [
  SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN | SETUP_SUBMIT_ALL | SETUP_TASKRUN_FLAG,
  SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN,
  SETUP_COOP_TASKRUN | SETUP_TASKRUN_FLAG | SETUP_SUBMIT_ALL,
  0,
];

/** An io_uring instance with its rings mapped (see the file's header). */
export class Ring {
  readonly fd: number;
  /** The setup flags the kernel took (one of SETUP_TRIES, with CQSIZE). */
  readonly flags: number;
  readonly #ringPtr: unknown;
  readonly #ringBytes: number;
  readonly #sqesPtr: unknown;
  readonly #sqesBytes: number;
  /** The ring mapping as 32-bit words (heads, tails, flags, the SQ index array). */
  readonly #u32: Uint32Array;
  /** The ring mapping (CQEs). */
  readonly #ring: DataView;
  /** The SQE array. */
  readonly #sqes: DataView;
  readonly #sqeBytes: Uint8Array;
  readonly #sqHead: number;
  readonly #sqTail: number;
  readonly #sqFlags: number;
  readonly #sqMask: number;
  readonly sqEntries: number;
  readonly #cqHead: number;
  readonly #cqTail: number;
  readonly #cqMask: number;
  readonly #cqes: number;
  /** Our SQ tail: SQEs written up to here, published to the kernel by publish(). */
  #tail = 0;
  #closed = false;

  /** Sets up a ring of `sqEntries` SQEs and `cqEntries` CQEs with the first of `tries` the kernel takes; throws SysError (io_uring_setup ENOSYS, EPERM…). */
  constructor(sqEntries: number, cqEntries: number, tries: readonly number[] = SETUP_TRIES) {
    const params = Buffer.alloc(PARAMS_SIZE);
    let fd = -1;
    let flags = 0;
    for (const tried of tries) {
      params.fill(0);
      flags = tried | SETUP_CQSIZE;
      params.writeUInt32LE(cqEntries, 4);
      params.writeUInt32LE(flags, 8);
      fd = Number(c.uring_setup(SYS_IO_URING_SETUP, sqEntries, params));
      if (fd >= 0) break;
      const e = errno();
      if (e !== EINVAL) throw new SysError('io_uring_setup', e);
    }
    if (fd < 0) throw new SysError('io_uring_setup', EINVAL);
    this.fd = fd;
    this.flags = flags;
    const features = params.readUInt32LE(20);
    const u = (at: number): number => params.readUInt32LE(at);
    this.sqEntries = u(0);
    const cqEntriesGot = u(4);
    if ((features & FEAT_SINGLE_MMAP) === 0 || (features & FEAT_NODROP) === 0) {
      c.close(fd);
      throw new SysError('io_uring_setup', EINVAL, undefined, 'kernel too old (no single mmap or no CQ overflow list)');
    }
    // sq_off @40: head, tail, ring_mask, ring_entries, flags, dropped, array; cq_off @80: head,
    // tail, ring_mask, ring_entries, overflow, cqes, flags.
    const sqArray = u(64);
    this.#ringBytes = Math.max(sqArray + this.sqEntries * 4, u(100) + cqEntriesGot * CQE_SIZE);
    this.#sqesBytes = this.sqEntries * SQE_SIZE;
    this.#ringPtr = mapOrClose(fd, this.#ringBytes, OFF_SQ_RING);
    this.#sqesPtr = mapOrClose(fd, this.#sqesBytes, OFF_SQES, this.#ringPtr, this.#ringBytes);
    const ring = nativeView(this.#ringPtr, this.#ringBytes);
    this.#u32 = new Uint32Array(ring);
    this.#ring = new DataView(ring);
    const sqes = nativeView(this.#sqesPtr, this.#sqesBytes);
    this.#sqes = new DataView(sqes);
    this.#sqeBytes = new Uint8Array(sqes);
    this.#sqHead = u(40) / 4;
    this.#sqTail = u(44) / 4;
    this.#sqMask = this.#u32[u(48) / 4]!;
    this.#sqFlags = u(56) / 4;
    this.#cqHead = u(80) / 4;
    this.#cqTail = u(84) / 4;
    this.#cqMask = this.#u32[u(88) / 4]!;
    this.#cqes = u(100);
    // The index array maps ring positions to SQEs: identity, written once (SQE i at position i).
    for (let i = 0; i < this.sqEntries; i++) this.#u32[sqArray / 4 + i] = i;
    this.#tail = Atomics.load(this.#u32, this.#sqTail);
  }

  /** SQEs free to write now (written ones count until the kernel consumed them). */
  get sqSpace(): number {
    if (this.#closed) return 0;
    return this.sqEntries - ((this.#tail - Atomics.load(this.#u32, this.#sqHead)) >>> 0);
  }

  /** SQEs written and not yet taken by the kernel. */
  get pending(): number {
    if (this.#closed) return 0;
    return (this.#tail - Atomics.load(this.#u32, this.#sqHead)) >>> 0;
  }

  /** Writes one SQE at our tail (the caller checked sqSpace); the kernel sees it after publish(). */
  push(s: Sqe): void {
    // After close() the mapping is gone: a write there would crash the process, not throw.
    if (this.#closed) throw new SysError('io_uring_enter', EBADF, undefined, 'ring closed');
    const at = (this.#tail & this.#sqMask) * SQE_SIZE;
    const v = this.#sqes;
    this.#sqeBytes.fill(0, at, at + SQE_SIZE);
    v.setUint8(at, s.op);
    v.setUint8(at + 1, s.flags);
    v.setUint16(at + 2, s.ioprio, true);
    v.setInt32(at + 4, s.fd, true);
    v.setUint32(at + 8, s.off, true);
    v.setUint32(at + 16, s.addr % TWO32, true);
    v.setUint32(at + 20, Math.floor(s.addr / TWO32), true);
    v.setUint32(at + 24, s.len, true);
    v.setUint32(at + 28, s.opFlags, true);
    v.setUint32(at + 32, s.userLo, true);
    v.setUint32(at + 36, s.userHi, true);
    v.setUint32(at + 44, s.fileIndex, true);
    if (s.addr3 !== 0) {
      v.setUint32(at + 48, s.addr3 % TWO32, true);
      v.setUint32(at + 52, Math.floor(s.addr3 / TWO32), true);
    }
    this.#tail = (this.#tail + 1) >>> 0;
  }

  /** Makes the SQEs written so far visible to the kernel (a release store of the tail). */
  publish(): void {
    Atomics.store(this.#u32, this.#sqTail, this.#tail);
  }

  /**
   * One io_uring_enter: submits what is published and, with `getEvents` (min_complete 0),
   * runs the deferred task work so completions reach the CQ. The count submitted, or -errno.
   */
  enter(getEvents: boolean): number {
    if (this.#closed) return -EBADF;
    this.publish();
    const n = Number(c.uring_enter(SYS_IO_URING_ENTER, this.fd, this.pending, 0, getEvents ? ENTER_GETEVENTS : 0, null, 0));
    return n < 0 ? -errno() : n;
  }

  /**
   * Takes every CQE in the ring, oldest first, into `fn(userLo, userHi, res)`; the head moves
   * past each before its call (fn may open and close, never reap). The count taken.
   */
  reap(fn: (userLo: number, userHi: number, res: number) => void): number {
    const u32 = this.#u32;
    let head = Atomics.load(u32, this.#cqHead);
    let tail = Atomics.load(u32, this.#cqTail);
    let n = 0;
    // The tail is read again when reached: fn's own submissions may complete at once.
    if (this.#closed) return 0;
    // fn may close the ring (a client's callback shutting its probes down): checked before each CQE.
    while (!this.#closed && (head !== tail || head !== (tail = Atomics.load(u32, this.#cqTail)))) {
      const at = this.#cqes + (head & this.#cqMask) * CQE_SIZE;
      const lo = this.#ring.getUint32(at, true);
      const hi = this.#ring.getUint32(at + 4, true);
      const res = this.#ring.getInt32(at + 8, true);
      head = (head + 1) >>> 0;
      Atomics.store(u32, this.#cqHead, head);
      n++;
      fn(lo, hi, res);
    }
    return n;
  }

  /** Completions wait in the kernel's overflow list (the CQ was full): enter again and reap. */
  get cqOverflow(): boolean {
    if (this.#closed) return false;
    return (Atomics.load(this.#u32, this.#sqFlags) & SQ_CQ_OVERFLOW) !== 0;
  }

  /** Whether taskWorkPending tells (the ring was set up with SETUP_TASKRUN_FLAG). */
  get tellsTaskWork(): boolean {
    return (this.flags & SETUP_TASKRUN_FLAG) !== 0;
  }

  /** Deferred task work is queued (only known with SETUP_TASKRUN_FLAG; false otherwise). */
  get taskWorkPending(): boolean {
    if (this.#closed) return false;
    return (Atomics.load(this.#u32, this.#sqFlags) & SQ_TASKRUN) !== 0;
  }

  /** io_uring_register: 0 or -errno. */
  register(opcode: number, arg: Buffer | null, count: number): number {
    const r = Number(c.uring_register(SYS_IO_URING_REGISTER, this.fd, opcode, arg, count));
    return r < 0 ? -errno() : r;
  }

  /** A table of `n` empty direct-descriptor slots; throws SysError (EMFILE over RLIMIT_NOFILE…). */
  registerSparseFiles(n: number): void {
    // struct io_uring_rsrc_register: nr u32, flags u32, resv2 u64, data u64, tags u64.
    const reg = Buffer.alloc(32);
    reg.writeUInt32LE(n, 0);
    reg.writeUInt32LE(RSRC_REGISTER_SPARSE, 4);
    let r = this.register(REGISTER_FILES2, reg, 32);
    if (r === -EINVAL) r = this.register(REGISTER_FILES, Buffer.alloc(n * 4, 0xff), n); // before 5.19: -1 entries
    if (r < 0) throw new SysError('io_uring_register', -r, undefined, `files (${n})`);
  }

  /** Which of `ops` this kernel lacks (IORING_REGISTER_PROBE); all of them if it cannot say. */
  missingOps(ops: readonly number[]): number[] {
    // struct io_uring_probe: 16 bytes, then 256 io_uring_probe_op of 8 bytes (op, resv, flags u16).
    const probe = Buffer.alloc(16 + 256 * 8);
    if (this.register(REGISTER_PROBE, probe, 256) < 0) return [...ops];
    const len = probe.readUInt8(1);
    return ops.filter((op) => op >= len || (probe.readUInt16LE(16 + op * 8 + 2) & OP_SUPPORTED) === 0);
  }

  /** Unmaps the rings and closes the ring fd (the kernel cancels what is in flight and closes the direct descriptors). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    c.munmap(this.#sqesPtr, this.#sqesBytes);
    c.munmap(this.#ringPtr, this.#ringBytes);
    c.close(this.fd);
  }
}

/** mmap of the ring fd at `offset`; on failure the ring fd (and `prior` mapping) are released and SysError thrown. */
function mapOrClose(fd: number, length: number, offset: number, prior?: unknown, priorLength = 0): unknown {
  const ptr: unknown = c.mmap(null, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset);
  if (ptr === null || pointerAddress(ptr) === MAP_FAILED) {
    const e = errno();
    if (prior !== undefined) c.munmap(prior, priorLength);
    c.close(fd);
    throw new SysError('mmap', e, undefined, 'io_uring ring');
  }
  return ptr;
}
