/**
 * t6's version comes from package.json only: read from there when run from source, and
 * written into the bundles by the build (esbuild's define of __T6_VERSION__, as
 * scripts/build.mjs sets it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { VERSION } from '../../src/sys/version.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };

test('run from source, the version is package.json\'s', () => {
  assert.equal(VERSION, pkg.version);
  assert.match(VERSION, /^\d+\.\d+\.\d+/);
});

test('in a bundle, the version is the one the build defines, and no file is read for it', async () => {
  const out = await build({
    stdin: { contents: "export { VERSION } from './src/sys/version.ts';", resolveDir: ROOT, loader: 'ts' },
    bundle: true, format: 'cjs', platform: 'node', write: false, logLevel: 'silent',
    define: { __T6_VERSION__: JSON.stringify('9.8.7-test') },
  });
  const code = out.outputFiles[0]!.text;
  const mod = { exports: {} as { VERSION?: string } };
  new Function('module', 'exports', 'require', code)(mod, mod.exports, () => { throw new Error('the bundle requires nothing for its version'); });
  assert.equal(mod.exports.VERSION, '9.8.7-test');
});

test('the build defines __T6_VERSION__ from package.json', () => {
  const script = fs.readFileSync(path.join(ROOT, 'scripts/build.mjs'), 'utf8');
  assert.match(script, /__T6_VERSION__: JSON\.stringify\(version\)/);
  assert.match(script, /const \{ version \} = JSON\.parse\(fs\.readFileSync\(path\.join\(root, 'package\.json'\)/);
});
