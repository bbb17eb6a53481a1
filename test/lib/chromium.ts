/**
 * Headless Chromium for tests that must see a drawing as a browser draws it (Debian's
 * `chromium`). child_process is fine here: this is the test process.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** The Chromium binary on PATH, or undefined. */
export function findChromium(): string | undefined {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
      const p = path.join(dir || '.', name);
      try {
        fs.accessSync(p, fs.constants.X_OK);
        return p;
      } catch { /* next */ }
    }
  }
  return undefined;
}

/** What Chromium made of an SVG file. */
export interface Rendering {
  /** The SVG opened as a document: Chromium's XML parser's errors, if any (a `<parsererror>`). */
  parseErrors: string | undefined;
  /** An HTML page's `<img>` of it: `loaded WxH`, or `error`. */
  imageLoad: string | undefined;
  /** The screenshot of the SVG. */
  png: Buffer;
}

/** Opens `svgFile` three ways (document, image in a page, screenshot) in headless Chromium; `work` is a scratch directory. */
export function renderSvg(chromium: string, svgFile: string, work: string, size = '1200,800'): Rendering {
  const run = (args: string[]): string => {
    const r = spawnSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', `--user-data-dir=${path.join(work, 'profile')}`, ...args], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`chromium ${args.join(' ')} exited ${r.status} (${r.signal ?? ''}): ${r.stderr.slice(-2000)}`);
    return r.stdout;
  };
  const dom = run(['--dump-dom', pathToFileURL(svgFile).href]);
  const parseErrors = /<parsererror[\s\S]*?<\/parsererror>/.exec(dom)?.[0];
  const page = path.join(work, 'page.html');
  fs.writeFileSync(page, `<!doctype html><html><body><img src="${pathToFileURL(svgFile).href}" onload="document.body.dataset.result='loaded '+this.naturalWidth+'x'+this.naturalHeight" onerror="document.body.dataset.result='error'"></body></html>\n`);
  const pageDom = run(['--dump-dom', pathToFileURL(page).href]);
  const imageLoad = /data-result="([^"]*)"/.exec(pageDom)?.[1];
  const png = path.join(work, 'shot.png');
  run([`--screenshot=${png}`, `--window-size=${size}`, pathToFileURL(svgFile).href]);
  return { parseErrors, imageLoad, png: fs.readFileSync(png) };
}
