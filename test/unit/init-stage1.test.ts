/** Stage 1's pieces, the maker's tree and stage 4's unmount plan, without booting anything. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, tmpdir } from '../lib/harness.ts';
import { readEnvDir, buildEnvironment, pickRunlevel, copyTree, dumpEnvironment, isMountPoint } from '../../src/init/stage1.ts';
import { parseMounts, planUnmounts, unmountAll } from '../../src/init/umountall.ts';
import { SysError } from '../../src/sys/errors.ts';
import { shQuote, catchAllScript, describeTree, type MakerOptions } from '../../src/init/maker.ts';
import { formatHardLimits, parseHardLimits } from '../../src/init/limits.ts';
import {
  BIN_DIR, CATCHALL_LOGDIR, CATCHALL_SERVICE, DEFAULT_SCANDIR, ENV_DIR, RUN_IMAGE, RUNLEVEL_SCRIPT, SCRIPTS_DIR, STAGE2, STAGE3,
  STAGE4, TMPFS_DIR, shutdowndFifo,
} from '../../src/s6/initctl.ts';

test('env dir: last newline dropped, empty file unsets, PATH first', () => {
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, 'TZ'), 'UTC\n');
  fs.writeFileSync(path.join(dir, 'MULTI'), 'a\nb\n\n');
  fs.writeFileSync(path.join(dir, 'PATH'), '');
  fs.writeFileSync(path.join(dir, 'EMPTYVAL'), '\n');
  const changes = readEnvDir(dir);
  assert.equal(changes.get('TZ'), 'UTC');
  assert.equal(changes.get('MULTI'), 'a\nb\n');
  assert.equal(changes.get('EMPTYVAL'), '');
  assert.equal(changes.has('PATH') && changes.get('PATH'), undefined);
  const env = buildEnvironment('/bin', changes);
  assert.equal(env.has('PATH'), false, 'an empty PATH file unsets PATH');
  assert.equal(env.get('TZ'), 'UTC');
  assert.deepEqual(readEnvDir(path.join(dir, 'missing')), new Map());
});

test('runlevel from the kernel command line, else the default', () => {
  assert.equal(pickRunlevel(['splash', '3', 'default'], 'default'), '3');
  assert.equal(pickRunlevel(['single', 'x'], 'default'), 'default');
  assert.equal(pickRunlevel([], 'multi'), 'multi');
});

test('-d keeps a /dev an initramfs handed over: isMountPoint sees a mount, not a plain directory', () => {
  assert.equal(isMountPoint('/'), true);
  assert.equal(isMountPoint('/proc'), true);
  assert.equal(isMountPoint('/proc/'), true);
  const dir = tmpdir();
  fs.mkdirSync(path.join(dir, 'dev'));
  assert.equal(isMountPoint(path.join(dir, 'dev')), false);
  assert.throws(() => isMountPoint(path.join(dir, 'none')), /ENOENT/);
});

test('copyTree keeps FIFOs, modes and symbolic links; env dump is whole', () => {
  const dir = tmpdir();
  const from = path.join(dir, 'from');
  fs.mkdirSync(path.join(from, 'service/x'), { recursive: true });
  fs.writeFileSync(path.join(from, 'service/x/run'), '#!/bin/sh\n', { mode: 0o750 });
  spawnSync('mkfifo', ['-m', '0600', path.join(from, 'service/x/fifo')]);
  fs.symlinkSync('run', path.join(from, 'service/x/link'));
  fs.mkdirSync(path.join(dir, 'to'));
  copyTree(path.join(from, 'service'), path.join(dir, 'to/service'));
  const st = fs.lstatSync(path.join(dir, 'to/service/x/fifo'));
  assert.ok(st.isFIFO());
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(dir, 'to/service/x/run')).mode & 0o777, 0o750);
  assert.equal(fs.readlinkSync(path.join(dir, 'to/service/x/link')), 'run');
  dumpEnvironment(path.join(dir, 'dump'), { A: '1', B: 'two words' });
  assert.equal(fs.readFileSync(path.join(dir, 'dump/B'), 'utf8'), 'two words\n');
  assert.throws(() => dumpEnvironment(path.join(dir, 'dump'), { A: '1' }));
});

test('copyTree gives every node its source owner and mode: foreign owners, set-id bits, a set-group-ID directory, nodes already there', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, () => {
  const dir = tmpdir();
  const from = path.join(dir, 'from');
  fs.mkdirSync(path.join(from, 'shared'), { recursive: true });
  fs.writeFileSync(path.join(from, 'suid'), '#!/bin/sh\n');
  fs.chownSync(path.join(from, 'suid'), 1234, 5678);
  fs.chmodSync(path.join(from, 'suid'), 0o4755);
  fs.chownSync(path.join(from, 'shared'), 0, 777);
  fs.chmodSync(path.join(from, 'shared'), 0o2775);
  fs.writeFileSync(path.join(from, 'shared/mine'), 'x', { mode: 0o640 });
  fs.chownSync(path.join(from, 'shared/mine'), 0, 0);
  fs.writeFileSync(path.join(from, 'plain'), 'y', { mode: 0o644 });
  const to = path.join(dir, 'to');
  fs.mkdirSync(path.join(to, 'shared'), { recursive: true });
  fs.writeFileSync(path.join(to, 'plain'), 'old', { mode: 0o600 });
  fs.chownSync(path.join(to, 'plain'), 42, 42);
  fs.chownSync(path.join(to, 'shared'), 42, 42);
  copyTree(from, to);
  // A new tree under a set-group-ID directory: what is made there has its group first.
  const sgid = path.join(dir, 'sgid');
  fs.mkdirSync(sgid);
  fs.chownSync(sgid, 0, 777);
  fs.chmodSync(sgid, 0o2755);
  copyTree(from, path.join(sgid, 'copy'));
  for (const p of ['copy/plain', 'copy/shared/mine']) {
    const st = fs.lstatSync(path.join(sgid, p));
    assert.equal(`${st.uid}:${st.gid}`, '0:0', p);
  }
  const owner = (p: string): string => { const st = fs.lstatSync(path.join(to, p)); return `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`; };
  assert.equal(owner('suid'), '1234:5678 4755');
  assert.equal(owner('shared'), '0:777 2775');
  // Made in a set-group-ID directory, it would have group 777: it gets its source's, 0.
  assert.equal(owner('shared/mine'), '0:0 640');
  assert.equal(owner('plain'), '0:0 644');
  assert.equal(fs.readFileSync(path.join(to, 'plain'), 'utf8'), 'y');
});

test('unmount plan: reverse order, /run kept, first devtmpfs/proc/sysfs kept, later duplicates go, rootfs left', () => {
  const mounts = parseMounts([
    'none / rootfs rw 0 0',
    'dev /dev devtmpfs rw 0 0',
    'proc /proc proc rw 0 0',
    'sysfs /sys sysfs rw 0 0',
    'tmpfs /run tmpfs rw 0 0',
    'devpts /dev/pts devpts rw 0 0',
    '/dev/vda /mnt/my\\040disk ext4 rw 0 0',
    'proc /mnt/proc proc rw 0 0',
  ].join('\n'));
  assert.equal(mounts[6]!.target, '/mnt/my disk');
  assert.deepEqual(planUnmounts(mounts).map((m) => m.target), ['/mnt/proc', '/mnt/my disk', '/dev/pts']);
});

test('unmounting all: the root, which umount(2) only remounts read-only, is reported so; a busy one is remounted; other errors are named', () => {
  const calls: string[] = [];
  const busy = new Set(['/var']);
  const sys = {
    umount(target: string): void {
      calls.push(`umount ${target}`);
      if (busy.has(target)) throw new SysError('umount2', 16, target);
      if (target === '/gone') throw new SysError('umount2', 22, target);
    },
    mount(_source: string, target: string): void { calls.push(`remount ${target}`); },
  };
  const plan = planUnmounts(parseMounts('/dev/vda / ext4 rw 0 0\n/dev/vdb /var ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\nx /gone ext4 rw 0 0\n'));
  const results = unmountAll(plan, sys);
  assert.deepEqual(results.map((r) => [r.target, r.outcome]), [['/gone', 'failed'], ['/tmp', 'unmounted'], ['/var', 'remounted read-only'], ['/', 'remounted read-only']]);
  assert.deepEqual(calls, ['umount /gone', 'umount /tmp', 'umount /var', 'remount /var', 'umount /']);
});

test('maker helpers: sh quoting never lets a word be interpreted, catch-all script follows -1 and -t', () => {
  for (const word of ["it's", '$(reboot)', 'a b', '`x`', 'plain/path-1.0']) {
    const r = spawnSync('sh', ['-c', `printf '%s' ${shQuote(word)}`], { encoding: 'utf8' });
    assert.equal(r.stdout, word);
  }
  assert.deepEqual(catchAllScript({ logToConsole: true, timestampStyle: 3 }), ['-b', '1', 't', 'T', '/run/uncaught-logs']);
  assert.deepEqual(catchAllScript({ logToConsole: false, timestampStyle: 0 }), ['-b', '/run/uncaught-logs']);
});

test('the maker writes every boot-tree name pid 1 reads, as initctl.ts spells them', () => {
  const o: MakerOptions = {
    basedir: '/etc/t6-linux-init/current', t6bin: '/opt/t6/bin', compiled: '/etc/t6-rc/compiled', live: '/run/t6-rc', logToConsole: false,
    initialPath: '/usr/bin:/bin', umask: 0o022, timestampStyle: 1, env: [['TZ', 'UTC']], graceMs: 3000, defaultRunlevel: 'default',
    runMode: 'mount', skeleton: undefined, container: false, noLogger: false, syncInContainer: false,
  };
  const tree = describeTree(o);
  const dirs = tree.dirs.map(([d]) => d);
  const files = tree.files.map(([f]) => f);
  const onTmpfs = (runPath: string): string => `${RUN_IMAGE}/${path.posix.relative(TMPFS_DIR, runPath)}`;
  for (const d of [BIN_DIR, ENV_DIR, SCRIPTS_DIR, RUN_IMAGE, onTmpfs(DEFAULT_SCANDIR), onTmpfs(CATCHALL_LOGDIR)]) assert.ok(dirs.includes(d), d);
  for (const f of [`${BIN_DIR}/init`, `${ENV_DIR}/TZ`, `${SCRIPTS_DIR}/${STAGE2}`, `${SCRIPTS_DIR}/${STAGE3}`, `${SCRIPTS_DIR}/${RUNLEVEL_SCRIPT}`, `${onTmpfs(DEFAULT_SCANDIR)}/${CATCHALL_SERVICE}/t6-log`]) {
    assert.ok(files.includes(f), f);
  }
  assert.deepEqual(tree.fifos.map(([f]) => f), [onTmpfs(shutdowndFifo())]);
  assert.equal(catchAllScript(o).at(-1), CATCHALL_LOGDIR);
  const scripts = tree.files.filter(([f]) => f.startsWith(`${SCRIPTS_DIR}/`)).map(([, text]) => text).join('\n');
  assert.ok(scripts.includes(` ${DEFAULT_SCANDIR} || exit`) && scripts.includes(`${o.basedir}/${SCRIPTS_DIR}/${RUNLEVEL_SCRIPT}`));
  assert.ok(!files.includes(`${SCRIPTS_DIR}/${STAGE4}`), 'rc.shutdown.final only from a skeleton');
});

test("t6-linux-init-maker takes s6-overlay 3.2's command line (-W included); -V, -R and -W go onto init's", () => {
  const dir = tmpdir();
  const skel = path.join(dir, 'skel');
  fs.mkdirSync(skel);
  for (const f of ['rc.init', 'rc.shutdown', 'rc.shutdown.final']) fs.writeFileSync(path.join(skel, f), '#!/bin/sh\n', { mode: 0o755 });
  const basedir = path.join(dir, 'basedir');
  // As s6-overlay's stage0 runs it with S6_LOGGING=1, S6_SYNC_DISKS=1, S6_WAIT_FOR_CLOSING_FD=3.
  const overlay = ['-NC', '-D', 'top', '-c', basedir, '-p', '/command:/usr/bin:/bin', '-f', skel, '-t', '2', '-s', '/run/s6/container_environment', '-1', '-q', '3000', '-S', '-W', '3'];
  const r = spawnSync(path.join(BIN, 't6-linux-init-maker'), [...overlay, '-V', '2', '-R', 'o4096; c0 p=', '--', basedir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const init = fs.readFileSync(path.join(basedir, 'bin/init'), 'utf8');
  assert.match(init, / -D top -N -C -S -v 2 -R o4096,c0,p= -W 3 /, init);
  const noSync = spawnSync(path.join(BIN, 't6-linux-init-maker'), ['-C', '-W', '2', path.join(dir, 'low')], { encoding: 'utf8' });
  assert.equal(noSync.status, 0, noSync.stderr);
  assert.doesNotMatch(fs.readFileSync(path.join(dir, 'low/bin/init'), 'utf8'), / -W /, 'fds 0-2 mean no synchronisation');
  const bad = spawnSync(path.join(BIN, 't6-linux-init-maker'), ['-R', 'o4096,x5', path.join(dir, 'bad')], { encoding: 'utf8' });
  assert.equal(bad.status, 100);
  assert.match(bad.stderr, /-R: invalid resource limit "x5": a letter of acdflmoprst, then a number or =/);
});

test('-R lists: parsed as s6-softlimit letters; applied soft and hard, = keeping the hard limit', () => {
  assert.deepEqual(parseHardLimits('o4096, c0;m='), [{ letter: 'o', value: 4096n }, { letter: 'c', value: 0n }, { letter: 'm', value: '=' }]);
  assert.equal(formatHardLimits(parseHardLimits(' t60 ')), 't60');
  assert.throws(() => parseHardLimits(''), /empty/);
  assert.throws(() => parseHardLimits('o-1'), /invalid resource limit "o-1"/);
  // Applied in a child, not in this test process.
  const limitsModule = path.resolve('src/init/limits.ts');
  const script = `import fs from 'node:fs'; import { applyHardLimits, parseHardLimits } from ${JSON.stringify(limitsModule)};
    console.log(JSON.stringify(applyHardLimits(parseHardLimits('o1000,c0,t=')))); console.log(fs.readFileSync('/proc/self/limits', 'utf8'));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout.split('\n')[0], '[]', 'no failure');
  assert.match(child.stdout, /^Max open files\s+1000\s+1000\s+files/m);
  assert.match(child.stdout, /^Max core file size\s+0\s+0\s+bytes/m);
});

test('t6-linux-init-maker: the tree, its modes, the FIFO, -G and -e; refuses an existing dir and bad options', () => {
  const dir = tmpdir();
  const out = path.join(dir, 'current');
  const r = spawnSync(path.join(BIN, 't6-linux-init-maker'), ['-1', '-G', 'getty 38400 ttyS0', '-e', 'TZ=UTC', '-e', 'UNSET', '-c', '/etc/t6-linux-init/current', '-T', '/opt/t6/bin', '-t', '2', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const f of ['init', 'halt', 'poweroff', 'reboot', 'shutdown', 'telinit']) {
    assert.equal(fs.statSync(path.join(out, 'bin', f)).mode & 0o777, 0o755, f);
  }
  // bin/init runs t6's Node on the bundle itself: no second shell (the bin/ wrapper's).
  assert.match(fs.readFileSync(path.join(out, 'bin/init'), 'utf8'), /^exec \/opt\/t6\/node_modules\/node\/bin\/node --max-semi-space-size=1 --max-old-space-size=\d+ --no-memory-reducer \/opt\/t6\/dist\/t6-linux-init\.cjs -c \/etc\/t6-linux-init\/current -m 0022 /m);
  // bin/poweroff too, when both are there; else the t6-hpr wrapper.
  const poweroff = fs.readFileSync(path.join(out, 'bin/poweroff'), 'utf8');
  assert.match(poweroff, /^test -x \/opt\/t6\/node_modules\/node\/bin\/node && test -f \/opt\/t6\/dist\/t6-hpr\.cjs && exec \/opt\/t6\/node_modules\/node\/bin\/node \/opt\/t6\/dist\/t6-hpr\.cjs -p "\$@"\nexec \/opt\/t6\/bin\/t6-hpr -p "\$@"\n$/m);
  assert.match(fs.readFileSync(path.join(out, 'scripts/rc.init'), 'utf8'), /^\/opt\/t6\/bin\/t6-rc-init -c \/etc\/t6-rc\/compiled -l \/run\/t6-rc \/run\/service \|\| exit$/m);
  assert.match(fs.readFileSync(path.join(out, 'scripts/rc.shutdown'), 'utf8'), /^exec \/opt\/t6\/bin\/t6-rc -l \/run\/t6-rc -v2 -bDa change$/m);
  assert.match(fs.readFileSync(path.join(out, 'scripts/runlevel'), 'utf8'), /-v2 -up change "\$1"/);
  assert.equal(fs.readFileSync(path.join(out, 'env/TZ'), 'utf8'), 'UTC\n');
  assert.equal(fs.readFileSync(path.join(out, 'env/UNSET'), 'utf8'), '');
  assert.ok(fs.lstatSync(path.join(out, 'run-image/service/s6-linux-init-shutdownd/fifo')).isFIFO());
  assert.equal(fs.statSync(path.join(out, 'run-image/uncaught-logs')).mode & 0o7777, 0o2750);
  assert.deepEqual(fs.readFileSync(path.join(out, 'run-image/service/s6-svscan-log/t6-log'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#')), ['-b', '1', 'T', '/run/uncaught-logs']);
  assert.match(fs.readFileSync(path.join(out, 'run-image/service/s6-linux-init-early-getty/run'), 'utf8'), /^exec getty 38400 ttyS0$/m);

  const again = spawnSync(path.join(BIN, 't6-linux-init-maker'), [out], { encoding: 'utf8' });
  assert.notEqual(again.status, 0);
  assert.match(again.stderr, /already exists/);
  const bad = spawnSync(path.join(BIN, 't6-linux-init-maker'), ['-t', '4', path.join(dir, 'x')], { encoding: 'utf8' });
  assert.equal(bad.status, 100);
  assert.equal(fs.existsSync(path.join(dir, 'x')), false);
  const rel = spawnSync(path.join(BIN, 't6-linux-init-maker'), ['-c', 'relative', path.join(dir, 'y')], { encoding: 'utf8' });
  assert.equal(rel.status, 100);
});
