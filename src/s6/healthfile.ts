/**
 * `supervise/t6-health`: what t6's supervisor knows of a service beyond s6's 35-byte status
 * (supervise/health.ts writes it): the STATUS= text and main pid a service said over
 * sd_notify, its watchdog, why t6 last restarted it as unhealthy, and why its restart
 * policy gave it up. One JSON object; absent while there is nothing to say, so s6's own
 * services, and every s6 tool, see exactly s6's files.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The file's name in `supervise/`. */
export const HEALTH_FILE = 't6-health';
/** Read at most this much of it: a record is a few hundred bytes (STATUS= is capped at 256). */
const HEALTH_FILE_MAX = 8192;

/** What `supervise/t6-health` holds. */
export interface HealthRecord {
  /** The last STATUS= text, or null. */
  statusText: string | null;
  /** MAINPID= as accepted, or null. */
  mainPid: number | null;
  /** STOPPING=1 was said since `run` started. */
  stopping: boolean;
  /** RELOADING=1 was said and no READY=1 since. */
  reloading: boolean;
  /** ERRNO= as last said, or null. */
  errno: number | null;
  /** The watchdog's period in ms while one runs, else null. */
  watchdogMs: number | null;
  /** Why the service was last stopped as unhealthy (watchdog, probe), or null. */
  lastFailure: string | null;
  /** Why the service is given up (its restart policy), or null. */
  givenUp: string | null;
}

/** A record that says nothing. */
export function emptyHealth(): HealthRecord {
  return { statusText: null, mainPid: null, stopping: false, reloading: false, errno: null, watchdogMs: null, lastFailure: null, givenUp: null };
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const int = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) ? v : null);

/** The health record of service directory `dir`, or null when it has none (or it is unreadable: it is advisory). */
export function readHealth(dir: string): HealthRecord | null {
  let text: string;
  try {
    const fd = fs.openSync(path.join(dir, 'supervise', HEALTH_FILE), 'r');
    try {
      const buf = Buffer.alloc(HEALTH_FILE_MAX);
      text = buf.toString('utf8', 0, fs.readSync(fd, buf, 0, HEALTH_FILE_MAX, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
  let o: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null) return null;
    o = parsed as Record<string, unknown>;
  } catch {
    return null;
  }
  return {
    statusText: str(o.statusText), mainPid: int(o.mainPid), stopping: o.stopping === true, reloading: o.reloading === true,
    errno: int(o.errno), watchdogMs: int(o.watchdogMs), lastFailure: str(o.lastFailure), givenUp: str(o.givenUp),
  };
}

/** What t6-svstat adds to s6's line: `, status "…"`, `, given up: …`…; '' for no record. */
export function healthText(h: HealthRecord | null): string {
  if (h === null) return '';
  let out = '';
  if (h.givenUp !== null) out += `, given up: ${h.givenUp}`;
  if (h.statusText !== null) out += `, status ${JSON.stringify(h.statusText)}`;
  if (h.mainPid !== null) out += `, main pid ${h.mainPid}`;
  if (h.reloading) out += ', reloading';
  if (h.stopping) out += ', stopping';
  if (h.errno !== null) out += `, errno ${h.errno}`;
  if (h.watchdogMs !== null) out += `, watchdog ${h.watchdogMs} ms`;
  if (h.lastFailure !== null) out += `, last failure: ${h.lastFailure}`;
  return out;
}
