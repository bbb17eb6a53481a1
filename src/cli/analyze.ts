/**
 * t6-analyze: boot analysis, as systemd-analyze does it, from the records pid 1 and t6-rc
 * keep in LIVE/timings/. Exit codes: 0 ok; 1 no such record or target; 100 usage;
 * 111 system error.
 */
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { type ParsedOption, getopt } from './_getopt.ts';
import { DEFAULT_LIVE } from '../rc/live.ts';
import { type RecordChoice, TimingsError, listRecords, loadRecord } from '../rc/timings-store.ts';
import { blame, blameText } from '../rc/analyze/blame.ts';
import { UnknownTargetError, chainText, criticalChain } from '../rc/analyze/critical-chain.ts';
import { plotSvg } from '../rc/analyze/plot.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-analyze [ --live dir ] [ --change N|boot|last ] [ --json ] blame | critical-chain [ target ] | plot | list';
const HELP = `usage: ${USAGE}
  blame              the transitions by how long each took (requested → ready, or → up
                     without readiness; → down for a stop), longest first
  critical-chain [t] the chain of dependencies that decided when t was done (default:
                     what the change was asked for; at boot, the runlevel's bundle)
  plot               an SVG timeline on stdout (t6 analyze plot > boot.svg); with --json,
                     the record it is drawn from (format: src/rc/timings.ts)
  list               the records kept: the boot's and the last changes'
  --live dir         t6-rc's live directory (default ${DEFAULT_LIVE}); records are in dir/timings
  --change N|boot|last  which record (default: the boot's, else the last change's)
  --json             machine-readable output
`;

const SPEC = { flags: 'h', long: { live: 'arg', change: 'arg', json: 'flag', help: 'flag' } } as const;

/** --change's value. */
function choiceOf(value: string): RecordChoice {
  if (value === 'boot' || value === 'last') return value;
  if (/^\d+$/.test(value) && Number(value) > 0) return Number(value);
  throw new UsageError(`${USAGE}\n--change needs a change number, boot or last`);
}

export function main(args: string[], io: CommandIo): number {
  // Options may come before or after the command and its target (t6 analyze blame --json).
  const options: ParsedOption[] = [];
  const words: string[] = [];
  for (let rest = args; rest.length > 0;) {
    const parsed = getopt(rest, SPEC);
    options.push(...parsed.options);
    if (parsed.rest.length > 0) words.push(parsed.rest[0]!);
    rest = parsed.rest.slice(1);
  }
  const [command, target, ...extra] = words;
  let live = DEFAULT_LIVE;
  let choice: RecordChoice | undefined;
  let json = false;
  for (const { name, value } of options) {
    switch (name) {
      case 'live': live = value!; break;
      case 'change': choice = choiceOf(value!); break;
      case 'json': json = true; break;
      case 'h': case 'help': io.out(HELP); return EXIT.ok;
    }
  }
  if (command === 'help') { io.out(HELP); return EXIT.ok; }
  if (command === undefined || !['blame', 'critical-chain', 'plot', 'list'].includes(command) || extra.length > 0 || (target !== undefined && command !== 'critical-chain')) throw new UsageError(USAGE);
  try {
    if (command === 'list') return list(live, json, io);
    const record = loadRecord(live, choice ?? (listRecords(live).some((r) => r.kind === 'boot') ? 'boot' : 'last'));
    // The picture's --json is the record it is drawn from.
    if (command === 'plot') io.out(json ? `${JSON.stringify(record)}\n` : plotSvg(record));
    else if (command === 'blame') io.out(json ? `${JSON.stringify(blame(record))}\n` : blameText(blame(record)));
    else io.out(json ? `${JSON.stringify(criticalChain(record, target))}\n` : chainText(criticalChain(record, target)));
    return EXIT.ok;
  } catch (err) {
    if (err instanceof TimingsError || err instanceof UnknownTargetError) throw new FatalError(err.message, EXIT.failed);
    throw err;
  }
}

/** `list`: each record with what it was asked and when. */
function list(live: string, json: boolean, io: CommandIo): number {
  const records = listRecords(live).map((r) => {
    const rec = loadRecord(live, r.kind === 'boot' ? 'boot' : r.seq);
    return { change: r.kind === 'boot' ? 'boot' : r.seq, started: new Date(rec.started.real).toISOString(), up: rec.request.up, names: rec.request.names, transitions: rec.services.length, exitCode: rec.exitCode };
  });
  if (json) io.out(`${JSON.stringify(records)}\n`);
  else io.out(records.map((r) => `${String(r.change).padStart(4)}  ${r.started}  ${r.up ? 'up  ' : 'down'} ${r.names.join(' ') || '(everything up)'}: ${r.transitions} transitions, exit ${r.exitCode}\n`).join(''));
  return EXIT.ok;
}
