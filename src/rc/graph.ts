/**
 * The service graph of a compiled database as Graphviz DOT text (pure: no I/O, no
 * processes; `t6-rc graph` prints it, and `… | dot -Tsvg` draws it).
 *
 * Edges point from a service to what it needs, in reading order: `a -> b` means
 * "a depends on b" (b starts first, stops last). So the arrows follow the `dependencies`
 * files, and a graph drawn top to bottom has the services people ask for at the top and
 * the foundations at the bottom.
 * - longruns: boxes; oneshots: ellipses; bundles: dashed folders with a dashed edge
 *   (arrowhead `odiamond`) to each atomic member;
 * - essential services have a bold outline; readiness (notification-fd) longruns are
 *   double-bordered (peripheries=2);
 * - a pipeline is drawn as a bold blue edge producer -> consumer (the producer's implicit
 *   dependency on its consumer), labelled `pipe`; a named pipeline's bundle is like any bundle.
 */
import type { CompiledDb, Service } from './db.ts';

/** Quotes a DOT identifier. */
function q(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function nodeAttrs(s: Service): string {
  const attrs: string[] = [];
  if (s.type === 'longrun') attrs.push('shape=box');
  else if (s.type === 'oneshot') attrs.push('shape=ellipse');
  else attrs.push('shape=folder', 'style=dashed');
  if (s.essential) attrs.push(s.type === 'bundle' ? 'penwidth=2' : 'style=bold');
  if (s.type === 'longrun' && s.readiness) attrs.push('peripheries=2');
  attrs.push(`tooltip=${q(`${s.type} ${s.name}`)}`);
  return attrs.join(', ');
}

/** DOT text for the whole database. Deterministic: services in index order. */
export function toDot(db: CompiledDb): string {
  const lines = ['digraph services {', '  rankdir=TB;', '  node [fontname="sans-serif"];', '  edge [fontname="sans-serif"];'];
  const name = (i: number): string => q(db.services[i]!.name);
  for (const s of db.services) lines.push(`  ${q(s.name)} [${nodeAttrs(s)}];`);
  for (const s of db.services) {
    if (s.type === 'bundle') {
      for (const m of s.contents) lines.push(`  ${q(s.name)} -> ${name(m)} [style=dashed, arrowhead=odiamond];`);
      continue;
    }
    const pipe = s.type === 'longrun' ? s.producerFor : undefined;
    for (const d of s.deps) {
      lines.push(d === pipe
        ? `  ${q(s.name)} -> ${name(d)} [color=blue, penwidth=2, label="pipe"];`
        : `  ${q(s.name)} -> ${name(d)};`);
    }
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}
