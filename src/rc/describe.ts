/**
 * The service objects (docs/service.schema.json) that `t6-rc list|listall|diff --json`
 * print: a longrun as its live servicedir shows it (the supervisor's status, `down` file,
 * death tally, logger), a oneshot as t6-rc's state file has it; each with t6-rc's own bit
 * in `rc`, so that a longrun whose supervisor disagrees with t6-rc shows both.
 */
import { type Live, liveServicedir } from './live.ts';
import { ClientError, probeService, type ScanEntry } from '../s6/client.ts';
import { describeServicedir } from '../s6/servicefacts.ts';
import { type ServiceJson, oneshotService, withRcBit } from '../s6/servicejson.ts';
import type { Tain } from '../s6/tai.ts';

/** The service objects of the atomic services `indexes` of a live state, read at `now`, in the order given. */
export async function describeServices(live: Live, indexes: readonly number[], now: Tain): Promise<ServiceJson[]> {
  const out: ServiceJson[] = [];
  for (const i of indexes) {
    const service = live.db.services[i]!;
    const up = live.state[i]!;
    if (service.type === 'bundle') continue; // not atomic: it has no state of its own
    if (service.type === 'oneshot') {
      out.push(oneshotService(service.name, up));
      continue;
    }
    const dir = liveServicedir(live.dir, service.name);
    let entry: ScanEntry;
    try {
      entry = { name: service.name, dir, ...(await probeService(dir)) };
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      entry = { name: service.name, dir, supervised: 'error', error: err };
    }
    const described = describeServicedir(entry, now);
    // A producer's logger is its pipeline's consumer, under any scanner (no producer-for
    // file in the servicedir under s6-svscan: its run script takes the pipe from s6rc-fdholder).
    if (service.producerFor !== undefined) described.logger = 'external';
    out.push(withRcBit(described, up));
  }
  return out;
}
