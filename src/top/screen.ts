/**
 * The screens of `t6 top`, as lines of text: the full-screen view (a header line with the
 * counts, the column titles, as many rows as fit, scrolled so that the selection shows, a
 * message line and the keys with the sample count) and the plain table printed when
 * stdout is not a terminal. Every line is exactly `width` cells; the terminal's escape
 * sequences are the CLI's business (`highlight` says which lines to show reversed).
 */
import type { Row, TopModel } from './model.ts';
import { cellWidth, fit, formatHeader, formatRow, layout } from './format.ts';

/** What the screen shows besides the model. */
export interface ScreenInfo {
  width: number;
  height: number;
  nowMs: number;
  scandir: string;
  /** How many times /proc was read (shown so that anyone can check the once-a-second bound). */
  samples: number;
  /** false: the status files' pids are not this pid namespace's (sampler.ts). */
  pidsVerified: boolean | undefined;
  /** The filter being typed, or undefined. */
  editing: string | undefined;
  /** The last thing done or failed ('' for none). */
  message: string;
}

/** A screen: its lines, and which of them to show reversed. */
export interface Screen {
  lines: string[];
  highlight: number[];
}

/** The lines above and below the rows. */
const CHROME = 4;
const NOT_OUR_PIDS = "CPU/RSS ?: pids are not this pid namespace's (run top where t6-svscan runs)";
const KEYS_HELP = 'jk/↑↓ move  s sort  / filter  u up  d down  r restart  q quit';

/**
 * Two texts on one line of `width` cells, the second flush right; without room for both,
 * the first is cut (the second says what changes: the time, the sample count).
 */
function spread(left: string, right: string, width: number): string {
  const room = width - cellWidth(right) - 1;
  if (room < 1) return fit(right, width);
  return fit(left, room) + ' ' + right;
}

function header(model: TopModel, info: Pick<ScreenInfo, 'nowMs' | 'scandir'>, width: number): string {
  const c = model.counts();
  const counts = `${c.total} services: ${c.up} up, ${c.down} down, ${c.other} other`;
  const right = `sort: ${model.sort}  ${new Date(info.nowMs).toISOString().slice(11, 19)}`;
  // The scan directory takes what room is left, cut first.
  const room = width - cellWidth(counts) - cellWidth(right) - 4;
  const name = room >= 12 ? `${fit(`t6 top ${info.scandir}`, room).trimEnd()}  ` : '';
  return spread(name + counts, right, width);
}

/** The rows a screen `height` lines high shows: scrolled so that the selection is on it, as near the middle as the ends allow. */
export function shownRows(model: TopModel, height: number, nowMs: number): { visible: Row[]; first: number; rows: Row[]; selected: number } {
  const visible = model.visible(nowMs);
  const page = Math.max(0, height - CHROME);
  const selected = model.selectedIndex(visible);
  const first = Math.max(0, Math.min(selected - Math.floor(page / 2), visible.length - page));
  return { visible, first, rows: visible.slice(first, first + page), selected };
}

/** The full-screen view in `info.width` × `info.height` cells (at least 1 × 1). */
export function renderScreen(model: TopModel, info: ScreenInfo): Screen {
  const width = Math.max(1, info.width);
  const height = Math.max(1, info.height);
  const { visible, first, rows, selected } = shownRows(model, height, info.nowMs);
  const widths = layout(width, Math.max(0, ...visible.map((r) => cellWidth(r.name))));
  const lines = [header(model, info, width), fit(formatHeader(widths), width)];
  const highlight = [1];
  rows.forEach((row, i) => {
    const isSelected = first + i === selected;
    if (isSelected) highlight.push(lines.length);
    lines.push(fit(formatRow(row, widths, info.nowMs, isSelected), width));
  });
  while (lines.length < height - 2) lines.push(' '.repeat(width));
  let status = info.message;
  if (info.editing !== undefined) status = `filter: ${info.editing}_`;
  else if (model.filter !== '') status = `filter: ${model.filter} (${visible.length} of ${model.rows.length} shown; Esc clears)${status === '' ? '' : `  ${status}`}`;
  if (info.pidsVerified === false) status = `${status}${status === '' ? '' : '  '}${NOT_OUR_PIDS}`;
  lines.push(fit(status, width));
  lines.push(spread(KEYS_HELP, `samples ${info.samples}`, width));
  return { lines: lines.slice(0, height), highlight: highlight.filter((i) => i < height) };
}

/**
 * The plain table: the header line, the column titles and every row shown, `width` cells
 * each, and a last line when the pids are another namespace's.
 */
export function renderTable(model: TopModel, info: Pick<ScreenInfo, 'width' | 'nowMs' | 'scandir' | 'samples' | 'pidsVerified'>): string[] {
  const visible = model.visible(info.nowMs);
  const widths = layout(info.width, Math.max(0, ...visible.map((r) => cellWidth(r.name))));
  const head = header(model, info, info.width);
  const note = info.pidsVerified === false ? [fit(NOT_OUR_PIDS, info.width)] : [];
  return [head, fit(formatHeader(widths), info.width), ...visible.map((r) => fit(formatRow(r, widths, info.nowMs, false), info.width)), ...note];
}
