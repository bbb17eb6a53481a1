/**
 * Small enough to read in one sitting: no file in src/ over 450 lines, no function (or
 * method, or arrow function) over 80. Functions are found with the TypeScript parser.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { ROOT } from '../lib/harness.ts';

const MAX_FILE_LINES = 450;
const MAX_FUNCTION_LINES = 80;

function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts')) out.push(rel);
    }
  };
  walk('src');
  return out;
}

/** `name (n lines)` for every function-like node of `file` longer than the limit. */
function longFunctions(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      if (lines > MAX_FUNCTION_LINES) {
        const name = node.name !== undefined ? node.name.getText(sf) : `function at line ${start + 1}`;
        out.push(`${file}: ${name} (${lines} lines)`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

test(`no file in src/ is over ${MAX_FILE_LINES} lines`, () => {
  const long = sources()
    .map((f) => [f, fs.readFileSync(path.join(ROOT, f), 'utf8').split('\n').length - 1] as const)
    .filter(([, n]) => n > MAX_FILE_LINES)
    .map(([f, n]) => `${f} (${n} lines)`);
  assert.deepEqual(long, []);
});

test(`no function in src/ is over ${MAX_FUNCTION_LINES} lines`, () => {
  const long = sources().flatMap((f) => longFunctions(f, fs.readFileSync(path.join(ROOT, f), 'utf8')));
  assert.deepEqual(long, []);
});
