/** The options of a Scanner (scanner.ts): t6-svscan's command line, and the host. */
import type { ScannerHost } from './scanner-host.ts';
import type { ScannerSignal } from './scandir-control.ts';
import type { EventLog } from './events.ts';

/** Options of t6-svscan. */
export interface ScannerOptions {
  scandir: string;
  /** Rescan every so many ms (-t); 0 = only on demand. */
  rescanMs?: number;
  /** Maximum number of supervisors (-c); a service and its logger take one each. */
  maxServices?: number;
  /** Console holder fd given to the catch-all logger as stderr (-X); in-process, where the catch-all's alerts go. */
  consoleFd?: number;
  /** Copy every line of every service without a logger to stdout as `name: line` (t6-svscan -1; console-sink.ts). */
  consoleSink?: boolean;
  report(level: 'info' | 'warning' | 'error', message: string): void;
  /** Every fd above 2 of this process is close-on-exec: spawns may skip closing fds in the child. */
  allCloexec?: boolean;
  /** Scan dir entries that are not services (t6-linux-init's shutdownd FIFO directory). */
  notServices?: ReadonlySet<string>;
  /** Built-in signal actions that replace s6-svscan's when no `.s6-svscan/SIG<NAME>` exists. */
  signalActions?: Partial<Record<ScannerSignal, () => void>>;
  /** t6's own control bytes beside s6-svscan's (`R`: re-exec), by byte. */
  extraCommands?: Readonly<Record<string, () => void>>;
  /** The tree's event log: every supervisor's, logger's and runner's record goes there, served on `.s6-svscan/events`. */
  events?: EventLog;
  /** The outside world; default: the real one (systemScannerHost). */
  host?: ScannerHost;
}
