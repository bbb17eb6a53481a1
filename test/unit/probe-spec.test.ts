/**
 * A service's `probe/` directory (src/supervise/probe-spec.ts): every file, its default,
 * and each way it can be wrong, the problem naming the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseHttp, parseTcp, readProbeSpec } from '../../src/supervise/probe-spec.ts';
import { tmpdir } from '../lib/harness.ts';

/** A service directory whose probe/ holds `files` (name → content; a number: an executable script with that exit code). */
function service(files: Record<string, string | number> | undefined): string {
  const dir = tmpdir('t6-probe-spec-');
  if (files === undefined) return dir;
  fs.mkdirSync(path.join(dir, 'probe'));
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, 'probe', name);
    if (typeof content === 'number') fs.writeFileSync(file, `#!/bin/sh\nexit ${content}\n`, { mode: 0o755 });
    else fs.writeFileSync(file, content);
  }
  return dir;
}

function problemOf(files: Record<string, string | number>): string | undefined {
  const got = readProbeSpec(service(files));
  assert.equal(got.spec, undefined, 'no spec with a problem');
  return got.problem;
}

test('no probe/ directory: neither a spec nor a problem (the service behaves as under s6)', () => {
  assert.deepEqual(readProbeSpec(service(undefined)), {});
  assert.deepEqual(readProbeSpec('/nonexistent/t6/service'), {});
});

test('a tcp probe alone gets every default: interval 1000, timeout 1000, start-delay 0, attempts unlimited, no liveness', () => {
  const { spec, problem } = readProbeSpec(service({ tcp: '127.0.0.1:5432\n' }));
  assert.equal(problem, undefined);
  assert.deepEqual(spec, {
    target: { kind: 'tcp', name: 'tcp 127.0.0.1:5432', host: '127.0.0.1', port: 5432 },
    intervalMs: 1000, timeoutMs: 1000, startDelayMs: 0, attempts: 0, httpStatus: { min: 200, max: 399 },
  });
});

test('every setting file is read: interval, timeout, start-delay, attempts, liveness, http-status, http-body', () => {
  const { spec, problem } = readProbeSpec(service({
    http: 'http://127.0.0.1:8080/health?full=1\n', interval: '250\n', timeout: '100\n', 'start-delay': '2000\n',
    attempts: '30\n', liveness: '3\n', 'http-status': '200-204\n', 'http-body': '"ok"\n',
  }));
  assert.equal(problem, undefined);
  assert.deepEqual(spec, {
    target: { kind: 'http', name: 'http://127.0.0.1:8080/health?full=1', host: '127.0.0.1', port: 8080, path: '/health?full=1', hostHeader: '127.0.0.1:8080' },
    intervalMs: 250, timeoutMs: 100, startDelayMs: 2000, attempts: 30, liveness: 3,
    httpStatus: { min: 200, max: 204 }, httpBody: Buffer.from('"ok"'),
  });
});

test('http-reuse: N >= 1 liveness attempts per connection, absent: the default; 0, a non-number, the old http-keepalive, or on another kind, are refused', () => {
  assert.equal(readProbeSpec(service({ http: 'http://127.0.0.1/', 'http-reuse': '1\n' })).spec?.httpReuse, 1);
  assert.equal(readProbeSpec(service({ http: 'http://127.0.0.1/', 'http-reuse': '25\n' })).spec?.httpReuse, 25);
  assert.equal(readProbeSpec(service({ http: 'http://127.0.0.1/' })).spec?.httpReuse, undefined);
  assert.equal(readProbeSpec(service({ http: 'http://127.0.0.1/', 'http-reuse': '0\n' })).problem, 'probe/http-reuse: "0" - must be at least 1');
  assert.equal(readProbeSpec(service({ http: 'http://127.0.0.1/', 'http-reuse': 'yes\n' })).problem, 'probe/http-reuse: "yes" - not a decimal number up to 2147483647');
  assert.equal(readProbeSpec(service({ http: 'http://127.0.0.1/', 'http-keepalive': '1\n' })).problem, 'probe/http-keepalive: replaced by probe/http-reuse (liveness attempts per connection; 1: a new one for each)');
  assert.equal(readProbeSpec(service({ tcp: '127.0.0.1:80', 'http-reuse': '2\n' })).problem, 'probe/http-reuse: only for an http probe (this one is tcp)');
});

test('a decimal file may lack its newline; attempts 0 means unlimited; a single http-status is a one-code range', () => {
  const { spec } = readProbeSpec(service({ tcp: 'localhost:80', interval: '5', attempts: '0', }));
  assert.equal(spec?.intervalMs, 5);
  assert.equal(spec?.attempts, 0);
  assert.deepEqual(readProbeSpec(service({ http: 'http://h/', 'http-status': '204\n' })).spec?.httpStatus, { min: 204, max: 204 });
});

test('a check probe: an executable file, named ./probe/check', () => {
  const { spec, problem } = readProbeSpec(service({ check: 0 }));
  assert.equal(problem, undefined);
  assert.deepEqual(spec?.target, { kind: 'check', name: './probe/check' });
});

test('http URLs: port 80 by default, path / by default, IPv6 hosts, the Host header as written', () => {
  assert.deepEqual(parseHttp('http://example.org'), { kind: 'http', name: 'http://example.org/', host: 'example.org', port: 80, path: '/', hostHeader: 'example.org' });
  assert.deepEqual(parseHttp('http://[::1]:9000/x'), { kind: 'http', name: 'http://[::1]:9000/x', host: '::1', port: 9000, path: '/x', hostHeader: '[::1]:9000' });
  assert.equal((parseHttp('HTTP://a:81/') as { port: number }).port, 81, 'the scheme is case-insensitive');
  const spaced = parseHttp('http://a/b c\r\nX: y');
  assert.ok(typeof spaced !== 'string' && !/[\s]/.test(spaced.path), 'nothing in the path can end the request line');
});

test('tcp targets: host names, IPv4, [IPv6]', () => {
  assert.deepEqual(parseTcp('[::1]:22'), { kind: 'tcp', name: 'tcp [::1]:22', host: '::1', port: 22 });
  assert.deepEqual(parseTcp('db.internal:5432'), { kind: 'tcp', name: 'tcp db.internal:5432', host: 'db.internal', port: 5432 });
  assert.equal(parseTcp('::1:22'), 'expected HOST:PORT (an IPv6 address as [ADDRESS]:PORT)');
  assert.equal(parseTcp('[zz]:22'), '"zz" is not an IPv6 address');
  assert.equal(parseTcp('a_b:22'), '"a_b" is not a host name or an IPv4 address');
  assert.equal(parseTcp('h:0'), 'port 0 is not between 1 and 65535');
  assert.equal(parseTcp('h:65536'), 'port 65536 is not between 1 and 65535');
  assert.equal(parseTcp('h'), 'expected HOST:PORT (an IPv6 address as [ADDRESS]:PORT)');
});

test('https and other schemes are refused with a clear message naming the file', () => {
  assert.equal(problemOf({ http: 'https://x\n' }), 'probe/http: "https://x" - only http:// URLs are supported');
  assert.equal(problemOf({ http: 'ftp://x/' }), 'probe/http: "ftp://x/" - only http:// URLs are supported');
  assert.equal(problemOf({ http: '127.0.0.1:80' }), 'probe/http: "127.0.0.1:80" - only http:// URLs are supported');
  assert.equal(problemOf({ http: 'http://u:p@h/' }), 'probe/http: "http://u:p@h/" - credentials in the URL are not supported');
  assert.equal(problemOf({ http: 'http://h:99999/' }), 'probe/http: "http://h:99999/" - not a valid URL');
});

test('exactly one of tcp, http, check', () => {
  assert.equal(problemOf({ interval: '10' }), 'probe/: none of tcp, http, check - exactly one is needed');
  assert.equal(problemOf({ tcp: 'h:1', http: 'http://h/' }), 'probe/: tcp and http - exactly one of tcp, http, check is allowed');
});

test('each bad setting is named with what is wrong', () => {
  assert.equal(problemOf({ tcp: 'h:1', interval: 'fast' }), 'probe/interval: "fast" - not a decimal number up to 2147483647');
  assert.equal(problemOf({ tcp: 'h:1', interval: '0' }), 'probe/interval: "0" - must be at least 1');
  assert.equal(problemOf({ tcp: 'h:1', timeout: '0\n' }), 'probe/timeout: "0" - must be at least 1');
  assert.equal(problemOf({ tcp: 'h:1', timeout: '-5' }), 'probe/timeout: "-5" - not a decimal number up to 2147483647');
  assert.equal(problemOf({ tcp: 'h:1', 'start-delay': '1.5' }), 'probe/start-delay: "1.5" - not a decimal number up to 2147483647');
  assert.equal(problemOf({ tcp: 'h:1', attempts: '99999999999' }), 'probe/attempts: "99999999999" - not a decimal number up to 2147483647');
  assert.equal(problemOf({ tcp: 'h:1', liveness: '0' }), 'probe/liveness: "0" - must be at least 1');
  assert.equal(problemOf({ tcp: 'h:1', interval: '1\n2\n' }), 'probe/interval: "1\\n2" - one line expected');
  assert.equal(problemOf({ http: 'http://h/', 'http-status': '600' }), 'probe/http-status: "600" - expected a status code (200) or a range (200-399) within 100-599');
  assert.equal(problemOf({ http: 'http://h/', 'http-status': '399-200' }), 'probe/http-status: "399-200" - expected a status code (200) or a range (200-399) within 100-599');
  assert.equal(problemOf({ http: 'http://h/', 'http-status': 'ok' }), 'probe/http-status: "ok" - expected a status code (200) or a range (200-399) within 100-599');
  assert.equal(problemOf({ http: 'http://h/', 'http-body': '\n' }), 'probe/http-body: 0 bytes - expected 1 to 1024');
  assert.equal(problemOf({ http: 'http://h/', 'http-body': 'x'.repeat(1025) }), 'probe/http-body: 1025 bytes - expected 1 to 1024');
});

test('http-status and http-body belong to an http probe only', () => {
  assert.equal(problemOf({ tcp: 'h:1', 'http-status': '200', 'http-body': 'ok' }),
    'probe/http-status: only for an http probe (this one is tcp); probe/http-body: only for an http probe (this one is tcp)');
});

test('an unknown file is refused (a misspelt setting would otherwise be ignored), every problem reported at once', () => {
  assert.equal(problemOf({ tcp: 'h:1', intervall: '10', timeout: 'x' }),
    'probe/intervall: unknown file (known: tcp, http, check, interval, timeout, start-delay, attempts, http-status, http-body, http-reuse, liveness); probe/timeout: "x" - not a decimal number up to 2147483647');
});

test('a check that is not executable, not a file, or missing its target is refused', () => {
  assert.equal(problemOf({ check: '#!/bin/sh\n' }), 'probe/check: not executable');
  const dir = service({});
  fs.mkdirSync(path.join(dir, 'probe', 'check'));
  assert.equal(readProbeSpec(dir).problem, 'probe/check: not a regular file');
  const dangling = service({});
  fs.symlinkSync('/nonexistent/t6-check', path.join(dangling, 'probe', 'check'));
  assert.equal(readProbeSpec(dangling).problem, 'probe/check: unable to stat: No such file or directory');
});

test('probe that is a file, a value file that is a directory or too long, a FIFO that would block: problems, never a hang', () => {
  const file = tmpdir('t6-probe-spec-');
  fs.writeFileSync(path.join(file, 'probe'), '');
  assert.equal(readProbeSpec(file).problem, 'probe: not a directory');
  const sub = service({ tcp: 'h:1' });
  fs.mkdirSync(path.join(sub, 'probe', 'interval'));
  assert.equal(readProbeSpec(sub).problem, 'probe/interval: not a regular file');
  assert.equal(problemOf({ http: `http://h/${'a'.repeat(5000)}` }), 'probe/http: over 4096 bytes');
  const fifo = service({ tcp: 'h:1' });
  if (spawnMkfifo(path.join(fifo, 'probe', 'timeout'))) assert.equal(readProbeSpec(fifo).problem, 'probe/timeout: not a regular file');
});

/** mkfifo(1): the test makes a FIFO without the libc layer. */
function spawnMkfifo(file: string): boolean {
  const r = process.getBuiltinModule('node:child_process').spawnSync('mkfifo', [file]);
  return r.status === 0;
}

test('an unreadable probe/ is a problem, not an exception', { skip: process.getuid?.() === 0 ? 'root reads anything' : false }, () => {
  const dir = service({ tcp: 'h:1' });
  fs.chmodSync(path.join(dir, 'probe'), 0o000);
  try {
    assert.match(readProbeSpec(dir).problem ?? '', /^probe: unable to read: Permission denied$/);
  } finally {
    fs.chmodSync(path.join(dir, 'probe'), 0o755);
  }
});
