import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { realServicedir } from '../../src/supervise/realdir.ts';

test('realServicedir gives what realpath(3) gives, for every shape of scan dir entry', () => {
  const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 't6-realdir-')));
  try {
    const real = path.join(base, 'real');
    fs.mkdirSync(path.join(real, 'sds', 'a', 'log'), { recursive: true });
    fs.mkdirSync(path.join(real, 'sds', 'b'), { recursive: true });
    fs.mkdirSync(path.join(real, 'scan', 'plain', 'log'), { recursive: true });
    fs.symlinkSync('real', path.join(base, 'live')); // a link above the targets, as LIVE
    fs.symlinkSync('real/scan', path.join(base, 'scanlink')); // a scan dir reached through a link
    const scan = path.join(real, 'scan');
    fs.symlinkSync(path.join(base, 'live', 'sds', 'a'), path.join(scan, 'a')); // absolute, through LIVE
    fs.symlinkSync('../sds/b', path.join(scan, 'b')); // relative
    fs.symlinkSync(path.join(scan, 'a'), path.join(scan, 'c')); // a link to a link
    fs.symlinkSync(path.join(base, 'live', 'sds', 'a', '..', 'b'), path.join(scan, 'd')); // with ..
    for (const scandir of [scan, path.join(base, 'scanlink')]) {
      const parents = new Map<string, string>();
      for (const name of ['a', 'b', 'c', 'd', 'plain', 'a/log', 'plain/log']) {
        assert.equal(realServicedir(scandir, name, parents), fs.realpathSync.native(path.join(scandir, name)), `${scandir} ${name}`);
      }
    }
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});
