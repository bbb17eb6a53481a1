/**
 * `t6 analyze critical-chain [TARGET]`: the chain of transitions that decided when TARGET
 * was done, as systemd-analyze critical-chain: from TARGET's last service to be done, each
 * link is the gate (dependency, for a start) that was done last before it; the chain ends
 * at a transition that waited for nothing in the record.
 */
import type { ServiceTiming, TimingRecord } from '../timings.ts';
import { doneAt, formatMs, gatesOf, originOf, tookMs } from './model.ts';

/** A target the record does not know. */
export class UnknownTargetError extends Error {
  override name = 'UnknownTargetError';
}

/** One link of the chain. */
export interface ChainLink {
  name: string;
  type: 'oneshot' | 'longrun';
  direction: 'up' | 'down';
  /** When it was done, ms from the record's origin. */
  at: number;
  /** requested → done, ms. */
  took: number;
  failure?: string;
}

/** The chain of a target, from the target down to the first link. */
export interface CriticalChain {
  /** What was asked for (a name of the request, or a service). */
  target: string;
  /** The services the target stands for, as recorded. */
  services: string[];
  /** What time zero is. */
  origin: string;
  links: ChainLink[];
}

/** The transitions `target` stands for: a name of the request (a bundle) or a recorded service; undefined = all the request's. */
function resolve(r: TimingRecord, target: string | undefined): { name: string; members: ServiceTiming[] } {
  if (target === undefined) {
    const names = new Set(Object.values(r.targets).flat());
    return { name: r.request.names.join(' '), members: r.services.filter((t) => names.has(t.name)) };
  }
  const members = target in r.targets ? r.services.filter((t) => r.targets[target]!.includes(t.name)) : r.services.filter((t) => t.name === target);
  if (members.length === 0) throw new UnknownTargetError(`${target}: not a service or name of change ${r.kind === 'boot' ? 'boot' : r.seq} that went up or down`);
  return { name: target, members };
}

const latest = (ts: readonly ServiceTiming[]): ServiceTiming | undefined =>
  ts.reduce<ServiceTiming | undefined>((best, t) => (best === undefined || doneAt(t).mono > doneAt(best).mono ? t : best), undefined);

/** The critical chain of `target` (default: what the change was asked for). Throws UnknownTargetError. */
export function criticalChain(r: TimingRecord, target?: string): CriticalChain {
  const { name, members } = resolve(r, target);
  const origin = originOf(r);
  const links: ChainLink[] = [];
  const seen = new Set<ServiceTiming>();
  for (let t = latest(members); t !== undefined && !seen.has(t); t = latest(gatesOf(r, t))) {
    seen.add(t);
    links.push({
      name: t.name, type: t.type, direction: t.direction,
      at: Math.round((doneAt(t).mono - origin.mono) * 1000) / 1000, took: Math.round(tookMs(t) * 1000) / 1000,
      ...(t.failure === undefined ? {} : { failure: t.failure }),
    });
  }
  return { target: name, services: members.map((t) => t.name), origin: origin.what, links };
}

/** The chain as a tree, systemd's way: `@` when each was done, `+` how long it took. */
export function chainText(c: CriticalChain): string {
  let out = `The time when a service was done (ready, or up; down for a stop) is after "@", from ${c.origin};\nhow long it took (from being requested) is after "+".\n\n`;
  const single = c.services.length === 1 && c.services[0] === c.target;
  if (!single) out += `${c.target}${c.links[0] === undefined ? ' (nothing to do)' : ` @${formatMs(c.links[0].at)}`}\n`;
  c.links.forEach((l, depth) => {
    const indent = single && depth === 0 ? '' : `${'  '.repeat(single ? depth - 1 : depth)}└─`;
    out += `${indent}${l.name}${l.direction === 'down' ? ' (stop)' : ''} @${formatMs(l.at)} +${formatMs(l.took)}${l.failure === undefined ? '' : ` (failed: ${l.failure})`}\n`;
  });
  return out;
}
