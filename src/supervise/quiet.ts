/**
 * When start-up is over: once this process has been quiet (used little CPU) for a while.
 * pid 1 gives back the executable pages only its start-up touched (sys/system.ts's
 * pageOutExecutable) then, not at a fixed time after the first scan: on a real boot the
 * first scan is only the start, and t6-rc's change runs for many seconds after it. Paged
 * out in the middle of it, Node's text and read-only data faulted back in from the disk page
 * by page (80 MB read again, 500–700 major faults and seconds of system time under emulation,
 * in the Debian example's boots).
 */

/** What whenQuiet needs: its clocks and limits (ms). */
export interface QuietOptions {
  /** The first look, this long after the call. */
  firstCheckMs: number;
  /** The window over which CPU use is measured; looks are this far apart. */
  windowMs: number;
  /** Quiet: CPU time used over the window at most this fraction of it. */
  maxBusyFraction: number;
  /** Run `then` anyway once this long has passed since the call, quiet or not. */
  maxWaitMs: number;
  /** CPU time used by this process so far (every thread), in ms. */
  cpuMs(): number;
  /** A monotonic clock, in ms. */
  now(): number;
}

/** Why `then` ran. */
export type QuietReason = 'quiet' | 'waited';

/**
 * Runs `then` once the process has been quiet over a whole window, or after maxWaitMs.
 * The timers do not keep the process alive. Returns a function that cancels it.
 */
export function whenQuiet(o: QuietOptions, then: (reason: QuietReason) => void): () => void {
  const start = o.now();
  let timer: NodeJS.Timeout | undefined;
  let last = { at: start, cpu: o.cpuMs() };
  const arm = (ms: number): void => {
    timer = setTimeout(look, ms);
    timer.unref();
  };
  const look = (): void => {
    timer = undefined;
    const at = o.now();
    const cpu = o.cpuMs();
    const spent = at - last.at;
    const quiet = spent >= o.windowMs && cpu - last.cpu <= spent * o.maxBusyFraction;
    last = { at, cpu };
    if (quiet) then('quiet');
    else if (at - start >= o.maxWaitMs) then('waited');
    else arm(o.windowMs);
  };
  // The first window starts at the first look: what came before it (start-up itself) is not judged.
  timer = setTimeout(() => {
    last = { at: o.now(), cpu: o.cpuMs() };
    arm(o.windowMs);
  }, o.firstCheckMs);
  timer.unref();
  return () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
}

/** This process's CPU time so far, ms (user and system, every thread). */
export function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
