/**
 * Loggers inside t6-svscan (log/t6-log), the catch-all log (s6-svscan-log/t6-log) and the
 * console sink (-1), each under t6-svscan as pid 1 of its own pid namespace.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, Tree, WAIT_MS, makeService, readStatus, t6, tmpdir, until } from '../lib/harness.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const ARCHIVE = /^@[0-9a-f]{24}\.[su]$/;

/** Every file of a logdir, archives in order then current. */
function logFiles(logdir: string): string[] {
  if (!fs.existsSync(logdir)) return [];
  return [...fs.readdirSync(logdir).filter((n) => ARCHIVE.test(n)).sort(), 'current'].map((n) => path.join(logdir, n));
}

function logText(logdir: string): string {
  return logFiles(logdir).map((f) => { try { return fs.readFileSync(f, 'latin1'); } catch { return ''; } }).join('');
}

function logBytes(logdir: string): number {
  let n = 0;
  for (const f of logFiles(logdir)) { try { n += fs.statSync(f).size; } catch { /* rotated away meanwhile */ } }
  return n;
}

/** Bytes of `seq 1 n`. */
function seqBytes(n: number): number {
  let total = 0;
  for (let digits = 1, lo = 1; lo <= n; digits++, lo *= 10) total += (Math.min(n, lo * 10 - 1) - lo + 1) * (digits + 1);
  return total;
}

/** Asserts the text is exactly `1\n2\n…n\n`: every line once, in order, none torn. */
function assertSeq(text: string, n: number): void {
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', 'ends with a newline');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== String(i + 1)) assert.fail(`line ${i + 1} is ${JSON.stringify(lines[i])} (previous ${JSON.stringify(lines[i - 1])})`);
  }
  assert.equal(lines.length, n);
}

/** `seq` in `chunks` pieces, `pause` seconds apart, then idle: 1..n once (the service never restarts). */
function pacedSeq(n: number, chunks: number, pause: number): string {
  const per = n / chunks;
  return `#!/bin/sh\ni=0\nwhile [ $i -lt ${chunks} ]; do seq $((i*${per}+1)) $((i*${per}+${per})); i=$((i+1)); sleep ${pause}; done\nexec sleep 3600\n`;
}

const LINES = 1_000_000;

/**
 * A producer that writes 1..n in 4,000-byte pieces (so nearly every write ends mid-line),
 * a timer tick apart, then idles: the logger almost always holds a partial line.
 */
function tornSeq(dir: string, n: number): string {
  const js = path.join(dir, 'producer.js');
  fs.writeFileSync(js, `const fs = require('fs');
let text = ''; for (let i = 1; i <= ${n}; i++) text += i + '\\n';
const buf = Buffer.from(text); let at = 0;
const step = () => { if (at >= buf.length) { setInterval(() => {}, 1e9); return; }
  at += fs.writeSync(1, buf, at, Math.min(4000, buf.length - at)); setTimeout(step, 1); };
step();
`);
  return `#!/bin/sh
exec "${process.execPath}" "${js}"
`;
}

test('in-process logger: 1,000,000 lines while log/t6-log is reloaded 100 times, each line once, in order, none torn', { timeout: 300_000 }, async () => {
  const sd = tmpdir();
  const logdir = path.join(tmpdir(), 'logdir');
  const script = (k: number): string => `# version ${k}\nn1000\n${k % 2 === 0 ? 's100000' : 's100001'}\n${logdir}\n`;
  makeService(path.join(sd, 'svc'), { run: tornSeq(tmpdir(), LINES), log: { files: { 't6-log': script(0) } } });
  const t0 = performance.now();
  const tree = await Tree.start(sd);
  cleanups.push(() => tree.stop());
  const reloads = (): number => tree.output.text.split('svc/log: reloaded').length - 1;
  // -d readiness comes before the first scan: wait until the logger runs on version 0.
  await until('logger running', () => fs.existsSync(path.join(logdir, 'lock')));
  const want = seqBytes(LINES);
  for (let k = 1; k <= 100; k++) {
    // Spread over the flood: reload k once about k% of it is logged.
    await until(`${k}% logged`, () => logBytes(logdir) >= ((k - 1) * want) / 100, 60_000, 2);
    fs.writeFileSync(path.join(sd, 'svc', 'log', 't6-log'), script(k));
    tree.control('a');
    await until(`reload ${k}`, () => reloads() >= k, WAIT_MS, 2);
  }
  const reloadedAt = performance.now();
  await until('every byte logged', () => logBytes(logdir) >= want, 120_000, 100);
  assertSeq(logText(logdir), LINES);
  assert.equal(reloads(), 100);
  assert.ok(logBytes(logdir) - want === 0);
  assert.ok(logFiles(logdir).length > 50, 'rotated (s100000)');
  assert.doesNotMatch(tree.output.text, /warning|error/);
  process.stderr.write(`# 100 reloads in ${Math.round(reloadedAt - t0)} ms, ${LINES} lines logged in ${Math.round(performance.now() - t0)} ms\n`);
});

// s6's rule (a service that dies within a second of its start is restarted a second after
// that start) makes 100 restarts of an external logger take at least 100 s; 40 keep the test
// under a minute. SIGTERM, as a logger restart should be: t6-log, like s6-log, ends its
// partial line and writes what it read before exiting. (SIGKILL, t6-svc -k, loses what the
// killed process had read and not written yet — with any logger program.)
const EXTERNAL_RESTARTS = Number(process.env.T6_TEST_LOG_RESTARTS ?? 40);

test(`external t6-log as log/run: 1,000,000 lines while the logger is restarted ${EXTERNAL_RESTARTS} times (t6-svc -t), each line once, in order`, { timeout: 300_000 }, async () => {
  const sd = tmpdir();
  const logdir = path.join(tmpdir(), 'logdir');
  makeService(path.join(sd, 'svc'), {
    run: pacedSeq(LINES, 100, EXTERNAL_RESTARTS * 0.01),
    log: { run: `#!/bin/sh\nexec "${path.join(BIN, 't6-log')}" n1000 s100000 "${logdir}"\n` },
  });
  const tree = await Tree.start(sd);
  cleanups.push(() => tree.stop());
  const logsvc = path.join(sd, 'svc', 'log');
  await until('logger up', () => (readStatus(logsvc)?.pid ?? 0) > 0);
  for (let k = 0; k < EXTERNAL_RESTARTS; k++) {
    const pid = readStatus(logsvc)!.pid;
    assert.equal(t6('svc', ['-t', logsvc]).status, 0);
    await until(`logger restart ${k + 1}`, () => { const st = readStatus(logsvc); return st !== undefined && st.pid > 0 && st.pid !== pid; }, WAIT_MS, 5);
  }
  const want = seqBytes(LINES);
  await until('every byte logged', () => logBytes(logdir) >= want, 120_000, 100);
  assertSeq(logText(logdir), LINES);
});

test('full disk: the service blocks, the alert reaches the catch-all log, nothing is lost once space returns', { timeout: 180_000 }, async (t) => {
  if (process.getuid?.() !== 0) { t.skip('needs root to mount a tmpfs'); return; }
  const base = tmpdir();
  const mnt = path.join(base, 'mnt');
  fs.mkdirSync(mnt);
  // The tree's mount namespace is a copy of ours taken at its start: mount before.
  assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]).status, 0);
  cleanups.push(() => { spawnSync('umount', ['-l', mnt]); });
  const sd = tmpdir();
  const logdir = path.join(mnt, 'svc');
  const catchAll = path.join(base, 'catchall');
  const N = 300_000; // 2 MB of lines: more than the tmpfs holds beside the filler
  makeService(path.join(sd, 'svc'), { run: `#!/bin/sh\nseq 1 ${N}\nexec sleep 3600\n`, down: true, log: { files: { 't6-log': `n1000\ns100000\nr50\n${logdir}\n` } } });
  makeService(path.join(sd, 's6-svscan-log'), { files: { 't6-log': `t\n${catchAll}\n` } });
  try { fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(1536 * 1024)); } catch { /* full */ }
  const tree = await Tree.start(sd);
  cleanups.push(() => tree.stop());
  assert.equal(t6('svc', ['-u', path.join(sd, 'svc')]).status, 0);
  // The alert, naming the service and the logdir, in the catch-all log.
  await until('ENOSPC alert in the catch-all log', () => new RegExp(`t6-svscan: warning: svc/log: unable to write to ${logdir}/current: No space left on device`).test(logText(catchAll)), WAIT_MS, 20);
  // The producer is blocked in write(2) on the full pipe, and stays so.
  const shPid = tree.hostPid(readStatus(path.join(sd, 'svc'))!.pid);
  const seqPid = Number(fs.readFileSync(`/proc/${shPid}/task/${shPid}/children`, 'utf8').trim().split(/\s+/)[0]);
  assert.ok(seqPid > 0, 'seq runs');
  await until('seq blocked writing to the pipe', () => /pipe_write|pipe_wait/.test(fs.readFileSync(`/proc/${seqPid}/wchan`, 'utf8')));
  const stalled = logBytes(logdir);
  assert.ok(stalled < seqBytes(N), `only part logged (${stalled} bytes)`);
  // t6-svscan's memory did not take the flood in.
  const rss = Number(fs.readFileSync(`/proc/${tree.pid1}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)![1]);
  assert.ok(rss < 150 * 1024, `t6-svscan RSS ${rss} kB`);
  fs.rmSync(path.join(mnt, 'filler'));
  await until('every byte logged', () => logBytes(logdir) >= seqBytes(N), 60_000, 50);
  assertSeq(logText(logdir), N);
  await until('recovery noted', () => new RegExp(`svc/log: writing to ${logdir}/current again`).test(logText(catchAll)), WAIT_MS, 20);
});

test('catch-all log: output of services without a logger, stderr of those with one, and t6-svscan\'s own warnings, stamped', { timeout: 120_000 }, async () => {
  const sd = tmpdir();
  const catchAll = path.join(tmpdir(), 'catchall');
  const own = path.join(tmpdir(), 'own');
  makeService(path.join(sd, 's6-svscan-log'), { files: { 't6-log': `# everything nobody else logs\nt\n${catchAll}\n` } });
  makeService(path.join(sd, 'plain'), { run: '#!/bin/sh\necho plain to stdout\necho plain to stderr >&2\nexec sleep 3600\n' });
  makeService(path.join(sd, 'logged'), { run: '#!/bin/sh\necho logged to stdout\necho logged to stderr >&2\nexec sleep 3600\n', log: { files: { 't6-log': `${own}\n` } } });
  fs.mkdirSync(path.join(sd, 'broken'));
  fs.writeFileSync(path.join(sd, 'broken', 'run'), 'not executable');
  const tree = await Tree.start(sd);
  cleanups.push(() => tree.stop());
  const stamped = (text: string): RegExp => new RegExp(`^@[0-9a-f]{24} ${text}$`, 'm');
  await until('lines in the catch-all', () => {
    const text = logText(catchAll);
    return stamped('plain to stdout').test(text) && stamped('plain to stderr').test(text) && stamped('logged to stderr').test(text)
      && stamped(`t6-svscan: warning: unable to spawn ${sd}/broken/run: .*`).test(text);
  }, WAIT_MS, 20);
  await until('own logger', () => logText(own) === 'logged to stdout\n');
  // Not a service: no supervise/ and not counted.
  assert.equal(fs.existsSync(path.join(sd, 's6-svscan-log', 'supervise')), false);
  // The scanner's messages no longer reach its stderr (the warning is in the catch-all by now).
  assert.doesNotMatch(tree.output.text, /unable to spawn/);
  await tree.stop();
  await tree.closed;
  assert.match(logText(catchAll), /plain to stdout/);
  // Checked once all is written: the tree has ended and its output pipes are closed.
  assert.doesNotMatch(logText(catchAll), /logged to stdout/);
});

test('log/t6-log: a bad script is reported naming the file, output waits in the pipe until it is fixed; log/run beside it wins with a warning', { timeout: 120_000 }, async () => {
  const sd = tmpdir();
  const logdir = path.join(tmpdir(), 'ld');
  const other = path.join(tmpdir(), 'other');
  makeService(path.join(sd, 'svc'), { run: '#!/bin/sh\necho one\necho two\nexec sleep 3600\n', log: { files: { 't6-log': 'n3\n+a(\n/x\n' } } });
  makeService(path.join(sd, 'both'), { run: '#!/bin/sh\necho from both\nexec sleep 3600\n', log: { run: `#!/bin/sh\nexec "${path.join(BIN, 't6-log')}" "${other}"\n`, files: { 't6-log': '/nowhere\n' } } });
  const tree = await Tree.start(sd);
  cleanups.push(() => tree.stop());
  await tree.output.waitFor(new RegExp(`t6-svscan: warning: ${sd}/svc/log/t6-log: unrecognized directive: \\+a\\( \\(unmatched \\(\\) - holding the output in the pipe`));
  await tree.output.waitFor(new RegExp(`t6-svscan: warning: ${sd}/both/log has both run and t6-log: supervising ${sd}/both/log/run, ignoring ${sd}/both/log/t6-log`));
  await until('log/run logs', () => logText(other) === 'from both\n');
  assert.equal(readStatus(path.join(sd, 'svc'))!.pid > 0, true, 'the service runs');
  fs.writeFileSync(path.join(sd, 'svc', 'log', 't6-log'), `-l 100\n${logdir}\n`);
  tree.control('a');
  await until('held lines logged', () => logText(logdir) === 'one\ntwo\n');
  // t6-svstat on an in-process logger's directory says what it is.
  const st = t6('svstat', [path.join(sd, 'svc', 'log')]);
  assert.match(st.stdout + st.stderr, /a logger inside t6-svscan/);
});

test('console sink (-1): two services writing interleaved partial lines; stdout has whole prefixed lines only', { timeout: 120_000 }, async () => {
  const sd = tmpdir();
  const writer = (name: string, pause: string): string => `#!/bin/sh\ni=1\nwhile [ $i -le 20 ]; do printf '${name}-start %d ' $i; sleep ${pause}; printf '${name}-end %d\\n' $i >&2; i=$((i+1)); done\nprintf '${name}-partial'\n: > wrote-partial\nexec sleep 3600\n`;
  makeService(path.join(sd, 'a'), { run: writer('a', '0.011') });
  makeService(path.join(sd, 'b'), { run: writer('b', '0.007') });
  makeService(path.join(sd, 'c'), { run: "#!/bin/sh\nprintf 'c dies mid-line'\nexec sleep 0.2\n" });
  const tree = await Tree.start(sd, { args: ['-1'] });
  cleanups.push(() => tree.stop());
  const stdout = tree.stdout;
  await stdout.waitFor(/^c: c dies mid-line$/m);
  await until('both wrote their partial line', () => fs.existsSync(path.join(sd, 'a', 'wrote-partial')) && fs.existsSync(path.join(sd, 'b', 'wrote-partial')));
  // c dies again (each second) after a's and b's partial lines were in their pipes; its
  // flushed line comes after the scanner has had them.
  const deathsOfC = (): number => stdout.text.split('c: c dies mid-line\n').length - 1;
  const deathsBefore = deathsOfC();
  await until('c to die once more', () => deathsOfC() > deathsBefore);
  assert.doesNotMatch(stdout.text, /partial/, 'held until the service dies');
  await tree.stop();
  const lines = stdout.text.split('\n');
  assert.equal(lines.pop(), '', 'whole lines only');
  const seen = { a: 0, b: 0 };
  for (const line of lines) {
    const m = /^(a|b): \1-start (\d+) \1-end \2$|^(a|b): \3-partial$|^c: c dies mid-line$/.exec(line);
    assert.ok(m !== null, `whole prefixed line: ${JSON.stringify(line)}`);
    if (m[1] !== undefined) {
      const k = m[1] as 'a' | 'b';
      assert.equal(Number(m[2]), ++seen[k], 'in order');
    }
  }
  assert.deepEqual(seen, { a: 20, b: 20 });
  // the partial last lines were flushed with a newline when their services died
  assert.match(stdout.text, /^a: a-partial$/m);
  assert.match(stdout.text, /^b: b-partial$/m);
});
