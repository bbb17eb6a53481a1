/**
 * The servicedir files t6 adds to s6's (DESIGN.md decision 12; issue 14): readiness by
 * sd_notify or a probe, restart backoff, a watchdog, giving up, and t6-rc's settle time.
 * One value per file, as s6 does it. t6-rc-compile checks them here, once, so that a bad
 * value is refused with the file and the problem named instead of being found by the
 * supervisor at run time; they are then copied into the compiled servicedir, where
 * t6-svscan reads them (every file but up-settle, which is t6-rc's own and goes into the
 * database too, and is copied so that tools reading the servicedir see it).
 *
 * All of them are for longruns: in a oneshot or a bundle they are a problem (there is no
 * s6-rc source that holds them to stay compatible with).
 */
import { readProbeSpec } from '../supervise/probe-spec.ts';
import fs from 'node:fs';
import { type FileData, type Report, uintOf } from './definition-files.ts';
import { strerror } from '../sys/errors.ts';

/** Settings in milliseconds (unsigned decimal, at most 2^31-1: what a timer can hold). */
const MS_FILES = ['watchdog-timeout', 'backoff-initial', 'backoff-max', 'backoff-settle', 'give-up-window', 'up-settle'] as const;
/** The longest a timer can wait, in ms (setTimeout's bound). */
const MAX_MS = 0x7fffffff;

/** The files of t6's additions, each copied into the compiled servicedir as checked. */
export const POLICY_FILES = ['flag-sd-notify', ...MS_FILES, 'backoff-factor', 'give-up-deaths'] as const;
/** The directory of a readiness probe (copied whole). */
export const PROBE_DIR = 'probe';
/** What makes a probe: exactly one of these in probe/. */
const PROBE_KINDS = ['tcp', 'http', 'check'] as const;
/** Settings where 0 means nothing that can work. */
const NOT_ZERO: ReadonlySet<string> = new Set(['watchdog-timeout', 'give-up-window', 'give-up-deaths']);

/** Every name t6 adds to a servicedir, for the messages about oneshots and bundles. */
export const T6_LONGRUN_ONLY: readonly string[] = [...POLICY_FILES, PROBE_DIR];

/** What the checks found that the compiler needs beyond the files themselves. */
export interface PolicySettings {
  /** up-settle, in ms; undefined without the file (or when it is invalid: reported). */
  upSettle: number | undefined;
  /** flag-sd-notify is there: readiness comes through NOTIFY_SOCKET. */
  sdNotify: boolean;
}

/**
 * Checks the files of POLICY_FILES that `fileData` holds (read by the source reader),
 * rewriting each number as `N\n`; reports each problem naming the file.
 */
export function checkPolicyFiles(fileData: Map<string, FileData>, problem: Report): PolicySettings {
  const out: PolicySettings = { upSettle: undefined, sdNotify: false };
  const flag = fileData.get('flag-sd-notify');
  if (flag !== undefined) {
    out.sdNotify = true;
    if (flag.data.length > 0) problem('flag-sd-notify', `must be empty (its presence is the setting), found ${flag.data.length} byte${flag.data.length === 1 ? '' : 's'}`);
  }
  const numbers = new Map<string, number>();
  for (const f of [...MS_FILES, 'give-up-deaths'] as const) {
    const fd = fileData.get(f);
    if (fd === undefined) continue;
    const v = uintOf(fd.data.toString('utf8'), f, problem, MAX_MS);
    if (v === undefined) continue;
    if (v === 0 && NOT_ZERO.has(f)) { problem(f, `must be at least 1${f === 'give-up-deaths' ? '' : ' ms'}`); continue; }
    fileData.set(f, { ...fd, data: Buffer.from(`${v}\n`) });
    numbers.set(f, v);
  }
  out.upSettle = numbers.get('up-settle');
  const initial = numbers.get('backoff-initial');
  const max = numbers.get('backoff-max');
  if (initial !== undefined && max !== undefined && max < initial) problem('backoff-max', `${max} ms is below backoff-initial (${initial} ms)`);
  const factor = fileData.get('backoff-factor');
  if (factor !== undefined) {
    const text = decimalOf(factor.data.toString('utf8'), problem);
    if (text !== undefined) fileData.set('backoff-factor', { ...factor, data: Buffer.from(`${text}\n`) });
  }
  return out;
}

/** backoff-factor: a decimal number (digits, optionally a point and digits), at least 1. */
function decimalOf(raw: string, problem: Report): string | undefined {
  const t = raw.replace(/\n+$/, '');
  if (!/^\d+(\.\d+)?$/.test(t)) {
    problem('backoff-factor', `${JSON.stringify(t.slice(0, 40))} is not a decimal number (such as 2 or 1.5)`);
    return undefined;
  }
  const v = Number(t);
  if (!Number.isFinite(v)) { problem('backoff-factor', `${t.slice(0, 40)}… is too large`); return undefined; }
  if (v < 1) { problem('backoff-factor', `${t} is below 1: the delay would shrink with every death`); return undefined; }
  return t;
}

/**
 * probe/ (already known to be a directory): exactly one of tcp, http, check, and then every
 * setting as the supervisor will read it (readProbeSpec), each problem naming its file.
 */
export function checkProbeDir(dir: string, problem: Report): void {
  let names: string[];
  try {
    names = fs.readdirSync(`${dir}/${PROBE_DIR}`);
  } catch (err) {
    problem(PROBE_DIR, `unable to read: ${strerror(err)}`);
    return;
  }
  const kinds = PROBE_KINDS.filter((k) => names.includes(k));
  if (kinds.length !== 1) {
    problem(PROBE_DIR, `must hold exactly one of ${PROBE_KINDS.join(', ')} (the kind of probe); found ${kinds.length === 0 ? 'none' : kinds.join(', ')}`);
    return;
  }
  const read = readProbeSpec(dir);
  if (read.problem !== undefined) problem(PROBE_DIR, read.problem);
}
