/**
 * RLIMIT_NOFILE for a supervision tree: t6-svscan holds every service's fds in one process
 * (supervise/lock, the control FIFO, the readiness pipe until ready: three while a service
 * starts), where s6 spreads them over one s6-supervise each. The kernel gives pid 1 a hard
 * limit of 4,096 (about 1,300 services); a container may give less than `-c` needs. The
 * limit is raised to what `-c` needs when this process may (pid 1, CAP_SYS_RESOURCE), and
 * said once when it may not, with the number of services it allows.
 */
import { getrlimit, maxOpenFilesLimit, RLIMIT, setrlimit } from '../sys/system.ts';
import { strerror } from '../sys/errors.ts';

/** Fds a starting service holds in the main table: lock, control FIFO, readiness pipe. */
const FDS_PER_SERVICE = 3;
/** With its lock parked in the lock keeper's table (sys/lockkeeper.ts). */
const FDS_PER_SERVICE_PARKED = 2;
/** Node's own, the scan directory's, loggers', clients'. */
const FDS_SLACK = 256;
/** nr_open's default, when /proc does not say. */
const NR_OPEN_DEFAULT = 1_048_576;

/** The system calls raiseFdLimit makes (tests replace them). */
export interface FdLimitCalls {
  get(): { soft: bigint; hard: bigint };
  set(soft: bigint, hard: bigint): void;
  nrOpen(): number | undefined;
}

/** The real ones. */
export const SYSTEM_FD_LIMIT_CALLS: FdLimitCalls = {
  get: () => getrlimit(RLIMIT.NOFILE),
  set: (soft, hard) => setrlimit(RLIMIT.NOFILE, soft, hard),
  nrOpen: maxOpenFilesLimit,
};

/** Fds `maxServices` services need at most. */
export function fdsNeeded(maxServices: number): number {
  return FDS_PER_SERVICE * maxServices + FDS_SLACK;
}

/** About how many services `limit` fds hold (`parked`: with the lock keeper). */
export function servicesWithin(limit: number, parked: boolean): number {
  return Math.max(0, Math.floor((limit - FDS_SLACK) / (parked ? FDS_PER_SERVICE_PARKED : FDS_PER_SERVICE)));
}

/**
 * Raises RLIMIT_NOFILE (soft and hard) to what `maxServices` need, at most nr_open; never
 * lowers it. Returns the warning to give when the hard limit is below that and cannot be
 * raised (the soft limit is then raised to the hard one), else undefined. Never throws.
 */
export function raiseFdLimit(maxServices: number, lockKeeper: boolean, calls: FdLimitCalls = SYSTEM_FD_LIMIT_CALLS): string | undefined {
  let soft: bigint;
  let hard: bigint;
  try {
    ({ soft, hard } = calls.get());
  } catch (err) {
    return `unable to read the limit on open files: ${strerror(err)}`;
  }
  const target = BigInt(Math.min(fdsNeeded(maxServices), calls.nrOpen() ?? NR_OPEN_DEFAULT));
  try {
    if (hard >= target) {
      if (soft < target) calls.set(target, hard);
      return undefined;
    }
    calls.set(target, target);
    return undefined;
  } catch (err) {
    try { if (soft < hard) calls.set(hard, hard); } catch { /* the soft limit stays */ }
    const allowed = servicesWithin(Number(hard), false);
    const parked = lockKeeper ? ` (about ${servicesWithin(Number(hard), true)} once their locks are parked)` : '';
    return `the limit on open files (RLIMIT_NOFILE) is ${hard} and could not be raised to the ${target} that -c ${maxServices} needs: ${strerror(err)} - about ${allowed} services can be supervised${parked}`;
  }
}
