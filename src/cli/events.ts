/**
 * t6-events (`t6 events`): the supervision tree's event stream, for people (aligned, in
 * colour on a terminal) or as JSON lines. Exit: 0 at the end of the stream, 100 usage,
 * 111 no stream (t6-svscan not running there, or it refused).
 */
import tty from 'node:tty';
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { parseClientArgs } from './_client.ts';
import { EventStreamError, eventSocket, readEvents } from '../supervise/event-client.ts';
import type { T6Event } from '../supervise/events.ts';
import { DEFAULT_SCANDIR } from '../s6/initctl.ts';
import { SIGNALS } from '../sys/signals.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-events [ -s scandir ] [ -f ] [ --since seq ] [ --json ] [ service... ]';
const HELP = `usage: ${USAGE}
Prints t6-svscan's events: every service's state changes, logger alerts, t6-rc
transitions, shutdown stages; one per line, numbered (seq) and stamped.
  -s scandir     the tree's scan directory (default ${DEFAULT_SCANDIR})
  -f, --follow   go on printing events as they come (Ctrl-C ends)
  --since seq    start at event number seq (0: the oldest kept, about the last 1,000);
                 default: the kept ones without -f, new ones only with -f
  --json         one JSON object per line, as t6-svscan sends them
  service...     only these services' events (a service's logger's too)
`;

const COLOURS: Partial<Record<T6Event['kind'], string>> = {
  up: '32', ready: '32;1', down: '33', 'finish-started': '33', 'finish-ended': '33', 'restart-scheduled': '36',
  throttled: '31', 'given-up': '31;1', 'supervisor-exited': '90', 'logger-blocked': '31', 'logger-resumed': '32',
  rc: '34', shutdown: '35', scanner: '35', lost: '31;1',
};

export async function main(args: string[], io: CommandIo): Promise<number> {
  const parsed = parseClientArgs(args, { flags: 'f', withArg: 's', long: { follow: 'flag', since: 'arg', json: 'flag' } }, USAGE);
  if (parsed === undefined) { io.out(HELP); return EXIT.ok; }
  let scandir = DEFAULT_SCANDIR;
  let follow = false;
  let json = false;
  let since: number | null | undefined;
  for (const { name, value } of parsed.options) {
    if (name === 's') scandir = value!;
    else if (name === 'f' || name === 'follow') follow = true;
    else if (name === 'json') json = true;
    else if (name === 'since') {
      if (!/^\d+$/.test(value!)) throw new UsageError(`--since needs an event number, not ${JSON.stringify(value)}`);
      since = Number(value);
    }
  }
  const services = new Set(parsed.rest);
  const wanted = (e: T6Event): boolean => services.size === 0 || e.service === undefined || services.has(e.service) || services.has(e.service.replace(/\/log$/, ''));
  const colour = !json && tty.isatty(1) && process.env['NO_COLOR'] === undefined;
  const reader = readEvents(eventSocket(scandir), { since: since ?? (follow ? null : 0), follow }, (e) => {
    if (!wanted(e)) return;
    io.out(json ? `${JSON.stringify(e)}\n` : `${formatEvent(e, colour)}\n`);
  });
  const onSignal = (): void => reader.stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await reader.done;
  } catch (err) {
    if (err instanceof EventStreamError) throw new FatalError(err.message, EXIT.system);
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return EXIT.ok;
}

/** One record for people: time, number, service, kind, then what it says. */
export function formatEvent(e: T6Event, colour: boolean): string {
  const time = e.time.replace('T', ' ').replace('Z', '');
  const kind = e.kind.padEnd(17);
  const paint = colour && COLOURS[e.kind] !== undefined ? `\x1b[${COLOURS[e.kind]}m${kind}\x1b[0m` : kind;
  const text = `${time}  ${String(e.seq).padStart(6)}  ${(e.service ?? '-').padEnd(20)}  ${paint}  ${details(e)}`;
  return text.trimEnd();
}

/** The words of a record's own fields. */
function details(e: T6Event): string {
  switch (e.kind) {
    case 'up': case 'finish-started': return `pid ${e.pid}`;
    case 'down': case 'finish-ended': return exitText(e);
    case 'restart-scheduled': return e.delayMs === 0 ? 'now' : `in ${e.delayMs} ms`;
    case 'throttled': return `run lived less than a second: restarts wait ${e.delayMs} ms`;
    case 'rc': return `${e.action ?? ''} ${e.phase ?? ''}${e.reason === undefined ? '' : `: ${e.reason}`}`.trim();
    case 'shutdown': case 'scanner': return `${e.phase ?? ''}${e.reason === undefined ? '' : `: ${e.reason}`}`;
    case 'logger-blocked': return `takes no input for ${e.blockedMs} ms: its service's writes wait`;
    case 'logger-resumed': return `takes input again after ${e.blockedMs} ms`;
    case 'lost': return `${e.lost} event${e.lost === 1 ? '' : 's'} not received (${e.reason === 'slow' ? 'too slow to read them' : 'no longer kept'})`;
    default: return '';
  }
}

function exitText(e: T6Event): string {
  if (e.signal !== undefined) {
    const name = Object.entries(SIGNALS).find(([, n]) => n === e.signal)?.[0];
    return `killed by signal ${e.signal}${name === undefined ? '' : ` (SIG${name})`}`;
  }
  return `exited ${e.exitCode ?? '?'}`;
}
