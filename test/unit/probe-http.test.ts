/**
 * The HTTP probe's response judge (src/supervise/probe-http.ts), fed bytes by hand: status
 * ranges, the body text with Content-Length, chunked coding and until the close, every
 * split of a response across reads, and the bounds on what it holds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BODY_LIMIT, HttpResponseCheck, type Verdict } from '../../src/supervise/probe-http.ts';

const RANGE = { min: 200, max: 399 };

/** Feeds `response` in pieces of `step` bytes (each through a reused scratch buffer, as the socket does); then the close, if undecided. */
function judge(check: HttpResponseCheck, response: string | Buffer, step = Infinity, close = true): Verdict {
  check.reset();
  const bytes = typeof response === 'string' ? Buffer.from(response, 'latin1') : response;
  const scratch = Buffer.alloc(Math.min(bytes.length, step === Infinity ? bytes.length : step) || 1);
  for (let i = 0; i < bytes.length; i += step) {
    const n = bytes.copy(scratch, 0, i, Math.min(bytes.length, i + step));
    const verdict = check.feed(scratch.subarray(0, n));
    scratch.fill(0x23); // what a later read into the shared buffer would do to anything kept without a copy
    if (verdict !== undefined) return verdict;
  }
  return close ? check.end() : undefined;
}

/** `judge` with every piece size from 1 byte to the whole, all agreeing. */
function judgeEverySplit(check: HttpResponseCheck, response: string): Verdict {
  const whole = judge(check, response);
  for (let step = 1; step < response.length; step++) assert.deepEqual(judge(check, response, step), whole, `split every ${step} bytes`);
  return whole;
}

test('without a body text, the status line alone decides: 200-399 by default', () => {
  const check = new HttpResponseCheck(RANGE, undefined);
  assert.equal(judge(check, 'HTTP/1.1 200 OK\r\n', Infinity, false), true, 'decided before the headers end');
  assert.equal(judge(check, 'HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n'), true);
  assert.equal(judge(check, 'HTTP/1.0 503 Service Unavailable\r\n\r\n'), 'status 503');
  assert.equal(judge(check, 'HTTP/1.1 199 x\r\n\r\n'), 'status 199');
  assert.equal(judgeEverySplit(check, 'HTTP/1.1 404 Not Found\r\n\r\n'), 'status 404');
  assert.equal(judge(check, 'HTTP/1.1 200\n'), true, 'no reason phrase, bare LF');
});

test('a configured status or range is what is accepted', () => {
  assert.equal(judge(new HttpResponseCheck({ min: 404, max: 404 }, undefined), 'HTTP/1.1 404 Not Found\r\n\r\n'), true);
  assert.equal(judge(new HttpResponseCheck({ min: 204, max: 204 }, undefined), 'HTTP/1.1 200 OK\r\n\r\n'), 'status 200');
});

test('what is not an HTTP response, or ends too soon, fails in words', () => {
  const check = new HttpResponseCheck(RANGE, undefined);
  assert.equal(judge(check, 'SSH-2.0-OpenSSH_9.2\r\n'), 'not an HTTP response');
  assert.equal(judge(check, 'HTTP/1.1 2x0 OK\r\n'), 'not an HTTP response');
  assert.equal(judge(check, 'HTTP/2 200\r\n'), 'not an HTTP response');
  assert.equal(judge(check, ''), 'connection closed without a response');
  assert.equal(judge(check, 'HTTP/1.1 20'), 'connection closed inside the status line');
  assert.equal(judge(new HttpResponseCheck(RANGE, Buffer.from('ok')), 'HTTP/1.1 200 OK\r\nA: b\r\n'), 'connection closed inside the headers');
});

test('a head that never ends is refused past 16 KiB instead of being held', () => {
  const check = new HttpResponseCheck(RANGE, undefined);
  assert.equal(judge(check, 'x'.repeat(20_000), 1000), 'response head over 16 KiB');
  const withBody = new HttpResponseCheck(RANGE, Buffer.from('ok'));
  assert.equal(judge(withBody, `HTTP/1.1 200 OK\r\n${'X-Pad: y\r\n'.repeat(2000)}`, 1000), 'response head over 16 KiB');
});

test('the body text is found with Content-Length, with chunked coding, and when the server just closes, whatever the splits', () => {
  const check = new HttpResponseCheck(RANGE, Buffer.from('"status":"up"'));
  const body = '{"db":"ok","status":"up"}';
  assert.equal(judgeEverySplit(check, `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`), true);
  assert.equal(judgeEverySplit(check, `HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n${body}`), 'body lacks "\\"status\\":\\"up\\""', 'only Content-Length bytes are the body');
  assert.equal(judgeEverySplit(check, `HTTP/1.1 200 OK\r\n\r\n${body}`), true);
  assert.equal(judgeEverySplit(check, 'HTTP/1.1 200 OK\r\n\r\n{"status":"down"}'), 'body lacks "\\"status\\":\\"up\\""');
  const chunked = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n8\r\n{"status\r\n3;ext=1\r\n":"\r\nD\r\nup","x":"yz"}\r\n0\r\n\r\n';
  assert.equal(judgeEverySplit(check, chunked), true, 'the text straddles three chunks');
  const noText = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n';
  assert.equal(judgeEverySplit(check, noText), 'body lacks "\\"status\\":\\"up\\""', 'decided at the last chunk, before any close');
  assert.equal(judge(check, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), 'bad chunked body');
});

test('the status is checked before the body: a 503 whose body has the text fails', () => {
  const check = new HttpResponseCheck(RANGE, Buffer.from('ok'));
  assert.equal(judge(check, 'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nok'), 'status 503');
  assert.equal(judge(check, 'HTTP/1.1 204 No Content\r\n\r\n'), 'body lacks "ok"', '204 has no body');
});

test('only the first 64 KiB of the body are searched', () => {
  const check = new HttpResponseCheck(RANGE, Buffer.from('MARK'));
  const before = (n: number): string => `HTTP/1.1 200 OK\r\n\r\n${'.'.repeat(n)}MARK`;
  assert.equal(judge(check, before(BODY_LIMIT - 4), 4096), true, 'ends exactly at 64 KiB');
  assert.equal(judge(check, before(BODY_LIMIT - 3), 4096), 'no "MARK" in the first 64 KiB of the body');
  assert.equal(judge(check, `${before(BODY_LIMIT * 4)}`, 16384), 'no "MARK" in the first 64 KiB of the body', 'decided without reading the rest');
});

test('reset makes the judge ready for the next attempt', () => {
  const check = new HttpResponseCheck(RANGE, Buffer.from('ok'));
  assert.equal(judge(check, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno', Infinity, false), undefined);
  assert.equal(judge(check, 'HTTP/1.1 200 OK\r\n\r\nok'), true);
});

test('keep-alive: the response is read to its end (whatever the verdict), and reusable says whether the connection can carry the next', () => {
  const kept = new HttpResponseCheck(RANGE, undefined, true);
  const body = new HttpResponseCheck(RANGE, Buffer.from('up'), true);
  // [response, check, verdict, reusable]: framed by Content-Length or chunks (with the last CRLF), every split.
  const cases: [string, HttpResponseCheck, Verdict, boolean][] = [
    ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', kept, true, true],
    ['HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy', kept, 'status 503', true],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nup\r\n3\r\n!!!\r\n0\r\n\r\n', body, true, true],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndown\r\n0\r\n\r\n', body, 'body lacks "up"', true],
    ['HTTP/1.1 204 No Content\r\n\r\n', kept, true, true],
    // The server will not keep it: judged all the same, the connection goes.
    ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok', kept, true, false],
    ['HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok', kept, true, false],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Trailer: 1\r\n\r\n', kept, true, false],
  ];
  for (const [response, check, verdict, reusable] of cases) {
    for (let step = 1; step <= response.length; step++) {
      assert.deepEqual(judge(check, response, step, false), verdict, `${JSON.stringify(response)} every ${step}`);
      assert.equal(check.reusable, reusable, `${JSON.stringify(response)} every ${step}: reusable`);
    }
  }
  // Unframed (until the close): a status verdict at once, never reused; bytes after the end: not reused either.
  assert.equal(judge(kept, 'HTTP/1.1 200 OK\r\n\r\nstream…', Infinity, false), true);
  assert.equal(kept.reusable, false);
  assert.equal(judge(kept, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1', Infinity, false), true);
  assert.equal(kept.reusable, false);
  // Without keep-alive nothing changes: the verdict at the status line.
  const plain = new HttpResponseCheck(RANGE, undefined);
  assert.equal(judge(plain, 'HTTP/1.1 200 OK\r\n', Infinity, false), true);
  assert.equal(plain.reusable, false);
});
