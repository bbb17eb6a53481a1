/**
 * Reading logdirs back: the files of a logdir in order (archives `@….s`/`@….u` by name,
 * which is by time, then `current`), lines with their timestamp decoded (a leading TAI64N
 * `@<24hex> ` or a local ISO `YYYY-MM-DD HH:MM:SS.nnnnnnnnn  ` stamp), and several logdirs
 * merged by time (each logdir keeps its own order; an unstamped line goes with the line
 * before it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { tainParse, tainToUnixMs, type Tain } from '../s6/tai.ts';
import { formatLocalIso } from './engine.ts';

const ARCHIVE = /^@[0-9a-fA-F]{24}\.[su]$/;
const TAI_STAMP = /^@[0-9a-fA-F]{24} /;
const ISO_STAMP = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{9})  /;

/** One log line read back. */
export interface LogLine {
  readonly dir: string;
  readonly file: string;
  /** Unix seconds and nanoseconds of the line's stamp (or of the stamped line before it); undefined if none yet. */
  readonly sec: number | undefined;
  readonly nano: number;
  /** The TAI64N label if the line had one. */
  readonly tai: string | undefined;
  /** The line without its stamps. */
  readonly text: string;
  /** Whether the line carried a stamp itself. */
  readonly stamped: boolean;
}

/** The files of a logdir, oldest first: archives by name, then current. */
export function logFiles(dir: string): string[] {
  const names = fs.readdirSync(dir).filter((n) => ARCHIVE.test(n)).sort((a, b) => (a.slice(1, 25).toLowerCase() < b.slice(1, 25).toLowerCase() ? -1 : 1));
  if (fs.existsSync(path.join(dir, 'current'))) names.push('current');
  return names;
}

/** Decodes the stamps at the start of one line; `prev` is the stamp carried from earlier lines. */
export function parseLine(dir: string, file: string, raw: string, prev: { sec: number | undefined; nano: number }): LogLine {
  let text = raw;
  let tai: string | undefined;
  let sec = prev.sec;
  let nano = prev.nano;
  let stamped = false;
  if (TAI_STAMP.test(text)) {
    tai = text.slice(0, 25);
    const t = tainParse(tai)!;
    const ms = tainToUnixMs({ sec: t.sec, nano: 0 });
    sec = ms / 1000; nano = t.nano;
    text = text.slice(26);
    stamped = true;
  }
  const m = ISO_STAMP.exec(text);
  if (m !== null) {
    if (!stamped) {
      const d = new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
      sec = Math.floor(d.getTime() / 1000); nano = +m[7]!;
      stamped = true;
    }
    text = text.slice(m[0].length);
  }
  return { dir, file, sec, nano, tai, text, stamped };
}

function before(a: LogLine, b: LogLine): boolean {
  if (a.sec === undefined) return true;
  if (b.sec === undefined) return false;
  return a.sec < b.sec || (a.sec === b.sec && a.nano <= b.nano);
}

/** Merges several logdirs' lines by time; each one's own order is kept. */
export function mergeByTime(streams: readonly (readonly LogLine[])[]): LogLine[] {
  if (streams.length === 1) return [...streams[0]!];
  const pos = streams.map(() => 0);
  const out: LogLine[] = [];
  for (;;) {
    let best = -1;
    for (let i = 0; i < streams.length; i++) {
      const line = streams[i]![pos[i]!];
      if (line === undefined) continue;
      if (best < 0 || !before(streams[best]![pos[best]!]!, line) && before(line, streams[best]![pos[best]!]!)) best = i;
    }
    if (best < 0) return out;
    out.push(streams[best]![pos[best]!++]!);
  }
}

/** The line for people: stamp in local time (as s6-tai64nlocal prints it), then the text. */
export function formatHuman(line: LogLine, withDir: boolean): string {
  const where = withDir ? `${line.dir}: ` : '';
  if (!line.stamped || line.sec === undefined) return `${where}${line.text}\n`;
  const t: Tain = { sec: BigInt(Math.floor(line.sec)) + (1n << 62n) + 37n, nano: line.nano };
  return `${where}${formatLocalIso(t)} ${line.text}\n`;
}

/** The line for programs: one JSON object (time in UTC, RFC 3339 with nanoseconds). */
export function formatJson(line: LogLine): string {
  let time: string | null = null;
  if (line.stamped && line.sec !== undefined) {
    const iso = new Date(line.sec * 1000).toISOString(); // …SS.000Z
    time = `${iso.slice(0, 19)}.${String(line.nano).padStart(9, '0')}Z`;
  }
  return `${JSON.stringify({ dir: line.dir, file: line.file, time, tai: line.tai ?? null, line: line.text })}\n`;
}
