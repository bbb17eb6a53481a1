/**
 * Writes a compiled t6-rc database (db.json, index + servicedirs/, src/rc/db.ts) straight from a
 * small description, for tests that must not depend on t6-rc-compile.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DB_VERSION, type CompiledDb, type Service } from '../../src/rc/db.ts';
import { INDEX_FILE, encodeIndex } from '../../src/rc/db-index.ts';
import { makeService } from './harness.ts';

/** One service of a test database. */
export type TestService =
  | { name: string; type: 'oneshot'; up?: string[]; down?: string[]; deps?: string[]; essential?: boolean; timeoutUp?: number; timeoutDown?: number }
  | { name: string; type: 'longrun'; run: string; finish?: string; notificationFd?: number; deps?: string[]; essential?: boolean; timeoutUp?: number; timeoutDown?: number; upSettle?: number }
  | { name: string; type: 'bundle'; contents: string[]; essential?: boolean };

/** Writes the database into `dir` (created) and returns it. Bundles may not nest. */
export function writeDb(dir: string, services: TestService[]): string {
  const longruns = services.filter((s) => s.type === 'longrun');
  const oneshots = services.filter((s) => s.type === 'oneshot');
  const bundles = services.filter((s) => s.type === 'bundle');
  const ordered = [...longruns, ...oneshots, ...bundles];
  const index = new Map(ordered.map((s, i) => [s.name, i]));
  const atomicsOf = (name: string): number[] => {
    const s = ordered[index.get(name) ?? -1];
    if (s === undefined) throw new Error(`unknown service ${name}`);
    return s.type === 'bundle' ? s.contents.flatMap(atomicsOf) : [index.get(name)!];
  };
  const sortedUnique = (xs: number[]): number[] => [...new Set(xs)].sort((a, b) => a - b);
  fs.mkdirSync(path.join(dir, 'servicedirs'), { recursive: true });
  const out: Service[] = ordered.map((s, i) => {
    const base = { name: s.name, index: i, source: `test:${s.name}`, essential: s.essential ?? false };
    if (s.type === 'bundle') return { ...base, type: 'bundle', contents: sortedUnique(s.contents.flatMap(atomicsOf)) };
    const atomic = { ...base, deps: sortedUnique((s.deps ?? []).flatMap(atomicsOf)), timeoutUp: s.timeoutUp ?? 0, timeoutDown: s.timeoutDown ?? 0 };
    if (s.type === 'oneshot') return { ...atomic, type: 'oneshot', up: s.up ?? [], down: s.down ?? [] };
    makeService(path.join(dir, 'servicedirs', s.name), {
      run: s.run,
      ...(s.finish === undefined ? {} : { finish: s.finish }),
      files: s.notificationFd === undefined ? {} : { 'notification-fd': `${s.notificationFd}\n` },
    });
    return { ...atomic, type: 'longrun', readiness: s.notificationFd !== undefined, producerFor: undefined, consumerFor: [], pipelineName: undefined, upSettle: s.upSettle };
  });
  const db: CompiledDb = { version: DB_VERSION, longruns: longruns.length, oneshots: oneshots.length, services: out };
  const text = JSON.stringify(db, null, 1);
  fs.writeFileSync(path.join(dir, 'db.json'), text);
  // And the readers' index, as t6-rc-compile writes it (test/unit/rc-index.test.ts covers a database without one).
  fs.writeFileSync(path.join(dir, INDEX_FILE), encodeIndex(db, Buffer.byteLength(text)));
  fs.writeFileSync(path.join(dir, 'lock'), '');
  return dir;
}

/**
 * The article's s6-rc source directory ("s6-rc: A Demo"), file by file. Its heredocs have
 * no #! line, so the compiler's lexer reads `up` and `down` as execline command lines.
 */
export function writeArticleSource(dir: string): void {
  const put = (file: string, text: string, mode = 0o644): void => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text, { mode });
  };
  put('demo-longrun-1/type', 'longrun\n');
  put('demo-longrun-1/run', '#!/bin/sh\nwhile :; do echo "demo-longrun-1 is running"; sleep 10; done\n', 0o755);
  put('demo-oneshot-1/type', 'oneshot\n');
  put('demo-oneshot-1/up', 'echo "demo-oneshot-1 is up"\n', 0o755);
  put('demo-oneshot-1/down', 'echo "demo-oneshot-1 is down"\n', 0o755);
  put('demo-longrun-1/dependencies', 'demo-oneshot-1\n');
  put('default/type', 'bundle\n');
  put('default/contents', 'demo-longrun-1\n');
}
