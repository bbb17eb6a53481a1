/**
 * t6-rc-fdholder-filler: fills the fd holder of the longrun `s6rc-fdholder` with one pipe
 * per pipeline consumer (rc/fdholder.ts), then says the service is ready. Its run script
 * (rc/foreign.ts) starts it in the background, its stdin the daemon's readiness pipe, and
 * execs into s6-fdholder-daemon: it waits for the daemon's newline (or end of file: the
 * daemon died), stores the pipes of every consumer listed in `consumers` (one name per
 * line), and writes a newline to `notif`. So the service is ready only once every pipe is
 * there. If storing fails, it asks the service's supervisor to restart it (`t`), as
 * s6-rc's filler does, and exits 111.
 *
 * Internal: t6-rc-init writes the run script that starts it.
 */
import fs from 'node:fs';
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { getopt, uintOption } from './_getopt.ts';
import { FdholderError, storePipes } from '../rc/fdholder.ts';
import { svcSend } from '../s6/client.ts';
import { strerror } from '../sys/errors.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-rc-fdholder-filler [ -d notif ] -s s6-fdholder-store socket consumers';
const HELP = `usage: ${USAGE}
Waits for a newline (or end of file) on stdin, the fd holder's readiness; then stores one
pipe per name listed in the file consumers (one per line) in the fd holder listening on
socket, as pipe:s6rc-r-NAME and pipe:s6rc-w-NAME, with the s6-fdholder-store given. The
run script t6-rc-init writes for s6rc-fdholder starts it. On failure it sends t to the
service in the current directory, so that the fd holder restarts, and exits 111.
  -d notif   write a newline to fd notif once every pipe is stored, then close it
`;

export async function main(args: string[], io: CommandIo): Promise<number> {
  if (args.includes('--help')) { io.out(HELP); return EXIT.ok; }
  const { options, rest } = getopt(args, { withArg: 'ds' });
  let notify: number | undefined;
  let storeProg: string | undefined;
  for (const { name, value } of options) {
    if (name === 'd') notify = uintOption('d', value);
    else if (name === 's') storeProg = value;
  }
  if (rest.length !== 2 || storeProg === undefined) throw new UsageError(USAGE);
  const [socket, listFile] = rest as [string, string];
  if (!awaitNewline()) throw new FatalError('the fd holder ended before it was ready', EXIT.failed);
  let consumers: string[];
  try {
    consumers = fs.readFileSync(listFile, 'utf8').split('\n').filter((l) => l !== '');
  } catch (err) {
    throw new FatalError(`unable to read ${listFile}: ${strerror(err)}`);
  }
  try {
    storePipes(storeProg, socket, consumers);
  } catch (err) {
    if (!(err instanceof FdholderError)) throw err;
    await svcSend('.', 't').catch(() => {});
    throw new FatalError(`${err.message}; restarting the fd holder`);
  }
  if (notify !== undefined) {
    try { fs.writeSync(notify, '\n'); } catch { /* nobody reads it */ }
    fs.closeSync(notify);
  }
  return EXIT.ok;
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/** Reads stdin until a newline (true) or end of file (false). */
function awaitNewline(): boolean {
  const buf = Buffer.alloc(64);
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (err) {
      // Someone made the pipe non-blocking: wait a little, not a busy loop.
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') { Atomics.wait(PAUSE, 0, 0, 10); continue; }
      return false;
    }
    if (n === 0) return false;
    if (buf.subarray(0, n).includes(0x0a)) return true;
  }
}
