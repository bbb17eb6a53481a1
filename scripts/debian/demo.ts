// npm run demo:debian — builds the Debian image if needed (scripts/debian/build.mjs, cached in
// .cache/debian) and boots it on this terminal with t6 as init: Debian's cloud kernel, t6's
// small initramfs, root on a virtio disk, eth0 on qemu's user network. Log in as root on the
// console (no password) or over ssh with the command printed below. `poweroff` shuts down;
// Ctrl-A X quits qemu at any moment. The disk is a copy: the cached image stays as built.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildDebianImage, DEBIAN_APPEND, findVmAssets, freePort, qemuArgs } from '../../test/lib/vm.ts';

const assets = findVmAssets();
if ('missing' in assets) {
  process.stderr.write(`demo:debian: ${assets.missing}\n`);
  process.exit(1);
}
process.stderr.write('demo:debian: building the image (the first time takes about 2 minutes)...\n');
const built = buildDebianImage();
const disk = path.join(path.dirname(built.image), 'demo.img');
spawnSync('cp', ['--sparse=always', built.image, disk], { stdio: 'inherit' });
const port = await freePort();
process.stderr.write(`demo:debian: ${built.image} (copied to ${disk})\n`
  + `demo:debian: log in as root (no password) on this console, or: ssh -i ${built.sshKey} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -p ${port} root@127.0.0.1\n`
  + 'demo:debian: `poweroff` shuts down; Ctrl-A X quits qemu.\n\n');
const qemu = spawn(assets.qemu, qemuArgs({ kernel: built.kernel, initrd: built.initrd, append: DEBIAN_APPEND, memory: '1G', disk, sshPort: port, interactive: true }), { stdio: 'inherit' });
// Ctrl-C belongs to the guest (qemu puts the terminal in raw mode); never let it end us first.
process.on('SIGINT', () => {});
qemu.on('exit', (code, signal) => {
  fs.rmSync(disk, { force: true });
  process.exit(code ?? (signal === null ? 1 : 128));
});
