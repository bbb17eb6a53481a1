/**
 * The compiler's pipeline checks (s6-spec/s6-rc.md, pipelines): which longruns feed which.
 *
 * A producer names its consumer in `producer-for`; the consumer names its producers in
 * `consumer-for`. A pair counts only when both sides agree. Pipelines may merge (one
 * consumer, several producers) but never fork (one producer listed by two consumers), and
 * following `producer-for` must end: a loop is a problem. The last consumer of a pipeline
 * may give it a name (`pipeline-name`); that name becomes a bundle of the whole funnel, the
 * last consumer and everything upstream of it.
 *
 * Problems are reported in a fixed order, step by step, as compile.ts's `check` has always
 * reported them: consumer claims, forks, producer declarations, claims not declared back,
 * loops, names.
 */
import path from 'node:path';
import { type NameRef, type SourceService, badName } from './source.ts';

/** What the compiler's checks share: the services by name, where problems go, name resolution. */
export interface CheckScope {
  /** Every service read, by name (the first definition of a duplicated name). */
  readonly byName: ReadonlyMap<string, SourceService>;
  /** Reports a problem: the file to fix and what is wrong. */
  problem(file: string, message: string): void;
  /** Reports a warning (compilation goes on). */
  warn(file: string, message: string): void;
  /** The service `ref` names, or undefined (reported when unknown) when it cannot be used. */
  resolve(ref: NameRef, role: string, owner: string, after?: string): SourceService | undefined;
}

/** The pipelines found: who feeds whom, and each named pipeline. */
export interface Pipelines {
  /** producer → consumer, for every pair where both sides agree. */
  producerFor: Map<string, string>;
  /** pipeline name → its last consumer. */
  names: Map<string, SourceService>;
  /** pipeline name → the bundle it stands for (what a reference to the name resolves to). */
  bundles: Map<string, SourceService>;
  /** pipeline name → the atomic services of its funnel: the last consumer and everything upstream. */
  funnels: Map<string, Set<string>>;
}

/** Checks producer-for, consumer-for and pipeline-name of every longrun. */
export function checkPipelines(scope: CheckScope): Pipelines {
  const claims = collectConsumerClaims(scope);
  reportForks(scope, claims);
  const producerFor = matchProducers(scope, claims);
  checkClaimsDeclaredBack(scope, claims);
  reportPipelineLoops(scope, producerFor);
  const names = checkPipelineNames(scope);
  const producersOf = new Map<string, string[]>(); // consumer → the producers feeding it
  for (const [p, c] of producerFor) producersOf.set(c, [...(producersOf.get(c) ?? []), p]);
  const bundles = new Map<string, SourceService>();
  const funnels = new Map<string, Set<string>>();
  for (const [name, last] of names) {
    bundles.set(name, { ...last, name, type: 'bundle', essential: false, contents: [], dependencies: [] });
    funnels.set(name, funnelOf(last.name, producersOf));
  }
  return { producerFor, names, bundles, funnels };
}

/** producer name → the consumers listing it in their consumer-for (reporting unusable entries). */
function collectConsumerClaims(scope: CheckScope): Map<string, SourceService[]> {
  const claims = new Map<string, SourceService[]>();
  for (const s of scope.byName.values()) {
    if (s.type !== 'longrun') continue;
    for (const ref of s.consumerFor) {
      if (ref.name === s.name) { scope.problem(ref.file, `${s.name} cannot consume its own output`); continue; }
      const p = scope.resolve(ref, 'producer feeding ', s.name);
      if (p === undefined) continue;
      if (p.type !== 'longrun') { scope.problem(ref.file, `${p.name} is a ${p.type}; only a longrun can be a producer`); continue; }
      const list = claims.get(p.name) ?? [];
      list.push(s);
      claims.set(p.name, list);
    }
  }
  return claims;
}

/** A producer claimed by two consumers or more is a fork. */
function reportForks(scope: CheckScope, claims: ReadonlyMap<string, SourceService[]>): void {
  for (const [pname, consumers] of claims) {
    if (consumers.length > 1) {
      scope.problem(scope.byName.get(pname)!.dir, `pipeline fork: ${pname} is listed as a producer by ${consumers.map((c) => c.name).join(' and ')}; a producer feeds exactly one consumer (pipelines may merge, never fork)`);
    }
  }
}

/** Every producer-for whose consumer declares it back: producer → consumer. */
function matchProducers(scope: CheckScope, claims: ReadonlyMap<string, SourceService[]>): Map<string, string> {
  const producerFor = new Map<string, string>();
  for (const s of scope.byName.values()) {
    if (s.type !== 'longrun' || s.producerFor === undefined) continue;
    const ref = s.producerFor;
    if (ref.name === s.name) { scope.problem(ref.file, `${s.name} cannot feed its own input`); continue; }
    const c = scope.resolve(ref, 'consumer of ', s.name, "'s output");
    if (c === undefined) continue;
    if (c.type !== 'longrun') { scope.problem(ref.file, `${c.name} is a ${c.type}; only a longrun can be a consumer`); continue; }
    const claimed = claims.get(s.name) ?? [];
    if (claimed.length > 1) continue; // the fork was reported
    if (!c.consumerFor.some((r) => r.name === s.name)) {
      scope.problem(ref.file, `${s.name} is a producer for ${c.name}, but ${c.name} does not declare it back (add ${s.name} to ${path.join(c.dir, 'consumer-for')})`);
      continue;
    }
    producerFor.set(s.name, c.name);
  }
  return producerFor;
}

/** A consumer-for entry whose producer names no consumer, or another one. */
function checkClaimsDeclaredBack(scope: CheckScope, claims: ReadonlyMap<string, SourceService[]>): void {
  for (const [pname, consumers] of claims) {
    if (consumers.length !== 1) continue;
    const c = consumers[0]!;
    const p = scope.byName.get(pname)!;
    const ref = c.consumerFor.find((r) => r.name === pname)!;
    if (p.producerFor === undefined) scope.problem(ref.file, `${c.name} is a consumer for ${pname}, but ${pname} does not declare it back (write ${c.name} to ${path.join(p.dir, 'producer-for')})`);
    else if (p.producerFor.name !== c.name) scope.problem(ref.file, `${c.name} is a consumer for ${pname}, but ${pname} is a producer for ${p.producerFor.name}: a producer feeds exactly one consumer`);
  }
}

/** Following producer-for must end; each loop is reported once. */
function reportPipelineLoops(scope: CheckScope, producerFor: ReadonlyMap<string, string>): void {
  const pipelineLoops = new Set<string>();
  for (const start of producerFor.keys()) {
    const chain = [start];
    for (let cur = producerFor.get(start); cur !== undefined; cur = producerFor.get(cur)) {
      const at = chain.indexOf(cur);
      if (at >= 0) {
        const loop = [...chain.slice(at), cur];
        const key = loop.slice(0, -1).sort().join('\n');
        if (!pipelineLoops.has(key)) {
          pipelineLoops.add(key);
          scope.problem(path.join(scope.byName.get(loop[0]!)!.dir, 'producer-for'), `pipeline cycle: ${loop.join(' → ')}`);
        }
        break;
      }
      chain.push(cur);
    }
  }
}

/** Pipeline names: on a last consumer only (else ignored, with a warning); a new name. */
function checkPipelineNames(scope: CheckScope): Map<string, SourceService> {
  const pipelineNames = new Map<string, SourceService>();
  for (const s of scope.byName.values()) {
    if (s.type !== 'longrun' || s.pipelineName === undefined) continue;
    const ref = s.pipelineName;
    if (s.consumerFor.length === 0 || s.producerFor !== undefined) {
      scope.warn(ref.file, `ignored: ${s.name} is not the last consumer of a pipeline (it has no consumer-for, or has a producer-for)`);
      continue;
    }
    const bad = badName(ref.name);
    if (bad !== undefined) { scope.problem(ref.file, `invalid pipeline name: ${bad}`); continue; }
    const clash = scope.byName.get(ref.name);
    if (clash !== undefined) { scope.problem(ref.file, `pipeline name ${ref.name} is already the name of a ${clash.type ?? 'service'} defined in ${clash.source}`); continue; }
    const other = pipelineNames.get(ref.name);
    if (other !== undefined) { scope.problem(ref.file, `pipeline name ${ref.name} is already used by the pipeline ending in ${other.name}`); continue; }
    pipelineNames.set(ref.name, s);
  }
  return pipelineNames;
}

/** `last` and every service feeding it, directly or through other producers. */
function funnelOf(last: string, producersOf: ReadonlyMap<string, string[]>): Set<string> {
  const funnel = new Set<string>();
  const walk = (n: string): void => {
    if (funnel.has(n)) return;
    funnel.add(n);
    for (const p of producersOf.get(n) ?? []) walk(p);
  };
  walk(last);
  return funnel;
}
