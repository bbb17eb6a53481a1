/**
 * Boot test: a real Debian kernel in qemu (TCG) with t6-svscan as pid 1, driven over the
 * serial console as the article's demo is: the demo service's line, a getty login prompt,
 * log in as root, t6-svstat on the getty service, `poweroff`, `reboot: Power down`, qemu
 * exits 0. Stage 1 is still the shell stand-in scripts/vm/rootfs/sbin/init (t6-linux-init
 * does not exist yet). Image: scripts/vm/build-initramfs.mjs; driver: test/lib/vm.ts.
 *
 * Skipped when qemu or the kernel cannot be had, except in CI (CI=true), where .ci/run
 * installs them and their absence is a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildInitramfs, findVmAssets, Vm, type VmAssets, type ImageSummary } from '../lib/vm.ts';

const assets = findVmAssets();
const missing = 'missing' in assets ? assets.missing : undefined;
const inCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
const skip = missing !== undefined && !inCi ? `boot test skipped: ${missing}` : false;

let image: ImageSummary | undefined;
function theImage(): ImageSummary {
  image ??= buildInitramfs();
  return image;
}

/** Boots, logs in as root; returns the machine at a shell prompt. */
async function bootToShell(vm: Vm): Promise<void> {
  await vm.waitFor(/t6-init: stage 1 done at [\d.]+s/, 30_000, 'stage1');
  await vm.waitFor(/demo-longrun-1 is running \(uptime [\d.]+s\)/, 30_000, 'demo');
  await vm.waitFor(/t6 login: /, 30_000, 'login');
  vm.send('root\r');
  await vm.waitFor(/\[t6\]# /, 15_000, 'shell');
}

test('boot: t6-svscan is pid 1 on a real kernel; demo line, root login, t6-svstat, poweroff', { skip, timeout: 180_000 }, async (t) => {
  if (missing !== undefined) assert.fail(`CI must provide qemu and the kernel: ${missing}`);
  const { qemu, kernel } = assets as VmAssets;
  const wallStart = Date.now();
  const img = theImage();
  const vm = Vm.boot({ qemu, kernel, initrd: img.image, timeoutMs: 90_000 });
  try {
    await bootToShell(vm);
    const stage1 = /t6-init: stage 1 done at ([\d.]+)s/.exec(vm.transcript)!;
    const demo = /demo-longrun-1 is running \(uptime ([\d.]+)s\)/.exec(vm.transcript)!;

    // The kernel's own clock for the boot: printk times of the kernel's and our markers.
    vm.send("dmesg | grep -E 'Freeing initrd|Run /sbin/init|t6-'; echo dmesg-$((40+2))\r");
    const dm = await vm.waitFor(/([\s\S]*?)dmesg-42\n/, 15_000, 'dmesg');
    const printk = (re: RegExp): number | undefined => {
      const m = new RegExp(String.raw`\[\s*([\d.]+)\] ` + re.source).exec(dm.match[1]!);
      return m === null ? undefined : Number(m[1]);
    };
    await vm.waitFor(/\[t6\]# /, 10_000, 'prompt');

    // pid 1 is t6-svscan, and it supervises the getty this very shell came from.
    vm.send('cat /proc/1/comm; /opt/t6/bin/t6-svstat /run/service/getty\r');
    const comm = await vm.waitFor(/\n(t6-svscan|node)\n/, 15_000, 'comm');
    const st = await vm.waitFor(/^up \(pid (\d+)\) \d+ seconds?$/m, 20_000, 'svstat');
    assert.ok(Number(st.match[1]) > 1);
    await vm.waitFor(/\[t6\]# /, 10_000, 'prompt');

    // Orphans are reaped by pid 1: a background sleep outlives its shell, is adopted by
    // t6-svscan and must not stay a zombie once it exits.
    vm.send("sh -c 'sleep 0.2 &'; sleep 1; cat /proc/[0-9]*/stat 2>/dev/null | grep -c ') Z '\r");
    const zombies = await vm.waitFor(/^(\d+)$/m, 15_000, 'zombies');
    assert.equal(zombies.match[1], '0', 'zombies left behind');
    await vm.waitFor(/\[t6\]# /, 10_000, 'prompt');

    vm.send('poweroff\r');
    const typed = vm.elapsed();
    const req = await vm.waitFor(/t6-init: poweroff requested at ([\d.]+)s/, 15_000, 'poweroff requested');
    const down = await vm.waitFor(/\[\s*([\d.]+)\] reboot: Power down/, 20_000, 'Power down');
    const exit = await vm.waitExit(15_000);
    assert.equal(exit.code, 0, `qemu exit status ${exit.code} (signal ${exit.signal})`);
    assert.doesNotMatch(vm.transcript, /t6-svscan: (error|fatal)/);

    const timings = {
      image: { bytes: img.imageBytes, MiB: +(img.imageBytes / 2 ** 20).toFixed(1), stagedMiB: +(img.stagedBytes / 2 ** 20).toFixed(1), compress: img.compress, buildMs: img.ms },
      hostMs: {
        stage1: vm.marks.stage1, demoLine: vm.marks.demo, loginPrompt: vm.marks.login, shell: vm.marks.shell,
        poweroffTypedToPowerDown: down.ms - typed, qemuExit: exit.ms,
      },
      guestS: {
        freeingInitrd: printk(/Freeing initrd memory/),
        runInit: printk(/Run \/sbin\/init as init process/),
        stage1Done: Number(stage1[1]),
        demoLine: Number(demo[1]),
        runInitToDemoLine: undefined as number | undefined,
        demoKmsg: printk(/t6-demo: up/),
        poweroffRequested: Number(req.match[1]),
        powerDown: Number(down.match[1]),
        poweroffToPowerDown: +(Number(down.match[1]) - Number(req.match[1])).toFixed(3),
      },
      pid1: comm.match[1],
      testWallMs: Date.now() - wallStart,
    };
    if (timings.guestS.runInit !== undefined && timings.guestS.demoKmsg !== undefined) {
      timings.guestS.runInitToDemoLine = +(timings.guestS.demoKmsg - timings.guestS.runInit).toFixed(3);
    }
    t.diagnostic(`timings ${JSON.stringify(timings)}`);
    assert.equal(comm.match[1], 't6-svscan');
  } finally {
    vm.kill();
  }
});

test('boot: busybox reboot (SIGTERM to pid 1) stops the services and reboots', { skip, timeout: 180_000 }, async (t) => {
  if (missing !== undefined) assert.fail(`CI must provide qemu and the kernel: ${missing}`);
  const { qemu, kernel } = assets as VmAssets;
  const vm = Vm.boot({ qemu, kernel, initrd: theImage().image, timeoutMs: 90_000 });
  try {
    await bootToShell(vm);
    vm.send('reboot\r');
    const typed = vm.elapsed();
    await vm.waitFor(/t6-init: reboot requested at [\d.]+s/, 15_000, 'reboot requested');
    await vm.waitFor(/t6-init: sending all processes the KILL signal/, 15_000, 'finish');
    // -no-reboot: the guest's reboot ends qemu, with status 0.
    const restart = await vm.waitFor(/reboot: Restarting system/, 20_000, 'Restarting system');
    const exit = await vm.waitExit(15_000);
    assert.equal(exit.code, 0, `qemu exit status ${exit.code} (signal ${exit.signal})`);
    assert.doesNotMatch(vm.transcript, /Power down/);
    t.diagnostic(`reboot typed -> Restarting system: ${restart.ms - typed} ms; qemu exit at ${exit.ms} ms`);
  } finally {
    vm.kill();
  }
});
