/**
 * The layer rule (docs/ARCHITECTURE.md): imports only point down,
 *
 *   cli → init, rc, top → supervise → log → s6 → sys
 *
 * `init`, `rc` and `top` (t6 top's model and sampling) are peers that never import each other (pid 1's use of t6-rc is given to
 * init by the CLI), and a command never imports another command (only the shared `_*.ts`
 * helpers of src/cli/). Type-only imports count: they are dependencies too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../lib/harness.ts';

/** Each layer's rank: an import must go to a lower rank (or stay in its own layer). */
const RANK: Record<string, number> = { sys: 0, s6: 1, log: 2, supervise: 3, rc: 4, init: 4, top: 4, cli: 5 };

/** Every relative import target of a TypeScript source (static, dynamic, re-exports, types). */
function importsOf(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) out.push(m[1]!);
  return out;
}

/** The edges against the rule among `files` (path relative to the repository → source). */
function violations(files: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [file, source] of files) {
    const from = file.split('/')[1]!;
    for (const target of importsOf(source)) {
      const to = path.posix.normalize(path.posix.join(path.posix.dirname(file), target));
      if (!to.startsWith('src/')) continue;
      const layer = to.split('/')[1]!;
      const edge = `${file} -> ${to}`;
      if (RANK[from] === undefined || RANK[layer] === undefined) out.push(`${edge} (outside the layers: ${RANK[from] === undefined ? from : layer})`);
      else if (from === 'cli' && layer === 'cli') { if (!path.posix.basename(to).startsWith('_')) out.push(`${edge} (a command imports another command)`); }
      else if (from !== layer && RANK[layer]! >= RANK[from]!) out.push(`${edge} (${from} may not import ${layer})`);
    }
  }
  return out;
}

/** Every .ts file under src/, by repository-relative path. */
function sourceTree(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts')) files.set(rel, fs.readFileSync(path.join(ROOT, rel), 'utf8'));
    }
  };
  walk('src');
  return files;
}

test('every import in src/ points down the layers (cli → init, rc, top → supervise → log → s6 → sys)', () => {
  const tree = sourceTree();
  assert.ok(tree.size > 50, `read ${tree.size} files`);
  assert.deepEqual(violations(tree), []);
});

test('the check catches a planted edge of every kind', () => {
  const tree = sourceTree();
  const before = new Set(violations(tree));
  // What one planted line adds to the tree's violations (none, once the tree obeys the rule).
  const plant = (file: string, line: string): string[] =>
    violations(new Map([...tree, [file, `${tree.get(file) ?? ''}\n${line}\n`]])).filter((v) => !before.has(v));
  assert.deepEqual(plant('src/sys/fd.ts', "import { Scanner } from '../supervise/scanner.ts';"), ['src/sys/fd.ts -> src/supervise/scanner.ts (sys may not import supervise)']);
  assert.deepEqual(plant('src/log/engine.ts', "import type { Logging } from '../supervise/logging.ts';"), ['src/log/engine.ts -> src/supervise/logging.ts (log may not import supervise)']);
  assert.deepEqual(plant('src/init/pid1.ts', "const m = await import('../rc/run.ts');"), ['src/init/pid1.ts -> src/rc/run.ts (init may not import rc)']);
  assert.deepEqual(plant('src/rc/run.ts', "export { Pid1 } from '../init/pid1.ts';"), ['src/rc/run.ts -> src/init/pid1.ts (rc may not import init)']);
  assert.deepEqual(plant('src/top/model.ts', "import { x } from '../rc/run.ts';"), ['src/top/model.ts -> src/rc/run.ts (top may not import rc)']);
  assert.deepEqual(plant('src/cli/svc.ts', "import { main } from './svok.ts';"), ['src/cli/svc.ts -> src/cli/svok.ts (a command imports another command)']);
  assert.deepEqual(plant('src/s6/tai.ts', "import { x } from '../misc/x.ts';"), ['src/s6/tai.ts -> src/misc/x.ts (outside the layers: misc)']);
  // Allowed: downwards, within a layer, and a command's shared helpers.
  assert.deepEqual(plant('src/cli/svc.ts', "import { getopt } from './_getopt.ts';"), []);
  assert.deepEqual(plant('src/supervise/scanner.ts', "import { Logger } from '../log/engine.ts';"), []);
});
