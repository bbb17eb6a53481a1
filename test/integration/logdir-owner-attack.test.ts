/**
 * Log directories against their owner (issue 10), under t6-svscan as pid 1 of its own pid
 * namespace, for both kinds of logger running as root: in-process (`log/t6-log`) and
 * t6-log (`log/run`). The logdir and its parent belong to `nobody`, as
 * `t6-linux-init-maker -u` leaves /run/uncaught-logs; the attacks run with nobody's rights
 * (setpriv) while a service logs:
 *
 * - `current` swapped for a link to a root-only 0600 file, to a root-only directory, to a
 *   root FIFO, and for nobody's own FIFO, before a rotation;
 * - `lock` a link to a file that does not exist yet (pid 1 would make it) and to a FIFO,
 *   then the logger restarted (t6-svc -t) or its script reloaded;
 * - the logdir renamed while in use, a link to the root-only directory in its place, and
 *   the logger restarted meanwhile;
 * - rotations raced by a seeded loop of link, FIFO and directory swaps on every name.
 *
 * After each: no root-only file was read (atime), written, truncated, or had its mode
 * changed (content hash, size, mode, mtime), nothing appeared beside them, the root FIFO got
 * no byte; every file in the logdir is nobody's; the logger said what it refused, in s6's
 * shape; and lines logged once the attack is undone arrive.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, Tree, makeService, t6, tmpdir, until } from '../lib/harness.ts';
import { seededRandom } from '../lib/random.ts';
import { mkfifo, readNonblocking } from '../../src/sys/fd.ts';

const NOBODY = 65534;
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

type Kind = 'in-process' | 't6-log';

/**
 * Runs a shell script with nobody's rights (uid, gid, no groups) in `cwd`; it must succeed.
 * Asynchronous: the tree's output is read meanwhile.
 */
async function asNobody(cwd: string, script: string): Promise<void> {
  const child = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '/bin/sh', '-ec', script], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(status, 0, `as nobody: ${script.slice(0, 500)}\n${stderr}`);
}

/** Root-only things an attack points at, and what shows that none of them was touched. */
class Secrets {
  readonly dir: string;
  readonly file: string;
  readonly subdir: string;
  readonly fifo: string;
  readonly missing: string;
  readonly #reader: number;
  readonly #before: string;

  constructor(base: string) {
    this.dir = path.join(base, 'secrets');
    fs.mkdirSync(this.dir, { mode: 0o700 });
    this.file = path.join(this.dir, 'shadow');
    fs.writeFileSync(this.file, 'root:$6$secret:19000:0:99999:7:::\n', { mode: 0o600 });
    // atime before mtime: any read updates it (relatime), so a read would show.
    const st = fs.statSync(this.file);
    fs.utimesSync(this.file, new Date(st.mtimeMs - 86_400_000), st.mtime);
    this.subdir = path.join(this.dir, 'private');
    fs.mkdirSync(this.subdir, { mode: 0o700 });
    fs.writeFileSync(path.join(this.subdir, 'key'), 'key\n', { mode: 0o600 });
    this.fifo = path.join(this.dir, 'fifo');
    mkfifo(this.fifo, 0o600);
    // Held open for reading: a writer would get in (and its bytes would show here).
    this.#reader = fs.openSync(this.fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    this.missing = path.join(this.dir, 'made-by-pid-1');
    this.#before = this.#snapshot();
    cleanups.push(() => fs.closeSync(this.#reader));
  }

  #snapshot(): string {
    const out: string[] = [];
    for (const e of fs.readdirSync(this.dir, { recursive: true, withFileTypes: true })) {
      const p = path.join(e.parentPath, e.name);
      const st = fs.lstatSync(p);
      const hash = st.isFile() ? crypto.createHash('sha256').update(readNoAtime(p)).digest('hex') : '';
      out.push(`${path.relative(this.dir, p)} uid=${st.uid} mode=${st.mode.toString(8)} size=${st.size} mtime=${st.mtimeMs} atime=${st.isFile() ? st.atimeMs : ''} nlink=${st.nlink} ${hash}`);
    }
    return out.sort().join('\n');
  }

  /** Asserts nothing changed: content, size, mode, mtime, atime (reads), links, new names; no byte in the FIFO. */
  assertUntouched(): void {
    assert.equal(this.#snapshot(), this.#before);
    assert.equal(readNonblocking(this.#reader)?.length ?? 0, 0, 'nothing was written into the root FIFO');
    const r = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'cat', this.file]);
    assert.notEqual(r.status, 0, 'nobody still cannot read the root-only file');
  }
}

/** A file's content, read without changing its atime (O_NOATIME: root may, for any file). */
function readNoAtime(file: string): Buffer {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOATIME);
  try { return fs.readFileSync(fd); } finally { fs.closeSync(fd); }
}

/** A tree with one service logging numbered lines into nobody's logdir, by a logger of `kind`. */
async function setUp(kind: Kind, opts: { processor?: boolean } = {}) {
  const base = tmpdir();
  fs.chmodSync(base, 0o755);
  const secrets = new Secrets(base);
  const logs = path.join(base, 'logs');
  fs.mkdirSync(logs, { mode: 0o755 });
  fs.chownSync(logs, NOBODY, NOBODY);
  const logdir = path.join(logs, 'svc');
  fs.mkdirSync(logdir, { mode: 0o700 });
  fs.chownSync(logdir, NOBODY, NOBODY);
  // r100: a refused step is retried every 100 ms (2 s by default).
  const script = ['s4096', 'n5', 'r100', ...(opts.processor === true ? ['?cat'] : []), logdir];
  const sd = tmpdir();
  // Lines of 100 bytes: a 4 KB current every 40 lines, so rotations come often.
  const producer = `#!/bin/sh\ni=0\nwhile :; do\n  i=$((i+1))\n  echo "line $i ${'x'.repeat(80)}"\n  case $i in *00) sleep 0.05;; esac\ndone\n`;
  const logSpec = kind === 'in-process'
    ? { files: { 't6-log': `${script.join('\n')}\n` } }
    : { run: `#!/bin/sh\nexec "${path.join(BIN, 't6-log')}" ${script.map((w) => `'${w}'`).join(' ')}\n` };
  makeService(path.join(sd, 'svc'), { run: producer, log: logSpec });
  const tree = await Tree.start(sd);
  cleanups.push(() => tree.stop());
  const env = { base, secrets, logs, logdir, sd, tree, kind };
  await until('lines logged', () => lastLine(logdir) > 0);
  return env;
}
type Env = Awaited<ReturnType<typeof setUp>>;

/** The highest line number in the regular files of `dir` (links, FIFOs and directories not looked into). */
function lastLine(dir: string): number {
  let max = 0;
  let names: string[];
  try { names = fs.readdirSync(dir); } catch { return 0; }
  for (const name of names) {
    const p = path.join(dir, name);
    try {
      if (!fs.lstatSync(p).isFile()) continue;
      const text = fs.readFileSync(p, 'latin1');
      const at = text.lastIndexOf('line ', text.length - 2);
      const n = Number(/^line (\d+)/.exec(text.slice(at))?.[1] ?? 0);
      if (n > max) max = n;
    } catch { /* rotated away meanwhile */ }
  }
  return max;
}

/** Waits until lines written after now (by number) are in the logdir's current. */
async function linesGoOn(env: Env, what: string, timeoutMs?: number): Promise<void> {
  const from = lastLine(env.logdir);
  await until(`${what}: lines after ${from} logged`, () => {
    try { return Number(/line (\d+) x*\n$/.exec(fs.readFileSync(path.join(env.logdir, 'current'), 'latin1'))?.[1] ?? 0) > from; } catch { return false; }
  }, timeoutMs);
}

/** How many times the tree's output says `text`. */
function said(env: Env, text: string): number {
  return env.tree.output.text.split(text).length - 1;
}

/** Every name in the logdir is nobody's (the logger used its owner's rights). */
function assertAllNobodys(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    // The logger goes on rotating meanwhile: `previous` may be gone between the listing and the stat.
    const st = fs.lstatSync(path.join(dir, name), { throwIfNoEntry: false });
    if (st !== undefined) assert.equal(st.uid, NOBODY, `${name} is nobody's`);
  }
}

/** Makes the logger open its logdir again: t6-log restarted, or the in-process logger's script reloaded. */
function reopen(env: Env, k: number): void {
  const logsvc = path.join(env.sd, 'svc', 'log');
  if (env.kind === 't6-log') {
    assert.equal(t6('svc', ['-t', logsvc]).status, 0);
    return;
  }
  fs.appendFileSync(path.join(logsvc, 't6-log'), `# reload ${k}\n`);
  env.tree.control('a');
}

for (const kind of ['in-process', 't6-log'] as const) {
  test(`${kind} logger: current swapped by its owner for links to a root-only file, directory and FIFO, and for a FIFO: none is followed at the rotation`, { timeout: 120_000 }, async () => {
    const env = await setUp(kind);
    const { secrets, logdir } = env;
    // Reported either way: renamed to previous by the rotation and removed from there, or,
    // when the swap lands between the rotation's rename and its new current, removed then.
    const reported = (): number => said(env, `${logdir}/previous is not a regular file: removing it, not archiving it`)
      + said(env, `${logdir}/current was made again by someone else during the rotation: removing it`);
    const swaps = [
      `ln -s ${secrets.file} .swap`,
      `ln -s ${secrets.subdir} .swap`,
      `ln -s ${secrets.fifo} .swap`,
      'mkfifo .swap',
    ];
    for (const [k, swap] of swaps.entries()) {
      const reports = reported();
      // The real current kept aside, the thing renamed over the name (a rotation may make a
      // new current at any moment: the owner's swap must not fail for that).
      await asNobody(logdir, `${swap}; mv current stash${k} 2>/dev/null || true; mv -fT .swap current`);
      // The next rotation renames the thing to previous, makes a new current, and ends
      // with no previous left.
      const isFile = (name: string): boolean | undefined => { try { return fs.lstatSync(path.join(logdir, name)).isFile(); } catch { return undefined; } };
      await until(`the rotation after "${swap}"`, () => isFile('current') === true && isFile('previous') === undefined);
      secrets.assertUntouched();
      // previous was not archived but removed, and that was reported.
      await until('the report', () => reported() > reports);
      await linesGoOn(env, swap);
      secrets.assertUntouched();
    }
    assertAllNobodys(logdir);
  });

  test(`${kind} logger: lock a link to a file pid 1 would make, or to a FIFO, when the logger opens the logdir again: refused, reported, and logging resumes once undone`, { timeout: 120_000 }, async () => {
    const env = await setUp(kind);
    const { secrets, logdir } = env;
    for (const [k, target] of [secrets.missing, secrets.fifo].entries()) {
      const refusal = `unable to open ${logdir}/lock: Too many levels of symbolic links`;
      const reports = said(env, refusal);
      await asNobody(logdir, `rm lock; ln -s ${target} lock`);
      reopen(env, k);
      await until('the refusal', () => said(env, refusal) > reports);
      secrets.assertUntouched();
      await asNobody(logdir, 'rm lock');
      // t6-log is restarted a second later; the in-process logger retries within 10 seconds.
      await linesGoOn(env, `lock -> ${target} undone`);
    }
    assert.equal(fs.lstatSync(path.join(logdir, 'lock')).isFile(), true);
    assertAllNobodys(logdir);
    secrets.assertUntouched();
  });

  test(`${kind} logger: the logdir renamed while in use, a link to a root-only directory in its place: logging goes on in the renamed directory; reopened, the link is refused`, { timeout: 120_000 }, async () => {
    const env = await setUp(kind);
    const { secrets, logs, logdir } = env;
    const moved = `${logdir}.moved`;
    const archivesBefore = new Set(fs.readdirSync(logdir).filter((n) => n.startsWith('@')));
    await asNobody(logs, `mv svc svc.moved; ln -s ${secrets.subdir} svc`);
    // The held directory fd: lines go on into the renamed directory, rotations included.
    await until('a rotation in the renamed directory', () => fs.readdirSync(moved).some((n) => n.startsWith('@') && !archivesBefore.has(n)));
    secrets.assertUntouched();
    // Opened again by its path: the link sits in nobody's directory, so it is not followed.
    const refusal = `unable to open ${logdir}: Too many levels of symbolic links`;
    reopen(env, 0);
    await until('the refusal', () => said(env, refusal) > 0);
    secrets.assertUntouched();
    await asNobody(logs, 'rm svc; mv svc.moved svc');
    await linesGoOn(env, 'the rename undone');
    assertAllNobodys(logdir);
    secrets.assertUntouched();
  });

  test(`${kind} logger with a processor: rotations raced by a seeded loop of link, FIFO and directory swaps on every name; nothing root-only touched, logging goes on`, { timeout: 180_000 }, async (t) => {
    const random = seededRandom(t);
    const env = await setUp(kind, { processor: true });
    const { secrets, logdir } = env;
    const names = ['current', 'previous', 'processed', 'newstate', 'state', 'lock'];
    const plants = [
      (n: string) => `ln -s ${secrets.file} ${n}`,
      (n: string) => `ln -s ${secrets.subdir} ${n}`,
      (n: string) => `ln -s ${secrets.fifo} ${n}`,
      (n: string) => `ln -s ${secrets.missing} ${n}`,
      (n: string) => `mkfifo ${n}`,
      (n: string) => `mkdir ${n}`,
    ];
    // One script: 300 swaps, a random name each (some ten milliseconds apart: two programs
    // run for each), while the service fills a 4 KB current about every half second (a
    // rotation and a processor run each).
    const steps: string[] = [];
    for (let i = 0; i < 300; i++) {
      const name = random.pick(names);
      steps.push(`mv -f ${name} stash${i} 2>/dev/null || true; ${random.pick(plants)(name)} 2>/dev/null || true`);
    }
    const t0 = Date.now();
    const line0 = lastLine(logdir);
    const reports0 = said(env, 'warning: ');
    await asNobody(logdir, steps.join('\n'));
    t.diagnostic(`300 swaps in ${Date.now() - t0} ms; meanwhile ${lastLine(logdir) - line0} lines logged, ${said(env, 'warning: ') - reports0} warnings`);
    secrets.assertUntouched();
    // The owner cleans up: whatever is not a regular file under those names goes.
    await asNobody(logdir, names.map((n) => `if [ -L ${n} ] || [ -p ${n} ] || [ -d ${n} ]; then rm -rf ${n}; fi`).join('\n'));
    await linesGoOn(env, 'after the race', 60_000);
    await linesGoOn(env, 'one more rotation', 60_000);
    assertAllNobodys(logdir);
    secrets.assertUntouched();
    // Every report names the file and gives the reason, in s6's shape.
    const from = kind === 'in-process' ? 't6-svscan: warning: svc/log: ' : 't6-log: (?:warning|fatal): ';
    const shape = new RegExp(`^${from}(?:unable to \\w+ ${logdir}/\\w+(?: to ${logdir}/\\w+)?: [A-Z].*|${logdir}/\\w+ (?:is not a regular file: removing it, not archiving it|was made again by someone else during the rotation: removing it)|unable to finish \\w+ \\.s to logdir ${logdir}: [A-Z].*)$`);
    for (const line of env.tree.output.text.split('\n').filter((l) => l.includes(logdir))) assert.match(line, shape);
  });
}
