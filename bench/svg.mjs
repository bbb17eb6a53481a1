/**
 * A small SVG line-chart writer for bench/ (no dependency): a grid of panels, one per
 * metric, each with a log-scale x axis (service counts), a linear or log y axis, labelled
 * axes, and a legend naming its lines.
 *
 *   chartSvg({ title, subtitle, panels: [{ title, yLabel, yLog, series: [{ name, points: [[x, y], …], dashed }] }] })
 */

const W = 460;
const H = 300;
const M = { left: 70, right: 20, top: 34, bottom: 46 };
const COLORS = { t6: '#1f77b4', s6: '#d62728', runit: '#2ca02c' };
const EXTRA = ['#9467bd', '#ff7f0e', '#8c564b', '#17becf'];

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function num(x) {
  if (x >= 10000) return `${x / 1000}k`;
  if (x >= 1000) return x.toLocaleString('en-US');
  return String(Number(x.toPrecision(3)));
}

/** Ticks of a log axis over [lo, hi]: 1, 2, 5 × powers of ten (only the decades when wide). */
function logTicks(lo, hi) {
  const out = [];
  const steps = Math.log10(hi / lo) > 3 ? [1] : [1, 2, 5];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of steps) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  return out;
}

/** About five round ticks of a linear axis from 0 to `hi`; returns [ticks, top]. */
function linearTicks(hi) {
  const raw = hi / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw);
  const top = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(Number(v.toPrecision(6)));
  return [ticks, top];
}

function panelSvg(panel, ox, oy) {
  const pts = panel.series.flatMap((s) => s.points).filter(([x, y]) => x > 0 && Number.isFinite(y) && (!panel.yLog || y > 0));
  if (pts.length === 0) return '';
  const xs = pts.map(([x]) => x);
  const ys = pts.map(([, y]) => y);
  const xlo = 10 ** Math.floor(Math.log10(Math.min(...xs)));
  const xhi = 10 ** Math.ceil(Math.log10(Math.max(...xs)));
  let ylo;
  let yhi;
  let yticks;
  if (panel.yLog) {
    ylo = 10 ** Math.floor(Math.log10(Math.min(...ys)));
    yhi = 10 ** Math.ceil(Math.log10(Math.max(...ys)));
    if (yhi === ylo) yhi *= 10;
    yticks = logTicks(ylo, yhi);
  } else {
    ylo = 0;
    [yticks, yhi] = linearTicks(Math.max(...ys) * 1.05 || 1);
  }
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const X = (x) => ox + M.left + (Math.log10(x / xlo) / Math.log10(xhi / xlo)) * pw;
  const Y = (y) => oy + M.top + ph - (panel.yLog ? Math.log10(y / ylo) / Math.log10(yhi / ylo) : (y - ylo) / (yhi - ylo)) * ph;
  const o = [];
  o.push(`<text x="${ox + W / 2}" y="${oy + 20}" text-anchor="middle" font-weight="bold">${esc(panel.title)}</text>`);
  o.push(`<rect x="${ox + M.left}" y="${oy + M.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  for (const v of logTicks(xlo, xhi)) {
    const x = X(v).toFixed(1);
    o.push(`<line x1="${x}" y1="${oy + M.top}" x2="${x}" y2="${oy + M.top + ph}" stroke="#e4e4e4"/>`);
    o.push(`<text x="${x}" y="${oy + M.top + ph + 15}" text-anchor="middle" font-size="11">${num(v)}</text>`);
  }
  for (const v of yticks) {
    const y = Y(v).toFixed(1);
    o.push(`<line x1="${ox + M.left}" y1="${y}" x2="${ox + M.left + pw}" y2="${y}" stroke="#e4e4e4"/>`);
    o.push(`<text x="${ox + M.left - 5}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="11">${num(v)}</text>`);
  }
  o.push(`<text x="${ox + M.left + pw / 2}" y="${oy + H - 10}" text-anchor="middle" font-size="12">${esc(panel.xLabel ?? 'longruns (log scale)')}</text>`);
  const ly = oy + M.top + ph / 2;
  o.push(`<text x="${ox + 14}" y="${ly}" text-anchor="middle" font-size="12" transform="rotate(-90 ${ox + 14} ${ly})">${esc(panel.yLabel)}${panel.yLog ? ' (log scale)' : ''}</text>`);
  let extra = 0;
  panel.series.forEach((s, i) => {
    const color = s.color ?? COLORS[s.name.split(' ')[0]] ?? EXTRA[extra++ % EXTRA.length];
    const p = s.points.filter(([x, y]) => x > 0 && Number.isFinite(y) && (!panel.yLog || y > 0)).sort((a, b) => a[0] - b[0]);
    if (p.length === 0) return;
    const d = p.map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ');
    o.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    for (const [x, y] of p) o.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3" fill="${color}"><title>${esc(s.name)}: ${num(x)} → ${Number(y.toPrecision(3))}</title></circle>`);
    const lx = ox + M.left + 8;
    const lyy = oy + M.top + 14 + i * 16;
    o.push(`<line x1="${lx}" y1="${lyy}" x2="${lx + 22}" y2="${lyy}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    o.push(`<text x="${lx + 28}" y="${lyy}" dominant-baseline="middle" font-size="11">${esc(s.name)}</text>`);
  });
  return o.join('\n');
}

/** The whole chart as an SVG document: panels in rows of `columns`. */
export function chartSvg({ title, subtitle = '', panels, columns = 2 }) {
  const rows = Math.ceil(panels.length / columns);
  const head = subtitle ? 56 : 36;
  const width = W * columns;
  const height = head + rows * H;
  const body = panels.map((p, i) => panelSvg(p, (i % columns) * W, head + Math.floor(i / columns) * H)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>
${subtitle ? `<text x="${width / 2}" y="42" text-anchor="middle" font-size="11" fill="#444">${esc(subtitle)}</text>\n` : ''}${body}
</svg>
`;
}
