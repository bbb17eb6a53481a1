/**
 * The oneshot runner's wire format (runner.ts describes the protocol): the requests a
 * client may send, checked and typed, and what a refusal says. Shared by the server in
 * t6-svscan and by t6-rc's client (rc/oneshot.ts), so the two cannot drift apart.
 */
import { isSuperviseCommand } from '../s6/control.ts';
import type { WaitPhaseGoal } from '../s6/svwait.ts';

/** What to wait for after a control request's bytes: up, up and ready, down, down and finished. */
export type ControlGoal = WaitPhaseGoal;

/** How a control-and-wait ended. */
export interface ControlOutcome {
  reached: boolean;
  /** Failures seen (as s6-svwait counts them). */
  failures: number;
  timedOut: boolean;
}

/**
 * The longest request line accepted: a line is held whole until its newline comes, and a
 * request (argv, env) never needs more (an environment of a few hundred variables fits).
 */
export const MAX_REQUEST = 64 * 1024;

/** Why the runner refused a request (the `reason` of an error reply). */
export type RefusalReason = 'bad-request' | 'not-served' | 'not-supervised' | 'spawn-failed' | 'too-many-clients';

/** Every RefusalReason, for a client checking what it was sent. */
export const REFUSAL_REASONS: readonly RefusalReason[] = ['bad-request', 'not-served', 'not-supervised', 'spawn-failed', 'too-many-clients'];

/** A refused request: the reason for programs, the message for people. */
export interface Refusal {
  reason: RefusalReason;
  message: string;
}

/** A validated request. */
export interface RunRequest {
  argv: string[];
  cwd: string;
  env: string[] | null;
  setenv: string[];
  timeoutMs: number;
}

/** A validated control-and-wait request. */
export interface ControlRequest {
  svc: string;
  dir: string;
  wait: ControlGoal | undefined;
  timeoutMs: number;
}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string' && !s.includes('\0'));

/** Parses and checks one request line; returns the request or the reason it is refused. */
export function parseRequest(line: string): RunRequest | string {
  const r = parseJsonObject(line);
  if (typeof r === 'string') return r;
  if (!isStringList(r.argv) || r.argv.length === 0 || r.argv[0] === '') return 'argv must be a non-empty list of strings';
  if (typeof r.cwd !== 'string' || !r.cwd.startsWith('/') || r.cwd.includes('\0')) return 'cwd must be an absolute path';
  if (r.env !== null && !(isStringList(r.env) && r.env.every((e) => e.includes('=')))) return 'env must be null or a list of K=V strings';
  const setenv = r.setenv ?? [];
  if (!(isStringList(setenv) && setenv.every((e) => e.indexOf('=') > 0))) return 'setenv must be a list of K=V strings';
  const t = r.timeoutMs ?? 0;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 2 ** 31 - 1) return 'timeoutMs must be an integer between 0 and 2^31-1';
  return { argv: r.argv, cwd: r.cwd, env: r.env as string[] | null, setenv, timeoutMs: t };
}

/** The `id` of a session request (a non-negative integer), or undefined. */
export function requestId(line: string): number | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const id = (v as Record<string, unknown>).id;
  return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? id : undefined;
}

/** A line that is one JSON object: the object, or why it is not one. */
export function parseJsonObject(line: string, what = 'request'): Record<string, unknown> | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return `${what} is not valid JSON`;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return `${what} is not a JSON object`;
  return v as Record<string, unknown>;
}

/** Is this request line `{"KEY":true}` and nothing else (but a session's id)? */
function isFlagRequest(line: string, key: string): boolean {
  const v = parseJsonObject(line);
  return typeof v !== 'string' && v[key] === true && Object.keys(v).every((k) => k === key || k === 'id');
}

/** Is this request line `{"scan":true}` (and nothing else)? */
export function isScanRequest(line: string): boolean {
  return isFlagRequest(line, 'scan');
}

/** `{"metrics":true}` (with an id in a session): t6 metrics asking for t6-svscan's own figures. */
export function isMetricsRequest(line: string): boolean {
  return isFlagRequest(line, 'metrics');
}

/** A control request (has `svc`): the request, or why it is refused; undefined for any other request. */
export function parseControlRequest(line: string): ControlRequest | string | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !('svc' in v)) return undefined;
  const r = v as Record<string, unknown>;
  if (typeof r.svc !== 'string' || r.svc === '' || ![...r.svc].every(isSuperviseCommand)) return 'svc must be a string of s6-svc control bytes';
  if (typeof r.dir !== 'string' || !r.dir.startsWith('/') || r.dir.includes('\0')) return 'dir must be an absolute path';
  const wait = r.wait ?? undefined;
  if (wait !== undefined && !(typeof wait === 'string' && ['u', 'U', 'd', 'D'].includes(wait))) return 'wait must be one of u, U, d, D';
  const t = r.timeoutMs ?? 0;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 2 ** 31 - 1) return 'timeoutMs must be an integer between 0 and 2^31-1';
  return { svc: r.svc, dir: r.dir, wait: wait as ControlGoal | undefined, timeoutMs: t };
}

/** A t6-rc transition, as a client reports it for the event stream. */
export interface RcEventFields {
  kind: 'rc';
  service: string;
  action: 'start' | 'stop';
  phase: 'requested' | 'done' | 'failed';
  reason?: string;
}

/** The longest service name or failure reason an rc event may carry. */
const MAX_RC_FIELD = 1024;

/**
 * An event request (`{"event":{…}}`: a t6-rc transition for the event stream): the event,
 * or why it is refused; undefined for any other request.
 */
export function parsePublishRequest(line: string): RcEventFields | string | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined; // not ours: parseRequest says what is wrong
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !('event' in v)) return undefined;
  const e = (v as { event: unknown }).event;
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return 'event must be a JSON object';
  const r = e as Record<string, unknown>;
  const text = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length <= MAX_RC_FIELD && !x.includes('\0');
  if (r.kind !== 'rc') return 'event kind must be "rc"';
  if (!text(r.service)) return `event service must be a name of 1 to ${MAX_RC_FIELD} characters`;
  if (r.action !== 'start' && r.action !== 'stop') return 'event action must be start or stop';
  if (r.phase !== 'requested' && r.phase !== 'done' && r.phase !== 'failed') return 'event phase must be requested, done or failed';
  if (r.reason !== undefined && !text(r.reason)) return `event reason must be a text of 1 to ${MAX_RC_FIELD} characters`;
  return { kind: 'rc', service: r.service, action: r.action, phase: r.phase, ...(r.reason === undefined ? {} : { reason: r.reason as string }) };
}
