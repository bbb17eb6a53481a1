/**
 * t6-rc-compile: invalid sources are refused with every problem named (file and message)
 * and nothing written; valid sources give the expected db.json and servicedirs; the write
 * is atomic. Runs the command in-process on sources built in a temporary directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { type CommandIo, FatalError, UsageError } from '../../src/cli/_run.ts';
import { main } from '../../src/cli/rc-compile.ts';
import { compileSources } from '../../src/rc/compile.ts';
import { writeCompiled } from '../../src/rc/write-compiled.ts';
import { findCycles } from '../../src/rc/cycles.ts';
import { type CompiledDb, DB_VERSION, type LongrunService, type OneshotService, type Service, loadDb } from '../../src/rc/db.ts';
import { toDot } from '../../src/rc/graph.ts';
import { tmpdir } from '../lib/harness.ts';

// ---- building sources -------------------------------------------------------------------

/** A file's content, a file with a mode, a symlink, or a directory. */
type Node = string | { mode: number; text: string } | { link: string } | Tree;
interface Tree { [name: string]: Node }

function build(dir: string, tree: Tree): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, node] of Object.entries(tree)) {
    const p = path.join(dir, name);
    if (typeof node === 'string') fs.writeFileSync(p, node, { mode: name === 'run' || name === 'finish' ? 0o755 : 0o644 });
    else if ('link' in node && typeof node.link === 'string') fs.symlinkSync(node.link, p);
    else if ('mode' in node && 'text' in node && typeof node.text === 'string') fs.writeFileSync(p, node.text, { mode: node.mode as number });
    else build(p, node as Tree);
  }
}

const RUN = '#!/bin/sh\nexec sleep 1000\n';
const longrun = (extra: Tree = {}): Tree => ({ type: 'longrun\n', run: RUN, ...extra });
const oneshot = (up = 'true\n', extra: Tree = {}): Tree => ({ type: 'oneshot\n', up, ...extra });
const bundle = (contents: string[], extra: Tree = {}): Tree => ({ type: 'bundle\n', contents: contents.join('\n') + '\n', ...extra });
/** `names` as a `.d` directory of empty files. */
const dotD = (names: string[]): Tree => Object.fromEntries(names.map((n) => [n, '']));

// ---- running the command ------------------------------------------------------------------

interface Run { code: number; out: string; err: string }

async function cli(args: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const io: CommandIo = { prog: 't6-rc-compile', out: (t) => { out += t; }, err: (t) => { err += t; } };
  try {
    return { code: await main(args, io), out, err };
  } catch (e) {
    if (e instanceof UsageError) return { code: 100, out, err: `${err}t6-rc-compile: usage: ${e.message}\n` };
    if (e instanceof FatalError) return { code: e.exitCode, out, err: `${err}t6-rc-compile: fatal: ${e.message}\n` };
    throw e;
  }
}

/** Builds the sources (one tree per source dir), compiles them, returns the run and paths. */
async function compileTrees(trees: Tree[], args: string[] = []): Promise<Run & { base: string; target: string; srcs: string[] }> {
  const base = tmpdir('t6-rc-compile-');
  const srcs = trees.map((t, i) => {
    const dir = path.join(base, trees.length === 1 ? 'src' : `src${i + 1}`);
    build(dir, t);
    return dir;
  });
  const target = path.join(base, 'compiled');
  return { ...(await await cli([...args, target, ...srcs])), base, target, srcs };
}

/** The `fatal:` lines as { file, message }. */
function fatals(err: string): Array<{ file: string; message: string }> {
  const out = [];
  for (const line of err.split('\n')) {
    const m = /^t6-rc-compile: fatal: (.*?): (.*)$/.exec(line);
    if (m !== null) out.push({ file: m[1]!, message: m[2]! });
  }
  return out;
}

/** Asserts the compile failed (exit 1), with exactly the problems expected, and wrote nothing. */
function assertRefused(r: Awaited<ReturnType<typeof compileTrees>>, expected: Array<[string, RegExp | string]>): void {
  assert.equal(r.code, 1, `expected exit 1, got ${r.code}\n${r.err}`);
  const got = fatals(r.err).map((p) => ({ file: path.relative(r.base, p.file), message: p.message }));
  assert.equal(got.length, expected.length, `expected ${expected.length} problem(s), got:\n${r.err}`);
  for (const [i, [file, message]] of expected.entries()) {
    assert.equal(got[i]!.file, file, `problem ${i}: ${JSON.stringify(got[i])}`);
    if (typeof message === 'string') assert.equal(got[i]!.message, message);
    else assert.match(got[i]!.message, message);
  }
  assert.equal(fs.existsSync(r.target), false, 'nothing is written');
  assert.deepEqual(fs.readdirSync(r.base).filter((n) => !n.startsWith('src')), [], 'no temporary directory is left');
}

function refuses(name: string, trees: Tree | Tree[], expected: Array<[string, RegExp | string]>): void {
  test(`refused: ${name}`, async () => {
    const r = await compileTrees(Array.isArray(trees) ? trees : [trees]);
    try {
      assertRefused(r, expected);
    } finally {
      fs.rmSync(r.base, { recursive: true, force: true });
    }
  });
}

// ---- invalid sources: each refused with its own message -------------------------------------

refuses('a definition without a type file', { a: { run: RUN } },
  [['src/a/type', 'missing: every service needs a type file (oneshot, longrun or bundle)']]);
refuses('an unknown type', { a: { type: 'daemon\n', run: RUN } },
  [['src/a/type', 'invalid type "daemon\\n": must be oneshot, longrun, or bundle']]);
refuses("a type whose first 8 bytes are not a word and a newline (s6-rc-compile reads 8)", { a: { type: 'bundle\n\n\n', contents: 'x\n' }, x: oneshot() },
  [['src/a/type', 'invalid type "bundle\\n\\n\\n": must be oneshot, longrun, or bundle']]);
refuses('a oneshot without up', { a: { type: 'oneshot\n', down: 'true\n' } },
  [['src/a/up', 'missing: a oneshot needs an up script']]);
refuses('an up script with an unterminated quote', { a: oneshot('echo "abc\n') },
  [['src/a/up', 'line 1: syntax error: unterminated quoted string']]);
refuses('an up script with an unmatched {', { a: oneshot('if {\n  true\n') },
  [['src/a/up', 'line 3: unmatched {']]);
refuses('an up script with an unmatched }', { a: oneshot('true }\n') },
  [['src/a/up', 'line 1: unmatched }']]);
refuses('a down script with a bad \\0 escape', { a: oneshot('true\n', { down: 'echo "\\0z"\n' }) },
  [['src/a/down', 'line 1: syntax error: \\0 must be followed by octal digits or x']]);
refuses('an up script holding a NUL byte', { a: oneshot('echo a\0b\n') },
  [['src/a/up', 'line 1: NUL byte in the script (execlineb would stop reading there)']]);
refuses('an up that is a directory', { a: { type: 'oneshot\n', up: {} } },
  [['src/a/up', 'is not a regular file']]);
refuses('a longrun without run', { a: { type: 'longrun\n' } },
  [['src/a/run', 'missing: a longrun needs a run script']]);
refuses('a run script without #!', { a: longrun({ run: 'while :; do sleep 10; done\n' }) },
  [['src/a/run', 'has no #! line and is not an ELF binary: the kernel cannot execute it (start it with e.g. #!/bin/sh)']]);
refuses('a run that is a directory', { a: longrun({ run: {} }) },
  [['src/a/run', 'is not a regular file']]);
refuses('a run that is a dangling symlink', { a: longrun({ run: { link: 'nowhere' } }) },
  [['src/a/run', 'dangling symbolic link']]);
refuses('an empty run', { a: longrun({ run: '' }) },
  [['src/a/run', 'is empty']]);
refuses('a finish script without #!', { a: longrun({ finish: 'echo done\n' }) },
  [['src/a/finish', /^has no #! line/]]);
refuses('a non-numeric timeout-up', { a: oneshot('true', { 'timeout-up': '10s\n' }) },
  [['src/a/timeout-up', '"10s" is not an unsigned decimal number']]);
refuses('a negative timeout-down', { a: longrun({ 'timeout-down': '-5\n' }) },
  [['src/a/timeout-down', '"-5" is not an unsigned decimal number']]);
refuses('a timeout-up beyond 32 bits', { a: longrun({ 'timeout-up': '4294967296\n' }) },
  [['src/a/timeout-up', '4294967296 is too large (at most 4294967295)']]);
refuses('a non-numeric notification-fd', { a: longrun({ 'notification-fd': 'three\n' }) },
  [['src/a/notification-fd', '"three" is not an unsigned decimal number']]);
refuses('the same fd for notification-fd and lock-fd', { a: longrun({ 'notification-fd': '4\n', 'lock-fd': '4\n' }) },
  [['src/a/lock-fd', 'same fd as notification-fd (4); they must differ']]);
refuses('a timeout-kill with a unit', { a: longrun({ 'timeout-kill': '3 s\n' }) },
  [['src/a/timeout-kill', '"3 s" is not an unsigned decimal number']]);
refuses('an empty timeout-finish', { a: longrun({ 'timeout-finish': '' }) },
  [['src/a/timeout-finish', '"" is not an unsigned decimal number']]);
refuses('a non-numeric max-death-tally', { a: longrun({ 'max-death-tally': 'many\n' }) },
  [['src/a/max-death-tally', '"many" is not an unsigned decimal number']]);
refuses('an unknown down-signal', { a: longrun({ 'down-signal': 'SIGFOO\n' }) },
  [['src/a/down-signal', '"SIGFOO" is not a signal (a name like TERM or SIGTERM, or a number)']]);
refuses('data/ that is a file', { a: longrun({ data: 'x' }) },
  [['src/a/data', 'is not a directory']]);
refuses('env/ that is a file', { a: longrun({ env: 'PATH=/bin' }) },
  [['src/a/env', 'is not a directory']]);
refuses('an env/ variable name with =', { a: longrun({ env: { 'A=B': 'x' } }) },
  [['src/a/env/A=B', 'an environment variable name cannot contain =']]);
refuses('the same name in two sources', [{ a: longrun() }, { a: oneshot() }],
  [['src2/a', /^duplicate service definition: a is already defined in \/.*\/src1 as a longrun$/]]);
refuses('an unknown dependency in dependencies', { a: longrun({ dependencies: 'b\n' }) },
  [['src/a/dependencies', 'unknown service "b" (dependency of a)']]);
refuses('an unknown dependency in dependencies.d/', { a: longrun({ 'dependencies.d': dotD(['ghost']) }) },
  [['src/a/dependencies.d/ghost', 'unknown service "ghost" (dependency of a)']]);
refuses('an unknown bundle member', { b: bundle(['a', 'nope']), a: oneshot() },
  [['src/b/contents', 'unknown service "nope" (member of bundle b)']]);
refuses('a directory named with the reserved prefix s6rc-', { 's6rc-x': longrun() },
  [['src/s6rc-x', 'invalid service name: "s6rc-x" starts with the reserved prefix s6rc-']]);
refuses('a reserved name in a dependency list', { a: longrun({ dependencies: 's6rc-oneshot-runner\n' }) },
  [['src/a/dependencies', 'invalid service name: "s6rc-oneshot-runner" starts with the reserved prefix s6rc-']]);
refuses('a name with a newline', { 'bad\nname': longrun() },
  [['src/bad\\nname', 'invalid service name: "bad\\nname" contains a newline character']]);
refuses('a bundle containing itself', { b: bundle(['b', 'a']), a: oneshot() },
  [['src/b/contents', 'bundle b contains itself']]);
refuses('bundles containing each other', { b1: bundle(['b2']), b2: bundle(['a', 'b1']), a: oneshot() },
  [['src/b1/contents', 'bundle cycle: b1 → b2 → b1']]);
refuses('a dependency cycle, reported as its path', {
  a: longrun({ dependencies: 'b\n' }), b: oneshot('true', { dependencies: 'c\n' }), c: longrun({ 'dependencies.d': dotD(['a']) }),
}, [['src/a/dependencies', 'dependency cycle: a → b → c → a']]);
refuses('a service depending on itself', { a: oneshot('true', { dependencies: 'a\n' }) },
  [['src/a/dependencies', 'dependency cycle: a → a']]);
refuses('a dependency cycle through a bundle', {
  a: longrun({ dependencies: 'grp\n' }), grp: bundle(['b']), b: oneshot('true', { dependencies: 'a\n' }),
}, [['src/a/dependencies', 'dependency cycle: a → b → a']]);
refuses('a producer-for naming an unknown service', { p: longrun({ 'producer-for': 'nolog\n' }) },
  [['src/p/producer-for', 'unknown service "nolog" (consumer of p\'s output)']]);
refuses('a producer-for naming a oneshot', { p: longrun({ 'producer-for': 'o\n' }), o: oneshot() },
  [['src/p/producer-for', 'o is a oneshot; only a longrun can be a consumer']]);
refuses('a producer-for with two names', { p: longrun({ 'producer-for': 'c1\nc2\n' }), c1: longrun(), c2: longrun() },
  [['src/p/producer-for', 'must name exactly one service (the consumer), found 2']]);
refuses('a producer the consumer does not declare back', { p: longrun({ 'producer-for': 'c\n' }), c: longrun() },
  [['src/p/producer-for', /^p is a producer for c, but c does not declare it back \(add p to \/.*\/src\/c\/consumer-for\)$/]]);
refuses('a consumer the producer does not declare back', { p: longrun(), c: longrun({ 'consumer-for': 'p\n' }) },
  [['src/c/consumer-for', /^c is a consumer for p, but p does not declare it back \(write c to \/.*\/src\/p\/producer-for\)$/]]);
refuses('a consumer-for naming a bundle', { c: longrun({ 'consumer-for': 'b\n' }), b: bundle(['c']) },
  [['src/c/consumer-for', 'b is a bundle; only a longrun can be a producer']]);
refuses('a pipeline fork (one producer, two consumers)', {
  p: longrun({ 'producer-for': 'c1\n' }), c1: longrun({ 'consumer-for': 'p\n' }), c2: longrun({ 'consumer-for': 'p\n' }),
}, [['src/p', 'pipeline fork: p is listed as a producer by c1 and c2; a producer feeds exactly one consumer (pipelines may merge, never fork)']]);
refuses('a pipeline loop', {
  a: longrun({ 'producer-for': 'b\n', 'consumer-for': 'b\n' }), b: longrun({ 'producer-for': 'a\n', 'consumer-for': 'a\n' }),
}, [['src/a/producer-for', 'pipeline cycle: a → b → a'], ['src/a/producer-for', 'dependency cycle: a → b → a']]);
refuses('a pipeline name that is already a service', {
  p: longrun({ 'producer-for': 'c\n' }), c: longrun({ 'consumer-for': 'p\n', 'pipeline-name': 'p\n' }),
}, [['src/c/pipeline-name', /^pipeline name p is already the name of a longrun defined in \//]]);
refuses('a pipeline-name with two names', {
  p: longrun({ 'producer-for': 'c\n' }), c: longrun({ 'consumer-for': 'p\n', 'pipeline-name': 'x\ny\n' }),
}, [['src/c/pipeline-name', 'must contain exactly one name, found 2']]);
refuses('two pipelines with the same name', {
  p1: longrun({ 'producer-for': 'c1\n' }), c1: longrun({ 'consumer-for': 'p1\n', 'pipeline-name': 'logs\n' }),
  p2: longrun({ 'producer-for': 'c2\n' }), c2: longrun({ 'consumer-for': 'p2\n', 'pipeline-name': 'logs\n' }),
}, [['src/c2/pipeline-name', 'pipeline name logs is already used by the pipeline ending in c1']]);
refuses('a pipeline name with a reserved prefix', {
  p: longrun({ 'producer-for': 'c\n' }), c: longrun({ 'consumer-for': 'p\n', 'pipeline-name': 's6-rc-pipe\n' }),
}, [['src/c/pipeline-name', 'invalid pipeline name: "s6-rc-pipe" starts with the reserved prefix s6-rc-']]);
refuses('a consumer that depends on its producer (the producer already depends on it)', {
  p: longrun({ 'producer-for': 'c\n' }), c: longrun({ 'consumer-for': 'p\n', dependencies: 'p\n' }),
}, [['src/c/dependencies', 'dependency cycle: c → p → c']]);
refuses('a bundle without contents', { b: { type: 'bundle\n' } },
  [['src/b/contents', 'missing: a bundle needs contents.d/ or a contents file']]);
refuses('contents.d that is a file', { b: { type: 'bundle\n', 'contents.d': 'a\n' }, a: oneshot() },
  [['src/b/contents.d', 'is not a directory']]);

test('refused: every problem of a source is reported in one run, in reading order', async () => {
  const r = await compileTrees([{
    a: { type: 'longrun\n' },
    b: oneshot('if {\n'),
    c: longrun({ dependencies: 'zz\n', 'timeout-up': 'x' }),
    d: { type: 'bundle\n', contents: 'a\nyy\n' },
    e: { type: 'weird\n' },
  }]);
  try {
    assertRefused(r, [
      ['src/a/run', /missing/],
      ['src/b/up', /unmatched \{/],
      ['src/c/timeout-up', /not an unsigned decimal/],
      ['src/e/type', /invalid type/],
      ['src/d/contents', 'unknown service "yy" (member of bundle d)'],
      ['src/c/dependencies', 'unknown service "zz" (dependency of c)'],
    ]);
    assert.match(r.err, /t6-rc-compile: 6 problems found; nothing written\n$/);
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});

test('refused: an unreadable source dir is named (exit 1)', async () => {
  const base = tmpdir('t6-rc-compile-');
  try {
    const r = await cli([path.join(base, 'compiled'), path.join(base, 'nope')]);
    assert.equal(r.code, 1);
    assert.deepEqual(fatals(r.err), [{ file: path.join(base, 'nope'), message: 'unable to read the source directory: No such file or directory' }]);
    assert.equal(fs.existsSync(path.join(base, 'compiled')), false);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

// ---- valid sources ---------------------------------------------------------------------------

/** Compiles trees that must be valid; returns the database as loaded (JSON's view: no undefined fields) and the paths. */
async function compiled(trees: Tree[], args: string[] = []): Promise<{ db: CompiledDb; r: Awaited<ReturnType<typeof compileTrees>> }> {
  const r = await compileTrees(trees, args);
  if (r.code !== 0) fs.rmSync(r.base, { recursive: true, force: true });
  assert.equal(r.code, 0, r.err);
  assert.equal(fatals(r.err).length, 0);
  const { version, longruns, oneshots, services } = loadDb(r.target);
  const db = JSON.parse(JSON.stringify({ version, longruns, oneshots, services })) as CompiledDb;
  return { db, r };
}
const byName = (db: CompiledDb, name: string): Service => {
  const s = db.services.find((x) => x.name === name);
  assert.ok(s, `${name} is in the db`);
  return s;
};
const names = (db: CompiledDb, idx: readonly number[]): string[] => idx.map((i) => db.services[i]!.name);
const depNames = (db: CompiledDb, name: string): string[] => {
  const s = byName(db, name);
  assert.notEqual(s.type, 'bundle');
  return names(db, (s as OneshotService | LongrunService).deps);
};

test("the article's demo (s6-rc: A Demo) compiles to the expected db", async () => {
  // As in the article, with a #! line added to run (the article's heredoc lost it; without
  // one the kernel cannot execute the script, which t6-rc-compile reports).
  const { db, r } = await compiled([{
    'demo-longrun-1': {
      type: 'longrun\n',
      run: '#!/bin/sh\nwhile :; do echo "demo-longrun-1 is running"; sleep 10; done\n',
      dependencies: 'demo-oneshot-1\n',
    },
    'demo-oneshot-1': {
      type: 'oneshot\n',
      up: { mode: 0o755, text: 'echo "demo-oneshot-1 is up"\n' },
      down: { mode: 0o755, text: 'echo "demo-oneshot-1 is down"\n' },
    },
    default: { type: 'bundle\n', contents: 'demo-longrun-1\n' },
  }]);
  try {
    const source = r.srcs[0]!;
    assert.deepEqual(db, {
      version: DB_VERSION, longruns: 1, oneshots: 1,
      services: [
        { name: 'demo-longrun-1', index: 0, source, essential: false, deps: [1], timeoutUp: 0, timeoutDown: 0, type: 'longrun', readiness: false, consumerFor: [] },
        { name: 'demo-oneshot-1', index: 1, source, essential: false, deps: [], timeoutUp: 0, timeoutDown: 0, type: 'oneshot', up: ['echo', 'demo-oneshot-1 is up'], down: ['echo', 'demo-oneshot-1 is down'] },
        { name: 'default', index: 2, source, essential: false, type: 'bundle', contents: [0] },
      ],
    });
    assert.deepEqual(fs.readdirSync(r.target).sort(), ['db.json', 'index', 'lock', 'servicedirs']);
    // The readers' index (db-index.ts): names, then each service's type and deps or contents.
    assert.equal(fs.readFileSync(path.join(r.target, 'index'), 'utf8'),
      `t6-rc-index 1 1 1 3 ${fs.statSync(path.join(r.target, 'db.json')).size}\ndemo-longrun-1\ndemo-oneshot-1\ndefault\nl1\no\nb0\n.\n`);
    // On disk, compact: each source named once, fields at their defaults left out.
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(r.target, 'db.json'), 'utf8')), {
      version: DB_VERSION, longruns: 1, oneshots: 1, sources: [source],
      services: [
        { name: 'demo-longrun-1', source: 0, deps: [1], type: 'longrun' },
        { name: 'demo-oneshot-1', source: 0, type: 'oneshot', up: ['echo', 'demo-oneshot-1 is up'], down: ['echo', 'demo-oneshot-1 is down'] },
        { name: 'default', source: 0, type: 'bundle', contents: [0] },
      ],
    });
    // A version 1 database (every field written out) loads the same.
    const v1 = path.join(r.base, 'v1');
    fs.mkdirSync(v1);
    fs.writeFileSync(path.join(v1, 'db.json'), JSON.stringify({ ...db, version: 1 }));
    const fromV1 = loadDb(v1);
    assert.deepEqual(JSON.parse(JSON.stringify(fromV1.services)), db.services);
    assert.equal(fs.readFileSync(path.join(r.target, 'lock'), 'utf8'), '');
    assert.deepEqual(fs.readdirSync(path.join(r.target, 'servicedirs')), ['demo-longrun-1']);
    assert.deepEqual(fs.readdirSync(path.join(r.target, 'servicedirs/demo-longrun-1')), ['run']);
    const loaded = loadDb(r.target);
    assert.equal(loaded.atomics, 2);
    assert.equal(loaded.byName.get('default')?.type, 'bundle');
    assert.equal(r.err, '');
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});

test('indexes: longruns, then oneshots, then bundles; names sorted within a source, sources in order', async () => {
  const { db, r } = await compiled([
    { zb: bundle(['a']), z: oneshot(), b: longrun(), a: longrun() },
    { y: longrun(), c: oneshot(), ab: bundle(['c']) },
  ]);
  try {
    assert.deepEqual(db.services.map((s) => s.name), ['a', 'b', 'y', 'z', 'c', 'zb', 'ab']);
    assert.deepEqual(db.services.map((s) => s.index), [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(db.longruns, 3);
    assert.equal(db.oneshots, 2);
    assert.equal(byName(db, 'y').source, r.srcs[1]);
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});

test('a diamond: each service gets its direct dependencies only', async () => {
  const { db, r } = await compiled([{
    top: longrun({ 'dependencies.d': dotD(['left', 'right']) }),
    left: oneshot('true', { dependencies: 'bottom\n' }),
    right: longrun({ dependencies: '  bottom\n# a comment\n\n' }),
    bottom: oneshot(),
  }]);
  try {
    assert.deepEqual(depNames(db, 'top').sort(), ['left', 'right']);
    assert.deepEqual(depNames(db, 'left'), ['bottom']);
    assert.deepEqual(depNames(db, 'right'), ['bottom']);
    assert.deepEqual(depNames(db, 'bottom'), []);
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});

test('a 10-deep chain, and bundles of bundles expanded to atomic members', async () => {
  const tree: Tree = {};
  for (let i = 0; i < 10; i++) {
    const extra: Tree = i < 9 ? { dependencies: `s${i + 1}\n` } : {};
    tree[`s${i}`] = i % 2 === 0 ? longrun(extra) : oneshot('true', extra);
  }
  tree.inner = bundle(['s9', 's8']);
  tree.middle = { type: 'bundle\n', 'contents.d': dotD(['inner', 's5']) };
  tree.outer = bundle(['middle', 's0', 'inner']);
  tree.s0 = longrun({ dependencies: 's1\n', 'timeout-up': '1500\n', 'timeout-down': '250' });
  const { db, r } = await compiled([tree]);
  try {
    for (let i = 0; i < 9; i++) assert.deepEqual(depNames(db, `s${i}`), [`s${i + 1}`]);
    assert.deepEqual(depNames(db, 's9'), []);
    const outer = byName(db, 'outer');
    assert.equal(outer.type, 'bundle');
    if (outer.type === 'bundle') assert.deepEqual(names(db, outer.contents).sort(), ['s0', 's5', 's8', 's9']);
    const s0 = byName(db, 's0') as LongrunService;
    assert.equal(s0.timeoutUp, 1500);
    assert.equal(s0.timeoutDown, 250);
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});

test('a dependency on a bundle is a dependency on its members', async () => {
  const { db, r } = await compiled([{ app: longrun({ dependencies: 'net\n' }), net: bundle(['dhcp', 'dns']), dhcp: longrun(), dns: oneshot() }]);
  try {
    assert.deepEqual(depNames(db, 'app').sort(), ['dhcp', 'dns']);
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});

test('pipelines: a funnel into a last consumer, producers depend on their consumer, the pipeline bundle', async () => {
  const { db, r } = await compiled([{
    p0: longrun({ 'producer-for': 'p1\n' }),
    p1: longrun({ 'consumer-for': 'p0\n', 'producer-for': 'log\n' }),
    p2: longrun({ 'producer-for': 'log\n', dependencies: 'setup\n' }),
    log: longrun({ 'consumer-for': 'p1\np2\n', 'pipeline-name': 'logpipe\n', 'notification-fd': '3\n' }),
    setup: oneshot(),
    all: bundle(['logpipe']),
    user: oneshot('true', { dependencies: 'logpipe\n' }),
  }]);
  try {
    const idx = (n: string): number => byName(db, n).index;
    const log = byName(db, 'log') as LongrunService;
    assert.deepEqual(names(db, log.consumerFor), ['p1', 'p2']);
    assert.equal(log.producerFor, undefined);
    assert.equal(log.pipelineName, 'logpipe');
    assert.equal(log.readiness, true);
    assert.equal((byName(db, 'p0') as LongrunService).producerFor, idx('p1'));
    assert.equal((byName(db, 'p1') as LongrunService).producerFor, idx('log'));
    assert.deepEqual(names(db, (byName(db, 'p1') as LongrunService).consumerFor), ['p0']);
    // a producer depends on its consumer (the consumer starts first and stops last)
    assert.deepEqual(depNames(db, 'p0'), ['p1']);
    assert.deepEqual(depNames(db, 'p2').sort(), ['log', 'setup']);
    const pipe = byName(db, 'logpipe');
    assert.equal(pipe.type, 'bundle');
    assert.equal(pipe.index, db.services.length - 1);
    if (pipe.type === 'bundle') assert.deepEqual(names(db, pipe.contents).sort(), ['log', 'p0', 'p1', 'p2']);
    const all = byName(db, 'all');
    if (all.type === 'bundle') assert.deepEqual(names(db, all.contents).sort(), ['log', 'p0', 'p1', 'p2']);
    assert.deepEqual(depNames(db, 'user').sort(), ['log', 'p0', 'p1', 'p2']);
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});

test('a pipeline-name not on a last consumer is ignored with a warning', async () => {
  const { db, r } = await compiled([{
    p: longrun({ 'producer-for': 'c\n', 'pipeline-name': 'nope\n' }), c: longrun({ 'consumer-for': 'p\n' }),
  }]);
  try {
    assert.equal(db.services.length, 2);
    assert.match(r.err, /warning: .*\/src\/p\/pipeline-name: ignored: p is not the last consumer of a pipeline/);
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});

test('a longrun servicedir gets its s6 files, env/ and data/ as in the source; down, log/ and the obsolete nosetsid are left out', async () => {
  const { db, r } = await compiled([{
    d: longrun({
      run: { mode: 0o644, text: RUN }, // s6-rc installs run 0755 whatever the source mode; warned
      finish: '#!/bin/sh\necho finished\n',
      'notification-fd': '3\n', 'lock-fd': '5\n', 'timeout-kill': '2000\n', 'timeout-finish': '100\n',
      'max-death-tally': '10\n', 'down-signal': 'SIGHUP\n', nosetsid: '',
      env: { PATH: '/usr/bin:/bin\n', EMPTY: '' },
      data: { 'rules': 'allow\n', sub: { deep: { 'file.txt': 'deep\n' } }, link: { link: 'rules' } },
      down: '', log: { type: 'longrun\n', run: RUN },
    }),
  }]);
  try {
    const sd = path.join(r.target, 'servicedirs/d');
    assert.deepEqual(fs.readdirSync(sd).sort(), ['data', 'down-signal', 'env', 'finish', 'lock-fd', 'max-death-tally', 'notification-fd', 'run', 'timeout-finish', 'timeout-kill']);
    assert.equal(fs.statSync(path.join(sd, 'run')).mode & 0o777, 0o755);
    assert.equal(fs.statSync(path.join(sd, 'finish')).mode & 0o777, 0o755);
    assert.equal(fs.readFileSync(path.join(sd, 'run'), 'utf8'), RUN);
    assert.equal(fs.readFileSync(path.join(sd, 'notification-fd'), 'utf8'), '3\n');
    assert.equal(fs.readFileSync(path.join(sd, 'down-signal'), 'utf8'), 'SIGHUP\n');
    assert.equal(fs.readFileSync(path.join(sd, 'env/PATH'), 'utf8'), '/usr/bin:/bin\n');
    assert.equal(fs.readFileSync(path.join(sd, 'env/EMPTY'), 'utf8'), '');
    assert.equal(fs.readFileSync(path.join(sd, 'data/sub/deep/file.txt'), 'utf8'), 'deep\n');
    assert.equal(fs.readlinkSync(path.join(sd, 'data/link')), 'rules');
    assert.equal((byName(db, 'd') as LongrunService).readiness, true);
    assert.doesNotMatch(r.err, /is not executable/, 'said at -v2 only, as s6-rc-compile installs it 0755 in silence');
    assert.match(r.err, /warning: .*\/src\/d\/log: ignored: s6-rc services log through pipelines/);
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});

test("inputs s6-rc-compile accepts are accepted (issue 11): a type's first 8 bytes, names starting t6rc-, an empty consumer-for, the first line of a number file, `echo \\`", async () => {
  const { db, r } = await compiled([{
    'one-shot': { type: 'oneshot\n\n', up: 'echo \\\n' },
    run: longrun({ type: 'longrun\nand more\n', 'notification-fd': '3\nignored\n', 'timeout-kill': '2000\n\n', 'consumer-for': '' }),
    't6rc-mine': oneshot(), 't6-rc-too': oneshot(),
  }]);
  try {
    assert.equal(byName(db, 'one-shot').type, 'oneshot');
    assert.deepEqual((byName(db, 'one-shot') as OneshotService).up, ['echo']);
    const run = byName(db, 'run') as LongrunService;
    assert.equal(run.type, 'longrun');
    assert.equal(run.readiness, true);
    assert.deepEqual(run.consumerFor, [], 'an empty consumer-for: a consumer of nothing');
    const sd = path.join(r.target, 'servicedirs/run');
    assert.equal(fs.readFileSync(path.join(sd, 'notification-fd'), 'utf8'), '3\n', 'the number written back as s6-rc-compile does');
    assert.equal(fs.readFileSync(path.join(sd, 'timeout-kill'), 'utf8'), '2000\n');
    assert.ok(byName(db, 't6rc-mine') && byName(db, 't6-rc-too'));
    assert.equal(fs.existsSync(path.join(sd, 'nosetsid')), false);
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});

test("what s6-rc-compile passes over in silence (a run not executable, a oneshot's run) is said only at -v2", async () => {
  const tree = { d: longrun({ run: { mode: 0o644, text: RUN } }), o: oneshot('true\n', { run: RUN }) };
  const quiet = await compiled([tree]);
  fs.rmSync(quiet.r.base, { recursive: true, force: true });
  assert.equal(quiet.r.err, '');
  const loud = await compiled([tree], ['-v2']);
  try {
    assert.match(loud.r.err, /warning: .*\/src\/d\/run: is not executable \(mode 0644\); installed as 0755/);
    assert.match(loud.r.err, /warning: .*\/src\/o\/run: ignored: run is for longruns; this service is a oneshot/);
  } finally {
    fs.rmSync(loud.r.base, { recursive: true, force: true });
  }
});

test("a database compiled by s6-rc-compile is recognised, and the message says what to do", () => {
  // s6-rc-compile's layout (s6-spec/s6-rc.md §3), made here: no s6-rc package on this machine.
  const dir = tmpdir('t6-s6rc-db-');
  try {
    for (const f of ['db', 'n', 'resolve.cdb', 'lock']) fs.writeFileSync(path.join(dir, f), '');
    fs.mkdirSync(path.join(dir, 'servicedirs'));
    assert.throws(() => loadDb(dir), { message: `${dir} was compiled by s6-rc-compile, whose format t6 does not read: compile the same source directories with t6-rc-compile (it reads s6-rc's source format) and use that` });
    fs.rmSync(path.join(dir, 'resolve.cdb'));
    assert.throws(() => loadDb(dir), { message: `unable to read ${dir}/db.json: No such file or directory` });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('run may be a symbolic link to the script: the script is copied', async () => {
  const base = tmpdir('t6-rc-compile-');
  try {
    fs.writeFileSync(path.join(base, 'real-run'), RUN, { mode: 0o755 });
    build(path.join(base, 'src'), { s: { type: 'longrun\n', run: { link: path.join(base, 'real-run') } } });
    const r = await cli([path.join(base, 'compiled'), path.join(base, 'src')]);
    assert.equal(r.code, 0, r.err);
    const run = path.join(base, 'compiled/servicedirs/s/run');
    assert.equal(fs.lstatSync(run).isFile(), true);
    assert.equal(fs.readFileSync(run, 'utf8'), RUN);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('flag-essential marks the service, and a bundle with it marks its members', async () => {
  const { db, r } = await compiled([{
    a: oneshot('true', { 'flag-essential': '' }), b: longrun(), c: longrun(), core: bundle(['b'], { 'flag-essential': '' }),
  }]);
  try {
    assert.deepEqual(db.services.filter((s) => s.essential).map((s) => s.name).sort(), ['a', 'b', 'core']);
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});

test('warnings: duplicate list entries, low notification-fd, an empty source; -v0 silences them', async () => {
  const trees: Tree[] = [{ a: longrun({ dependencies: 'b\nb\n', 'notification-fd': '1\n' }), b: oneshot() }, {}];
  const { r } = await compiled(trees);
  try {
    assert.match(r.err, /warning: .*\/src1\/a\/dependencies: "b" is listed twice/);
    assert.match(r.err, /warning: .*\/src1\/a\/notification-fd: fd 1 is one of stdin, stdout, stderr/);
    assert.match(r.err, /warning: .*\/src2: source directory is empty/);
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
  const quiet = await compiled(trees, ['-v0']);
  try {
    assert.equal(quiet.r.err, '');
  } finally {
    fs.rmSync(quiet.r.base, { recursive: true, force: true });
  }
});

// ---- writing: refusal of an existing target, atomicity ---------------------------------------

test('an existing target is refused (exit 111) and left untouched', async () => {
  const base = tmpdir('t6-rc-compile-');
  try {
    build(path.join(base, 'src'), { a: longrun() });
    fs.mkdirSync(path.join(base, 'compiled'));
    fs.writeFileSync(path.join(base, 'compiled/keep'), 'x');
    const r = await cli([path.join(base, 'compiled'), path.join(base, 'src')]);
    assert.equal(r.code, 111);
    assert.match(r.err, /^t6-rc-compile: fatal: .*\/compiled already exists; choose a new directory/);
    assert.deepEqual(fs.readdirSync(path.join(base, 'compiled')), ['keep']);
    assert.deepEqual(fs.readdirSync(base).sort(), ['compiled', 'src']);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('a failure in the middle of writing leaves no target and no temporary directory', async () => {
  const base = tmpdir('t6-rc-compile-');
  try {
    const tree: Tree = {};
    for (let i = 0; i < 5; i++) tree[`l${i}`] = longrun({ data: { f: 'x' } });
    build(path.join(base, 'src'), tree);
    const result = compileSources([path.join(base, 'src')]);
    assert.ok(result.ok);
    for (const failAt of ['servicedir l2', 'files', 'rename']) {
      const target = path.join(base, 'compiled');
      await assert.rejects(writeCompiled(target, result.db, result.sources, {
        step: (what) => { if (what === failAt) throw Object.assign(new Error('disk full'), { code: 'ENOSPC' }); },
      }), /unable to write .*compiled: No space left on device/);
      assert.equal(fs.existsSync(target), false, `no target after a failure at ${failAt}`);
      assert.deepEqual(fs.readdirSync(base), ['src'], `no temporary directory after a failure at ${failAt}`);
    }
    // and without a failure, the same call writes it
    const steps: string[] = [];
    await writeCompiled(path.join(base, 'compiled'), result.db, result.sources, { step: (w) => steps.push(w) });
    assert.deepEqual(steps, ['servicedir l0', 'servicedir l1', 'servicedir l2', 'servicedir l3', 'servicedir l4', 'files', 'rename']);
    assert.deepEqual(fs.readdirSync(base).sort(), ['compiled', 'src']);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

// ---- command line ------------------------------------------------------------------------

test('usage: missing operands or a bad -v exit 100; --help prints the usage and exits 0', async () => {
  assert.equal((await cli([])).code, 100);
  assert.equal((await cli(['only-target'])).code, 100);
  assert.match((await cli(['only-target'])).err, /^t6-rc-compile: usage: t6-rc-compile \[ -v verbosity \] \[ -h fdholder_user \] \[ -b \] compiled-dir source-dir\.\.\.\n$/);
  assert.equal((await cli(['-v', 'x', 'a', 'b'])).code, 100);
  assert.equal((await cli(['-q', 'a', 'b'])).code, 100);
  const help = await cli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /^usage: t6-rc-compile/);
});

test("-v2 prints a summary, -v3 timings; s6-rc-compile's -h user and -b are accepted", async () => {
  const { r } = await compiled([{ a: longrun(), b: oneshot(), c: bundle(['a']) }], ['-v3', '-h', 'nobody', '-b']);
  try {
    assert.match(r.err, /info: compiled 1 longruns, 1 oneshots, 1 bundles into /);
    assert.match(r.err, /debug: started at [\d.]+ ms, read [\d.]+ ms, checked [\d.]+ ms, written [\d.]+ ms\n$/);
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});

// ---- the real s6-rc source format --------------------------------------------------------

test('sources written in the real s6-rc style compile (execline scripts, .d dirs, pipelines, env/)', async () => {
  // Modelled on the idioms of s6-rc's examples/source-router: execline run scripts, oneshots
  // with blocks, an empty down, dependencies.d/ and contents.d/, a logged daemon as a named
  // pipeline referenced by a bundle, 0644 run scripts, flag-essential.
  const logRun = '#!/command/execlineb -P\ns6-setuidgid log\nexec -c\ns6-log -d3 -- t /var/log/dns-cache\n';
  const { db, r } = await compiled([{
    'mount-proc': oneshot('if { mount -t proc proc /proc }\n', { 'flag-essential': '', down: '' }),
    'init-lan': oneshot(
      'foreground { ip addr add 127.0.0.1/8 dev lo }\nif { ip link set dev lo up }\nif\n{\n  forx -Ep i { 0 1 }\n  ip link set dev eth$i up\n}\n',
      { 'dependencies.d': dotD(['mount-proc']), down: 'ip link set dev lo down\n' }),
    'dns-cache': {
      type: 'longrun\n',
      run: { mode: 0o644, text: '#!/command/execlineb -P\nfdmove -c 2 1\ns6-envdir env\nimportas -uS ROOT\ndnscache\n' },
      'dependencies.d': dotD(['init-lan']),
      'producer-for': 'dns-cache-log\n',
      'down-signal': 'SIGTERM\n',
      env: { ROOT: '/var/dnscache\n', CACHESIZE: '1000000\n' },
    },
    'dns-cache-log': {
      type: 'longrun\n', run: logRun, 'consumer-for': 'dns-cache\n', 'pipeline-name': 'dns-cache-pipeline\n',
      'notification-fd': '3\n', 'dependencies.d': dotD(['mount-proc']),
    },
    'ok-lan': { type: 'bundle\n', 'contents.d': dotD(['dns-cache-pipeline', 'init-lan']) },
    default: { type: 'bundle\n', 'contents.d': dotD(['ok-lan']) },
  }]);
  try {
    const initLan = byName(db, 'init-lan') as OneshotService;
    assert.deepEqual(initLan.up, ['foreground', ' ip', ' addr', ' add', ' 127.0.0.1/8', ' dev', ' lo', '', 'if', ' ip', ' link', ' set', ' dev', ' lo', ' up', '', 'if', ' forx', ' -Ep', ' i', '  0', '  1', ' ', ' ip', ' link', ' set', ' dev', ' eth$i', ' up', '']);
    assert.deepEqual(initLan.down, ['ip', 'link', 'set', 'dev', 'lo', 'down']);
    assert.deepEqual((byName(db, 'mount-proc') as OneshotService).down, []);
    const def = byName(db, 'default');
    if (def.type === 'bundle') assert.deepEqual(names(db, def.contents).sort(), ['dns-cache', 'dns-cache-log', 'init-lan']);
    assert.deepEqual(depNames(db, 'dns-cache').sort(), ['dns-cache-log', 'init-lan']);
    assert.equal(fs.readFileSync(path.join(r.target, 'servicedirs/dns-cache/env/ROOT'), 'utf8'), '/var/dnscache\n');
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});

const S6RC_MIRROR = '/work/.mirror/skarnet+s6-rc/repo';
test("s6-rc's own examples (examples/demo, examples/source-router) compile", { skip: !fs.existsSync(S6RC_MIRROR) && 'no s6-rc repository mirror here' }, async () => {
  const { execFileSync } = await import('node:child_process');
  const base = tmpdir('t6-rc-compile-');
  try {
    const tar = execFileSync('git', ['--git-dir', S6RC_MIRROR, 'archive', 'HEAD', 'examples']);
    execFileSync('tar', ['-x', '-C', base], { input: tar });
    const ex = path.join(base, 'examples');
    const router = await cli(['-v0', path.join(base, 'router'), path.join(ex, 'source-router')]);
    assert.equal(router.code, 0, router.err);
    const db = loadDb(path.join(base, 'router'));
    assert.ok(db.atomics > 50);
    assert.ok(db.byName.has('dns-cache-pipeline'));
    const demo = await cli(['-v0', path.join(base, 'demo'), path.join(ex, 'demo/0'), path.join(ex, 'demo/1')]);
    assert.equal(demo.code, 0, demo.err);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

// ---- helpers of the checker and the graph --------------------------------------------------

test('findCycles reports one shortest cycle per strongly connected component', async () => {
  const g: Record<string, string[]> = { a: ['b'], b: ['c'], c: ['a', 'd'], d: ['e'], e: ['d'], f: ['f'], g: ['a'] };
  assert.deepEqual(findCycles(Object.keys(g), (n) => g[n] ?? []).map((c) => c.join(' → ')).sort(),
    ['a → b → c → a', 'd → e → d', 'f → f']);
  assert.deepEqual(findCycles(['x', 'y'], (n) => (n === 'x' ? ['y'] : [])), []);
});

test('toDot: nodes shaped by type, edges from a service to what it depends on, pipes and bundles marked', async () => {
  const { db, r } = await compiled([{
    p: longrun({ 'producer-for': 'c\n', dependencies: 'o\n' }), c: longrun({ 'consumer-for': 'p\n', 'notification-fd': '3\n' }),
    o: oneshot('true', { 'flag-essential': '' }), 'b "q"': bundle(['o']),
  }]);
  try {
    const dot = toDot(db);
    assert.match(dot, /^digraph services \{\n/);
    assert.match(dot, /\n {2}"c" \[shape=box, peripheries=2, tooltip="longrun c"\];\n/);
    assert.match(dot, /\n {2}"o" \[shape=ellipse, style=bold, tooltip="oneshot o"\];\n/);
    assert.match(dot, /\n {2}"b \\"q\\"" \[shape=folder, style=dashed, tooltip="bundle b \\"q\\""\];\n/);
    assert.match(dot, /\n {2}"p" -> "c" \[color=blue, penwidth=2, label="pipe"\];\n/);
    assert.match(dot, /\n {2}"p" -> "o";\n/);
    assert.match(dot, /\n {2}"b \\"q\\"" -> "o" \[style=dashed, arrowhead=odiamond\];\n/);
    assert.match(dot, /\n\}\n$/);
  } finally {
    fs.rmSync(r.base, { recursive: true, force: true });
  }
});
