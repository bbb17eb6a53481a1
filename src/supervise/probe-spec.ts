/**
 * A service's built-in readiness (and liveness) probe, as it is written in the service
 * directory: t6 beyond s6 (issue 14, DESIGN §12). A service directory without `probe/`
 * behaves exactly as under s6.
 *
 * The format: a directory `probe/` in the service directory, one value per file, s6 style
 * (a decimal file holds one number and a newline):
 *
 * - exactly one of
 *   - `tcp`: `HOST:PORT` (IPv6 as `[addr]:PORT`): ready once a connection is accepted;
 *   - `http`: `http://HOST[:PORT]/PATH` (port 80 by default; no https): ready once a
 *     `GET PATH HTTP/1.1` is answered with an accepted status (and body);
 *   - `check`: an executable file, run directly at each attempt with cwd = the service
 *     directory, argv `./probe/check`, stdin /dev/null: ready once it exits 0;
 * - `interval`: ms from the start of one attempt to the start of the next (default 1000, ≥ 1);
 * - `timeout`: ms one attempt may take before it counts as failed (default 1000, ≥ 1);
 * - `start-delay`: ms after `run` starts before the first attempt (default 0);
 * - `attempts`: failed attempts allowed before readiness is given up (absent or 0: unlimited);
 * - `http-status` (http only): accepted status codes, `200` or a range `200-399` (default 200-399);
 * - `http-body` (http only): a text the first 64 KiB of the body must contain (one trailing
 *   newline of the file is not part of it);
 * - `http-reuse` (http only): how many liveness attempts one connection carries, N ≥ 1
 *   (default 10). A reused connection (HTTP/1.1 keep-alive, as Envoy's health checks do) costs
 *   one request, not a TCP handshake and teardown on both ends: a fraction of the kernel's
 *   work, and no TIME_WAIT socket or conntrack entry left on the server for each attempt. The
 *   Nth request says `Connection: close`, and an attempt after a failure always opens a new
 *   connection, so a server that stops accepting new ones is still found out within N
 *   attempts. `1` makes a new connection for every attempt, as Kubernetes does. Readiness
 *   attempts always use a connection of their own;
 * - `liveness`: N ≥ 1: after readiness the same probe goes on at `interval`, and N
 *   consecutive failures make the service unhealthy; absent: the probe ends at readiness.
 *
 * Any other file in `probe/` is refused (a misspelt `intervall` would otherwise be silently
 * ignored). The spec is read when `run` starts, as s6 reads its settings files fresh, and by
 * t6-rc-compile to refuse a bad definition at compile time: plain synchronous Node fs, on
 * any directory.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { strerror } from '../sys/errors.ts';

/** What one attempt checks. `name` is how messages name the probe (`tcp 127.0.0.1:5432`, the URL, `./probe/check`). */
export type ProbeTarget =
  | { kind: 'tcp'; name: string; host: string; port: number }
  | { kind: 'http'; name: string; host: string; port: number; path: string; hostHeader: string }
  | { kind: 'check'; name: string };

/** A service's probe, as read from its `probe/` directory. */
export interface ProbeSpec {
  target: ProbeTarget;
  intervalMs: number;
  timeoutMs: number;
  startDelayMs: number;
  /** Failed attempts allowed before readiness is given up; 0: unlimited. */
  attempts: number;
  /** Accepted HTTP status codes, inclusive (http only). */
  httpStatus: { min: number; max: number };
  /** Bytes the first 64 KiB of the body must contain (http only). */
  httpBody?: Buffer;
  /** Liveness attempts one connection carries (`http-reuse`; http only); absent: DEFAULT_HTTP_REUSE. */
  httpReuse?: number;
  /** Consecutive failures after readiness that make the service unhealthy; absent: no liveness probing. */
  liveness?: number;
}

/** Every file `probe/` may hold: the three kinds, then the settings. */
const KINDS = ['tcp', 'http', 'check'] as const;
const SETTINGS = ['interval', 'timeout', 'start-delay', 'attempts', 'http-status', 'http-body', 'http-reuse', 'liveness'] as const;
const KNOWN: ReadonlySet<string> = new Set([...KINDS, ...SETTINGS]);

/** Longest value file read (a URL is the longest value; more is certainly a mistake). */
const MAX_FILE_BYTES = 4096;
/** Longest `http-body` text: it is looked for in at most 64 KiB, and one looks for a marker, not a page. */
const MAX_BODY_TEXT = 1024;
/** Largest ms value: what a Node timer can wait. */
const MAX_MS = 0x7fffffff;

/** Liveness attempts one HTTP connection carries by default (`http-reuse`). */
export const DEFAULT_HTTP_REUSE = 10;

const DEFAULTS = { interval: 1000, timeout: 1000, startDelay: 0, attempts: 0, httpStatus: { min: 200, max: 399 } };

/** A file's value; undefined when it is absent or bad (the problem is then recorded). */
type Found<T> = T | undefined;

/**
 * The probe of `serviceDir`: no `probe/` gives neither spec nor problem; a bad one gives
 * the problems found, each naming its file (`probe/http: "https://x" - only http:// URLs
 * are supported`), joined with "; ". Never throws.
 */
export function readProbeSpec(serviceDir: string): { spec?: ProbeSpec; problem?: string } {
  const dir = path.join(serviceDir, 'probe');
  let entries: string[];
  try {
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    if (st === undefined) return {};
    if (!st.isDirectory()) return { problem: 'probe: not a directory' };
    entries = fs.readdirSync(dir);
  } catch (err) {
    return { problem: `probe: unable to read: ${strerror(err)}` };
  }
  const problems: string[] = [];
  for (const e of entries.sort()) {
    if (e === 'http-keepalive') problems.push('probe/http-keepalive: replaced by probe/http-reuse (liveness attempts per connection; 1: a new one for each)');
    else if (!KNOWN.has(e)) problems.push(`probe/${e}: unknown file (known: ${[...KNOWN].join(', ')})`);
  }
  const spec = parseEntries(dir, new Set(entries), problems);
  if (problems.length > 0 || spec === undefined) return { problem: problems.join('; ') };
  return { spec };
}

/** The spec from the files present, problems added to `problems`. */
function parseEntries(dir: string, present: ReadonlySet<string>, problems: string[]): ProbeSpec | undefined {
  const kinds = KINDS.filter((k) => present.has(k));
  if (kinds.length !== 1) {
    problems.push(kinds.length === 0
      ? 'probe/: none of tcp, http, check - exactly one is needed'
      : `probe/: ${kinds.join(' and ')} - exactly one of tcp, http, check is allowed`);
  }
  const kind = kinds.length === 1 ? kinds[0]! : undefined;
  const ctx = { dir, present, problems };
  const target = kind === undefined ? undefined : readTarget(ctx, kind);
  const num = (name: string, fallback: number, min: number): number => readNumber(ctx, name, min) ?? fallback;
  const intervalMs = num('interval', DEFAULTS.interval, 1);
  const timeoutMs = num('timeout', DEFAULTS.timeout, 1);
  const startDelayMs = num('start-delay', DEFAULTS.startDelay, 0);
  const attempts = num('attempts', DEFAULTS.attempts, 0);
  const liveness = readNumber(ctx, 'liveness', 1);
  for (const name of ['http-status', 'http-body', 'http-reuse']) {
    if (present.has(name) && kind !== undefined && kind !== 'http') problems.push(`probe/${name}: only for an http probe (this one is ${kind})`);
  }
  const httpStatus = readStatusRange(ctx) ?? DEFAULTS.httpStatus;
  const httpBody = readBodyText(ctx);
  const reuse = readNumber(ctx, 'http-reuse', 1);
  if (target === undefined) return undefined;
  return {
    target, intervalMs, timeoutMs, startDelayMs, attempts, httpStatus,
    ...(httpBody === undefined ? {} : { httpBody }),
    ...(reuse !== undefined && target.kind === 'http' ? { httpReuse: reuse } : {}),
    ...(liveness === undefined ? {} : { liveness }),
  };
}

/** What the readers share: the probe directory, the files in it, the problems so far. */
interface Ctx {
  dir: string;
  present: ReadonlySet<string>;
  problems: string[];
}

/** The text of `probe/<name>` (undefined: absent, or a problem was recorded). */
function readText(ctx: Ctx, name: string): Found<string> {
  if (!ctx.present.has(name)) return undefined;
  const file = path.join(ctx.dir, name);
  try {
    // O_NONBLOCK: a FIFO put there by mistake must not hang whoever reads the spec.
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    try {
      if (!fs.fstatSync(fd).isFile()) { ctx.problems.push(`probe/${name}: not a regular file`); return undefined; }
      const buf = Buffer.alloc(MAX_FILE_BYTES + 1);
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      if (n > MAX_FILE_BYTES) { ctx.problems.push(`probe/${name}: over ${MAX_FILE_BYTES} bytes`); return undefined; }
      return buf.toString('utf8', 0, n);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    ctx.problems.push(`probe/${name}: unable to read: ${strerror(err)}`);
    return undefined;
  }
}

/** The one line of a value file: trailing newline (and spaces around) removed. */
function readLine(ctx: Ctx, name: string): Found<string> {
  const text = readText(ctx, name);
  if (text === undefined) return undefined;
  const line = text.trim();
  if (line.includes('\n')) { ctx.problems.push(`probe/${name}: ${quote(line)} - one line expected`); return undefined; }
  return line;
}

/** A decimal file, at least `min` and at most what a timer can wait. */
function readNumber(ctx: Ctx, name: string, min: number): Found<number> {
  const line = readLine(ctx, name);
  if (line === undefined) return undefined;
  if (!/^\d{1,10}$/.test(line) || Number(line) > MAX_MS) {
    ctx.problems.push(`probe/${name}: ${quote(line)} - not a decimal number up to ${MAX_MS}`);
    return undefined;
  }
  const value = Number(line);
  if (value < min) { ctx.problems.push(`probe/${name}: ${quote(line)} - must be at least ${min}`); return undefined; }
  return value;
}

/** The probe's target from `probe/<kind>`. */
function readTarget(ctx: Ctx, kind: (typeof KINDS)[number]): Found<ProbeTarget> {
  if (kind === 'check') return readCheck(ctx);
  const line = readLine(ctx, kind);
  if (line === undefined) return undefined;
  const parsed = kind === 'tcp' ? parseTcp(line) : parseHttp(line);
  if (typeof parsed === 'string') { ctx.problems.push(`probe/${kind}: ${quote(line)} - ${parsed}`); return undefined; }
  return parsed;
}

/** `probe/check` must be an executable regular file (a link to one is fine, as for `run`). */
function readCheck(ctx: Ctx): Found<ProbeTarget> {
  try {
    const st = fs.statSync(path.join(ctx.dir, 'check'));
    if (!st.isFile()) ctx.problems.push('probe/check: not a regular file');
    else if ((st.mode & 0o111) === 0) ctx.problems.push('probe/check: not executable');
    else return { kind: 'check', name: './probe/check' };
  } catch (err) {
    ctx.problems.push(`probe/check: unable to stat: ${strerror(err)}`);
  }
  return undefined;
}

/** `HOST:PORT` or `[IPv6]:PORT`, or what is wrong with it. */
export function parseTcp(text: string): Extract<ProbeTarget, { kind: 'tcp' }> | string {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (m === null) return 'expected HOST:PORT (an IPv6 address as [ADDRESS]:PORT)';
  const v6 = m[1];
  const host = v6 ?? m[2]!;
  const port = Number(m[3]);
  if (v6 !== undefined && !net.isIPv6(v6)) return `${quote(v6)} is not an IPv6 address`;
  if (v6 === undefined && !isHostName(host)) return `${quote(host)} is not a host name or an IPv4 address`;
  if (port < 1 || port > 65535) return `port ${port} is not between 1 and 65535`;
  return { kind: 'tcp', name: `tcp ${text}`, host, port };
}

/** `http://HOST[:PORT][/PATH]`, or what is wrong with it. */
export function parseHttp(text: string): Extract<ProbeTarget, { kind: 'http' }> | string {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(text)?.[1]?.toLowerCase();
  if (scheme !== 'http') return 'only http:// URLs are supported';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'not a valid URL';
  }
  if (url.username !== '' || url.password !== '') return 'credentials in the URL are not supported';
  const bare = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (bare === '') return 'no host';
  const port = url.port === '' ? 80 : Number(url.port);
  if (port < 1) return 'port 0 is not allowed';
  // URL has percent-encoded anything that could end the request line or a header.
  return { kind: 'http', name: url.href, host: bare, port, path: `${url.pathname}${url.search}`, hostHeader: url.host };
}

/** A DNS name (letters, digits, hyphens, dots) or a dotted IPv4 address. */
function isHostName(host: string): boolean {
  return host.length > 0 && host.length <= 253 && /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(host);
}

/** `http-status`: `NNN` or `NNN-NNN`, codes 100 to 599. */
function readStatusRange(ctx: Ctx): Found<{ min: number; max: number }> {
  const line = readLine(ctx, 'http-status');
  if (line === undefined) return undefined;
  const m = /^(\d{3})(?:\s*-\s*(\d{3}))?$/.exec(line);
  const min = Number(m?.[1]);
  const max = m?.[2] === undefined ? min : Number(m[2]);
  if (m === null || min < 100 || max > 599 || min > max) {
    ctx.problems.push(`probe/http-status: ${quote(line)} - expected a status code (200) or a range (200-399) within 100-599`);
    return undefined;
  }
  return { min, max };
}

/** `http-body`: the text, without one trailing newline. */
function readBodyText(ctx: Ctx): Found<Buffer> {
  const text = readText(ctx, 'http-body');
  if (text === undefined) return undefined;
  const body = text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
  const bytes = Buffer.from(body, 'utf8');
  if (bytes.length === 0 || bytes.length > MAX_BODY_TEXT) {
    ctx.problems.push(`probe/http-body: ${bytes.length} bytes - expected 1 to ${MAX_BODY_TEXT}`);
    return undefined;
  }
  return bytes;
}

/** A value as messages show it, shortened. */
function quote(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text);
}
