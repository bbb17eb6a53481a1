/** The Unix sockets t6-svscan serves in `.s6-svscan/` (the oneshot runner, the event stream), made alike. */
import fs from 'node:fs';
import type net from 'node:net';
import { errorCode } from '../sys/errors.ts';

/**
 * Listens on `socketPath`, a stale socket there removed first, mode 0600: the directory is
 * 0700, and the socket stays root-only even if someone loosens the directory. Throws if it cannot.
 */
export function listenPrivate(server: net.Server, socketPath: string): void {
  try {
    if (fs.lstatSync(socketPath).isSocket()) fs.unlinkSync(socketPath);
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err;
  }
  const mask = process.umask(0o177);
  try {
    server.listen(socketPath);
  } finally {
    process.umask(mask);
  }
}
