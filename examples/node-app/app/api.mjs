// The API: node:http only. Readiness is t6's probe/http on GET /healthz (this process
// announces nothing). Stops gracefully on SIGTERM (the container's stop).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const PORT = Number(process.env.PORT ?? 8080);
const DATA = process.env.APP_DATA ?? '/var/lib/app';
const QUEUE = path.join(DATA, 'queue');

function migrations() {
  return JSON.parse(fs.readFileSync(path.join(DATA, 'db.json'), 'utf8')).migrations;
}

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

let jobCount = 0;

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  try {
    if (req.method === 'GET' && url.pathname === '/healthz') return reply(res, 200, { ok: true });
    if (req.method === 'GET' && url.pathname === '/') return reply(res, 200, { hello: 'world', migrations: migrations() });
    if (req.method === 'POST' && url.pathname === '/jobs') {
      // Enqueue: write to a temporary name, then rename (the worker only sees whole files).
      const id = `${Date.now()}-${process.pid}-${++jobCount}`;
      const tmp = path.join(QUEUE, `.${id}.tmp`);
      fs.writeFileSync(tmp, await readBody(req));
      fs.renameSync(tmp, path.join(QUEUE, `${id}.json`));
      console.log(`queued job ${id}`);
      return reply(res, 202, { id });
    }
    // For the example's test only: the API ends with a chosen code, and so does the container.
    if (req.method === 'POST' && url.pathname === '/exit' && process.env.APP_ALLOW_EXIT === '1') {
      const code = Number(url.searchParams.get('code') ?? 1);
      console.log(`exiting with code ${code} as asked`);
      reply(res, 200, { code });
      setImmediate(() => process.exit(code));
      return undefined;
    }
    return reply(res, 404, { error: 'not found' });
  } catch (err) {
    console.error(`error: ${err.message}`);
    return reply(res, 500, { error: err.message });
  }
});

server.listen(PORT, () => console.log(`listening on port ${PORT}`));

process.on('SIGTERM', () => {
  console.log('SIGTERM: closing the server');
  server.close(() => {
    console.log('closed');
    process.exit(0);
  });
  server.closeIdleConnections();
});
