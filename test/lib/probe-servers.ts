/** Servers for the probe transport tests (TcpProbes, UringProbes, the Prober). */
import net from 'node:net';
import { spawn } from 'node:child_process';

/**
 * Servers in a child Node process (so their work is not the test's) on `host`: `answer`
 * replies an HTTP 200 to the first bytes and closes; `silent` never answers; `drop`
 * closes at once.
 */
export async function servers(host = '127.0.0.1'): Promise<{ answer: number; silent: number; drop: number; stop(): Promise<void> }> {
  const source = `
    const net = require('node:net');
    const make = (onConn) => new Promise((ok) => { const s = net.createServer((c) => { c.on('error', () => {}); onConn(c); }); s.listen(0, ${JSON.stringify(host)}, () => ok(s.address().port)); });
    Promise.all([
      make((c) => c.once('data', () => c.end('HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok'))),
      make((c) => c.resume()),
      make((c) => c.destroy()),
    ]).then((ports) => process.stdout.write(ports.join(' ') + '\\n'));
  `;
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve) => child.stdout.once('data', (d) => resolve(String(d))));
  const [answer, silent, drop] = line.trim().split(' ').map(Number) as [number, number, number];
  return { answer, silent, drop, stop: () => new Promise((resolve) => { child.once('exit', () => resolve()); child.kill(); }) };
}

/** A port nobody listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}
