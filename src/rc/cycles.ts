/**
 * Cycles in a directed graph, for messages: one per strongly connected component (Tarjan's
 * algorithm, iterative so that a deep graph cannot overflow the stack), each shown as the
 * shortest way from its smallest member back to itself. The compiler reports dependency
 * cycles with it; the graph is given as nodes and a function from a node to its successors.
 */

/**
 * Every elementary cycle we need to show: one per strongly connected component (Tarjan,
 * iterative), as the shortest path from its first node back to itself; a self-loop is `a → a`.
 */
export function findCycles(nodes: readonly string[], next: (n: string) => readonly string[]): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  let counter = 0;
  for (const root of nodes) {
    if (index.has(root)) continue;
    const work: Array<{ node: string; edges: readonly string[]; i: number }> = [];
    const visit = (n: string): void => {
      index.set(n, counter); low.set(n, counter); counter++;
      stack.push(n); onStack.add(n);
      work.push({ node: n, edges: next(n), i: 0 });
    };
    visit(root);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      if (top.i < top.edges.length) {
        const m = top.edges[top.i++]!;
        if (!index.has(m)) visit(m);
        else if (onStack.has(m)) low.set(top.node, Math.min(low.get(top.node)!, index.get(m)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]!.node;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.node)!));
      }
      if (low.get(top.node) !== index.get(top.node)) continue;
      const scc: string[] = [];
      let x: string;
      do { x = stack.pop()!; onStack.delete(x); scc.push(x); } while (x !== top.node);
      const selfLoop = scc.length === 1 && next(scc[0]!).includes(scc[0]!);
      if (scc.length > 1 || selfLoop) cycles.push(shortestCycle(scc, next));
    }
  }
  return cycles;
}

/** The shortest cycle through the first (in `nodes` order: smallest) member of an SCC. */
function shortestCycle(scc: string[], next: (n: string) => readonly string[]): string[] {
  const inScc = new Set(scc);
  const start = [...scc].sort()[0]!;
  const prev = new Map<string, string>();
  const queue = [start];
  for (let qi = 0; qi < queue.length; qi++) {
    const n = queue[qi]!;
    for (const m of next(n)) {
      if (!inScc.has(m)) continue;
      if (m === start) {
        const pathBack = [n];
        for (let p = n; p !== start; p = prev.get(p)!) pathBack.push(prev.get(p)!);
        return [...pathBack.reverse(), start];
      }
      if (!prev.has(m)) { prev.set(m, n); queue.push(m); }
    }
  }
  return [start, start];
}
