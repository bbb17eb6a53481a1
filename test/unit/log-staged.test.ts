/**
 * StagedLines.take finds where a write to `current` stops with two searches; it must stop
 * exactly where walking the waiting lines one at a time would: through the first line end
 * at or past dueIn, never past room (unless the file is empty and not even the first line
 * fits), and whole lines only, also after earlier writes have moved the head.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { StagedLines } from '../../src/log/staged.ts';
import { seededRandom } from '../lib/random.ts';

/** The cut, a line at a time, over `lines` (the waiting bytes, each line ending in a newline). */
function walk(lines: Buffer, dueIn: number, room: number, firstAnyway: boolean): number {
  if (lines.length < dueIn && lines.length <= room) return lines.length;
  let end = 0;
  while (end < lines.length) {
    const next = lines.indexOf(10, end) + 1;
    if (next > room && !(firstAnyway && end === 0)) break;
    end = next;
    if (end >= dueIn) break;
  }
  return end;
}

test('take cuts where a line-by-line walk would, whatever was written before', (t) => {
  const random = seededRandom(t);
  const devNull = fs.openSync('/dev/null', 'w');
  try {
    for (let trial = 0; trial < 2000; trial++) {
      const staged = new StagedLines();
      const header = Buffer.from(random.int(2) === 0 ? '' : '@4000 ');
      const lines: Buffer[] = [];
      const count = 1 + random.int(30);
      for (let i = 0; i < count; i++) {
        const text = Buffer.from('x'.repeat(random.int(60)));
        staged.add(header, text, 0, text.length);
        lines.push(Buffer.concat([header, text, Buffer.from('\n')]));
      }
      let waiting = Buffer.concat(lines);
      if (random.int(2) === 0) { // a first write moves the head (the bytes before it stay in the buffer)
        const n = staged.take(1 + random.int(200), 1000, true);
        staged.writeTo(devNull, n);
        waiting = waiting.subarray(n);
      }
      for (let q = 0; q < 20; q++) {
        const dueIn = 1 + random.int(400);
        const room = random.int(400);
        const firstAnyway = random.int(2) === 0;
        assert.equal(staged.take(dueIn, room, firstAnyway), walk(waiting, dueIn, room, firstAnyway), `dueIn ${dueIn}, room ${room}, firstAnyway ${firstAnyway}, waiting ${JSON.stringify(waiting.toString())}`);
      }
    }
  } finally {
    fs.closeSync(devNull);
  }
});
