/**
 * s6-overlay's legacy layouts (src/init/container-legacy.ts) against temporary directories:
 * fix-attrs.d for real (these tests run as root: chown works), cont-init.d and
 * cont-finish.d with a host that starts the scripts through child_process, services.d's
 * copies and links (the scanner side is in test/integration). Waits are on the
 * steps' own promises, never on fixed sleeps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tmpdir } from '../lib/harness.ts';
import { readContainerSettings, type ContainerSettings } from '../../src/init/container-settings.ts';
import {
  type LegacyContext, type LegacyHost, contFinish, contInit, defaultLegacyDirs, fixAttrs, servicesUp,
} from '../../src/init/container-legacy.ts';
import { parseFixAttrsLine } from '../../src/init/legacy-fix-attrs.ts';
import { expandGlob } from '../../src/init/legacy-glob.ts';
import { readAccountDb, resolveAccount } from '../../src/init/legacy-accounts.ts';

/** Starts scripts with child_process (a group leader each: detached), output collected. */
function testHost(): LegacyHost & { output: string[] } {
  const output: string[] = [];
  return {
    output,
    start: (file) => new Promise((resolve, reject) => {
      const child = spawn(file, [], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      child.stdout.on('data', (b: Buffer) => output.push(b.toString()));
      child.stderr.on('data', (b: Buffer) => output.push(b.toString()));
      const exited = new Promise<number>((done) => child.on('exit', (code, sig) => {
        done(sig !== null ? os.constants.signals[sig] : (code ?? 0) << 8);
      }));
      child.once('error', reject);
      child.once('spawn', () => resolve({ pid: child.pid!, exited }));
    }),
    killGroup: (pgid, signal) => { process.kill(-pgid, signal); },
    rescan: () => Promise.resolve(),
  };
}

/** A context over a fresh legacy directory; `lines` gets what the step says. */
function context(env: Record<string, string> = {}): LegacyContext & { lines: string[]; root: string; host: ReturnType<typeof testHost> } {
  const root = tmpdir('t6-legacy-');
  const etc = path.join(root, 'etc');
  fs.mkdirSync(etc);
  fs.writeFileSync(path.join(root, 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nabc:x:911:912::/config:/bin/false\nnobody:x:65534:65534::/:/bin/false\n');
  fs.writeFileSync(path.join(root, 'group'), 'root:x:0:\nusers:x:100:abc\nabc:x:912:\n');
  const settings: ContainerSettings = readContainerSettings(env).settings;
  const lines: string[] = [];
  const dirs = { ...defaultLegacyDirs(etc), passwd: path.join(root, 'passwd'), group: path.join(root, 'group'), scandir: path.join(root, 'service'), servicesCopy: path.join(root, 'copies') };
  return { settings, dirs, log: (l) => lines.push(l), host: testHost(), lines, root };
}

/** Writes `<legacy>/fix-attrs.d/NAME`. */
function fixFile(ctx: LegacyContext, name: string, text: string): string {
  const dir = path.join(ctx.dirs.legacy, 'fix-attrs.d');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, name), text);
  return path.join(dir, name);
}

const owner = (p: string): string => {
  const st = fs.lstatSync(p);
  return `${st.uid}:${st.gid}`;
};
const mode = (p: string): string => (fs.lstatSync(p).mode & 0o7777).toString(8);

/** A tree: data/{a/{f1,f2,b/f3},.hidden/h,.dotfile} and a link data/a/out → a root file outside. */
function tree(root: string): { data: string; outside: string } {
  const data = path.join(root, 'data');
  fs.mkdirSync(path.join(data, 'a', 'b'), { recursive: true });
  fs.mkdirSync(path.join(data, '.hidden'));
  for (const f of ['a/f1', 'a/f2', 'a/b/f3', '.hidden/h', '.dotfile']) fs.writeFileSync(path.join(data, f), '');
  const outside = path.join(root, 'outside');
  fs.writeFileSync(outside, 'secret', { mode: 0o600 });
  fs.symlinkSync(outside, path.join(data, 'a', 'out'));
  return { data, outside };
}

test('fix-attrs: recursion visits every entry, names resolve from the given passwd/group, links are not followed, dot entries skipped', async () => {
  const ctx = context();
  const { data, outside } = tree(ctx.root);
  fixFile(ctx, '10-data', `# first word is exactly '#': a comment\n\n   \n${data} true abc 0640 0750\n`);
  assert.equal(await fixAttrs(ctx), 0);
  for (const d of [data, `${data}/a`, `${data}/a/b`]) assert.deepEqual([owner(d), mode(d)], ['911:912', '750'], d);
  for (const f of ['a/f1', 'a/f2', 'a/b/f3']) assert.deepEqual([owner(`${data}/${f}`), mode(`${data}/${f}`)], ['911:912', '640'], f);
  assert.equal(owner(`${data}/a/out`), '911:912', 'the link itself changes owner');
  assert.deepEqual([owner(outside), mode(outside)], ['0:0', '600'], 'what the link points at is untouched');
  for (const f of ['.hidden', '.hidden/h', '.dotfile']) assert.equal(owner(`${data}/${f}`), '0:0', `${f}: S6_FIX_ATTRS_HIDDEN is off`);
  assert.ok(ctx.lines.some((l) => /^warning: fix-attrs: .*fix-attrs\.d is deprecated/.test(l)), ctx.lines.join('\n'));
  assert.ok(ctx.lines.some((l) => l.startsWith('info: fix-attrs: applying ')));
});

test('fix-attrs: S6_FIX_ATTRS_HIDDEN takes dot entries into the recursion; no recursion without `true`', async () => {
  const ctx = context({ S6_FIX_ATTRS_HIDDEN: '1' });
  const { data } = tree(ctx.root);
  fixFile(ctx, 'a', `${data} true 911:100 0604 0705\n${data}/a/b false abc 0600 0700\n`);
  assert.equal(await fixAttrs(ctx), 0);
  for (const f of ['.hidden', '.hidden/h', '.dotfile']) assert.equal(owner(`${data}/${f}`), '911:100', f);
  assert.equal(mode(`${data}/.hidden`), '705');
  assert.equal(mode(`${data}/.dotfile`), '604');
  assert.deepEqual([owner(`${data}/a/b`), mode(`${data}/a/b`)], ['911:912', '700'], 'the second line, on the directory only');
  assert.deepEqual([owner(`${data}/a/b/f3`), mode(`${data}/a/b/f3`)], ['911:100', '604'], 'not descended into by the second line');
});

test('fix-attrs: globs, user:group by name, numbers, and the fallback used only when names do not resolve', async () => {
  const ctx = context();
  const { data } = tree(ctx.root);
  fixFile(ctx, '01', [
    `${data}/a/f? false abc:users 0600 0700`,
    `${data}/a/b/f[0-9] false 1234:5678 0611 0700`,
    `${data}/.hid* false ghost:nogroup,4000:4001 0644 0701`,
    `${data}/a/b false abc,4000:4001 0644 0702`,
    `${data}/a/out true 77:77 0777 0777`,
    '',
  ].join('\n'));
  assert.equal(await fixAttrs(ctx), 0, ctx.lines.join('\n'));
  for (const f of ['a/f1', 'a/f2']) assert.deepEqual([owner(`${data}/${f}`), mode(`${data}/${f}`)], ['911:100', '600']);
  assert.deepEqual([owner(`${data}/a/b/f3`), mode(`${data}/a/b/f3`)], ['1234:5678', '611']);
  assert.deepEqual([owner(`${data}/.hidden`), mode(`${data}/.hidden`)], ['4000:4001', '701'], 'a dot pattern matches dot names; unknown names take the fallback');
  assert.deepEqual([owner(`${data}/a/b`), mode(`${data}/a/b`)], ['911:912', '702'], 'a known user ignores the fallback and takes its primary group');
  assert.equal(owner(`${data}/a/out`), '77:77', 'a link named by a line: its own owner changes');
  assert.deepEqual([owner(path.join(ctx.root, 'outside')), mode(path.join(ctx.root, 'outside'))], ['0:0', '600'], 'never what it points at');
});

test('fix-attrs: each bad line is reported with file:line and the problem; the others are applied; the stage-2 policy sets the code', async () => {
  for (const [b, code] of [['0', 0], ['1', 0], ['2', 1]] as const) {
    const ctx = context({ S6_BEHAVIOUR_IF_STAGE2_FAILS: b });
    const { data } = tree(ctx.root);
    const file = fixFile(ctx, '20-bad', [
      `${data}/a/f1 false abc 0600`,
      `${data}/a/f1 false ghost 0600 0700`,
      `${data}/a/f1 false abc 0600 0799`,
      `#not-a-comment false abc 0600 0700`,
      `${data}/nothing* false abc 0600 0700`,
      `${data}/a/f2 false abc 0606 0700`,
    ].join('\n'));
    assert.equal(await fixAttrs(ctx), code, `S6_BEHAVIOUR_IF_STAGE2_FAILS=${b}`);
    const errors = ctx.lines.filter((l) => l.startsWith('error: fix-attrs: ') && !/failures?;/.test(l));
    assert.deepEqual(errors.map((l) => l.slice('error: fix-attrs: '.length)), [
      `${file}:1: 4 fields where 5 are wanted (path recurse account fmode dmode)`,
      `${file}:2: unknown account "ghost"`,
      `${file}:3: dmode "0799" is not an octal mode`,
      `${file}:4: unable to open /#not-a-comment: No such file or directory`,
      `${file}:5: unable to open ${data}/nothing*: No such file or directory`,
    ]);
    assert.deepEqual([owner(`${data}/a/f2`), mode(`${data}/a/f2`)], ['911:912', '606'], 'the good line is applied');
    const policy = ctx.lines.filter((l) => /failures; /.test(l));
    if (b === '0') assert.deepEqual(policy, []);
    if (b === '1') assert.deepEqual(policy, ['warning: fix-attrs: 5 failures; going on (S6_BEHAVIOUR_IF_STAGE2_FAILS=1)']);
    if (b === '2') assert.deepEqual(policy, ['error: fix-attrs: 5 failures; stopping (S6_BEHAVIOUR_IF_STAGE2_FAILS=2)']);
  }
});

test('fix-attrs: files in byte order, dot-files skipped; no directory, no warning; verbosity 0 keeps only errors', async () => {
  const ctx = context({ S6_VERBOSITY: '0' });
  assert.equal(await fixAttrs(ctx), 0);
  assert.deepEqual(ctx.lines, []);
  const { data } = tree(ctx.root);
  fixFile(ctx, 'b', `${data}/a/f1 false 2:2 0600 0700\n`);
  fixFile(ctx, 'B', `${data}/a/f1 false 1:1 0600 0700\n`);
  fixFile(ctx, '.skipped', `${data}/a/f1 false 3:3 0600 0700\n`);
  assert.equal(await fixAttrs(ctx), 0);
  assert.equal(owner(`${data}/a/f1`), '2:2', '"B" before "b"; ".skipped" never');
  assert.deepEqual(ctx.lines, []);
});

test('fix-attrs pieces: line parsing, the glob matcher, accounts', () => {
  assert.equal(parseFixAttrsLine(''), undefined);
  assert.equal(parseFixAttrsLine('  # a comment'), undefined);
  assert.deepEqual(parseFixAttrsLine('\t/x  true abc:def,1:2 644 0755'), { pattern: '/x', recurse: true, account: 'abc:def,1:2', fmode: 0o644, dmode: 0o755 });
  assert.equal((parseFixAttrsLine('/x yes abc 644 755') as { recurse: boolean }).recurse, false);
  const root = tmpdir('t6-glob-');
  for (const n of ['a1', 'a2', 'b1', '.a3', 'c]', 'x y']) fs.writeFileSync(path.join(root, n), '');
  fs.mkdirSync(path.join(root, 'd1'));
  fs.writeFileSync(path.join(root, 'd1', 'f'), '');
  assert.deepEqual(expandGlob(`${root}/a*`), [`${root}/a1`, `${root}/a2`]);
  assert.deepEqual(expandGlob(`${root}/.a*`), [`${root}/.a3`]);
  assert.deepEqual(expandGlob(`${root}/[!a]1`), [`${root}/b1`, `${root}/d1`]);
  assert.deepEqual(expandGlob(`${root}/?1/f`), [`${root}/d1/f`]);
  assert.deepEqual(expandGlob(`${root}/c]`), [`${root}/c]`]);
  assert.deepEqual(expandGlob(`${root}/z*`), [`${root}/z*`], 'no match: the word itself');
  assert.deepEqual(expandGlob(`${root}/\\*`), [`${root}/*`]);
  fs.writeFileSync(path.join(root, 'passwd'), 'u:x:10:20::/:/bin/sh\nbad line\n');
  fs.writeFileSync(path.join(root, 'group'), 'g:x:30:\n');
  const db = readAccountDb(path.join(root, 'passwd'), path.join(root, 'group'));
  assert.deepEqual(resolveAccount('u', db), { uid: 10, gid: 20 });
  assert.deepEqual(resolveAccount('u:g', db), { uid: 10, gid: 30 });
  assert.deepEqual(resolveAccount('5:g', db), { uid: 5, gid: 30 });
  assert.deepEqual(resolveAccount('x:g,1:2', db), { uid: 1, gid: 2 });
  assert.deepEqual(resolveAccount('x', db), { error: 'unknown account "x"' });
  assert.deepEqual(resolveAccount('u:nogroup', db), { error: 'unknown account "u:nogroup"' });
  assert.deepEqual(resolveAccount('u,1', db), { error: 'fallback "1" is not uid:gid in numbers' });
});

/** Writes an executable script `<legacy>/<sub>/NAME`. */
function script(ctx: LegacyContext, sub: string, name: string, body: string): string {
  const dir = path.join(ctx.dirs.legacy, sub);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return path.join(dir, name);
}

test('cont-init: every script in byte order, all of them, each exit code said; the stage-2 policy decides', async () => {
  for (const [b, code] of [['0', 0], ['1', 0], ['2', 1]] as const) {
    const ctx = context({ S6_BEHAVIOUR_IF_STAGE2_FAILS: b });
    const trace = path.join(ctx.root, 'trace');
    const s20 = script(ctx, 'cont-init.d', '20-fails', `echo 20 >> ${trace}; exit 3`);
    const s10 = script(ctx, 'cont-init.d', '10-first', `echo 10 >> ${trace}; read x && echo "stdin gave a line" >> ${trace}; echo out`);
    const s30 = script(ctx, 'cont-init.d', '30-last', `echo 30 >> ${trace}; kill -TERM $$`);
    script(ctx, 'cont-init.d', '.hidden', `echo hidden >> ${trace}`);
    const s25 = path.join(ctx.dirs.legacy, 'cont-init.d', '25-not-executable');
    fs.writeFileSync(s25, '#!/bin/sh\necho 25\n', { mode: 0o644 });
    assert.equal(await contInit(ctx), code, `S6_BEHAVIOUR_IF_STAGE2_FAILS=${b}`);
    assert.equal(fs.readFileSync(trace, 'utf8'), '10\n20\n30\n', 'in order, all run, stdin is /dev/null');
    assert.deepEqual(ctx.lines.filter((l) => !/failures; /.test(l)), [
      `info: cont-init: starting ${s10}`, `info: cont-init: ${s10} exited 0`,
      `info: cont-init: starting ${s20}`, `info: cont-init: ${s20} exited 3`,
      `info: cont-init: starting ${s25}`, `error: cont-init: unable to run ${s25}: Permission denied`,
      `info: cont-init: starting ${s30}`, `info: cont-init: ${s30} was killed by signal 15`,
    ]);
    assert.equal(ctx.host.output.join(''), 'out\n', "the scripts' output is theirs");
    const policy = ctx.lines.filter((l) => /failures; /.test(l));
    assert.deepEqual(policy, b === '0' ? [] : [b === '1'
      ? 'warning: cont-init: 3 failures; going on (S6_BEHAVIOUR_IF_STAGE2_FAILS=1)'
      : 'error: cont-init: 3 failures; stopping (S6_BEHAVIOUR_IF_STAGE2_FAILS=2)']);
  }
});

test('cont-init: verbosity 1 says nothing of scripts that go well', async () => {
  const ctx = context({ S6_VERBOSITY: '1', S6_BEHAVIOUR_IF_STAGE2_FAILS: '1' });
  script(ctx, 'cont-init.d', 'ok', 'exit 0');
  script(ctx, 'cont-init.d', 'ko', 'exit 1');
  assert.equal(await contInit(ctx), 0);
  assert.deepEqual(ctx.lines, ['warning: cont-init: 1 failure; going on (S6_BEHAVIOUR_IF_STAGE2_FAILS=1)']);
});

test('cont-finish: a script past S6_KILL_FINISH_MAXTIME is killed with SIGKILL (its children too); failures change nothing: 0', async () => {
  const ctx = context({ S6_KILL_FINISH_MAXTIME: '200' });
  const trace = path.join(ctx.root, 'trace');
  const pidFile = path.join(ctx.root, 'sleeper');
  const s1 = script(ctx, 'cont-finish.d', '01-sleeps', `trap '' TERM; sleep 1000 & echo $! > ${pidFile}; wait`);
  const s2 = script(ctx, 'cont-finish.d', '02-fails', `echo 02 >> ${trace}; exit 7`);
  const started = performance.now();
  assert.equal(await contFinish(ctx), 0);
  assert.ok(performance.now() - started < 20_000, 'the sleeping script did not hold the step');
  assert.equal(fs.readFileSync(trace, 'utf8'), '02\n', 'the next script ran');
  assert.deepEqual(ctx.lines, [
    `info: cont-finish: starting ${s1}`,
    `warning: cont-finish: ${s1} still runs after 200 ms: killing it`,
    `info: cont-finish: ${s1} was killed by signal 9`,
    `info: cont-finish: starting ${s2}`,
    `info: cont-finish: ${s2} exited 7`,
  ]);
  const sleeper = Number(fs.readFileSync(pidFile, 'utf8'));
  const alive = (): boolean => {
    try {
      return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${sleeper}/status`, 'utf8'));
    } catch {
      return false;
    }
  };
  assert.equal(alive(), false, "the script's own child was killed with it");
});

test('cont-finish: without S6_KILL_FINISH_MAXTIME a script runs to its end', async () => {
  const ctx = context();
  script(ctx, 'cont-finish.d', 'a', 'exit 0');
  assert.equal(await contFinish(ctx), 0);
  assert.equal(ctx.lines.length, 2);
});

test('services-up without a scanner to wait for: fresh copies, our old links replaced, a foreign entry left alone, one rescan', async () => {
  const ctx = context({ S6_BEHAVIOUR_IF_STAGE2_FAILS: '2' });
  const rescans: boolean[] = [];
  ctx.host.rescan = (prune) => { rescans.push(prune); return Promise.resolve(); };
  const sd = path.join(ctx.dirs.legacy, 'services.d');
  for (const name of ['web', 'taken']) {
    fs.mkdirSync(path.join(sd, name, 'data'), { recursive: true });
    fs.writeFileSync(path.join(sd, name, 'run'), '#!/bin/sh\nexec sleep 1000\n', { mode: 0o750 });
    fs.writeFileSync(path.join(sd, name, 'data', 'secret'), 'x', { mode: 0o600 });
    fs.chownSync(path.join(sd, name, 'data', 'secret'), 911, 912);
  }
  fs.mkdirSync(ctx.dirs.scandir);
  fs.mkdirSync(path.join(ctx.dirs.servicesCopy, 'stale'), { recursive: true });
  fs.symlinkSync(path.join(ctx.dirs.servicesCopy, 'web'), path.join(ctx.dirs.scandir, 'web')); // an earlier boot's
  fs.symlinkSync('/run/s6-rc/servicedirs/taken', path.join(ctx.dirs.scandir, 'taken')); // an s6-rc longrun's
  assert.equal(await servicesUp(ctx), 1, 'one service could not be linked: S6_BEHAVIOUR_IF_STAGE2_FAILS=2 stops');
  assert.deepEqual(rescans, [false]);
  assert.deepEqual(fs.readdirSync(ctx.dirs.servicesCopy).sort(), ['taken', 'web'], 'made afresh: the stale copy is gone');
  const copy = path.join(ctx.dirs.servicesCopy, 'web');
  assert.equal(fs.readlinkSync(path.join(ctx.dirs.scandir, 'web')), copy);
  assert.equal(fs.readlinkSync(path.join(ctx.dirs.scandir, 'taken')), '/run/s6-rc/servicedirs/taken', 'not ours: untouched');
  assert.equal(mode(path.join(copy, 'run')), '750');
  assert.deepEqual([owner(path.join(copy, 'data', 'secret')), mode(path.join(copy, 'data', 'secret'))], ['911:912', '600'], 'owners and modes kept');
  assert.ok(ctx.lines.includes(`error: services-up: ${path.join(ctx.dirs.scandir, 'taken')} exists and is not a legacy service: taken not started`), ctx.lines.join('\n'));
});

test('a legacy directory that cannot be read is one failure for the policy (cont-init), nothing for cont-finish', async () => {
  const ctx = context({ S6_BEHAVIOUR_IF_STAGE2_FAILS: '2' });
  fs.writeFileSync(path.join(ctx.dirs.legacy, 'cont-init.d'), 'not a directory');
  fs.writeFileSync(path.join(ctx.dirs.legacy, 'cont-finish.d'), 'not a directory');
  assert.equal(await contInit(ctx), 1);
  assert.equal(await contFinish(ctx), 0);
  assert.deepEqual(ctx.lines, [
    `error: cont-init: unable to read ${ctx.dirs.legacy}/cont-init.d: Not a directory`,
    'error: cont-init: 1 failure; stopping (S6_BEHAVIOUR_IF_STAGE2_FAILS=2)',
    `error: cont-finish: unable to read ${ctx.dirs.legacy}/cont-finish.d: Not a directory`,
  ]);
});
