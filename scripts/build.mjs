// Builds t6: one esbuild bundle per command in dist/, and a shell wrapper per command in
// bin/ that runs it under the pinned Node (node_modules/node), whatever `node` is on PATH.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The version lives in package.json only; bundles get it as a constant (src/sys/version.ts).
const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const cliDir = path.join(root, 'src/cli');
const entryDir = path.join(root, '.tmp/entries');
const distDir = path.join(root, 'dist');
const binDir = path.join(root, 'bin');
const shQuote = (v) => `'${v.replaceAll("'", `'\\''`)}'`;

// Every src/cli/<name>.ts that exports `main` is a command `t6-<name>` (and `t6 <name>`).
const commands = fs.readdirSync(cliDir)
  .filter((f) => f.endsWith('.ts') && !f.startsWith('_') && !f.endsWith('.test.ts'))
  .map((f) => f.slice(0, -3))
  .filter((name) => /export (async )?function main\b/.test(fs.readFileSync(path.join(cliDir, `${name}.ts`), 'utf8')))
  .sort();

// pid 1's bundle can also start from a V8 startup snapshot (src/sys/snapshot.ts): under
// `node --build-snapshot` its entry evaluates every module and leaves main for the start
// that deserializes the heap; otherwise it runs main as any other.
const SNAPSHOT_COMMANDS = new Set(['linux-init']);
const snapshotEntry = (name) => `import { main } from '../../src/cli/${name}.ts';
import { runMain } from '../../src/cli/_run.ts';
import { markStartedFromSnapshot } from '../../src/sys/snapshot.ts';
if (process.execArgv.includes('--build-snapshot')) {
  // Built-in modules pid 1 would otherwise load later, each compiled under emulation at boot:
  // node:cluster (with child_process and dgram) is what net.Server#listen loads first;
  // node:v8 and node:perf_hooks, the heap watch right after the first scan.
  for (const builtin of ['node:os', 'node:cluster', 'node:v8', 'node:perf_hooks']) require(builtin);
  require('node:v8').startupSnapshot.setDeserializeMainFunction(() => {
    markStartedFromSnapshot();
    runMain('t6-${name}', main);
  });
} else {
  runMain('t6-${name}', main);
}
`;

fs.rmSync(entryDir, { recursive: true, force: true });
fs.mkdirSync(entryDir, { recursive: true });
const entryPoints = {};
for (const name of commands) {
  const file = path.join(entryDir, `t6-${name}.ts`);
  fs.writeFileSync(file, SNAPSHOT_COMMANDS.has(name) ? snapshotEntry(name)
    : `import { main } from '../../src/cli/${name}.ts';\nimport { runMain } from '../../src/cli/_run.ts';\nrunMain('t6-${name}', main);\n`);
  entryPoints[`t6-${name}`] = file;
}
// t6-rc in two bundles (issue 12): dist/t6-rc.cjs runs help, list, listall and diff with
// no writer at work from the database's reader index (src/cli/_rc-read.ts), and requires
// dist/t6-rc-main.cjs, the whole command, for anything else. A `t6-rc list` then reads and
// compiles about a third of the code. The second bundle is found beside the first, so a
// tree copied whole (or a bin/ falling back to this one) finds its own.
const RC_SPLIT = 'rc';
if (commands.includes(RC_SPLIT)) {
  fs.writeFileSync(path.join(entryDir, 't6-rc.ts'), `import { readCommand } from '../../src/cli/_rc-read.ts';
import { runMain } from '../../src/cli/_run.ts';
declare const __dirname: string;
runMain('t6-rc', (args, io) => readCommand(args, io) ?? require(\`\${__dirname}/t6-rc-main.cjs\`).mainFull(args, io));
`);
  fs.writeFileSync(path.join(entryDir, 't6-rc-main.ts'), "export { mainFull } from '../../src/cli/rc.ts';\n");
  entryPoints['t6-rc-main'] = path.join(entryDir, 't6-rc-main.ts');
}
// The multicall entry: `t6 <tool> args…` loads only the tool it is asked for.
const table = commands.map((name) => `  ${JSON.stringify(name)}: () => import('../../src/cli/${name}.ts'),`).join('\n');
fs.writeFileSync(path.join(entryDir, 't6.ts'),
  `import { runMulticall } from '../../src/cli/_run.ts';\nrunMulticall({\n${table}\n});\n`);
entryPoints.t6 = path.join(entryDir, 't6.ts');

// `import fs from 'node:fs'` becomes `__toESM(require('node:fs'))` in a CommonJS bundle, a
// copy of every property of the module, once per importing module: about 1 ms of every
// client call. These builtins are imported by default only, so they are handed over as
// they are instead.
const builtinDefaults = {
  name: 'builtin-defaults',
  setup(b) {
    b.onResolve({ filter: /^node:(fs|path|net)$/ }, (args) => (args.kind === 'import-statement' ? { path: args.path, namespace: 'builtin-default' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'builtin-default' }, (args) => ({ contents: `const m = require(${JSON.stringify(args.path)});\nexport default m;\n`, loader: 'js' }));
  },
};

fs.rmSync(distDir, { recursive: true, force: true });
// CommonJS, one self-contained file per command: Node starts a CJS file about 8 ms sooner
// than an ESM graph, and every client call pays Node's start-up.
await build({
  entryPoints,
  outdir: distDir,
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node24',
  external: ['koffi', '@koromix/*'],
  sourcemap: 'linked',
  // Minified: Node reads and pre-parses every byte of a command's bundle at each start,
  // and half the bytes is 2-3 ms of a client call (issue 12); the map keeps traces readable.
  minify: true,
  // import.meta.url is computed when read (almost never in a bundle), not at every start.
  define: { 'import.meta.url': '__t6Meta.url', __T6_VERSION__: JSON.stringify(version) },
  banner: { js: "const __t6Meta = { get url() { return require('node:url').pathToFileURL(__filename).href; } };" },
  plugins: [builtinDefaults],
  logLevel: 'warning',
});

// Node options per command. t6-svscan is a long-lived daemon that allocates little: a
// 1 MB young generation (instead of up to 16 MB) keeps its footprint small; t6-linux-init
// becomes t6-svscan in the same process, so it gets the same. t6-rc gets nothing: its
// young generation started at 4 MB while `t6-rc list` decoded all of db.json (two
// scavenges spared); reading the reader index instead, it allocates too little for that to
// pay, and the larger young generation cost a list more than it saved (issue 12; a change
// may pay a scavenge or two more). t6-rc-compile is the other way round: on a
// 1,000-service source a young generation kept at 1 MB touches about 1,200 fewer fresh
// pages than one left to grow (each a page fault, dear on a virtual machine) for a few
// more, cheap scavenges: 5-10 ms of a 230 ms compile (bench/rc-compile.mjs).
//
// The long-lived process also gets an explicit heap limit, src/sys/heap.ts's HEAP_LIMIT_MB
// (read from the file's text: this script runs under any Node, the .ts may not load): a
// fixed ceiling instead of one V8 derives from the machine's memory (that file says why).
//
// And no memory reducer (issue 12, "idle means idle"). V8 arms it when the old generation
// has grown by 1 MB before the first full GC, which start-up with a hundred services does
// or not depending on timing: from then on it wakes the event loop every 8.1 s, finds the
// allocation rate still "high" (the rate is only brought up to date by a GC, and an idle
// process never has one) and waits again, forever: 7 or 8 wake-ups and about 10 ms of CPU
// a minute in a process with nothing to do. The GCs it would start once allocation slows
// are not missed: in every run here it never started one (--trace-memory-reducer: "high
// alloc", waiting again each time), so memory is the same without it (bench/README.md).
const heapLimitMatch = /^export const HEAP_LIMIT_MB = (\d+);$/m.exec(fs.readFileSync(path.join(root, 'src/sys/heap.ts'), 'utf8'));
if (heapLimitMatch === null) throw new Error('src/sys/heap.ts: no `export const HEAP_LIMIT_MB = <number>;` line');
const daemonFlags = `--max-semi-space-size=1 --max-old-space-size=${heapLimitMatch[1]} --no-memory-reducer `;
const nodeFlags = {
  't6-svscan': daemonFlags, 't6-linux-init': daemonFlags, 't6-rc-compile': '--max-semi-space-size=1 ',
};

// The wrapper finds t6's tree from its own location: $0, resolved if it is a symbolic link
// (one readlink, so a link made anywhere to bin/t6-x works). Without a slash in $0 (`sh t6-x`,
// `bash t6-x` found in PATH, an empty PATH entry) the shell found it in the current
// directory, else in PATH. A tree copied whole (bin/, dist/, node_modules/node/ side by
// side: `cp -a`, an initramfs's /opt/t6) runs its own Node and bundles; a bin/ copied alone
// (or one wrapper copied into /usr/local/bin) has no ../dist, and falls back to the tree it
// was built in. The common path costs the shell's start and two stats, no fork.
//
// Installed by npm (npm install -g, or into a project), the pinned Node is the `node`
// package: beside t6 in t6-init/node_modules/node, or hoisted next to t6-init itself
// (../node). Without either, a `node` on PATH will do if it is Node 24 or later: the
// bundles target Node 24; an older one would fail later and obscurely, so it is refused
// here with a message that says what is missing.
const FIND_NODE = `[ -x "$t6/../node/bin/node" ] && { echo "$t6/../node/bin/node"; exit 0; }
    p=$(command -v node) && [ "$("$p" -p '+process.versions.node.split(".")[0] >= 24' 2>/dev/null)" = true ] && { echo "$p"; exit 0; }
    echo "\${0##*/}: no Node.js 24: neither $t6/node_modules/node, $t6/../node nor a node >= 24 on PATH" >&2; exit 1`;
// `npm pack` (and publish) runs this as `prepare`: the packed wrappers do without the
// fallback, which would name the packer's checkout on every machine the package reaches;
// `postpack` builds again, and this checkout's wrappers get it back.
const relocatable = process.env.npm_lifecycle_event === 'prepare' && ['pack', 'publish'].includes(process.env.npm_command ?? '');
const wrapperText = (name) => `#!/bin/sh
# Generated by scripts/build.mjs: runs ${name} under t6's pinned Node.js.
self=$0
case $self in
*/*) ;;
*)
  if [ ! -e "$self" ]; then
    IFS=:
    for dir in $PATH; do [ -f "\${dir:-.}/$0" ] && { self=\${dir:-.}/$0; break; }; done
    unset IFS
  fi
  case $self in */*) ;; *) self=./$self ;; esac
  ;;
esac
[ -L "$self" ] && self=$(readlink -f -- "$self")
t6=\${self%/*}/..
${relocatable ? `[ -f "$t6/dist/${name}.cjs" ] || { echo "${name}: $t6/dist/${name}.cjs is missing" >&2; exit 111; }` : `[ -f "$t6/dist/${name}.cjs" ] || t6=${shQuote(root)}`}
node=$t6/node_modules/node/bin/node
[ -x "$node" ] || node=$(${FIND_NODE}) || exit 111
exec "$node" ${nodeFlags[name] ?? ''}"$t6/dist/${name}.cjs" "$@"
`;

fs.mkdirSync(binDir, { recursive: true });
for (const name of ['t6', ...commands.map((c) => `t6-${c}`)]) {
  fs.writeFileSync(path.join(binDir, name), wrapperText(name), { mode: 0o755 });
}
fs.writeFileSync(path.join(distDir, 'commands.json'), JSON.stringify(commands) + '\n');
// Container helpers that are shell scripts, not Node programs (they run in front of many
// scripts, and must keep every fd they are given): scripts/container/NAME → bin/t6-NAME.
const shellHelpers = path.join(root, 'scripts', 'container');
for (const name of fs.readdirSync(shellHelpers)) {
  fs.copyFileSync(path.join(shellHelpers, name), path.join(binDir, `t6-${name}`));
  fs.chmodSync(path.join(binDir, `t6-${name}`), 0o755);
}

// The startup snapshot of each SNAPSHOT_COMMANDS bundle, built by the pinned Node that will
// start from it. Node aborts on a blob it cannot read, so one is kept only once a start from
// it has answered --help; the stamp written after it tells bin/init it was checked (a blob
// newer than its stamp has changed since). Without a blob, bin/init starts from the bundle.
const pinnedNode = path.join(root, 'node_modules/node/bin/node');

// The snapshot's entry evaluates the bundle with every one of its functions compiled
// (--no-lazy while it is compiled, not for Node's own modules): the blob then holds their
// bytecode, and pid 1 compiles nothing of its own at boot. Under software emulation that
// took the demo's boot from 2.55 s to 1.93 s (median of 3 alternating rounds; all of Node's
// modules compiled too gave 2.22 s, from a blob twice the size), for 0.5 MB more blob.
const eagerEntry = (bundle) => `const v8 = require('node:v8');
const source = require('node:fs').readFileSync(${JSON.stringify(bundle)}, 'utf8');
v8.setFlagsFromString('--no-lazy');
const wrapped = require('node:vm').runInThisContext(\`(function (exports, require, module, __filename, __dirname) {\${source}\\n})\`, { filename: ${JSON.stringify(bundle)} });
v8.setFlagsFromString('--lazy');
const module = { exports: {} };
wrapped(module.exports, require, module, ${JSON.stringify(bundle)}, ${JSON.stringify(path.dirname(bundle))});
`;

function buildSnapshot(bundle, blob) {
  if (!fs.existsSync(pinnedNode)) return `${pinnedNode} is missing`;
  const tmp = `${blob}.tmp`;
  const entry = path.join(entryDir, `${path.basename(bundle, '.cjs')}.snapshot.cjs`);
  fs.writeFileSync(entry, eagerEntry(bundle));
  const built = spawnSync(pinnedNode, ['--snapshot-blob', tmp, '--build-snapshot', entry], { encoding: 'utf8' });
  if (built.status !== 0) return `node --build-snapshot failed: ${(built.stderr || built.stdout).trim().split('\n').slice(-3).join(' / ')}`;
  const tried = spawnSync(pinnedNode, ['--snapshot-blob', tmp, bundle, '--help'], { encoding: 'utf8' });
  if (tried.status !== 0 || !tried.stdout.startsWith(`${path.basename(bundle, '.cjs')} `)) {
    fs.rmSync(tmp, { force: true });
    return `a start from it failed: status ${tried.status}, ${tried.stderr.trim().split('\n')[0] ?? ''}`;
  }
  fs.renameSync(tmp, blob);
  fs.writeFileSync(`${blob}.ok`, `${spawnSync(pinnedNode, ['--version'], { encoding: 'utf8' }).stdout.trim()} ${fs.statSync(blob).size}\n`);
  return undefined;
}

for (const name of SNAPSHOT_COMMANDS) {
  const bundle = path.join(distDir, `t6-${name}.cjs`);
  const blob = bundle.replace(/\.cjs$/, '.blob');
  const problem = buildSnapshot(bundle, blob);
  if (problem !== undefined) process.stderr.write(`build: warning: no startup snapshot for t6-${name} (${problem}); it starts from its bundle\n`);
}

// The manual pages, for the npm package only (`npm pack` runs this as `prepare`): man/, which
// package.json's "man" lists, and npm install -g links into PREFIX/share/man. A checkout does
// without: running every command's --help would double the build's time.
const manDir = path.join(root, 'man');
fs.rmSync(manDir, { recursive: true, force: true });
if (relocatable) {
  const { writeManPages } = await import('./man.mjs');
  writeManPages(root, binDir, manDir, { version, date: new Date().toISOString().slice(0, 10) });
}
