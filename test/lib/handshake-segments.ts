/**
 * Run in a network namespace of its own (test/unit/sys-uringprobe.test.ts): N HTTP attempts
 * through UringProbes or TcpProbes against a node:net server in this process, one after
 * another, and the namespace's TCP segments sent per attempt (/proc/self/net/snmp's OutSegs,
 * both ends), as one number on stdout. argv: N, `merge` or `plain` (mergeHandshakeAck), and
 * `uring` or `epoll`.
 */
import fs from 'node:fs';
import net from 'node:net';
import { TcpProbes, tcpAddress } from '../../src/sys/tcpprobe.ts';
import { UringProbes } from '../../src/sys/uringprobe.ts';

const count = Number(process.argv[2]);
const merge = process.argv[3] === 'merge';
const epoll = process.argv[4] === 'epoll';
const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');

/** Tcp OutSegs of this namespace. */
function outSegs(): number {
  const lines = fs.readFileSync('/proc/self/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Tcp:'));
  const names = lines[0]!.split(/\s+/);
  return Number(lines[1]!.split(/\s+/)[names.indexOf('OutSegs')]);
}

const server = net.createServer((sock) => {
  sock.once('data', () => sock.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'));
  sock.on('error', () => {});
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const address = tcpAddress('127.0.0.1', (server.address() as net.AddressInfo).port)!;
const options = { mergeHandshakeAck: merge, onError: (err: Error) => { throw err; } };
const probes = epoll ? new TcpProbes(options) : new UringProbes(options);

/** One attempt, over when the server's end is seen. */
const attempt = (): Promise<void> => new Promise((resolve, reject) => {
  probes.open(address, REQUEST, {
    onConnected: () => {},
    onData: () => {},
    onEnd: () => resolve(),
    onFailed: (syscall, code) => reject(new Error(`${syscall} ${code}`)),
  });
});

/** Once its slot's CLOSE completed, an attempt's last segments (our FIN, the server's ACK) are sent: loopback delivers them inside the close. */
async function closed(): Promise<void> {
  while (probes instanceof UringProbes ? probes.busySlots > 0 : probes.size > 0) await new Promise((resolve) => setTimeout(resolve, 5));
}

await attempt(); // warm-up, not counted
await closed();
const before = outSegs();
for (let i = 0; i < count; i++) {
  await attempt();
  await closed();
}
process.stdout.write(`${(outSegs() - before) / count}\n`);
probes.shutdown();
server.close();
