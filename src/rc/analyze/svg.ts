/**
 * Small pieces for drawing SVG as text: escaping, elements, a time axis. Self-contained
 * output only: no scripts, no external fonts or images (generic font families).
 */

/** Text or an attribute value, escaped for XML. */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Attribute values: numbers are rounded to 0.1 px. */
export type Attrs = Record<string, string | number | undefined>;

/** One element; `inner` is markup already (escape text with esc). */
export function el(name: string, attrs: Attrs, inner?: string): string {
  let out = `<${name}`;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined) continue;
    out += ` ${k}="${typeof v === 'number' ? String(Math.round(v * 10) / 10) : esc(v)}"`;
  }
  return inner === undefined ? `${out}/>` : `${out}>${inner}</${name}>`;
}

/** A text element. */
export function text(x: number, y: number, content: string, attrs: Attrs = {}): string {
  return el('text', { x, y, ...attrs }, esc(content));
}

/** The step between ticks for a span of `spanMs`: 1, 2 or 5 × 10^k ms, at most about 12 ticks. */
export function tickStep(spanMs: number): number {
  const rough = Math.max(spanMs, 1) / 12;
  const pow = 10 ** Math.floor(Math.log10(rough));
  for (const m of [1, 2, 5, 10]) if (m * pow >= rough) return m * pow;
  return 10 * pow;
}

/** A tick's label: `0`, `250ms`, `1.5s`. */
export function tickLabel(ms: number, step: number): string {
  if (ms === 0) return '0';
  if (step < 1000 && ms < 1000) return `${+ms.toFixed(step < 1 ? 2 : 0)}ms`;
  const decimals = step >= 1000 ? 0 : step >= 100 ? 1 : step >= 10 ? 2 : 3;
  return `${+(ms / 1000).toFixed(decimals)}s`;
}

/** About how wide a text is at `size` px in a sans-serif font (for placing labels). */
export function textWidth(content: string, size: number): number {
  return content.length * size * 0.56;
}
