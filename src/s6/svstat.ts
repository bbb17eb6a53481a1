/**
 * What s6-svstat prints, as pure functions of a status record, the `down` file and the
 * clock: the legacy line (`up (pid 12) 3 seconds, ready 3 seconds`), the `-o` field list,
 * and the stamp rule t6's JSON object shares (servicejson.ts). No I/O here; client.ts reads
 * the files.
 *
 * The rules follow s6 2.11.3.2 (Debian bookworm), whose s6-svstat t6 is compared with:
 * no `pgid` in the legacy line, no "not started yet", `paused` is the raw flag, and `-o`
 * names match by prefix in table order. `pgid` (s6 ≥ 2.13) is accepted as an extra field.
 */
import type { SupervisorStatus } from './status.ts';
import { type Tain, tainSecondsBetween } from './tai.ts';
import { signalName } from './signals.ts';

/** Everything a status line depends on. */
export interface ServiceView {
  status: SupervisorStatus;
  /** No `DIR/down` file. */
  normallyUp: boolean;
  /** The time of reading (TAI64N). */
  now: Tain;
}

// The wait-status macros of Linux, on the 16-bit wstat s6 stores.
const wTermSig = (w: number): number => w & 0x7f;
const wIfSignaled = (w: number): boolean => wTermSig(w) !== 0 && wTermSig(w) !== 0x7f;
const wIfExited = (w: number): boolean => wTermSig(w) === 0;
const wExitStatus = (w: number): number => (w >> 8) & 0xff;

/** skalibs' sig_name: its table lists SIGPOLL before SIGIO, so 29 prints as `SIGPOLL`. */
export function skalibsSignalName(sig: number): string {
  return signalName(sig);
}

/** s6-svstat's "up": a pid that is not the finish script's. */
function isUp(s: SupervisorStatus): boolean {
  return s.pid !== 0 && !s.finishing;
}

/** s6-svstat replaces a stamp in the future by now (only `stamp`, not `readystamp`). */
export function effectiveStamp(v: ServiceView): Tain {
  const { stamp } = v.status;
  const future = stamp.sec > v.now.sec || (stamp.sec === v.now.sec && stamp.nano > v.now.nano);
  return future ? v.now : stamp;
}

/**
 * The default line (without the newline). With `numeric`, a signal prints as its number
 * (`-n`). The grammar, suffixes in this fixed order:
 * `up (pid P) S seconds[, normally down][, paused][, want down][, ready R seconds]`
 * `down (exitcode E|signal SIGX) S seconds[, normally up][, want up][, ready R seconds]`
 */
export function formatLegacy(v: ServiceView, numeric = false): string {
  const s = v.status;
  const up = isUp(s);
  let line: string;
  if (up) line = `up (pid ${s.pid}) `;
  else if (wIfSignaled(s.wstat)) line = `down (signal ${numeric ? wTermSig(s.wstat) : skalibsSignalName(wTermSig(s.wstat))}) `;
  else line = `down (exitcode ${wExitStatus(s.wstat)}) `;
  line += `${tainSecondsBetween(effectiveStamp(v), v.now)} seconds`;
  if (up && !v.normallyUp) line += ', normally down';
  if (!up && v.normallyUp) line += ', normally up';
  if (up && s.paused) line += ', paused';
  if (!up && s.wantUp) line += ', want up';
  if (up && !s.wantUp) line += ', want down';
  // A future readystamp would make s6 print a wrapped 64-bit number; t6 prints 0.
  if (s.ready) line += `, ready ${tainSecondsBetween(s.readyStamp, v.now)} seconds`;
  return line;
}

/** How each field prints, keyed by name. */
const FIELD_PRINTERS = {
  up: (v: ServiceView) => String(isUp(v.status)),
  wantedup: (v: ServiceView) => String(v.status.wantUp),
  normallyup: (v: ServiceView) => String(v.normallyUp),
  ready: (v: ServiceView) => String(v.status.pid !== 0 && v.status.ready),
  paused: (v: ServiceView) => String(v.status.paused),
  pid: (v: ServiceView) => String(pidOf(v.status)),
  exitcode: (v: ServiceView) => String(exitCodeOf(v.status)),
  signal: (v: ServiceView) => { const n = signumOf(v.status); return n < 0 ? 'NA' : skalibsSignalName(n); },
  signum: (v: ServiceView) => String(signumOf(v.status)),
  updownsince: (v: ServiceView) => taiText(effectiveStamp(v)),
  readysince: (v: ServiceView) => taiText(v.status.readyStamp),
  updownfor: (v: ServiceView) => String(tainSecondsBetween(effectiveStamp(v), v.now)),
  readyfor: (v: ServiceView) => String(tainSecondsBetween(v.status.readyStamp, v.now)),
  // s6 ≥ 2.13: the service is a session leader, so its pgid is its pid.
  pgid: (v: ServiceView) => String(pidOf(v.status)),
} as const satisfies Record<string, (v: ServiceView) => string>;

/** A field of `-o`. */
export type FieldName = keyof typeof FIELD_PRINTERS;

/**
 * Field names in s6 2.11.3.2's table order, which `-o` prefix matching follows
 * (`-o p` is `paused`, `-o re` is `ready`); `pgid` comes last so that every name bookworm
 * accepts still means the same field.
 */
export const FIELD_NAMES = Object.keys(FIELD_PRINTERS) as FieldName[];

/** The letter options of s6-svstat and the field each adds. */
export const FIELD_LETTERS = {
  u: 'up', w: 'wantedup', N: 'normallyup', r: 'ready', p: 'pid', g: 'pgid', e: 'exitcode', s: 'signal', t: 'updownfor',
} as const satisfies Record<string, FieldName>;

/** s6-svstat prints at most this many fields. */
export const MAX_FIELDS = 16;

/** A bad `-o` list; the message is s6-svstat's (it exits 100). */
export class FieldListError extends Error {
  override name = 'FieldListError';
}

/** Parses one `-o` argument (comma list) as bookworm does: each item is a prefix of a name. */
export function parseFieldList(list: string): FieldName[] {
  const out: FieldName[] = [];
  let rest = list;
  while (rest !== '') {
    const comma = rest.indexOf(',');
    const item = comma < 0 ? rest : rest.slice(0, comma);
    if (item === '') throw new FieldListError('invalid null option field');
    const name = FIELD_NAMES.find((n) => n.startsWith(item));
    if (name === undefined) throw new FieldListError(`invalid option field: ${item}`);
    out.push(name);
    rest = comma < 0 ? '' : rest.slice(comma + 1);
  }
  return out;
}

/** The fields, space-separated (without the newline). */
export function formatFields(v: ServiceView, fields: readonly FieldName[]): string {
  return fields.map((f) => FIELD_PRINTERS[f](v)).join(' ');
}

function pidOf(s: SupervisorStatus): number {
  return isUp(s) ? s.pid : -1;
}

function exitCodeOf(s: SupervisorStatus): number {
  return !isUp(s) && wIfExited(s.wstat) ? wExitStatus(s.wstat) : -1;
}

function signumOf(s: SupervisorStatus): number {
  return !isUp(s) && wIfSignaled(s.wstat) ? wTermSig(s.wstat) : -1;
}

/** tainFormat without its Buffer: `t6-svstat -a -o updownsince,readysince` formats two stamps per service. */
function taiText(t: Tain): string {
  return `@${t.sec.toString(16).padStart(16, '0')}${t.nano.toString(16).padStart(8, '0')}`;
}
