/**
 * The compiler: s6-rc source directories in, a compiled database directory out.
 *
 * Three steps, each total over its input:
 * 1. read (source.ts): every definition directory, every file, lexed and checked alone;
 * 2. check (`check`): everything that looks across services — duplicates, unknown names,
 *    bundles (expanded, cycles found), pipelines (both sides agree, no fork, no loop, the
 *    pipeline bundle), dependency cycles (reported as their path `a → b → c → a`) — and,
 *    when no problem at all was found, the CompiledDb of db.ts;
 * 3. write (`writeCompiled`, write-compiled.ts): a temporary sibling of the target, fsynced,
 *    renamed into place.
 * Every problem of steps 1 and 2 is collected; nothing is written unless there is none.
 *
 * Differences from s6-rc-compile, on purpose:
 * - no internal services (s6rc-oneshot-runner, s6rc-fdholder) and so no implicit
 *   dependency on them: in t6 the oneshot runner and the pipe holder are parts of the
 *   supervisor process (DESIGN.md, decision 1). The implicit dependency that matters to
 *   order remains: a producer depends on its consumer (the consumer starts first, stops last);
 * - pipelined run/finish are not wrapped; db.json carries the wiring (producerFor,
 *   consumerFor) and the engine connects the pipes;
 * - more is checked: run/finish executable with a `#!` line or an ELF header, numeric
 *   servicedir settings and signals, env/ variable names, forks in pipelines; a missing
 *   bundle `contents` is a source problem (exit 1), not a system error (s6: 111).
 */
import path from 'node:path';
import { type BundleService, type CompiledDb, DB_VERSION, type LongrunService, type OneshotService, type Service } from './db.ts';
import { findCycles } from './cycles.ts';
import { type NameRef, type Problem, type SourceService, badName, readSources } from './source.ts';

export type { Problem } from './source.ts';

/** The outcome of checking: a database, or every problem found. Warnings either way. */
export type CheckResult =
  | { ok: true; db: CompiledDb; warnings: Problem[]; sources: Map<string, SourceService> }
  | { ok: false; problems: Problem[]; warnings: Problem[] };

/** Reads and checks source directories. */
export function compileSources(sourceDirs: readonly string[]): CheckResult {
  const set = readSources(sourceDirs);
  return check(set.services, set.problems, set.warnings);
}

/** Checks services read from the sources (adding to `problems`) and builds the database if none. */
export function check(services: readonly SourceService[], problemsIn: readonly Problem[] = [], warningsIn: readonly Problem[] = []): CheckResult {
  const problems = [...problemsIn];
  const warnings = [...warningsIn];
  const problem = (file: string, message: string): void => { problems.push({ file, message }); };

  // Names: one definition each.
  const byName = new Map<string, SourceService>();
  for (const s of services) {
    const first = byName.get(s.name);
    if (first !== undefined) {
      problem(s.dir, `duplicate service definition: ${s.name} is already defined in ${first.source}${first.type === undefined ? '' : ` as a ${first.type}`}`);
      continue;
    }
    byName.set(s.name, s);
  }

  /** Named pipelines, as bundles of their funnel (filled once pipelines are checked). */
  const pipelineBundles = new Map<string, SourceService>();
  const expanded = new Map<string, Set<string>>();

  /** Resolves a reference; reports an unknown or invalid name. undefined if unusable. */
  const resolve = (ref: NameRef, role: string, owner: string, after = ''): SourceService | undefined => {
    const target = byName.get(ref.name) ?? pipelineBundles.get(ref.name);
    if (target === undefined) {
      const bad = badName(ref.name); // defined names were checked when read
      if (bad !== undefined) problem(ref.file, `invalid service name: ${bad}`);
      else problem(ref.file, `unknown service ${JSON.stringify(ref.name)} (${role}${owner}${after})`);
      return undefined;
    }
    return target.type === undefined ? undefined : target; // its own problem was reported
  };

  // Pipelines: producer-for and consumer-for must agree; a producer feeds one consumer.
  const validProducerFor = new Map<string, string>(); // producer → consumer, both sides agreeing
  const claims = new Map<string, SourceService[]>(); // producer name → consumers listing it
  for (const s of byName.values()) {
    if (s.type !== 'longrun') continue;
    for (const ref of s.consumerFor) {
      if (ref.name === s.name) { problem(ref.file, `${s.name} cannot consume its own output`); continue; }
      const p = resolve(ref, 'producer feeding ', s.name);
      if (p === undefined) continue;
      if (p.type !== 'longrun') { problem(ref.file, `${p.name} is a ${p.type}; only a longrun can be a producer`); continue; }
      const list = claims.get(p.name) ?? [];
      list.push(s);
      claims.set(p.name, list);
    }
  }
  for (const [pname, consumers] of claims) {
    if (consumers.length > 1) {
      problem(byName.get(pname)!.dir, `pipeline fork: ${pname} is listed as a producer by ${consumers.map((c) => c.name).join(' and ')}; a producer feeds exactly one consumer (pipelines may merge, never fork)`);
    }
  }
  for (const s of byName.values()) {
    if (s.type !== 'longrun' || s.producerFor === undefined) continue;
    const ref = s.producerFor;
    if (ref.name === s.name) { problem(ref.file, `${s.name} cannot feed its own input`); continue; }
    const c = resolve(ref, 'consumer of ', s.name, "'s output");
    if (c === undefined) continue;
    if (c.type !== 'longrun') { problem(ref.file, `${c.name} is a ${c.type}; only a longrun can be a consumer`); continue; }
    const claimed = claims.get(s.name) ?? [];
    if (claimed.length > 1) continue; // the fork was reported
    if (!c.consumerFor.some((r) => r.name === s.name)) {
      problem(ref.file, `${s.name} is a producer for ${c.name}, but ${c.name} does not declare it back (add ${s.name} to ${path.join(c.dir, 'consumer-for')})`);
      continue;
    }
    validProducerFor.set(s.name, c.name);
  }
  for (const [pname, consumers] of claims) {
    if (consumers.length !== 1) continue;
    const c = consumers[0]!;
    const p = byName.get(pname)!;
    const ref = c.consumerFor.find((r) => r.name === pname)!;
    if (p.producerFor === undefined) problem(ref.file, `${c.name} is a consumer for ${pname}, but ${pname} does not declare it back (write ${c.name} to ${path.join(p.dir, 'producer-for')})`);
    else if (p.producerFor.name !== c.name) problem(ref.file, `${c.name} is a consumer for ${pname}, but ${pname} is a producer for ${p.producerFor.name}: a producer feeds exactly one consumer`);
  }
  // Pipeline loops: following producer-for must end.
  const pipelineLoops = new Set<string>();
  for (const start of validProducerFor.keys()) {
    const chain = [start];
    for (let cur = validProducerFor.get(start); cur !== undefined; cur = validProducerFor.get(cur)) {
      const at = chain.indexOf(cur);
      if (at >= 0) {
        const loop = [...chain.slice(at), cur];
        const key = loop.slice(0, -1).sort().join('\n');
        if (!pipelineLoops.has(key)) {
          pipelineLoops.add(key);
          problem(path.join(byName.get(loop[0]!)!.dir, 'producer-for'), `pipeline cycle: ${loop.join(' → ')}`);
        }
        break;
      }
      chain.push(cur);
    }
  }
  // Pipeline names: on a last consumer only; a new name.
  const pipelineNames = new Map<string, SourceService>();
  for (const s of byName.values()) {
    if (s.type !== 'longrun' || s.pipelineName === undefined) continue;
    const ref = s.pipelineName;
    if (s.consumerFor.length === 0 || s.producerFor !== undefined) {
      warnings.push({ file: ref.file, message: `ignored: ${s.name} is not the last consumer of a pipeline (it has no consumer-for, or has a producer-for)` });
      continue;
    }
    const bad = badName(ref.name);
    if (bad !== undefined) { problem(ref.file, `invalid pipeline name: ${bad}`); continue; }
    const clash = byName.get(ref.name);
    if (clash !== undefined) { problem(ref.file, `pipeline name ${ref.name} is already the name of a ${clash.type ?? 'service'} defined in ${clash.source}`); continue; }
    const other = pipelineNames.get(ref.name);
    if (other !== undefined) { problem(ref.file, `pipeline name ${ref.name} is already used by the pipeline ending in ${other.name}`); continue; }
    pipelineNames.set(ref.name, s);
  }
  const producersOf = new Map<string, string[]>(); // consumer → the producers feeding it
  for (const [p, c] of validProducerFor) producersOf.set(c, [...(producersOf.get(c) ?? []), p]);
  for (const [name, last] of pipelineNames) {
    const funnel = new Set<string>();
    const walk = (n: string): void => {
      if (funnel.has(n)) return;
      funnel.add(n);
      for (const p of producersOf.get(n) ?? []) walk(p);
    };
    walk(last.name);
    pipelineBundles.set(name, { ...last, name, type: 'bundle', essential: false, contents: [], dependencies: [] });
    expanded.set(name, funnel);
  }

  // Bundles: resolve members, expand to atomics, find cycles.
  const members = new Map<string, SourceService[]>();
  for (const s of byName.values()) {
    if (s.type !== 'bundle') continue;
    const list: SourceService[] = [];
    for (const ref of s.contents) {
      if (ref.name === s.name) { problem(ref.file, `bundle ${s.name} contains itself`); continue; }
      const m = resolve(ref, 'member of bundle ', s.name);
      if (m !== undefined) list.push(m);
    }
    members.set(s.name, list);
  }
  const bundleCycles = new Set<string>();
  const expand = (b: SourceService, stack: string[]): Set<string> => {
    const done = expanded.get(b.name);
    if (done !== undefined) return done;
    const out = new Set<string>();
    stack.push(b.name);
    for (const m of members.get(b.name) ?? []) {
      if (m.type !== 'bundle') { out.add(m.name); continue; }
      const at = stack.indexOf(m.name);
      if (at >= 0) {
        const cycle = [...stack.slice(at), m.name];
        const key = [...cycle.slice(0, -1)].sort().join('\n');
        if (!bundleCycles.has(key)) {
          bundleCycles.add(key);
          const head = byName.get(cycle[0]!)!;
          problem(listFile(head, 'contents'), `bundle cycle: ${cycle.join(' → ')}`);
        }
        continue;
      }
      for (const a of expand(m, stack)) out.add(a);
    }
    stack.pop();
    expanded.set(b.name, out);
    return out;
  };
  for (const s of byName.values()) if (s.type === 'bundle') expand(s, []);


  // Dependencies: declared (bundles expanded) and implicit (a producer depends on its consumer).
  const deps = new Map<string, Map<string, string>>(); // service → dependency → file that causes it
  for (const s of byName.values()) {
    if (s.type === undefined || s.type === 'bundle') continue;
    const d = new Map<string, string>();
    for (const ref of s.dependencies) {
      const t = resolve(ref, 'dependency of ', s.name);
      if (t === undefined) continue;
      if (t.type !== 'bundle') { if (!d.has(t.name)) d.set(t.name, ref.file); continue; }
      for (const a of expanded.get(t.name) ?? []) if (!d.has(a)) d.set(a, ref.file);
    }
    const consumer = validProducerFor.get(s.name);
    if (consumer !== undefined && !d.has(consumer)) d.set(consumer, s.producerFor!.file);
    deps.set(s.name, d);
  }
  for (const cycle of findCycles([...deps.keys()], (n) => [...(deps.get(n)?.keys() ?? [])])) {
    const file = deps.get(cycle[0]!)!.get(cycle[1]!)!;
    problem(file, `dependency cycle: ${cycle.join(' → ')}`);
  }

  if (problems.length > 0) return { ok: false, problems, warnings };
  return { ok: true, db: buildDb(byName, expanded, deps, validProducerFor, pipelineNames), warnings, sources: byName };
}

/** Where a list was read from, for messages about the list as a whole. */
function listFile(s: SourceService, list: 'contents' | 'dependencies'): string {
  const refs = list === 'contents' ? s.contents : s.dependencies;
  if (refs.length > 0 && refs[0]!.file.includes(`${list}.d`)) return path.join(s.dir, `${list}.d`);
  return path.join(s.dir, list);
}

function buildDb(
  byName: Map<string, SourceService>,
  expanded: Map<string, Set<string>>,
  deps: Map<string, Map<string, string>>,
  producerFor: Map<string, string>,
  pipelineNames: Map<string, SourceService>,
): CompiledDb {
  const all = [...byName.values()];
  const longruns = all.filter((s) => s.type === 'longrun');
  const oneshots = all.filter((s) => s.type === 'oneshot');
  const bundles = all.filter((s) => s.type === 'bundle');
  const index = new Map<string, number>();
  [...longruns, ...oneshots].forEach((s, i) => index.set(s.name, i));
  /** Indexes of names (already unique), sorted. */
  const idx = (names: Iterable<string>): number[] => {
    const out: number[] = [];
    for (const n of names) out.push(index.get(n)!);
    return out.sort((a, b) => a - b);
  };

  // Essential: flag-essential on the service, or on a bundle containing it.
  const essential = new Set<string>();
  for (const s of all) {
    if (!s.essential) continue;
    essential.add(s.name);
    if (s.type === 'bundle') for (const a of expanded.get(s.name) ?? []) essential.add(a);
  }
  const consumersOf = new Map<string, string[]>(); // consumer → its producers
  for (const [p, c] of producerFor) consumersOf.set(c, [...(consumersOf.get(c) ?? []), p]);

  const services: Service[] = [];
  for (const s of [...longruns, ...oneshots]) {
    const base = {
      name: s.name, index: index.get(s.name)!, source: s.source, essential: essential.has(s.name),
      deps: idx(deps.get(s.name)?.keys() ?? []), timeoutUp: s.timeoutUp, timeoutDown: s.timeoutDown,
    };
    if (s.type === 'oneshot') {
      services.push({ ...base, type: 'oneshot', up: s.up, down: s.down } satisfies OneshotService);
    } else {
      const c = producerFor.get(s.name);
      services.push({
        ...base, type: 'longrun', readiness: s.notificationFd !== undefined,
        producerFor: c === undefined ? undefined : index.get(c)!,
        consumerFor: idx(consumersOf.get(s.name) ?? []),
        pipelineName: [...pipelineNames].find(([, last]) => last === s)?.[0],
      } satisfies LongrunService);
    }
  }
  let next = services.length;
  for (const b of bundles) {
    services.push({
      name: b.name, index: next++, source: b.source, essential: b.essential, type: 'bundle',
      contents: idx(expanded.get(b.name) ?? []),
    } satisfies BundleService);
  }
  // The bundle of each named pipeline: its last consumer and everything upstream.
  for (const [name, last] of pipelineNames) {
    services.push({
      name, index: next++, source: last.source, essential: false, type: 'bundle', contents: idx(expanded.get(name) ?? []),
    } satisfies BundleService);
  }
  return { version: DB_VERSION, longruns: longruns.length, oneshots: oneshots.length, services };
}
