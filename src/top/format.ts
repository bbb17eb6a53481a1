/**
 * Rows of `t6 top` as text of a fixed width, in terminal cells: every line is exactly as
 * wide as asked (padded or cut), whatever a service's name or log line holds. Control
 * characters from a log line are shown as `?` (an escape sequence in a log must not drive
 * the terminal), and East Asian wide characters count two cells.
 */
import { type Row, shownState, uptimeMs } from './model.ts';

/** A column: its title, width in cells (0: takes what is left), alignment. */
interface Column {
  readonly title: string;
  readonly width: number;
  readonly right: boolean;
}

/** The columns after the selection mark, in order; NAME's width is decided per screen. */
const COLUMNS = {
  name: { title: 'NAME', width: 14, right: false },
  state: { title: 'STATE', width: 14, right: false },
  ready: { title: 'RDY', width: 3, right: false },
  uptime: { title: 'UPTIME', width: 6, right: true },
  restarts: { title: 'RST', width: 4, right: true },
  cpu: { title: 'CPU%', width: 5, right: true },
  rss: { title: 'RSS', width: 6, right: true },
  log: { title: 'LAST LOG LINE', width: 0, right: false },
} as const satisfies Record<string, Column>;
type ColumnName = keyof typeof COLUMNS;
const ORDER = Object.keys(COLUMNS) as ColumnName[];

/** The narrowest screen rows are laid out for (narrower ones are cut). */
export const MIN_WIDTH = 60;
/** NAME grows with the screen up to this many cells, leaving the log at least LOG_MIN. */
const NAME_MAX = 32;
const LOG_MIN = 20;

/** Cells a code point takes: 0 for combining marks and zero-width ones, 2 for wide (CJK, emoji), else 1. */
function cells(cp: number): number {
  if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  if ((cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) || (cp >= 0xac00 && cp <= 0xd7a3)
    || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60)
    || (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1faff) || (cp >= 0x20000 && cp <= 0x3fffd)) return 2;
  return 1;
}

/** Text safe to print: control characters become `?`, a tab a space. */
export function sanitize(text: string): string {
  return text.replace(/\t/g, ' ').replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
}

/** Terminal cells `text` takes. */
export function cellWidth(text: string): number {
  let n = 0;
  for (const ch of text) n += cells(ch.codePointAt(0)!);
  return n;
}

/** `text` in exactly `width` cells: padded with spaces (on the left if `right`), or cut with `…`. */
export function fit(text: string, width: number, right = false): string {
  if (width <= 0) return '';
  let w = cellWidth(text);
  if (w <= width) return right ? ' '.repeat(width - w) + text : text + ' '.repeat(width - w);
  let out = '';
  w = 0;
  for (const ch of text) {
    const c = cells(ch.codePointAt(0)!);
    if (w + c > width - 1) break;
    out += ch;
    w += c;
  }
  return `${out}…${' '.repeat(width - 1 - w)}`;
}

/** A duration in at most 6 cells: `42s`, `12m05s`, `5h03m`, `12d05h`, `999d+`. */
export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const two = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  const d = Math.floor(s / 86_400);
  return d > 999 ? '999d+' : `${d}d${two(Math.floor(s / 3600) % 24)}h`;
}

/** A size in at most 6 cells: `512K`, `12.3M`, `1.20G`. */
export function formatBytes(n: number): string {
  const k = n / 1024;
  if (k < 1000) return `${Math.round(k)}K`;
  const m = k / 1024;
  if (m < 100) return `${m.toFixed(1)}M`;
  if (m < 1000) return `${Math.round(m)}M`;
  const g = m / 1024;
  return g < 100 ? `${g.toFixed(2)}G` : `${Math.round(g)}G`;
}

/** The widths of the columns on a screen `width` cells wide (the mark takes one cell and each column a space before it). */
export function layout(width: number, longestName: number): Record<ColumnName, number> {
  const fixed = ORDER.reduce((sum, c) => sum + (c === 'name' || c === 'log' ? 0 : COLUMNS[c].width + 1), 1);
  const room = Math.max(width, MIN_WIDTH) - fixed - 2;
  const name = Math.max(COLUMNS.name.width, Math.min(longestName, NAME_MAX, room - LOG_MIN));
  const widths = Object.fromEntries(ORDER.map((c) => [c, COLUMNS[c].width])) as Record<ColumnName, number>;
  return { ...widths, name, log: Math.max(0, room - name) };
}

/** The cells of one row, by column. */
function cellsOf(row: Row, nowMs: number): Record<ColumnName, string> {
  const f = row.facts;
  const up = uptimeMs(row, nowMs);
  const state = shownState(row);
  return {
    name: row.name,
    state: f.lastExit !== null && (state === 'down' || state === 'starting' || state === 'throttled' || state === 'gave-up')
      ? `${state} ${f.lastExit.signal?.replace(/^SIG/, '') ?? f.lastExit.code}` : state,
    // Readiness counts only while run runs (as t6-svstat's): nothing to say of a service that is down.
    ready: f.state !== 'up' || f.ready === null ? '' : f.ready ? 'yes' : 'no',
    uptime: up === undefined ? '' : formatDuration(up),
    restarts: f.restarts === null ? '' : f.restarts < 10_000 ? String(f.restarts) : `${Math.min(999, Math.floor(f.restarts / 1000))}k`,
    cpu: row.usage === undefined ? (f.state === 'up' ? '?' : '') : row.usage.cpuPercent.toFixed(1),
    rss: row.usage === undefined ? (f.state === 'up' ? '?' : '') : formatBytes(row.usage.rssBytes),
    log: sanitize(row.logLine ?? ''),
  };
}

function join(widths: Record<ColumnName, number>, mark: string, text: Record<ColumnName, string>): string {
  return mark + ORDER.map((c) => ` ${fit(text[c], widths[c], COLUMNS[c].right)}`).join('');
}

/** The column titles, in `widths`. */
export function formatHeader(widths: Record<ColumnName, number>): string {
  return join(widths, ' ', Object.fromEntries(ORDER.map((c) => [c, COLUMNS[c].title])) as Record<ColumnName, string>);
}

/** One row in `widths`, marked `>` when selected. */
export function formatRow(row: Row, widths: Record<ColumnName, number>, nowMs: number, selected: boolean): string {
  return join(widths, selected ? '>' : ' ', cellsOf(row, nowMs));
}
