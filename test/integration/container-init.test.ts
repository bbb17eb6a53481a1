/**
 * t6-container as the /init of real podman containers (issue 15): an image laid out for
 * s6-overlay v3 (an init-* oneshot chain with dependencies.d, a longrun with
 * notification-fd, the user bundle in user-bundles.d, a cont-init.d script using
 * with-contenv, a services.d service), CMD run once everything is up, its exit code the
 * container's, and `podman stop` bringing the services down in reverse order.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { buildRootfs, podmanUsable, processTree, rootfsCopy, runContainer, type Rootfs } from '../lib/container.ts';
import { childrenOf, until } from '../lib/harness.ts';
import { packageOpt } from '../../scripts/package-opt.mjs';

const why = podmanUsable();
const skip = why !== undefined && process.env.CI !== 'true' ? `podman is not usable here: ${why}` : false;
const mustRun = (): void => { if (why !== undefined) assert.fail(`podman is not usable (CI=true, so this fails instead of skipping): ${why}`); };
const INIT = '/opt/t6/bin/t6-container';

let base: Rootfs | undefined;
/** A fresh copy of the shared rootfs (busybox, /opt/t6), built on first use. */
function rootfs(t: TestContext): string {
  base ??= buildRootfs();
  return rootfsCopy(t, base);
}

/** Writes `files` (path → text; a name ending in / is a directory) under `root`; scripts (#!) are executable. */
function put(root: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    const at = path.join(root, rel);
    if (rel.endsWith('/')) { fs.mkdirSync(at, { recursive: true }); continue; }
    fs.mkdirSync(path.dirname(at), { recursive: true });
    fs.writeFileSync(at, text, { mode: text.startsWith('#!') ? 0o755 : 0o644 });
  }
}

/** An image shaped like a linuxserver.io one, on a fresh copy of the shared rootfs. */
function overlayImage(t: TestContext): string {
  const dir = rootfs(t);
  const rc = 'etc/s6-overlay/s6-rc.d';
  put(dir, {
    [`${rc}/init-config/type`]: 'oneshot\n',
    [`${rc}/init-config/up`]: '/etc/s6-overlay/s6-rc.d/init-config/run\n',
    [`${rc}/init-config/run`]: '#!/opt/t6/bin/t6-with-contenv /bin/sh\necho "init-config: up, GREETING=$GREETING"\n',
    [`${rc}/init-config/down`]: 'echo init-config: down\n',
    [`${rc}/svc-app/type`]: 'longrun\n',
    [`${rc}/svc-app/dependencies.d/init-config`]: '',
    [`${rc}/svc-app/notification-fd`]: '3\n',
    [`${rc}/svc-app/run`]: '#!/opt/t6/bin/t6-with-contenv /bin/sh\necho "svc-app: running, GREETING=$GREETING"\necho >&3\nexec sleep 2147483647\n',
    [`${rc}/svc-app/finish`]: '#!/bin/sh\necho svc-app: finished\n',
    'etc/s6-overlay/user-bundles.d/user/type': 'bundle\n',
    'etc/s6-overlay/user-bundles.d/user/contents.d/init-config': '',
    'etc/s6-overlay/user-bundles.d/user/contents.d/svc-app': '',
    'etc/s6-overlay/user-bundles.d/user2/type': 'bundle\n',
    'etc/s6-overlay/user-bundles.d/user2/contents.d/': '',
    'etc/cont-init.d/10-hello': '#!/opt/t6/bin/t6-with-contenv /bin/sh\necho "cont-init: hello from $GREETING"\n',
    'etc/cont-finish.d/10-bye': '#!/bin/sh\necho cont-finish: bye\n',
    'etc/services.d/legacy/run': '#!/bin/sh\necho legacy: running\nexec sleep 2147483647\n',
  });
  return dir;
}

test('t6-container: an s6-overlay image comes up in dependency order, CMD runs last, and its exit code is the container\'s', { skip, timeout: 300_000 }, async (t) => {
  mustRun();
  const dir = overlayImage(t);
  const c = runContainer(dir, [INIT, '/bin/sh', '-c', 'echo "cmd: running, GREETING=$GREETING"; exit 3'], { t, env: { GREETING: 'bonjour', S6_VERBOSITY: '2' } });
  const exit = await c.exited;
  const out = c.text;
  t.diagnostic(`exit ${exit.code} after ${exit.ms.toFixed(0)} ms`);
  assert.equal(exit.code, 3, out);
  assert.doesNotMatch(out, /warning|fatal/, 'a plain image boots without a warning (the open-file limit included)');
  const at = (re: RegExp): number => {
    const i = out.search(re);
    assert.ok(i >= 0, `${re} in:\n${out}`);
    return i;
  };
  assert.ok(at(/init-config: up, GREETING=bonjour/) < at(/svc-app: running, GREETING=bonjour/), 'init-config before svc-app (dependencies.d)');
  assert.ok(at(/cont-init: hello from bonjour/) < at(/legacy: running/), 'cont-init.d before services.d');
  // CMD gets stage 2's environment (PATH), as under s6-overlay: GREETING is with-contenv's.
  const cmd = at(/cmd: running, GREETING=\n/);
  assert.ok(cmd > at(/svc-app: running/) && cmd > at(/legacy: running/), 'CMD after every service');
  assert.ok(at(/cont-finish: bye/) > cmd, 'cont-finish.d at the end');
  assert.ok(at(/init-config: down/) > at(/svc-app: finished/), 'down in reverse order');
});

test('t6-container: CMD ending by a signal is 128+N; podman stop brings it down, in reverse order', { skip, timeout: 300_000 }, async (t) => {
  mustRun();
  const dir = overlayImage(t);
  const killed = runContainer(dir, [INIT, '/bin/sh', '-c', 'kill -KILL $$'], { t });
  assert.equal((await killed.exited).code, 137, killed.text);

  const dir2 = overlayImage(t);
  const c = runContainer(dir2, [INIT, '/bin/sh', '-c', 'echo cmd: waiting; exec sleep 2147483647'], { t });
  await c.waitLine(/cmd: waiting/, 120_000);
  const asked = c.elapsed();
  await c.stop(30);
  const exit = await c.exited;
  t.diagnostic(`podman stop: exit ${exit.code}, ${(exit.ms - asked).toFixed(0)} ms after it`);
  const out = c.text;
  assert.ok(out.indexOf('svc-app: finished') < out.indexOf('init-config: down'), out);
  assert.match(out, /cont-finish: bye/);
});

test('t6-container: S6_BEHAVIOUR_IF_STAGE2_FAILS=2 stops the container when a cont-init.d script fails', { skip, timeout: 300_000 }, async (t) => {
  mustRun();
  const dir = overlayImage(t);
  put(dir, { 'etc/cont-init.d/20-broken': '#!/bin/sh\necho cont-init: broken\nexit 7\n' });
  const c = runContainer(dir, [INIT, '/bin/sh', '-c', 'echo cmd: should not run'], { t, env: { S6_BEHAVIOUR_IF_STAGE2_FAILS: '2' } });
  const exit = await c.exited;
  // cont-init's step exits 1, so the change fails with 1: the container's code, as under s6-overlay.
  assert.equal(exit.code, 1, c.text);
  assert.doesNotMatch(c.text, /cmd: should not run/);
  assert.match(c.text, /cont-init: broken/);
});

test('t6-container: with S6_CMD_RECEIVE_SIGNALS, podman kill -s HUP reaches CMD, and podman stop\'s TERM too: the container exits with CMD\'s code', { skip, timeout: 300_000 }, async (t) => {
  mustRun();
  const dir = overlayImage(t);
  const script = 'trap "echo cmd: got HUP" HUP; trap "echo cmd: got TERM; exit 42" TERM; echo cmd: waiting; while :; do sleep 1 & wait $!; done';
  const c = runContainer(dir, [INIT, '/bin/sh', '-c', script], { t, env: { S6_CMD_RECEIVE_SIGNALS: '1' } });
  await c.waitLine(/cmd: waiting/, 120_000);
  const hup = c.kill('HUP');
  assert.equal(hup.status, 0, hup.stderr);
  await c.waitLine(/cmd: got HUP/, 60_000);
  await c.stop(30);
  const exit = await c.exited;
  assert.match(c.text, /cmd: got TERM/);
  assert.equal(exit.code, 42, c.text);
  assert.ok(c.text.indexOf('cmd: got TERM') < c.text.indexOf('svc-app: finished'), 'CMD first, then the services');
});

test('t6-container: S6_CMD_WAIT_FOR_SERVICES_MAXTIME exceeded is a stage-2 failure (stops the container with policy 2)', { skip, timeout: 300_000 }, async (t) => {
  mustRun();
  const dir = overlayImage(t);
  // svc-app never becomes ready: its notification-fd is never written.
  put(dir, { 'etc/s6-overlay/s6-rc.d/svc-app/run': '#!/bin/sh\necho svc-app: running, never ready\nexec sleep 2147483647\n' });
  const c = runContainer(dir, [INIT, '/bin/sh', '-c', 'echo cmd: should not run'], {
    t, env: { S6_CMD_WAIT_FOR_SERVICES_MAXTIME: '1500', S6_BEHAVIOUR_IF_STAGE2_FAILS: '2' },
  });
  const exit = await c.exited;
  assert.notEqual(exit.code, 0, c.text);
  assert.match(c.text, /svc-app: running, never ready/);
  assert.doesNotMatch(c.text, /cmd: should not run/);
  assert.match(c.text, /timed out|time/i);
});

test('t6-container on a read-only root with S6_READ_ONLY_ROOT=1 and a tmpfs on /run', { skip, timeout: 300_000 }, async (t) => {
  mustRun();
  const dir = overlayImage(t);
  const c = runContainer(dir, [INIT, '/bin/sh', '-c', 'echo cmd: ran; touch /etc/x 2>/dev/null && echo cmd: root writable || echo cmd: root read-only'], {
    t, readOnly: true, env: { S6_READ_ONLY_ROOT: '1' }, extra: ['--tmpfs', '/run:rw,exec,mode=755'],
  });
  const exit = await c.exited;
  assert.equal(exit.code, 0, c.text);
  assert.match(c.text, /cmd: root read-only/);
  assert.match(c.text, /svc-app: running/);
});

test('t6-container --user 1000: refused with the reason when /run is not the user\'s; runs with a tmpfs on /run owned by the user', { skip, timeout: 300_000 }, async (t) => {
  mustRun();
  const refused = runContainer(overlayImage(t), [INIT, '/bin/sh', '-c', 'echo cmd: should not run'], { t, user: '1000:1000' });
  const r = await refused.exited;
  assert.equal(r.code, 100, refused.text);
  assert.match(refused.text, /\/run is not writable/);
  const c = runContainer(overlayImage(t), [INIT, '/bin/sh', '-c', 'echo "cmd: ran as $(id -u)"; exit 5'], {
    t, user: '1000:1000', extra: ['--tmpfs', '/run:rw,exec,mode=755,U'],
  });
  const exit = await c.exited;
  assert.equal(exit.code, 5, c.text);
  assert.match(c.text, /cmd: ran as 1000/);
  assert.match(c.text, /svc-app: running/);
});

test('t6-container reaps: a service double-forks 1,000 orphans, and once they exit no zombie remains (seen from the host)', { skip, timeout: 300_000 }, async (t) => {
  mustRun();
  const dir = overlayImage(t);
  put(dir, {
    'etc/s6-overlay/s6-rc.d/orphans/type': 'longrun\n',
    'etc/s6-overlay/s6-rc.d/orphans/run': [
      '#!/bin/sh',
      'rm -f /tmp/gate && mkfifo /tmp/gate || exit 1',
      'i=0',
      // Each ( cat & ) subshell exits at once: its cat is reparented to pid 1.
      'while [ $i -lt 1000 ]; do ( cat /tmp/gate >/dev/null & ); i=$((i+1)); done',
      'echo "orphans: forked $i"',
      'exec sleep 2147483647',
      '',
    ].join('\n'),
    'etc/s6-overlay/user-bundles.d/user/contents.d/orphans': '',
  });
  const c = runContainer(dir, [INIT, '/bin/sh', '-c', 'echo cmd: waiting; exec sleep 2147483647'], { t });
  await c.waitLine(/orphans: forked 1000/, 120_000);
  await c.waitLine(/cmd: waiting/, 120_000);
  const pid1 = c.hostPid();
  assert.ok(pid1 !== undefined, 'the container\'s pid 1 on the host');
  const cats = (): number => processTree(pid1, childrenOf).filter((p) => p.comm === 'cat').length;
  await until('1,000 orphaned cats in the container', () => cats() === 1000 || undefined, 120_000);
  // Open the gate: every cat reads EOF and exits; pid 1 must reap them all.
  const open = c.exec(['/bin/sh', '-c', 'exec 3>/tmp/gate; exec 3>&-']);
  assert.equal(open.status, 0, open.stderr);
  const left = (): string[] => processTree(pid1, childrenOf).filter((p) => p.state === 'Z' || p.comm === 'cat').map((p) => `${p.pid} ${p.state} ${p.comm}`);
  await until('no orphan left, no zombie', () => left().length === 0 || undefined, 120_000);
  await c.stop(30);
  assert.equal((await c.exited).code, 0, c.text);
});

test('t6-container logs: a producer/consumer pipeline into a logger with s6-log directives, and S6_LOGGING=1\'s catch-all log copied to stdout', { skip, timeout: 300_000 }, async (t) => {
  mustRun();
  const dir = overlayImage(t);
  const rc = 'etc/s6-overlay/s6-rc.d';
  put(dir, {
    [`${rc}/svc-app/producer-for`]: 'app-log\n',
    [`${rc}/app-log/type`]: 'longrun\n',
    [`${rc}/app-log/consumer-for`]: 'svc-app\n',
    [`${rc}/app-log/pipeline-name`]: 'app-pipeline\n',
    [`${rc}/app-log/run`]: '#!/bin/sh\nmkdir -p /var/log/app\nexec /opt/t6/bin/t6-log n3 s100000 /var/log/app\n',
    'etc/s6-overlay/user-bundles.d/user/contents.d/app-pipeline': '',
  });
  const c = runContainer(dir, [INIT, '/bin/sh', '-c', 'echo cmd: into the catch-all log; exec sleep 2147483647'], { t, env: { S6_LOGGING: '1' } });
  await c.waitLine(/cmd: into the catch-all log/, 120_000);
  await until('svc-app\'s line in its own log', () => {
    const r = c.exec(['cat', '/var/log/app/current']);
    return /svc-app: running/.test(r.stdout) || undefined;
  }, 60_000);
  assert.doesNotMatch(c.text, /svc-app: running/, 'a service with a logger writes to it, not to the console');
  const caught = c.exec(['cat', '/run/uncaught-logs/current']);
  assert.match(caught.stdout, /cmd: into the catch-all log/);
  await c.stop(30);
  assert.equal((await c.exited).code, 0, c.text);
});

test('an image that has Node already (node:24-slim\'s shape): /opt/t6 made with --system-node is a few MB, and t6-container runs on that Node', { skip, timeout: 300_000 }, async (t) => {
  mustRun();
  const dir = overlayImage(t);
  // The image's own Node at /usr/local/bin/node, as node:24-slim has it; /opt/t6 without one.
  fs.mkdirSync(path.join(dir, 'usr/local/bin'), { recursive: true });
  fs.renameSync(path.join(dir, 'opt/t6/node_modules/node/bin/node'), path.join(dir, 'usr/local/bin/node'));
  fs.rmSync(path.join(dir, 'opt/t6'), { recursive: true });
  const r = packageOpt(path.join(dir, 'opt/t6'), { systemNode: '/usr/local/bin/node' });
  t.diagnostic(`/opt/t6 with --system-node: ${(r.totalBytes / 1e6).toFixed(1)} MB`);
  assert.ok(r.totalBytes < 10e6, `${r.totalBytes} bytes`);
  const c = runContainer(dir, [INIT, '/usr/local/bin/node', '-e', 'console.log(`cmd: node ${process.version}`)'], { t });
  const exit = await c.exited;
  assert.equal(exit.code, 0, c.text);
  assert.match(c.text, /cmd: node v24\./);
  assert.match(c.text, /svc-app: running/);
});

test('S6_STAGE2_HOOK runs before the compile: a service it adds comes up, with what it wrote into the saved environment; failing under policy 2, its code is the container\'s', { skip, timeout: 300_000 }, async (t) => {
  mustRun();
  const dir = overlayImage(t);
  put(dir, {
    'docker-mods': [
      '#!/bin/sh',
      'rc=/etc/s6-overlay/s6-rc.d',
      'mkdir -p $rc/custom-svc',
      'echo longrun > $rc/custom-svc/type',
      'printf "#!/opt/t6/bin/t6-with-contenv /bin/sh\\necho custom-svc: MOD=\\$MOD\\nexec sleep 2147483647\\n" > $rc/custom-svc/run',
      'chmod 755 $rc/custom-svc/run',
      'touch /etc/s6-overlay/user-bundles.d/user/contents.d/custom-svc',
      'printf added > /run/s6/container_environment/MOD',
      '',
    ].join('\n'),
  });
  const c = runContainer(dir, [INIT, '/bin/sh', '-c', 'echo cmd: done'], { t, env: { S6_STAGE2_HOOK: '/docker-mods' } });
  assert.equal((await c.exited).code, 0, c.text);
  assert.match(c.text, /custom-svc: MOD=added/);

  const failing = overlayImage(t);
  put(failing, { 'docker-mods': '#!/bin/sh\necho hook: failing\nexit 9\n' });
  const f = runContainer(failing, [INIT, '/bin/sh', '-c', 'echo cmd: should not run'], { t, env: { S6_STAGE2_HOOK: '/docker-mods', S6_BEHAVIOUR_IF_STAGE2_FAILS: '2' } });
  assert.equal((await f.exited).code, 9, f.text);
  assert.doesNotMatch(f.text, /cmd: should not run/);
});

test('S6_KEEP_ENV=1: services and CMD get the container\'s environment as it is, and nothing is saved', { skip, timeout: 300_000 }, async (t) => {
  mustRun();
  const c = runContainer(overlayImage(t), [INIT, '/bin/sh', '-c', 'echo "cmd: GREETING=$GREETING"; test -e /run/s6/container_environment && echo cmd: saved'], {
    t, env: { GREETING: 'hello there', S6_KEEP_ENV: '1' },
  });
  const exit = await c.exited;
  assert.match(c.text, /cmd: GREETING=hello there/);
  assert.match(c.text, /svc-app: running, GREETING=hello there/);
  assert.doesNotMatch(c.text, /cmd: saved/);
  assert.equal(exit.code, 1, 'test -e failed last: nothing was saved');
});
