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
import { type CheckScope, checkPipelines } from './pipelines.ts';
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
  const byName = indexByName(services, problem);
  /** Named pipelines, as bundles of their funnel (filled once pipelines are checked). */
  const pipelineBundles = new Map<string, SourceService>();
  const scope: CheckScope = {
    byName,
    problem,
    warn: (file, message) => { warnings.push({ file, message }); },
    resolve: (ref, role, owner, after = '') => resolveName(byName, pipelineBundles, problem, ref, role, owner, after),
  };

  const pipelines = checkPipelines(scope);
  /** Bundle and pipeline names → the atomic services they stand for. */
  const expanded = new Map<string, Set<string>>();
  for (const [name, bundle] of pipelines.bundles) {
    pipelineBundles.set(name, bundle);
    expanded.set(name, pipelines.funnels.get(name)!);
  }
  expandBundles(scope, bundleMembers(scope), expanded);
  const deps = collectDependencies(scope, expanded, pipelines.producerFor);
  for (const cycle of findCycles([...deps.keys()], (n) => [...(deps.get(n)?.keys() ?? [])])) {
    const file = deps.get(cycle[0]!)!.get(cycle[1]!)!;
    problem(file, `dependency cycle: ${cycle.join(' → ')}`);
  }

  if (problems.length > 0) return { ok: false, problems, warnings };
  return { ok: true, db: buildDb(byName, expanded, deps, pipelines.producerFor, pipelines.names), warnings, sources: byName };
}

/** Services by name: one definition each (a second one is a problem, and left out). */
function indexByName(services: readonly SourceService[], problem: CheckScope['problem']): Map<string, SourceService> {
  const byName = new Map<string, SourceService>();
  for (const s of services) {
    const first = byName.get(s.name);
    if (first !== undefined) {
      problem(s.dir, `duplicate service definition: ${s.name} is already defined in ${first.source}${first.type === undefined ? '' : ` as a ${first.type}`}`);
      continue;
    }
    byName.set(s.name, s);
  }
  return byName;
}

/**
 * Resolves a reference (`role`, `owner` and `after` say what names it, for the message);
 * reports an unknown or invalid name. undefined if unusable.
 */
function resolveName(
  byName: ReadonlyMap<string, SourceService>, pipelineBundles: ReadonlyMap<string, SourceService>,
  problem: CheckScope['problem'], ref: NameRef, role: string, owner: string, after: string,
): SourceService | undefined {
  const target = byName.get(ref.name) ?? pipelineBundles.get(ref.name);
  if (target === undefined) {
    const bad = badName(ref.name); // defined names were checked when read
    if (bad !== undefined) problem(ref.file, `invalid service name: ${bad}`);
    else problem(ref.file, `unknown service ${JSON.stringify(ref.name)} (${role}${owner}${after})`);
    return undefined;
  }
  return target.type === undefined ? undefined : target; // its own problem was reported
}

/** Each bundle's members, resolved (unusable ones reported and left out). */
function bundleMembers(scope: CheckScope): Map<string, SourceService[]> {
  const members = new Map<string, SourceService[]>();
  for (const s of scope.byName.values()) {
    if (s.type !== 'bundle') continue;
    const list: SourceService[] = [];
    for (const ref of s.contents) {
      if (ref.name === s.name) { scope.problem(ref.file, `bundle ${s.name} contains itself`); continue; }
      const m = scope.resolve(ref, 'member of bundle ', s.name);
      if (m !== undefined) list.push(m);
    }
    members.set(s.name, list);
  }
  return members;
}

/** Expands every bundle to its atomic services, into `expanded`; reports each bundle cycle once. */
function expandBundles(scope: CheckScope, members: ReadonlyMap<string, SourceService[]>, expanded: Map<string, Set<string>>): void {
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
          const head = scope.byName.get(cycle[0]!)!;
          scope.problem(listFile(head, 'contents'), `bundle cycle: ${cycle.join(' → ')}`);
        }
        continue;
      }
      for (const a of expand(m, stack)) out.add(a);
    }
    stack.pop();
    expanded.set(b.name, out);
    return out;
  };
  for (const s of scope.byName.values()) if (s.type === 'bundle') expand(s, []);
}

/**
 * Each atomic service's dependencies → the file that causes each: declared ones (bundles
 * expanded) and the implicit one of a producer on its consumer.
 */
function collectDependencies(scope: CheckScope, expanded: ReadonlyMap<string, Set<string>>, producerFor: ReadonlyMap<string, string>): Map<string, Map<string, string>> {
  const deps = new Map<string, Map<string, string>>();
  for (const s of scope.byName.values()) {
    if (s.type === undefined || s.type === 'bundle') continue;
    const d = new Map<string, string>();
    for (const ref of s.dependencies) {
      const t = scope.resolve(ref, 'dependency of ', s.name);
      if (t === undefined) continue;
      if (t.type !== 'bundle') { if (!d.has(t.name)) d.set(t.name, ref.file); continue; }
      for (const a of expanded.get(t.name) ?? []) if (!d.has(a)) d.set(a, ref.file);
    }
    const consumer = producerFor.get(s.name);
    if (consumer !== undefined && !d.has(consumer)) d.set(consumer, s.producerFor!.file);
    deps.set(s.name, d);
  }
  return deps;
}

/** Where a list was read from, for messages about the list as a whole. */
function listFile(s: SourceService, list: 'contents' | 'dependencies'): string {
  const refs = list === 'contents' ? s.contents : s.dependencies;
  if (refs.length > 0 && refs[0]!.file.includes(`${list}.d`)) return path.join(s.dir, `${list}.d`);
  return path.join(s.dir, list);
}

/** The database of services that passed every check: longruns, oneshots, bundles, then named pipelines. */
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
  const atomics = [...longruns, ...oneshots];
  const index = new Map<string, number>();
  for (let i = 0; i < atomics.length; i++) index.set(atomics[i]!.name, i);
  /** Indexes of names (already unique), sorted. */
  const idx = (names: Iterable<string>): number[] => {
    const out: number[] = [];
    for (const n of names) {
      // Insertion sort: these lists are short, and Array.prototype.sort allocates for each.
      const v = index.get(n)!;
      let i = out.length;
      for (; i > 0 && out[i - 1]! > v; i--) out[i] = out[i - 1]!;
      out[i] = v;
    }
    return out;
  };

  // Essential: flag-essential on the service, or on a bundle containing it.
  const essential = new Set<string>();
  for (const s of all) {
    if (!s.essential) continue;
    essential.add(s.name);
    if (s.type === 'bundle') for (const a of expanded.get(s.name) ?? []) essential.add(a);
  }
  const producersOf = new Map<string, string[]>(); // consumer → its producers
  for (const [p, c] of producerFor) producersOf.set(c, [...(producersOf.get(c) ?? []), p]);
  const headOf = new Map<SourceService, string>(); // the last consumer of a named pipeline → its name
  for (const [name, last] of pipelineNames) if (!headOf.has(last)) headOf.set(last, name);

  // Object literals in full rather than spreads of a common part: a thousand services go
  // through here before anything is optimised. The key order is db.json's.
  const services: Service[] = [];
  for (let i = 0; i < atomics.length; i++) {
    const s = atomics[i]!;
    const d = deps.get(s.name);
    const ds = d === undefined ? [] : idx(d.keys());
    const ess = essential.has(s.name);
    if (s.type === 'oneshot') {
      services.push({
        name: s.name, index: i, source: s.source, essential: ess, deps: ds,
        timeoutUp: s.timeoutUp, timeoutDown: s.timeoutDown, type: 'oneshot', up: s.up, down: s.down,
      } satisfies OneshotService);
    } else {
      const c = producerFor.get(s.name);
      const producers = producersOf.get(s.name);
      services.push({
        name: s.name, index: i, source: s.source, essential: ess, deps: ds,
        timeoutUp: s.timeoutUp, timeoutDown: s.timeoutDown, type: 'longrun', readiness: s.notificationFd !== undefined || s.t6Readiness,
        producerFor: c === undefined ? undefined : index.get(c)!,
        consumerFor: producers === undefined ? [] : idx(producers),
        pipelineName: headOf.get(s), upSettle: s.upSettle,
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
