/**
 * `t6 metrics`: the tree's figures in the Prometheus text exposition format (version 0.0.4),
 * for node_exporter's textfile collector or any scraper of a file. Per service, from the
 * supervise/ files (as t6-svstat --json -a reads them); per in-process logger and for
 * t6-svscan itself, from t6-svscan (a `{"metrics":true}` runner request, answered from
 * what it has: nothing is sampled in the background). No HTTP listener in pid 1.
 */
import net from 'node:net';
import type { ServiceJson } from '../s6/servicejson.ts';
import type { ScannerMetrics } from '../supervise/scanner-metrics.ts';
import type { TimingRecord } from './timings.ts';
import { tookMs } from './analyze/model.ts';

/** The longest reply accepted from the runner (loggers of a thousand services fit). */
const MAX_REPLY = 8 << 20;

/** Asks t6-svscan on `socketPath` (SCANDIR/.s6-svscan/run) for its metrics; rejects with why it could not. */
export function askMetrics(socketPath: string, timeoutMs = 10_000): Promise<ScannerMetrics & { eventLoopDelayMs: number }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no answer from ${socketPath} in ${timeoutMs / 1000} seconds`)); }, timeoutMs);
    const fail = (why: string): void => { clearTimeout(timer); sock.destroy(); reject(new Error(why)); };
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write('{"metrics":true}\n'));
    sock.on('error', (err) => fail(`unable to reach t6-svscan at ${socketPath}: ${err.message}`));
    sock.on('close', () => fail(`t6-svscan at ${socketPath} closed the connection without an answer`));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REPLY) { fail('the answer is too long'); return; }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.removeAllListeners('close');
      sock.destroy();
      let reply: { metrics?: ScannerMetrics & { eventLoopDelayMs: number }; error?: string };
      try { reply = JSON.parse(buf.slice(0, nl)) as typeof reply; } catch { reject(new Error('garbled answer from t6-svscan')); return; }
      if (reply.metrics === undefined) reject(new Error(`t6-svscan does not serve metrics: ${reply.error ?? 'no metrics in its answer'}`));
      else resolve(reply.metrics);
    });
  });
}

/** One metric family being written. */
interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: [Record<string, string>, number][];
}

/** A label value, escaped as the format wants (backslash, double quote, newline). */
function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** The text of `families` (those without samples left out). */
export function exposition(families: readonly Family[]): string {
  let out = '';
  for (const f of families) {
    if (f.samples.length === 0) continue;
    out += `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n`;
    for (const [labels, value] of f.samples) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
      out += `${f.name}${l === '' ? '' : `{${l}}`} ${Number.isFinite(value) ? value : 'NaN'}\n`;
    }
  }
  return out;
}

const seconds = (iso: string | null): number | undefined => (iso === null ? undefined : Date.parse(iso) / 1000);

/** The families for every service, t6-svscan and its loggers. */
export function metricFamilies(services: readonly ServiceJson[], scanner: (ScannerMetrics & { eventLoopDelayMs: number }) | undefined): Family[] {
  const fam = (name: string, type: Family['type'], help: string): Family => ({ name, type, help, samples: [] });
  const supervised = fam('t6_service_supervised', 'gauge', 'Whether a supervisor holds the service directory (the other figures need one).');
  const up = fam('t6_service_up', 'gauge', 'Whether the service\'s run process runs (1) or not (0).');
  const ready = fam('t6_service_ready', 'gauge', 'Whether the service runs and has said it is ready.');
  const want = fam('t6_service_want_up', 'gauge', 'Whether the supervisor wants the service up.');
  const since = fam('t6_service_state_since_seconds', 'gauge', 'When the service last went up or down (Unix time).');
  const readySince = fam('t6_service_ready_since_seconds', 'gauge', 'When the service said it was ready (Unix time).');
  const restarts = fam('t6_service_restarts_total', 'counter', 'Starts of run after a death, from the death tally.');
  const exitCode = fam('t6_service_last_exit_code', 'gauge', 'The exit code of run\'s last death (when it exited).');
  const exitSignal = fam('t6_service_last_exit_signal', 'gauge', 'The signal that killed run last (when a signal did).');
  for (const s of services) {
    supervised.samples.push([{ service: s.name }, s.supervised ? 1 : 0]);
    if (s.state === null) continue;
    const l = { service: s.name };
    up.samples.push([l, s.state === 'up' ? 1 : 0]);
    ready.samples.push([l, s.ready === true ? 1 : 0]);
    if (s.want !== null) want.samples.push([l, s.want === 'up' ? 1 : 0]);
    const at = seconds(s.since);
    if (at !== undefined) since.samples.push([l, at]);
    const readyAt = seconds(s.readySince);
    if (readyAt !== undefined) readySince.samples.push([l, readyAt]);
    if (s.restarts !== null) restarts.samples.push([l, s.restarts]);
    if (s.lastExit?.code != null) exitCode.samples.push([l, s.lastExit.code]);
    if (s.lastExit?.signum != null) exitSignal.samples.push([l, s.lastExit.signum]);
  }
  return [supervised, up, ready, want, since, readySince, restarts, exitCode, exitSignal, ...scannerFamilies(scanner, fam)];
}

/** The transitions of t6-rc's last recorded change (or the boot): how long each took, and whether it failed. */
export function rcFamilies(r: TimingRecord): Family[] {
  const took: Family = { name: 't6_rc_transition_duration_seconds', type: 'gauge', help: 'How long each transition of t6-rc\'s last change took, requested to done (ready for an up longrun with readiness).', samples: [] };
  const failed: Family = { name: 't6_rc_transition_failed', type: 'gauge', help: 'Whether that transition failed.', samples: [] };
  const change: Family = { name: 't6_rc_last_change_seq', type: 'gauge', help: 'Which change those are (0: the boot).', samples: [[{}, r.seq]] };
  for (const t of r.services) {
    const l = { service: t.name, action: t.direction === 'up' ? 'start' : 'stop' };
    took.samples.push([l, tookMs(t) / 1000]);
    failed.samples.push([l, t.failure === undefined ? 0 : 1]);
  }
  return [change, took, failed];
}

/** t6-svscan's own families and its loggers'. */
function scannerFamilies(m: (ScannerMetrics & { eventLoopDelayMs: number }) | undefined, fam: (name: string, type: Family['type'], help: string) => Family): Family[] {
  if (m === undefined) return [];
  const one = (name: string, type: Family['type'], help: string, value: number): Family => ({ ...fam(name, type, help), samples: [[{}, value]] });
  const lines = fam('t6_logger_lines_total', 'counter', 'Lines an in-process logger took in since its script started.');
  const bytes = fam('t6_logger_bytes_total', 'counter', 'Bytes of those lines (newlines not counted).');
  const rotations = fam('t6_logger_rotations_total', 'counter', 'Rotations of its logdirs since its script started.');
  const blockedFor = fam('t6_logger_blocked_seconds_total', 'counter', 'Time the logger took no input (its service\'s writes waited).');
  const blocked = fam('t6_logger_blocked', 'gauge', 'Whether the logger takes no input now.');
  for (const g of m.loggers) {
    const l = { logger: g.name };
    lines.samples.push([l, g.lines]);
    bytes.samples.push([l, g.bytes]);
    rotations.samples.push([l, g.rotations]);
    blockedFor.samples.push([l, g.blockedMs / 1000]);
    blocked.samples.push([l, g.blocked ? 1 : 0]);
  }
  const p = m.process;
  return [
    lines, bytes, rotations, blockedFor, blocked,
    one('t6_svscan_resident_memory_bytes', 'gauge', 't6-svscan\'s resident set size.', p.rssBytes),
    one('t6_svscan_heap_used_bytes', 'gauge', 'V8 heap in use in t6-svscan.', p.heapUsedBytes),
    one('t6_svscan_heap_total_bytes', 'gauge', 'V8 heap reserved by t6-svscan.', p.heapTotalBytes),
    ...(p.fds >= 0 ? [one('t6_svscan_open_fds', 'gauge', 'File descriptors t6-svscan holds.', p.fds)] : []),
    one('t6_svscan_event_loop_delay_seconds', 'gauge', 'How long a callback queued when asked waited for its turn.', m.eventLoopDelayMs / 1000),
    one('t6_svscan_event_loop_utilization', 'gauge', 'Share of time t6-svscan\'s event loop was busy since it started.', p.eventLoopUtilization),
    one('t6_svscan_uptime_seconds', 'gauge', 'Time since this t6-svscan image started.', p.uptimeSeconds),
    one('t6_svscan_supervisors', 'gauge', 'Supervisors running (services and loggers).', m.supervisors),
    ...(m.events === null ? [] : [
      one('t6_events_published_total', 'counter', 'Records published on the event stream.', m.events.published),
      one('t6_events_subscribers', 'gauge', 'Subscribers of the event stream now.', m.events.subscribers),
    ]),
    // Absent from a t6-svscan older than sd_notify.
    ...(m.notify === undefined ? [] : [
      one('t6_sdnotify_messages_total', 'counter', 'sd_notify datagrams received.', m.notify.received),
      one('t6_sdnotify_refused_total', 'counter', 'sd_notify datagrams refused: the sender is no process of a service with flag-sd-notify.', m.notify.refused),
      one('t6_sdnotify_malformed_total', 'counter', 'sd_notify datagrams refused as malformed or too big.', m.notify.malformed),
    ]),
  ];
}
