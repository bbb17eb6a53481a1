/**
 * examples/node-app in a real podman container (issue 15 item 3, Node applications without
 * pm2): t6-container as /init, a `migrate` oneshot before the API and the worker (two
 * longruns), the API ready by t6's HTTP probe and answering the host on a published port, a
 * crashing worker restarted (and the API after a SIGKILL), every longrun's lines on podman's
 * stdout as `name: line` (T6_LOG_PREFIX), `podman stop` ending it cleanly, and the API's own
 * exit code the container's (its finish script).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildRootfs, podmanUsable, rootfsCopy, runContainer, type Container, type Rootfs } from '../lib/container.ts';

const why = podmanUsable();
const skip = why !== undefined && process.env.CI !== 'true' ? `podman is not usable here: ${why}` : false;
const mustRun = (): void => { if (why !== undefined) assert.fail(`podman is not usable (CI=true, so this fails instead of skipping): ${why}`); };

const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/node-app');
const INIT = '/opt/t6/bin/t6-container';
const NODE = '/usr/local/bin/node';
/** The Containerfile's ENV, plus the test-only exit endpoint. */
const ENV = { T6_LOG_PREFIX: '1', PORT: '8080', APP_DATA: '/var/lib/app', APP_ALLOW_EXIT: '1' };

let base: Rootfs | undefined;
/**
 * The image the example's Containerfile builds, on a fresh copy of the shared rootfs: its
 * rootfs/ (the service definitions) at /, app/ at /app, and node on PATH.
 */
function exampleImage(t: TestContext): string {
  base ??= buildRootfs();
  const dir = rootfsCopy(t, base);
  // cpSync writes new files: nothing shared by the copy's hard links is touched.
  fs.cpSync(path.join(EXAMPLE, 'rootfs'), dir, { recursive: true });
  fs.cpSync(path.join(EXAMPLE, 'app'), path.join(dir, 'app'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'usr/local/bin'), { recursive: true });
  fs.symlinkSync('/opt/t6/node_modules/node/bin/node', path.join(dir, NODE));
  return dir;
}

/** A TCP port free on the host's loopback now, for `podman run -p`. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** An HTTP request to the API from inside the container (no published port needed): status and body. */
function request(c: Container, method: string, urlPath: string, body?: string): { status: number; body: string } {
  const script = `const r = await fetch('http://127.0.0.1:8080${urlPath}', { method: ${JSON.stringify(method)}${body === undefined ? '' : `, body: ${JSON.stringify(body)}`} });`
    + ' process.stdout.write(r.status + "\\n" + await r.text());';
  const r = c.exec([NODE, '--input-type=module', '-e', script]);
  assert.equal(r.status, 0, `${method} ${urlPath} from inside: ${r.stderr}\n${c.text.slice(-2000)}`);
  const [status, ...rest] = r.stdout.split('\n');
  return { status: Number(status), body: rest.join('\n') };
}

test('node-app: migrate runs first, the API answers, a crashed worker is restarted, lines are prefixed, podman stop ends it cleanly', { skip, timeout: 300_000 }, async (t) => {
  mustRun();
  const port = await freePort();
  const c = runContainer(exampleImage(t), [INIT], { t, env: ENV, extra: ['-p', `127.0.0.1:${port}:8080`] });
  const migrated = await c.waitLine(/^migrate: done, 2 migrations$/, 120_000);
  const listening = await c.waitLine(/^api: listening on port 8080$/, 60_000);
  const started = await c.waitLine(/^worker: started, pid \d+$/, 60_000);
  t.diagnostic(`migrate done at ${migrated.ms} ms, api listening at ${listening.ms} ms, worker started at ${started.ms} ms`);
  assert.ok(migrated.index < listening.index && migrated.index < started.index, `migrate before the API and the worker:\n${c.text}`);
  assert.match(c.text, /^migrate: applied 001-create-db$/m);
  // Readiness is the HTTP probe's first success: t6-rc says the API is up only after it listens.
  const ready = await c.waitLine(/^t6-rc: info: service api successfully started$/, 60_000);
  assert.ok(ready.index > listening.index, `the API ready once it listens:\n${c.text}`);

  // From the host, through the published port.
  const fromHost = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(fromHost.status, 200);
  assert.deepEqual(await fromHost.json(), { hello: 'world', migrations: ['001-create-db', '002-create-queue'] });
  assert.equal(request(c, 'GET', '/healthz').status, 200, 'and from inside the container');

  const job = request(c, 'POST', '/jobs', JSON.stringify({ n: 1 }));
  assert.equal(job.status, 202);
  await c.waitLine(/^api: queued job /);
  await c.waitLine(/^worker: done job \S+: \{"n":1\}$/);

  // A job that crashes the worker (exit 70): t6 restarts it, and the new one sets the job aside.
  const from = c.lines.length;
  assert.equal(request(c, 'POST', '/jobs', JSON.stringify({ crash: true })).status, 202);
  const crashed = await c.waitLine(/^worker: job \S+ asks for a crash: crashing$/, 60_000, from);
  const restarted = await c.waitLine(/^worker: started, pid \d+$/, 60_000, crashed.index);
  await c.waitLine(/^worker: job \S+ was being worked on when the worker died: moved to failed\/$/, 60_000, restarted.index);
  assert.notEqual(restarted.line, started.line, 'a new worker process');
  t.diagnostic(`worker restarted ${restarted.ms - crashed.ms} ms after its crash`);
  // Still working after the restart.
  request(c, 'POST', '/jobs', JSON.stringify({ n: 2 }));
  await c.waitLine(/^worker: done job \S+: \{"n":2\}$/, 60_000, restarted.index);

  const asked = c.elapsed();
  assert.equal(await c.stop(30), 0);
  const exit = await c.exited;
  t.diagnostic(`podman stop: exit ${exit.code}, ${exit.ms - asked} ms after it`);
  assert.equal(exit.code, 0, c.text);
  assert.match(c.text, /^api: SIGTERM: closing the server$/m);
  assert.match(c.text, /^worker: SIGTERM: stopped$/m);
  assert.doesNotMatch(c.text, /the container ends with it/, 'a stop is no exit code of the API\'s');
});

test('node-app: the API exiting with a code ends the container with that code', { skip, timeout: 300_000 }, async (t) => {
  mustRun();
  const c = runContainer(exampleImage(t), [INIT], { t, env: ENV });
  await c.waitLine(/^api: listening on port 8080$/, 120_000);
  await c.waitLine(/^worker: started, pid \d+$/, 60_000);
  // Killed by a signal (as by the OOM killer): the API is restarted, the container goes on.
  const from = c.lines.length;
  assert.equal(c.exec(['/opt/t6/bin/t6-svc', '-k', '/run/service/api']).status, 0);
  const killed = await c.waitLine(/^api: killed by signal 9: restarting$/, 60_000, from);
  await c.waitLine(/^api: listening on port 8080$/, 60_000, killed.index);
  assert.equal(request(c, 'POST', '/exit?code=42').status, 200);
  const exit = await c.exited;
  assert.equal(exit.code, 42, c.text);
  assert.match(c.text, /^api: exited with code 42: the container ends with it$/m);
  assert.match(c.text, /^worker: SIGTERM: stopped$/m, 'the worker was stopped gracefully too');
});
