/**
 * What t6-svscan says of itself for `t6 metrics` (a runner request, runner.ts): its own
 * memory, fds and event loop, its loggers' counters, the event stream's. Read when asked,
 * never sampled in the background: an idle pid 1 stays idle.
 */
import fs from 'node:fs';
import type { EventLog } from './events.ts';
import type { LoggerMetrics } from './logging.ts';
import type { NotifyCounters } from './notify-hub.ts';

/** The scanner's metrics, as the runner sends them (JSON). */
export interface ScannerMetrics {
  process: {
    rssBytes: number;
    heapUsedBytes: number;
    heapTotalBytes: number;
    externalBytes: number;
    /** Open fds (entries of /proc/self/fd); -1 when /proc is not there. */
    fds: number;
    /** Share of the time since start the event loop was busy (0 to 1). */
    eventLoopUtilization: number;
    uptimeSeconds: number;
  };
  supervisors: number;
  events: { published: number; subscribers: number } | null;
  /** sd_notify datagrams: received, refused (from no service's tree), malformed (notify-hub.ts). */
  notify: NotifyCounters;
  loggers: LoggerMetrics[];
}

/** Collects the metrics now. */
export function scannerMetrics(loggers: LoggerMetrics[], events: EventLog | undefined, supervisors: number, notify: NotifyCounters): ScannerMetrics {
  const mem = process.memoryUsage();
  let fds = -1;
  try { fds = fs.readdirSync('/proc/self/fd').length - 1; } catch { /* no /proc */ }
  return {
    process: {
      rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, heapTotalBytes: mem.heapTotal, externalBytes: mem.external, fds,
      eventLoopUtilization: process.getBuiltinModule('node:perf_hooks').performance.eventLoopUtilization().utilization,
      uptimeSeconds: process.uptime(),
    },
    supervisors,
    notify: { ...notify },
    events: events === undefined ? null : { published: events.nextSeq - 1, subscribers: events.subscribers },
    loggers,
  };
}
