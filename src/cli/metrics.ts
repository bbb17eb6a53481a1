/**
 * t6-metrics (`t6 metrics`): the supervision tree's figures in the Prometheus text format.
 * Exit: 0, 100 usage, 111 when the scan directory cannot be read or t6-svscan does not
 * answer (per-service figures alone are printed then, with -p).
 */
import path from 'node:path';
import { type CommandIo, FatalError } from './_run.ts';
import { parseClientArgs } from './_client.ts';
import { ClientError, scanServices } from '../s6/client.ts';
import { describeServicedir } from '../s6/servicefacts.ts';
import { tainFromUnixMs } from '../s6/tai.ts';
import { DEFAULT_SCANDIR } from '../s6/initctl.ts';
import { askMetrics, exposition, metricFamilies, rcFamilies } from '../rc/metrics.ts';
import { TimingsError, loadRecord } from '../rc/timings-store.ts';
import { DEFAULT_LIVE } from '../rc/live.ts';
import { EXIT } from '../s6/exit.ts';
import { strerror } from '../sys/errors.ts';

const USAGE = 't6-metrics [ -s scandir ] [ -l live ] [ -p ]';
const HELP = `usage: ${USAGE}
Prints the tree's figures in the Prometheus text exposition format: every service's
state, readiness, since when, restarts and last exit; every in-process logger's lines,
bytes, rotations and blocked time; t6-svscan's memory, fds and event loop.
  -s scandir   the tree's scan directory (default ${DEFAULT_SCANDIR})
  -l live      t6-rc's live directory, for its last change's transitions (default ${DEFAULT_LIVE})
  -p           partial is fine: print the services' figures even if t6-svscan does not answer
Serve it with node_exporter's textfile collector, e.g. every 15 s from cron or a service:
  t6 metrics > /var/lib/node_exporter/t6.prom.$$ && mv /var/lib/node_exporter/t6.prom.$$ /var/lib/node_exporter/t6.prom
`;

export async function main(args: string[], io: CommandIo): Promise<number> {
  const parsed = parseClientArgs(args, { flags: 'p', withArg: 'sl' }, USAGE);
  if (parsed === undefined) { io.out(HELP); return EXIT.ok; }
  let scandir = DEFAULT_SCANDIR;
  let live = DEFAULT_LIVE;
  let partial = false;
  for (const { name, value } of parsed.options) {
    if (name === 's') scandir = value!;
    else if (name === 'l') live = value!;
    else if (name === 'p') partial = true;
  }
  let services;
  try {
    const entries = await scanServices(scandir);
    const now = tainFromUnixMs(Date.now());
    services = entries.map((e) => describeServicedir(e, now));
  } catch (err) {
    if (err instanceof ClientError) throw new FatalError(err.message, EXIT.system);
    throw err;
  }
  let scanner;
  try {
    scanner = await askMetrics(path.join(scandir, '.s6-svscan', 'run'));
  } catch (err) {
    if (!partial) throw new FatalError(`${strerror(err)} (-p prints the services' figures alone)`, EXIT.system);
    io.err(`${io.prog}: warning: ${strerror(err)}: t6-svscan's own figures left out\n`);
  }
  // t6-rc's last change, when there is a live directory with records (none is not an error).
  let rc: ReturnType<typeof rcFamilies> = [];
  try { rc = rcFamilies(loadRecord(live, 'last')); } catch (err) { if (!(err instanceof TimingsError)) throw err; }
  io.out(exposition([...metricFamilies(services, scanner), ...rc]));
  return EXIT.ok;
}
