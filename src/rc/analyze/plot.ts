/**
 * `t6 analyze plot`: a record as an SVG timeline, to be read without its numbers. At the top
 * the kernel's `Run /sbin/init` (a dashed line) and stage 1's steps (grey bars); below, one
 * row per transition in the order they were launched: a bar from requested to done, lighter
 * while it waited for its supervisor or the runner, middle while a oneshot's script ran,
 * full while a longrun was up but not yet ready; orange for oneshots, blue for longruns.
 * The critical chain is outlined and joined by arrows from each gate to what it let start.
 */
import type { ServiceTiming, TimingRecord } from '../timings.ts';
import { criticalChain } from './critical-chain.ts';
import { doneAt, formatMs, gatesOf, kernelInitLine, originOf, tookMs } from './model.ts';
import { el, esc, text, textWidth, tickLabel, tickStep } from './svg.ts';

const WIDTH = 1200;
const MARGIN = 24;
const ROW = 22;
const BAR = 14;
const HEADER = 64;
const AXIS = 22;
const LEGEND = 70;
const FONT = 'font-family="sans-serif"';
const COLOUR = { oneshot: '#d9822b', longrun: '#2f6fbf' } as const;
const FAILED = '#c0392b';
const CHAIN = '#222222';

/** Where things go: time → x, and the rows' tops. */
interface Layout {
  x(mono: number): number;
  origin: number;
  end: number;
  stagesTop: number;
  servicesTop: number;
  height: number;
}

function layoutOf(r: TimingRecord): Layout {
  const origin = originOf(r).mono;
  const ends = [r.ended.mono, ...r.services.map((t) => Math.max(doneAt(t).mono, t.ended.mono)), ...r.stages.map((s) => s.end)];
  const end = Math.max(origin + 1, ...ends);
  // The right fifth stays free for the labels of the last bars.
  const scale = (WIDTH - 2 * MARGIN) * 0.8 / (end - origin);
  const stagesTop = HEADER + AXIS;
  const servicesTop = stagesTop + r.stages.length * ROW + (r.stages.length > 0 ? 8 : 0);
  return { x: (mono) => MARGIN + (mono - origin) * scale, origin, end, stagesTop, servicesTop, height: servicesTop + Math.max(1, r.services.length) * ROW + 12 + LEGEND };
}

/** The SVG document of a record. */
export function plotSvg(r: TimingRecord): string {
  const l = layoutOf(r);
  const chain = new Set(criticalChain(r).links.map((c) => c.name));
  const rows = r.services;
  const body = [
    el('rect', { x: 0, y: 0, width: WIDTH, height: l.height, fill: '#ffffff' }),
    header(r, l),
    axis(l),
    ...r.stages.map((s, i) => stageRow(s.name, l.x(s.start), l.x(s.end), l.stagesTop + i * ROW, s.end - s.start)),
    kernelLine(r, l),
    chainArrows(r, l, chain),
    ...rows.map((t, i) => serviceRow(t, l, l.servicesTop + i * ROW, chain.has(t.name) && t.failure === undefined)),
    legend(l.height - LEGEND + 10, r.stages.length > 0),
  ].join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${Math.round(l.height)}" viewBox="0 0 ${WIDTH} ${Math.round(l.height)}">\n`
    + `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="${CHAIN}"/></marker></defs>\n${body}\n</svg>\n`;
}

function header(r: TimingRecord, l: Layout): string {
  const when = new Date(r.started.real).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const what = r.kind === 'boot' ? `Boot of ${when}` : `t6-rc change ${r.seq} (${r.request.up ? 'up' : 'down'}: ${r.request.names.join(' ') || 'everything up'}) of ${when}`;
  const doneBy = formatMs(Math.max(0, ...r.services.map((t) => doneAt(t).mono - l.origin)));
  const failed = r.services.filter((t) => t.failure !== undefined).length;
  const sub = `${r.services.length} transition${r.services.length === 1 ? '' : 's'}, all done at ${doneBy} after ${originOf(r).what}${failed > 0 ? `; ${failed} failed` : ''}`;
  return [text(MARGIN, 26, what, { 'font-size': 17, 'font-weight': 'bold', 'font-family': 'sans-serif', fill: '#111' }),
    text(MARGIN, 46, sub, { 'font-size': 12, 'font-family': 'sans-serif', fill: '#444' })].join('\n');
}

/** Time labels along the top and light lines down the whole chart. */
function axis(l: Layout): string {
  const step = tickStep(l.end - l.origin);
  const out: string[] = [];
  for (let ms = 0; l.origin + ms <= l.end + step / 2; ms += step) {
    const x = l.x(l.origin + ms);
    out.push(el('line', { x1: x, y1: HEADER + 6, x2: x, y2: l.height - LEGEND, stroke: '#e3e3e3', 'stroke-width': 1 }));
    out.push(text(x, HEADER + 2, tickLabel(ms, step), { 'font-size': 11, 'font-family': 'sans-serif', fill: '#666', 'text-anchor': 'middle' }));
  }
  return `<g class="axis">${out.join('')}</g>`;
}

function stageRow(name: string, x1: number, x2: number, top: number, ms: number): string {
  const w = Math.max(1, x2 - x1);
  return `<g class="stage">${el('rect', { x: x1, y: top + (ROW - BAR) / 2, width: w, height: BAR, fill: '#9a9a9a', rx: 2 }, `<title>${esc(`${name}: ${formatMs(ms)}`)}</title>`)}`
    + `${label(`${name} ${formatMs(ms)}`, x1, x1 + w, top + ROW / 2 + 4, '#555')}</g>`;
}

function kernelLine(r: TimingRecord, l: Layout): string {
  if (r.kernelInit === undefined) return '';
  const x = l.x(r.kernelInit);
  return `<g class="kernel">${el('line', { x1: x, y1: HEADER + 8, x2: x, y2: l.height - LEGEND, stroke: FAILED, 'stroke-width': 1.5, 'stroke-dasharray': '5 3' })}`
    + `${text(x + 4, HEADER + AXIS - 4, `kernel: ${kernelInitLine(r)}`, { 'font-size': 11, 'font-family': 'sans-serif', fill: FAILED })}</g>`;
}

/** A label beside a bar: after it when it fits, else before it. */
function label(content: string, x1: number, x2: number, baseline: number, fill: string): string {
  const after = x2 + 6 + textWidth(content, 12) < WIDTH - 4;
  return text(after ? x2 + 6 : x1 - 6, baseline, content, { 'font-size': 12, 'font-family': 'sans-serif', fill, 'text-anchor': after ? 'start' : 'end' });
}

/** One transition: its three segments, outlined when on the critical chain, red when failed. */
function serviceRow(t: ServiceTiming, l: Layout, top: number, onChain: boolean): string {
  const colour = COLOUR[t.type];
  const req = t.requested.mono;
  const done = doneAt(t).mono;
  const spawned = Math.min(Math.max(t.spawned?.mono ?? req, req), done);
  const up = Math.min(Math.max((t.direction === 'up' ? t.up?.mono : undefined) ?? done, spawned), done);
  const y = top + (ROW - BAR) / 2;
  const seg = (from: number, to: number, opacity: number, what: string): string =>
    to > from ? el('rect', { x: l.x(from), y, width: Math.max(0.5, l.x(to) - l.x(from)), height: BAR, fill: colour, 'fill-opacity': opacity }, `<title>${esc(`${t.name}: ${what} ${formatMs(to - from)}`)}</title>`) : '';
  const x1 = l.x(req);
  const x2 = Math.max(l.x(done), x1 + 1);
  const outline = el('rect', {
    x: x1, y, width: x2 - x1, height: BAR, fill: done > req ? 'none' : colour, rx: 1,
    stroke: t.failure !== undefined ? FAILED : onChain ? CHAIN : colour, 'stroke-width': t.failure !== undefined || onChain ? 1.6 : 0.8,
  });
  const name = `${t.name}${t.direction === 'down' ? ' (stop)' : ''} ${formatMs(tookMs(t))}${t.failure === undefined ? '' : ' FAILED'}`;
  return `<g class="service" data-name="${esc(t.name)}" data-type="${t.type}">`
    + seg(req, spawned, 0.3, 'waiting to be spawned') + seg(spawned, up, 0.6, t.type === 'oneshot' ? 'script running' : 'starting')
    + seg(up, done, 1, t.direction === 'up' ? 'up, getting ready' : 'stopping') + outline
    + label(name, x1, x2, top + ROW / 2 + 4, t.failure !== undefined ? FAILED : '#111') + '</g>';
}

/** An arrow from each gate on the chain (where it was done) to what it let start. */
function chainArrows(r: TimingRecord, l: Layout, chain: ReadonlySet<string>): string {
  const row = new Map(r.services.map((t, i) => [t, l.servicesTop + i * ROW + ROW / 2]));
  const out: string[] = [];
  for (const t of r.services) {
    if (!chain.has(t.name)) continue;
    const gate = gatesOf(r, t).filter((g) => chain.has(g.name)).sort((a, b) => doneAt(b).mono - doneAt(a).mono)[0];
    if (gate === undefined) continue;
    const x1 = l.x(doneAt(gate).mono);
    const x2 = Math.max(l.x(t.requested.mono), x1 + 6);
    const y1 = row.get(gate)!;
    const y2 = row.get(t)!;
    out.push(el('path', { d: `M${x1.toFixed(1)} ${y1.toFixed(1)} V${y2.toFixed(1)} H${x2.toFixed(1)}`, fill: 'none', stroke: CHAIN, 'stroke-width': 1.2, 'marker-end': 'url(#arrow)' }));
  }
  return `<g class="chain">${out.join('')}</g>`;
}

/** What the colours, shades and arrows mean, in two rows under the chart. */
function legend(top: number, stages: boolean): string {
  const caption = (x: number, y: number, what: string): string => text(x + 28, y + 10, what, { 'font-size': 11, 'fill': '#333' });
  const swatch = (x: number, y: number, fill: string, opacity: number, what: string): string =>
    el('rect', { x, y, width: 22, height: 12, fill, 'fill-opacity': opacity }) + caption(x, y, what);
  const second = top + 22;
  return `<g class="legend" ${FONT}>`
    + swatch(MARGIN, top, COLOUR.oneshot, 1, 'oneshot') + swatch(MARGIN + 110, top, COLOUR.longrun, 1, 'longrun')
    + swatch(MARGIN, second, '#777', 0.3, 'requested, waiting to be spawned')
    + swatch(MARGIN + 240, second, '#777', 0.6, 'oneshot script running')
    + swatch(MARGIN + 430, second, '#777', 1, 'longrun up, until ready')
    + el('path', { d: `M${MARGIN + 620} ${second + 6} H${MARGIN + 644}`, stroke: CHAIN, 'stroke-width': 1.2, 'marker-end': 'url(#arrow)' }) + caption(MARGIN + 622, second, 'critical chain (outlined bars)')
    + (stages ? swatch(MARGIN + 850, second, '#9a9a9a', 1, 'boot step before the services') : '')
    + '</g>';
}
