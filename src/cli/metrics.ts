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
import { askMetrics, exposition, metricFamilies } from '../rc/metrics.ts';
import { EXIT } from '../s6/exit.ts';
import { strerror } from '../sys/errors.ts';

const USAGE = 't6-metrics [ -s scandir ] [ -p ]';
const HELP = `usage: ${USAGE}
Prints the tree's figures in the Prometheus text exposition format: every service's
state, readiness, since when, restarts and last exit; every in-process logger's lines,
bytes, rotations and blocked time; t6-svscan's memory, fds and event loop.
  -s scandir   the tree's scan directory (default ${DEFAULT_SCANDIR})
  -p           partial is fine: print the services' figures even if t6-svscan does not answer
Serve it with node_exporter's textfile collector, e.g. every 15 s from cron or a service:
  t6 metrics > /var/lib/node_exporter/t6.prom.$$ && mv /var/lib/node_exporter/t6.prom.$$ /var/lib/node_exporter/t6.prom
`;

export async function main(args: string[], io: CommandIo): Promise<number> {
  const parsed = parseClientArgs(args, { flags: 'p', withArg: 's' }, USAGE);
  if (parsed === undefined) { io.out(HELP); return EXIT.ok; }
  let scandir = DEFAULT_SCANDIR;
  let partial = false;
  for (const { name, value } of parsed.options) {
    if (name === 's') scandir = value!;
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
  io.out(exposition(metricFamilies(services, scanner)));
  return EXIT.ok;
}
