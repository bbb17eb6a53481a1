/** Random input never breaks the engine or the ERE translator. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseScript } from '../../src/log/script.ts';
import { Logger } from '../../src/log/engine.ts';
import { ereToJs, EreError } from '../../src/log/ere.ts';
import { testHost } from '../lib/loghost.ts';
import { seededRandom } from '../lib/random.ts';

test('random bytes in random chunks: every byte comes out once, in order (a NUL as a line end), lines cut at the limit', async (t) => {
  const rand = seededRandom(t).next;
  for (let round = 0; round < 20; round++) {
    const host = testHost({ fixedMs: 0 });
    const lineLimit = 48 + Math.floor(rand() * 200);
    const logger = Logger.open(parseScript(['1']), host, { lineLimit });
    const bytes = Buffer.alloc(20000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = rand() < 0.05 ? 10 : Math.floor(rand() * 256);
    for (let pos = 0; pos < bytes.length;) {
      const n = 1 + Math.floor(rand() * 3000);
      logger.feed(bytes.subarray(pos, pos + n));
      pos += n;
    }
    await logger.end();
    host.dispose();
    const out = Buffer.concat(host.out);
    // removing the line ends (a NUL ends a line as a newline does, as in s6-log) and the
    // newlines the engine added (cuts, and one at the end) gives the input back
    const strip = (b: Buffer): string => b.toString('latin1').replace(/[\n\0]/g, '');
    assert.equal(strip(out), strip(bytes));
    assert.ok(out.length >= bytes.length);
    assert.equal(out.indexOf(0), -1, 'no NUL comes out');
    for (const line of out.toString('latin1').split('\n')) assert.ok(line.length <= lineLimit, `a line of ${line.length} > ${lineLimit}`);
  }
});

test('random patterns translate or are refused with an EreError, never anything else', (t) => {
  const rand = seededRandom(t).next;
  const alphabet = 'ab.[]^$()|*+?{}\\,0123-:=';
  let translated = 0;
  for (let i = 0; i < 20000; i++) {
    let p = '';
    const len = Math.floor(rand() * 10);
    for (let j = 0; j < len; j++) p += alphabet[Math.floor(rand() * alphabet.length)];
    try {
      const src = ereToJs(p);
      new RegExp(src); // must compile
      translated++;
    } catch (err) {
      assert.ok(err instanceof EreError, `${JSON.stringify(p)}: ${String(err)}`);
    }
  }
  assert.ok(translated > 1000);
});
