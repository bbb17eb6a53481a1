/**
 * t6-top (`t6 top`): the supervision tree live, in the spirit of htop: every service, its
 * state, readiness, uptime, restarts, the CPU and memory of its process tree, and its last
 * log line; sorted, filtered, and commanded with a key. On a terminal it takes the screen
 * and follows the event stream; otherwise it prints a plain table once a second (once with
 * --once). Exit: 0 on q (or SIGINT, SIGTERM, SIGHUP), 100 usage, 111 no event stream or
 * an unreadable scan directory.
 *
 * Pids in status files are in t6-svscan's pid namespace: run t6 top in the same one (as
 * when t6-svscan is the machine's pid 1 or a service of it); elsewhere CPU and RSS show `?`.
 */
import tty from 'node:tty';
import { type CommandIo, FatalError } from './_run.ts';
import { parseClientArgs } from './_client.ts';
import { Terminal } from './_terminal.ts';
import { TopSession } from '../top/session.ts';
import { systemProcSource } from '../top/sampler.ts';
import { renderScreen, renderTable, shownRows } from '../top/screen.ts';
import { type KeyState, applyKey, decodeKeys } from '../top/keys.ts';
import { EventStreamError } from '../supervise/event-client.ts';
import { ClientError } from '../s6/client.ts';
import { DEFAULT_SCANDIR } from '../s6/initctl.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-top [ -s scandir ] [ --once ]';
const HELP = `usage: ${USAGE}
Shows every service of the tree, live: state, readiness, uptime, restarts, CPU% and RSS
of its process tree (from /proc, once a second), and the last line of its logdir.
  -s scandir   the tree's scan directory (default ${DEFAULT_SCANDIR})
  --once       print the table once and exit (without a terminal: once a second)
Keys: j/k or arrows move, PgUp/PgDn/g/G, s next sort (name state cpu rss restarts uptime),
/ filter (Enter keeps, Esc clears), u up, d down, r restart (t6-svc -u, -d, -t), q quit.
The footer counts the samples of /proc taken. Exit: 0, 100 usage, 111 no event stream.
`;

/** Ends the command: a key or a signal (quit), or a failure. */
interface Ending {
  promise: Promise<void>;
  quit(): void;
  fail(err: unknown): void;
}

function ending(): Ending {
  let quit!: () => void;
  let fail!: (err: unknown) => void;
  const promise = new Promise<void>((resolve, reject) => { quit = resolve; fail = reject; });
  return { promise, quit, fail };
}

export async function main(args: string[], io: CommandIo): Promise<number> {
  const parsed = parseClientArgs(args, { flags: '', withArg: 's', long: { once: 'flag' } }, USAGE);
  if (parsed === undefined) { io.out(HELP); return EXIT.ok; }
  let scandir = DEFAULT_SCANDIR;
  let once = false;
  for (const { name, value } of parsed.options) {
    if (name === 's') scandir = value!;
    else if (name === 'once') once = true;
  }
  const end = ending();
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const sig of signals) process.on(sig, end.quit);
  try {
    const interactive = !once && tty.isatty(0) && tty.isatty(1);
    await (interactive ? live(scandir, end) : plain(scandir, once, io, end));
  } catch (err) {
    if (err instanceof EventStreamError || err instanceof ClientError) throw new FatalError(err.message, EXIT.system);
    throw err;
  } finally {
    for (const sig of signals) process.off(sig, end.quit);
  }
  return EXIT.ok;
}

function newSession(scandir: string, end: Ending, onChange: () => void, logRows?: () => Iterable<string>): TopSession {
  return new TopSession(scandir, {
    source: systemProcSource(), nowMs: () => performance.now(), wallMs: () => Date.now(), onChange, onError: end.fail,
    ...(logRows === undefined ? {} : { logRows }),
  });
}

/** Not on a terminal: a table once (--once) or once a second. */
async function plain(scandir: string, once: boolean, io: CommandIo, end: Ending): Promise<void> {
  const width = Number(process.env['COLUMNS']) || 80;
  const session = newSession(scandir, end, () => {});
  const print = (): void => {
    const lines = renderTable(session.model, { width, nowMs: Date.now(), scandir, samples: session.sampler.samples, pidsVerified: session.sampler.pidsVerified });
    io.out(`${lines.map((l) => l.trimEnd()).join('\n')}\n`);
  };
  if (once) {
    await session.load();
    session.tick();
    print();
    return;
  }
  const reader = session.follow();
  let first = true;
  // The first table once every service is known (not an empty one while connecting).
  await Promise.race([session.loaded, reader.done, end.promise]);
  session.startTicks(() => {
    if (!first) io.out('\n');
    first = false;
    print();
  });
  try {
    await Promise.race([end.promise, reader.done]);
  } finally {
    session.stop();
  }
}

/** On a terminal: the full-screen view, redrawn on every change, key and SIGWINCH. */
async function live(scandir: string, end: Ending): Promise<void> {
  const keys: KeyState = { editing: undefined };
  let message = '';
  let pending = false;
  let page = 1;
  const draw = (): void => {
    if (pending) return;
    pending = true;
    setImmediate(() => {
      pending = false;
      const { width, height } = term.size();
      page = Math.max(1, height - 4);
      const s = session.sampler;
      const screen = renderScreen(session.model, { width, height, nowMs: Date.now(), scandir, samples: s.samples, pidsVerified: s.pidsVerified, editing: keys.editing, message });
      term.draw(screen.lines, screen.highlight);
    });
  };
  const onKeys = (text: string): void => {
    for (const key of decodeKeys(text)) {
      const visible = session.model.visible(Date.now());
      const cmd = applyKey(session.model, keys, visible, key, page);
      if (cmd?.kind === 'quit') { end.quit(); return; }
      if (cmd?.kind === 'control') {
        message = `${cmd.service}: sending t6-svc -${cmd.letter}…`;
        session.control(cmd.service, cmd.letter).then((m) => { message = m; draw(); }, end.fail);
      }
    }
    draw();
  };
  const term = new Terminal(onKeys);
  const session = newSession(scandir, end, draw, () => rowsOnScreen(session, term));
  process.on('SIGWINCH', draw);
  try {
    const reader = session.follow();
    // The first sample once the services are known (their pids are in their facts).
    await Promise.race([session.loaded, reader.done, end.promise]);
    session.startTicks(draw);
    await Promise.race([end.promise, reader.done]);
  } finally {
    process.off('SIGWINCH', draw);
    session.stop();
    term.restore();
  }
}

/** The services on the screen now (their last log lines are the ones worth reading). */
function rowsOnScreen(session: TopSession, term: Terminal): string[] {
  return shownRows(session.model, term.size().height, Date.now()).rows.map((r) => r.name);
}
