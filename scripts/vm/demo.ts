// npm run demo:vm — boots the boot test's image interactively on this terminal: the
// article's demo on a real kernel (qemu, software emulation), t6-linux-init as pid 1.
// Log in as root (no password), look around (/opt/t6/bin is on PATH: t6-svstat -a
// /run/service), then type `poweroff`. Ctrl-A X quits qemu at any moment; Ctrl-A H lists
// the other Ctrl-A keys. Arguments go to scripts/vm/build-initramfs.mjs (e.g. --init FILE).
import { spawn } from 'node:child_process';
import { buildInitramfs, findVmAssets, qemuArgs } from '../../test/lib/vm.ts';

const assets = findVmAssets();
if ('missing' in assets) {
  process.stderr.write(`demo:vm: ${assets.missing}\n`);
  process.exit(1);
}
const image = buildInitramfs(process.argv.slice(2));
process.stderr.write(`demo:vm: ${assets.kernel}\ndemo:vm: ${image.image} (${(image.imageBytes / 2 ** 20).toFixed(1)} MiB, ${image.compress})\n`
  + 'demo:vm: log in as root (no password); `poweroff` shuts down; Ctrl-A X quits qemu.\n\n');
const qemu = spawn(assets.qemu, qemuArgs({ kernel: assets.kernel, initrd: image.image, interactive: true }), { stdio: 'inherit' });
// Ctrl-C belongs to the guest (qemu puts the terminal in raw mode); never let it end us first.
process.on('SIGINT', () => {});
qemu.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)));
