/** The logger driver on a scripted input: backpressure, an engine swap that tears no line, the end. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogDriver } from '../../src/log/driver.ts';
import { Logger } from '../../src/log/engine.ts';
import type { LogInput } from '../../src/log/input.ts';
import { parseScript } from '../../src/log/script.ts';
import { testHost, type TestHost } from '../lib/loghost.ts';

/** An input the test reads "from": `send` delivers a chunk as the event loop would, if reading. */
function fakeInput() {
  let onData: (chunk: Buffer) => boolean = () => false;
  let onEnd: () => void = () => {};
  const input = {
    reading: false,
    closed: false,
    starts: 0,
    /** Readable now, for drainNow. */
    readable: [] as Buffer[],
    start(data: (chunk: Buffer) => boolean, end?: () => void) { onData = data; onEnd = end ?? (() => {}); input.starts++; input.resume(); },
    pause() { input.reading = false; },
    resume() { if (!input.closed) input.reading = true; },
    drainNow(data: (chunk: Buffer) => void) { for (const c of input.readable.splice(0)) data(c); },
    close() { input.closed = true; input.reading = false; },
    pending: false,
    send(text: string) {
      assert.ok(input.reading, `not reading when "${text}" came`);
      if (!onData(Buffer.from(text))) input.reading = false;
    },
    end() { onEnd(); },
  };
  return input satisfies LogInput;
}

/** An engine that writes each line to `1` (host.stdout) with a prefix. */
function engine(host: TestHost, prefix: string): Logger {
  return Logger.open(parseScript([`p${prefix}`, '1']), host);
}

const text = (host: TestHost): string => Buffer.concat(host.out).toString();

test('reading pauses while the engine refuses more, and resumes when it drains', () => {
  const host = testHost();
  let full = true;
  host.stdout = (d) => { host.out.push(d); return !full; };
  const input = fakeInput();
  const driver = new LogDriver(input);
  const logger = engine(host, 'a');
  driver.attach(logger);
  input.send('one\n');
  assert.equal(input.reading, false, 'stdout full: reading stopped');
  full = false;
  logger.stdoutDrained();
  assert.equal(input.reading, true, 'drained: reading again');
  input.send('two\n');
  assert.equal(text(host), 'a one\na two\n');
  host.dispose();
});

test('a swap of engines: the partial line and what is read meanwhile go to the next engine first, in order', async () => {
  const host = testHost();
  const input = fakeInput();
  let drained = 0;
  const driver = new LogDriver(input, { drained: () => { drained++; } });
  driver.attach(engine(host, 'a'));
  input.send('one\ntw');
  const old = driver.detach();
  assert.ok(old !== undefined);
  assert.equal(input.reading, false, 'detached: reading paused');
  assert.equal(driver.engine, undefined);
  assert.equal(driver.heldBytes, 2, 'the partial line is held');
  input.readable.push(Buffer.from('o\nthr'));
  driver.drain();
  assert.equal(driver.heldBytes, 7, 'a drain with no engine holds what it read');
  await old.end();
  driver.attach(engine(host, 'b'));
  assert.equal(driver.heldBytes, 0);
  assert.equal(input.reading, true);
  input.send('ee\n');
  assert.equal(text(host), 'a one\nb two\nb three\n');
  assert.equal(drained, 0, 'no drain without a refusal');
  host.dispose();
});

test('after each chunk fed, `fed` is called; the end of the input calls `ended`; end() closes the input and ends the engine', async () => {
  const host = testHost();
  const input = fakeInput();
  const calls: string[] = [];
  const driver = new LogDriver(input, { fed: () => calls.push('fed'), ended: () => calls.push('ended') });
  driver.attach(engine(host, 'a'));
  input.send('one\nlast');
  input.end();
  assert.deepEqual(calls, ['fed', 'ended']);
  await driver.end();
  assert.equal(input.closed, true);
  assert.equal(text(host), 'a one\na last\n', 'the partial line is processed with a newline');
  input.readable.push(Buffer.from('late\n'));
  driver.drain();
  assert.equal(input.readable.length, 1, 'nothing drained once closed');
  host.dispose();
});
