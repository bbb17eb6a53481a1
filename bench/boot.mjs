// Boot and shutdown of the demo image on a real kernel (qemu, software emulation), both ends
// on the guest's kernel clock, as issue 5 asks:
//
//   boot:      printk time of "Run /sbin/init" → the boot-marker oneshot's kmsg line
//              "t6-demo: demo up" (a oneshot that depends on the article's demo and on
//              the oneshot mounting /proc and /sys: what the issue's s6 figure booted)
//   poweroff:  /proc/uptime read right before `poweroff` is typed (the same clock printk
//              uses) → printk time of "reboot: Power down"
//   memory:    VmRSS and PSS (smaps_rollup) of every t6 process at rest — only pid 1: the
//              catch-all logger, shutdown daemon and runlevel changer live inside it
//
// The reference column is the issue's measurement of the real s6 stack (s6-linux-init
// 1.1.1.0, s6 2.11.3.2, s6-rc 0.5.4.1) booting the same demo in the same qemu: 1,642 ms;
// 5,183 ms (2,153 ms with no grace time); 12 processes, RSS 18 MB, PSS 3.3 MB. s6-linux-init
// and s6-rc are not packaged in Debian, so they cannot run beside t6 here.
//
//   node_modules/.bin/node bench/boot.mjs          (BENCH_BOOT_RUNS=3 boots)
import path from 'node:path';
import { ROOT, envInt, isMain, median, writeResults } from './lib.mjs';

const { buildInitramfs, findVmAssets, Vm } = await import(path.join(ROOT, 'test/lib/vm.ts'));

/**
 * The real s6 stack on the same demo, as the issues measured it (ms, MB): not this run, and
 * printed as such. Issue 5's figures (committed here on 2026-11-25); issue 12's boot figure,
 * taken beside t6 in 5 alternating rounds within one hour, on a slower day for process
 * creation (t6 measured 2,269 ms then).
 */
export const S6_ISSUE = { bootMs: 1642, poweroffMs: 5183, poweroffNoGraceMs: 2153, rssMB: 18, pssMB: 3.3, when: 'issue 5, by 2026-11-25' };
export const S6_ISSUE12 = { bootMs: 2590, bootNoGraceMs: 2456, t6BootMs: 2269, when: 'issue 12, side by side' };

async function oneBoot(assets, image) {
  const vm = Vm.boot({ qemu: assets.qemu, kernel: assets.kernel, initrd: image, timeoutMs: 120_000 });
  try {
    await vm.waitFor(/t6-demo: demo is up at/, 60_000);
    vm.send('\r');
    await vm.waitFor(/login: /, 30_000);
    vm.send('root\r');
    await vm.waitFor(/\[t6\]# /, 20_000);
    // The answer comes on the guest's ttyS1, where no console message can mix into it.
    const marks = (await vm.run("dmesg | grep -E 'Run /sbin/init|t6-demo: demo up'; grep VmRSS /proc/1/status; grep '^Pss:' /proc/1/smaps_rollup", /\[t6\]# /, 20_000)).output;
    vm.send('read up idle < /proc/uptime; echo "poweroff typed at $up"; poweroff\r');
    const down = await vm.waitFor(/\[\s*([\d.]+)\] reboot: Power down/, 60_000);
    await vm.waitExit(20_000);
    const k = (re) => Number(new RegExp(String.raw`\[\s*([\d.]+)\] ` + re.source).exec(marks)?.[1]);
    const typed = Number(/poweroff typed at ([\d.]+)/.exec(vm.transcript)?.[1]);
    return {
      bootMs: Math.round((k(/t6-demo: demo up/) - k(/Run \/sbin\/init as init process/)) * 1000),
      poweroffMs: Math.round((Number(down.match[1]) - typed) * 1000),
      rssMB: +(Number(/VmRSS:\s+(\d+)/.exec(marks)?.[1]) / 1024).toFixed(1),
      pssMB: +(Number(/Pss:\s+(\d+)/.exec(marks)?.[1]) / 1024).toFixed(1),
    };
  } finally {
    vm.kill();
  }
}

export async function run() {
  const assets = findVmAssets();
  if ('missing' in assets) {
    console.log(`boot: skipped: ${assets.missing}`);
    return undefined;
  }
  const image = buildInitramfs().image;
  const runs = [];
  for (let i = 0; i < envInt('BENCH_BOOT_RUNS', 3); i++) {
    const r = await oneBoot(assets, image);
    console.log(`boot ${i + 1}: ${JSON.stringify(r)}`);
    runs.push(r);
  }
  const med = (key) => median(runs.map((r) => r[key]));
  const result = { runs, median: { bootMs: med('bootMs'), poweroffMs: med('poweroffMs'), rssMB: med('rssMB'), pssMB: med('pssMB') }, s6: S6_ISSUE };
  const m = result.median;
  // The s6 column is not this run's: the s6 stack is not installed here (say so, not a ratio of the same run).
  console.log(`s6 column: the real s6 stack as ${S6_ISSUE.when} measured it, not this run; ${S6_ISSUE12.when}: s6 ${S6_ISSUE12.bootMs} ms, t6 ${S6_ISSUE12.t6BootMs} ms`);
  console.log('measurement                          t6 (median)   s6 (issue 5)  t6/that target');
  console.log(`Run /sbin/init → default up (ms)     ${String(m.bootMs).padEnd(13)} ${String(S6_ISSUE.bootMs).padEnd(12)} ${(m.bootMs / S6_ISSUE.bootMs).toFixed(2).padEnd(7)} ≤ 700`);
  console.log(`poweroff → Power down (ms)           ${String(m.poweroffMs).padEnd(13)} ${String(S6_ISSUE.poweroffMs).padEnd(12)} ${(m.poweroffMs / S6_ISSUE.poweroffMs).toFixed(2).padEnd(7)} ≤ 300`);
  console.log(`t6 processes at rest, RSS (MB)       ${String(m.rssMB).padEnd(13)} ${String(S6_ISSUE.rssMB).padEnd(12)} ${(m.rssMB / S6_ISSUE.rssMB).toFixed(2).padEnd(7)} ≤ 60`);
  console.log(`  PSS (MB)                           ${String(m.pssMB).padEnd(13)} ${String(S6_ISSUE.pssMB).padEnd(12)}`);
  writeResults('boot', result);
  return result;
}

if (isMain(import.meta.url)) await run();
