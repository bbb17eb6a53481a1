/**
 * Boot tests: a real Debian kernel in qemu (TCG) boots t6 as the article boots s6. The
 * image (scripts/vm/build-initramfs.mjs) holds a boot tree made by t6-linux-init-maker
 * (`-1 -G "getty 38400 ttyS0"`, as the article) and the article's t6-rc demo; /sbin/init
 * is that tree's bin/init, so pid 1 is t6-linux-init carrying on as t6-svscan.
 *
 * Each test drives the serial console as a person would: the article's lines in order, a
 * login prompt, root, t6-svstat and t6-rc list in the guest, then one way down — poweroff
 * (busybox's applet), reboot, ctrl-alt-del (qemu's sendkey), shutdown — with the services
 * stopping in reverse dependency order, the TERM step, the unmounts and the kernel's last
 * line. A virtio ext4 disk carries a file written during one shutdown into the next boot,
 * and a broken rc.init still gives a console.
 *
 * Skipped when qemu or the kernel cannot be had, except in CI (CI=true), where .ci/run
 * installs them and their absence is a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { buildInitramfs, findVmAssets, Vm, type VmAssets, type ImageSummary } from '../lib/vm.ts';
import { tmpdir } from '../lib/harness.ts';

const assets = findVmAssets();
const missing = 'missing' in assets ? assets.missing : undefined;
const inCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
const skip = missing !== undefined && !inCi ? `boot test skipped: ${missing}` : false;
// Every wait ends on its console line; the bounds are generous because the emulated machine
// runs several times slower when the host is loaded (npm run test:stress).
const opts = { skip, timeout: 600_000 };

let image: ImageSummary | undefined;
function theImage(): ImageSummary {
  image ??= buildInitramfs();
  return image;
}

function boot(extra: { initrd?: string; disk?: string; monitorSocket?: string } = {}): Vm {
  if (missing !== undefined) assert.fail(`CI must provide qemu and the kernel: ${missing}`);
  const { qemu, kernel } = assets as VmAssets;
  return Vm.boot({ qemu, kernel, initrd: extra.initrd ?? theImage().image, timeoutMs: 400_000, ...extra });
}

const PROMPT = /\[t6\]# /;

/** The article's boot lines, in its order ("is running" may come before "successfully started"). */
const UP = [
  't6-rc: info: service demo-oneshot-1: starting',
  'demo-oneshot-1 is up',
  't6-rc: info: service demo-oneshot-1 successfully started',
  't6-rc: info: service demo-longrun-1: starting',
];
/** The article's shutdown lines, in its order. */
const DOWN = [
  't6-rc: info: service demo-longrun-1: stopping',
  't6-rc: info: service demo-longrun-1 successfully stopped',
  't6-rc: info: service demo-oneshot-1: stopping',
  'demo-oneshot-1 is down',
  't6-rc: info: service demo-oneshot-1 successfully stopped',
  't6-linux-init: sending all processes the TERM signal...',
];

function assertInOrder(text: string, lines: readonly string[], from = 0): number {
  let at = from;
  for (const line of lines) {
    const i = text.indexOf(line, at);
    assert.ok(i >= 0, `missing, or out of order: ${JSON.stringify(line)}\n--- console ---\n${text.slice(from)}`);
    at = i + line.length;
  }
  return at;
}

/** Boots to a root shell; checks the article's lines on the way. */
async function bootToShell(vm: Vm): Promise<void> {
  await vm.waitFor(/t6-linux-init version [\d.]+/, 120_000, 'stage1');
  await vm.waitFor(/t6-demo: demo is up at ([\d.]+)s/, 120_000, 'default');
  await vm.waitFor(/demo-longrun-1 is running \(uptime [\d.]+s\)/, 90_000, 'demo');
  const text = vm.transcript;
  const after = assertInOrder(text, UP);
  assert.ok(text.indexOf('demo-longrun-1 is running', after) > 0, 'demo-longrun-1 runs after it was started');
  assert.doesNotMatch(text, /rc\.init exited|t6-svscan: (error|fatal)|t6-rc: (warning|fatal)/);
  vm.send('\r');
  await vm.waitFor(/login: /, 90_000, 'login');
  vm.send('root\r');
  await vm.waitFor(PROMPT, 60_000, 'shell');
}

/**
 * Runs a command line in the guest shell and returns its output, which comes on the guest's
 * second serial port: console messages (a service stopping, the kernel) cannot mix into it.
 */
async function shell(vm: Vm, command: string, timeoutMs = 60_000): Promise<string> {
  return (await vm.run(command, PROMPT, timeoutMs)).output;
}

/** After a shutdown was asked for: the article's lines in order, the TERM step, clean unmounts, the last line. */
async function checkShutdown(vm: Vm, from: number, last: RegExp): Promise<{ lastMs: number }> {
  const end = await vm.waitFor(last, 120_000, 'last line');
  const exit = await vm.waitExit(60_000);
  const text = vm.transcript;
  assertInOrder(text, DOWN, from);
  assert.match(text.slice(from), /t6-linux-init: unmounted \d+ filesystems?/);
  assert.doesNotMatch(text.slice(from), /unable to unmount|rc\.shutdown exited|t6-svscan: (error|fatal)|Kernel panic/);
  assert.equal(exit.code, 0, `qemu exit status ${exit.code} (signal ${exit.signal})`);
  return { lastMs: end.ms };
}

/**
 * Boot analysis in the guest: pid 1 recorded its boot change (LIVE/timings/boot.json), from
 * the kernel's `Run /sbin/init` through stage 1's steps. boot-marker is the demo's "up"
 * mark; its critical chain goes through demo-longrun-1 and then through whichever of that
 * longrun's dependencies (demo-oneshot-1, mount-kernfs) was done last, as blame says.
 * Returns figures for the diagnostics.
 */
async function bootAnalysis(vm: Vm): Promise<Record<string, unknown>> {
  const text = await shell(vm, 't6 analyze critical-chain boot-marker');
  assert.match(text, /from the kernel's Run \/sbin\/init/, text);
  // (The tree's └─ comes through the console driver's latin1 mangled: not matched.)
  assert.match(text, /^\S*demo-longrun-1 @[\d.]+m?s \+[\d.]+m?s$/m, text);
  const chain = JSON.parse(await shell(vm, 't6 analyze critical-chain --json boot-marker')) as { links: { name: string; at: number; took: number }[] };
  const blamed = JSON.parse(await shell(vm, 't6 analyze blame --json')) as { name: string; ms: number; doneAt: number }[];
  const done = (name: string): number => blamed.find((b) => b.name === name)?.doneAt ?? NaN;
  const lastDep = done('demo-oneshot-1') >= done('mount-kernfs') ? 'demo-oneshot-1' : 'mount-kernfs';
  assert.deepEqual(chain.links.slice(0, 3).map((l) => l.name), ['boot-marker', 'demo-longrun-1', lastDep], JSON.stringify({ chain, blamed }));
  assert.ok(blamed.some((b) => b.name === 'demo-oneshot-1'), 'demo-oneshot-1 is in the boot record');
  // The whole chain, by default: the runlevel's bundle, with the article's longrun on it or not.
  assert.match(await shell(vm, 't6 analyze critical-chain'), /^default @/m);
  const plot = (await shell(vm, "t6 analyze plot > /tmp/boot.svg && grep -c 'class=\"service\"' /tmp/boot.svg; grep -c 'class=\"stage\"' /tmp/boot.svg; grep -c 'Run /sbin/init' /tmp/boot.svg; wc -c < /tmp/boot.svg")).trim().split(/\s+/).map(Number);
  assert.equal(plot[0], blamed.length, `one bar per service: ${plot.join(' ')}`);
  assert.ok(plot[1]! >= 5 && plot[2]! >= 1, `stage 1's steps and the kernel's line: ${plot.join(' ')}`);
  // T6_BOOT_SVG=FILE keeps the guest's picture of its boot, to look at.
  const keep = process.env.T6_BOOT_SVG;
  if (keep !== undefined && keep !== '') fs.writeFileSync(keep, await shell(vm, 'cat /tmp/boot.svg'));
  const stages = (await shell(vm, "grep -o 'class=\"stage\"><rect[^>]*><title>[^<]*' /tmp/boot.svg | sed 's/.*<title>//'")).trim().split('\n');
  return { chain: chain.links.map((l) => `${l.name} @${l.at}ms +${l.took}ms`), blame: blamed.slice(0, 4).map((b) => `${b.name} ${b.ms}ms`), stages, svgBytes: plot[3] };
}

/** The content scribe writes at shutdown (the same loop, run here). */
function lastWords(): string {
  let text = '';
  for (let i = 0; i < 2000; i++) text += `line ${i} of the last words\n`;
  return text;
}

test('boot: the article demo on a real kernel; login; t6-svstat and t6-rc in the guest; poweroff; a file written during shutdown survives to the next boot', opts, async (t) => {
  const disk = path.join(tmpdir('t6-boot-'), 'disk.img');
  fs.writeFileSync(disk, Buffer.alloc(0));
  fs.truncateSync(disk, 32 * 2 ** 20);
  const mk = spawnSync('mkfs.ext4', ['-q', '-F', disk], { encoding: 'utf8' });
  assert.equal(mk.status, 0, `mkfs.ext4: ${mk.stderr}`);

  const vm = boot({ disk });
  try {
    await bootToShell(vm);
    assert.equal((await shell(vm, 'cat /proc/1/comm')).trim(), 't6-svscan');
    // pid 1 started from its startup snapshot (issue 12), and said nothing about it.
    assert.match(await shell(vm, "tr '\\0' ' ' < /proc/1/cmdline"), /--snapshot-blob \/opt\/t6\/dist\/t6-linux-init\.blob \/opt\/t6\/dist\/t6-linux-init\.cjs /);
    assert.doesNotMatch(vm.transcript, /without the startup snapshot/);
    assert.match(await shell(vm, 't6-svstat /run/service/s6-linux-init-early-getty'), /^up \(pid \d+\) \d+ seconds?$/m);
    const list = await shell(vm, 't6-rc -l /run/t6-rc -a list');
    for (const name of ['demo-oneshot-1', 'demo-longrun-1', 'mount-disk', 'scribe']) assert.match(list, new RegExp(`^${name}$`, 'm'));
    assert.match(await shell(vm, 'mount'), /^\/dev\/vda on \/mnt\/disk type ext4/m);
    // Orphans are reaped by pid 1: a background sleep outlives its shell; once its /proc
    // entry is gone (reaped, not a zombie), no zombie is left.
    assert.equal((await shell(vm, "p=$(sh -c 'sleep 0.2 >/dev/null & echo $!'); while [ -e /proc/$p ]; do sleep 0.05; done; cat /proc/[0-9]*/stat 2>/dev/null | grep -c ') Z '")).trim(), '0');
    const analysis = await bootAnalysis(vm);
    // Figures for the closing note: kernel-clock marks and pid 1's memory at rest.
    const marks = await shell(vm, "dmesg | grep -E 'Run /sbin/init|t6-demo: demo up'; grep -E 'VmRSS|RssFile|RssAnon' /proc/1/status");
    const from = vm.transcript.length;
    // /proc/uptime is the clock printk stamps with (CLOCK_BOOTTIME; no suspend here).
    vm.send('read up idle < /proc/uptime; echo "poweroff typed at $up"; poweroff\r');
    const { lastMs } = await checkShutdown(vm, from, /\[\s*([\d.]+)\] reboot: Power down/);
    const down = vm.transcript.slice(from);
    assert.match(down, /scribe: wrote \/mnt\/disk\/last-words[\s\S]*t6-rc: info: service mount-disk successfully stopped/);
    const k = (re: RegExp, text: string): number => Number(new RegExp(String.raw`\[\s*([\d.]+)\] ` + re.source).exec(text)?.[1]);
    t.diagnostic(`figures ${JSON.stringify({
      runInitToDemoUpS: +(k(/t6-demo: demo up/, marks) - k(/Run \/sbin\/init as init process/, marks)).toFixed(3),
      poweroffTypedToPowerDownS: +(k(/reboot: Power down/, down) - Number(/poweroff typed at ([\d.]+)/.exec(down)?.[1])).toFixed(3),
      pid1: marks.match(/VmRSS:\s+\d+ kB|RssAnon:\s+\d+ kB|RssFile:\s+\d+ kB/g),
      image: { MiB: +(theImage().imageBytes / 2 ** 20).toFixed(1) },
      hostMs: { login: vm.marks.login, powerDown: lastMs },
      analysis,
    })}`);
  } finally {
    vm.kill();
  }

  const again = boot({ disk });
  try {
    await bootToShell(again);
    const sum = await shell(again, 'md5sum /mnt/disk/last-words; wc -l < /mnt/disk/last-words');
    const expected = crypto.createHash('md5').update(lastWords()).digest('hex');
    assert.match(sum, new RegExp(`^${expected}  /mnt/disk/last-words$`, 'm'), sum);
    assert.match(sum, /^2000$/m);
    again.send('poweroff\r');
    await again.waitFor(/reboot: Power down/, 120_000);
  } finally {
    again.kill();
  }
});

test('boot: reboot typed at the shell stops the services in reverse order and restarts the machine', opts, async () => {
  const vm = boot();
  try {
    await bootToShell(vm);
    const from = vm.transcript.length;
    vm.send('reboot\r');
    await checkShutdown(vm, from, /reboot: Restarting system/);
    assert.doesNotMatch(vm.transcript, /Power down/);
  } finally {
    vm.kill();
  }
});

test('boot: ctrl-alt-del (qemu sendkey) reboots cleanly', opts, async () => {
  const sock = path.join(tmpdir('t6-boot-'), 'monitor.sock');
  const vm = boot({ monitorSocket: sock });
  try {
    await bootToShell(vm);
    const from = vm.transcript.length;
    await vm.monitor(sock, 'sendkey ctrl-alt-delete');
    await checkShutdown(vm, from, /reboot: Restarting system/);
  } finally {
    vm.kill();
  }
});

test('boot: shutdown +0 runs rc.shutdown and keeps the console; shutdown -p +0 then powers off', opts, async () => {
  const vm = boot();
  try {
    await bootToShell(vm);
    const from = vm.transcript.length;
    vm.send('shutdown +0\r');
    await vm.waitFor(/t6-rc: info: service demo-oneshot-1 successfully stopped/, 120_000, 'rc.shutdown');
    assertInOrder(vm.transcript, DOWN.slice(0, -1), from);
    vm.send('\r');
    await vm.waitFor(PROMPT, 60_000, 'still a shell');
    assert.equal((await shell(vm, 't6-rc -l /run/t6-rc -a list | grep -c demo')).trim(), '0');
    assert.doesNotMatch(vm.transcript.slice(from), /rc\.shutdown exited/);
    const from2 = vm.transcript.length;
    vm.send('shutdown -p +0\r');
    await vm.waitFor(/reboot: Power down/, 120_000, 'Power down');
    assert.match(vm.transcript.slice(from2), /t6-linux-init: sending all processes the TERM signal/);
    assert.equal((await vm.waitExit(60_000)).code, 0);
  } finally {
    vm.kill();
  }
});

test('boot: a broken rc.init and a garbage service database leave the early getty and a usable console, and poweroff still works', opts, async () => {
  const overlay = tmpdir('t6-boot-overlay-');
  const out = tmpdir('t6-boot-image-');
  const scripts = path.join(overlay, 'etc/t6-linux-init/current/scripts');
  fs.mkdirSync(scripts, { recursive: true });
  fs.writeFileSync(path.join(scripts, 'rc.init'), '#!/bin/sh\necho "rc.init: failing on purpose"\nexit 1\n', { mode: 0o755 });
  // And the service manager's database is garbage: pid 1's own stage 2 (-r) fails too.
  fs.mkdirSync(path.join(overlay, 'etc/t6-rc/compiled'), { recursive: true });
  fs.writeFileSync(path.join(overlay, 'etc/t6-rc/compiled/db.json'), 'not a database\n');
  const broken = buildInitramfs(['--overlay', overlay, '--out', path.join(out, 'broken.img')]);
  const vm = boot({ initrd: broken.image });
  try {
    await vm.waitFor(/the service manager could not bring default up/, 120_000, 'broken database');
    await vm.waitFor(/rc\.init: failing on purpose/, 120_000, 'broken rc.init');
    await vm.waitFor(/rc\.init exited 1/, 90_000, 'reported');
    vm.send('\r');
    await vm.waitFor(/login: /, 90_000, 'login');
    vm.send('root\r');
    await vm.waitFor(PROMPT, 60_000, 'shell');
    assert.match(await shell(vm, 't6-svstat /run/service/s6-linux-init-early-getty'), /^up \(pid \d+\)/m);
    vm.send('poweroff\r');
    await vm.waitFor(/reboot: Power down/, 120_000, 'Power down');
    assert.equal((await vm.waitExit(60_000)).code, 0);
  } finally {
    vm.kill();
  }
});

test('boot: without its startup snapshot (missing, then damaged), pid 1 starts from its bundle with a warning, and the demo boots and powers off the same', opts, async () => {
  const out = tmpdir('t6-boot-image-');
  const blob = '/opt/t6/dist/t6-linux-init.blob';
  // Damaged: the real blob with a stretch of it overwritten (Node itself would abort on it).
  const overlay = tmpdir('t6-boot-overlay-');
  const damaged = fs.readFileSync(path.join(import.meta.dirname, '../../dist/t6-linux-init.blob'));
  damaged.fill(0xa5, 4096, 65536);
  fs.mkdirSync(path.join(overlay, 'opt/t6/dist'), { recursive: true });
  fs.writeFileSync(path.join(overlay, blob), damaged);
  const images = [
    { initrd: buildInitramfs(['--out', path.join(out, 'no-blob.img'), '--remove', blob]).image, why: `${blob} is missing` },
    { initrd: buildInitramfs(['--out', path.join(out, 'damaged-blob.img'), '--overlay', overlay]).image, why: `${blob} has changed since it was checked` },
  ];
  for (const { initrd, why } of images) {
    const vm = boot({ initrd });
    try {
      await bootToShell(vm);
      assert.ok(vm.transcript.includes(`t6-linux-init: warning: starting without the startup snapshot: ${why}`), vm.transcript);
      assert.doesNotMatch(await shell(vm, "tr '\\0' ' ' < /proc/1/cmdline"), /--snapshot-blob/);
      const from = vm.transcript.length;
      vm.send('poweroff\r');
      await checkShutdown(vm, from, /reboot: Power down/);
    } finally {
      vm.kill();
    }
  }
});

test('boot: a stage 1 that cannot work (no run-image) gives an emergency shell on the console, not a kernel panic', opts, async () => {
  const overlay = tmpdir('t6-boot-overlay-');
  const out = tmpdir('t6-boot-image-');
  // An empty file where the run-image directory should be: copying it into /run fails.
  fs.mkdirSync(path.join(overlay, 'etc/t6-linux-init/current'), { recursive: true });
  const broken = buildInitramfs(['--overlay', overlay, '--out', path.join(out, 'no-run-image.img'), '--remove', '/etc/t6-linux-init/current/run-image']);
  const vm = boot({ initrd: broken.image });
  try {
    await vm.waitFor(/t6-linux-init: fatal: unable to copy \/etc\/t6-linux-init\/current\/run-image into \/run/, 120_000, 'stage 1 fails');
    await vm.waitFor(/\(t6 emergency\) # /, 90_000, 'emergency shell');
    vm.send('echo alive-$((6*7))\r');
    await vm.waitFor(/alive-42/, 30_000, 'shell works');
    vm.send('reboot -f\r');
    await vm.waitFor(/reboot: Restarting system/, 90_000, 'reboot -f');
    assert.doesNotMatch(vm.transcript, /Kernel panic/);
  } finally {
    vm.kill();
  }
});
