/**
 * t6-svstat: prints the status of a service directory (s6-svstat), or of every service of
 * a scan directory (-a). Exit: 0; 1 not supervised; 100 usage or bad field list; 111
 * system error.
 */
import { healthText, readHealth } from '../s6/healthfile.ts';
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { parseClientArgs } from './_client.ts';
import { ClientError, type ScanEntry, probeService, scanServices } from '../s6/client.ts';
import {
  FIELD_LETTERS, type FieldName, FieldListError, MAX_FIELDS, type ServiceView,
  formatFields, formatLegacy, parseFieldList,
} from '../s6/svstat.ts';
import { describeServicedir, insideScanner, serviceNameOf } from '../s6/servicefacts.ts';
import type { InsideScanner } from '../s6/servicejson.ts';
import { tainFromUnixMs } from '../s6/tai.ts';
import { EXIT } from '../s6/exit.ts';

const USAGE = 't6-svstat [ -uwNrpgest | -o up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum,updownsince,readysince,updownfor,readyfor,pgid ] [ -n ] [ --json ] servicedir | -a scandir';

const HELP = `usage: ${USAGE}
Prints one line about the service: "up (pid P) S seconds[, normally down][, paused]
[, want down][, ready R seconds]" or "down (exitcode E | signal SIGX) S seconds[, normally up]
[, want up][, ready R seconds]".
  -n        print signals as numbers
  -o LIST   print these fields instead, space-separated (names may be abbreviated);
            letters: -u up -w wantedup -N normallyup -r ready -p pid -g pgid -e exitcode
            -s signal -t updownfor
  --json    print the service as a JSON object (docs/service.schema.json)
  -a DIR    every service of scan directory DIR (and its log/), one "name: status" line
            each (--json: an array of those objects)
Exit: 0, 1 not supervised, 100 usage, 111 system error.
`;

// Date.now(), not tainNow(): the first use of the global `performance` loads perf_hooks,
// and whole seconds do not need sub-millisecond precision.
export async function main(args: string[], io: CommandIo): Promise<number> {
  const parsed = parseClientArgs(args, { flags: 'nuwNrpgest', withArg: 'oa', long: { json: 'flag' } }, USAGE);
  if (parsed === undefined) { io.out(HELP); return EXIT.ok; }
  let numeric = false;
  let json = false;
  let scandir: string | undefined;
  const fields: FieldName[] = [];
  for (const { name, value = '' } of parsed.options) {
    if (name === 'n') numeric = true;
    else if (name === 'json') json = true;
    else if (name === 'a') scandir = value;
    else {
      let more: FieldName[];
      try {
        more = name === 'o' ? parseFieldList(value) : [FIELD_LETTERS[name as keyof typeof FIELD_LETTERS]];
      } catch (err) {
        if (err instanceof FieldListError) throw new FatalError(err.message, EXIT.usage);
        throw err;
      }
      if (fields.length + more.length > MAX_FIELDS) throw new FatalError('too many option fields', EXIT.usage);
      fields.push(...more);
    }
  }
  const show = (v: ServiceView): string => (fields.length > 0 ? formatFields(v, fields) : formatLegacy(v, numeric));

  try {
    if (scandir !== undefined) {
      const entries = await scanServices(scandir);
      const now = tainFromUnixMs(Date.now());
      io.out(json ? `${JSON.stringify(entries.map((e) => describeServicedir(e, now)))}\n` : entries.map((e) => `${e.name}: ${entryText(e, now, show)}${fields.length > 0 ? '' : healthText(readHealth(e.dir))}\n`).join(''));
      return EXIT.ok;
    }
    const dir = parsed.rest[0];
    if (dir === undefined) throw new UsageError(USAGE);
    const probe = await probeService(dir);
    if (!probe.supervised) {
      const inside = insideScanner(dir);
      if (inside !== undefined) throw new FatalError(`${dir}: ${INSIDE_TEXT[inside]}: no status of its own`, EXIT.failed);
      throw new FatalError(`unable to read status for ${dir}: s6-supervise not running`, EXIT.failed);
    }
    const view = { ...probe, now: tainFromUnixMs(Date.now()) };
    // t6's additions follow s6's line (only when there is a health file: s6's services read as under s6).
    io.out(`${json ? JSON.stringify(describeServicedir({ name: serviceNameOf(dir), dir, ...probe }, view.now)) : show(view) + (fields.length > 0 ? '' : healthText(readHealth(dir)))}\n`);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof ClientError) throw new FatalError(err.message, EXIT.system);
    throw err;
  }
}

/** What t6-svstat says of a directory t6-svscan serves itself (s6/servicefacts.ts insideScanner). */
const INSIDE_TEXT: Record<InsideScanner, string> = {
  logger: 'a logger inside t6-svscan (by its t6-log file), not a supervised process',
  shutdownd: 'the shutdown daemon inside t6-svscan (its fifo), not a supervised process',
};

function entryText(e: ScanEntry, now: ServiceView['now'], show: (v: ServiceView) => string): string {
  if (e.supervised === true) return show({ status: e.status, normallyUp: e.normallyUp, now });
  if (e.supervised !== false) return e.error.message;
  const inside = insideScanner(e.dir);
  return inside === undefined ? 'not supervised' : INSIDE_TEXT[inside];
}
