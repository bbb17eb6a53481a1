/**
 * What t6-container compiles (issue 15): the image's s6-rc source definitions, found where
 * s6-overlay v3 looks for them, and s6-overlay's own system definitions, which tie the
 * legacy layouts in (a oneshot each for fix-attrs.d, cont-init.d and services.d):
 *
 *   top                bundle   base, user, legacy-services, user2
 *   base               bundle   fix-attrs, legacy-cont-init
 *   fix-attrs          oneshot  up: t6-container legacy fix-attrs
 *   legacy-cont-init   oneshot  after fix-attrs; up: cont-init, down: cont-finish
 *   legacy-services    oneshot  after base and user; up: services-up, down: services-down
 *
 * An image that carries s6-overlay's own copy of them (/package/admin/s6-overlay/etc/s6-rc/
 * sources: some images add to it or take from it) gets that copy compiled, not ours. The
 * `user` and `user2` bundles come from the bundle directory (s6-overlay 3.2.3.1 on), or, as
 * older images have them, from s6-rc.d itself; there, a `user` without a `type` file is a
 * bundle all the same (s6-overlay writes one into /etc; t6 takes it so, and writes nothing).
 * An image with neither gets empty ones.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readSources, type SourceSet } from './source.ts';

/** Where s6-overlay's tarball puts its system definitions (a link to the versioned package). */
export const IMAGE_SYSTEM_SOURCES = '/package/admin/s6-overlay/etc/s6-rc/sources';

/** The two bundles every image has, filled by the image's services. */
const USER_BUNDLES = ['user', 'user2'] as const;

/** The source directories to compile, in s6-overlay's order, and what was decided on the way. */
export interface ContainerSources {
  dirs: string[];
  /** s6-rc.d holds the user bundles (an image made before s6-overlay 3.2.3.1): the bundle directory is not read. */
  compat: boolean;
  /** The s6-rc.d directory of the profile, whose `user` and `user2` may lack a type. */
  overlaySources: string;
  notes: string[];
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Where a container profile keeps its s6-rc definitions (init/container-settings.ts's profileDirs). */
export interface OverlayDirs {
  /** /etc/s6-overlay, or the profile's: its s6-rc.d holds the image's definitions. */
  overlay: string;
  /** The directory of the `user` and `user2` bundles (s6-overlay 3.2.3.1 on). */
  bundles: string;
}

/**
 * Picks the source directories of `where` and writes what the image lacks into
 * `ownDir` (made if needed, t6's: under /run): the system definitions when the image has no
 * copy of its own at `imageSystem`, and empty user bundles when it has none. `t6Container`
 * is the absolute path of the t6-container command the system oneshots run.
 */
export function containerSources(where: OverlayDirs, ownDir: string, t6Container: string, imageSystem = IMAGE_SYSTEM_SOURCES, legacyDir?: string): ContainerSources {
  const { overlay, bundles } = where;
  const overlaySources = `${overlay}/s6-rc.d`;
  const notes: string[] = [];
  const dirs: string[] = [];
  const compat = isDir(`${overlaySources}/user`);
  if (isDir(overlaySources)) dirs.push(overlaySources);
  if (compat) {
    if (isDir(bundles)) notes.push(`${overlaySources}/user exists, so ${bundles} is not read (the user bundles are in s6-rc.d, as before s6-overlay 3.2.3.1)`);
  } else if (isDir(bundles)) {
    dirs.push(bundles);
  }
  const hasBundles = compat || USER_BUNDLES.every((b) => isDir(`${bundles}/${b}`));
  const imageHasSystem = isDir(imageSystem);
  if (imageHasSystem) dirs.push(imageSystem);
  if (!imageHasSystem || !hasBundles) {
    fs.mkdirSync(ownDir, { recursive: true, mode: 0o755 });
    if (!imageHasSystem) writeSystemDefinitions(ownDir, t6Container, legacyDir === undefined ? undefined : legacySteps(legacyDir));
    if (!hasBundles) {
      for (const b of USER_BUNDLES) if (!isDir(`${bundles}/${b}`)) writeDefinition(ownDir, b, { type: 'bundle', 'contents.d': [] });
    }
    dirs.push(ownDir);
  }
  return { dirs, compat, overlaySources, notes };
}

/** Reads `sources.dirs` as t6-rc-compile does, with the old layout's typeless `user` and `user2` taken as bundles. */
export function readContainerSources(sources: ContainerSources): SourceSet {
  const set = readSources(sources.dirs);
  if (!sources.compat) return set;
  for (const b of USER_BUNDLES) {
    const dir = `${sources.overlaySources}/${b}`;
    const svc = set.services.find((s) => s.name === b && s.dir === dir);
    if (svc === undefined || svc.type !== undefined || fs.existsSync(`${dir}/type`)) continue;
    svc.type = 'bundle';
    let names: string[] = [];
    try {
      names = fs.readdirSync(`${dir}/contents.d`).filter((n) => !n.startsWith('.')).sort();
    } catch { /* no contents.d: an empty bundle */ }
    svc.contents = names.map((name) => ({ name, file: `contents.d/${name}` }));
    set.problems = set.problems.filter((p) => !p.file.startsWith(`${dir}/`));
  }
  return set;
}

/** A definition's files: a string is a file's text, a list a directory of empty files named by it. */
type Definition = Record<string, string | readonly string[]>;

/** The legacy directories under `legacyDir` (/etc, or a profile's) that hold something, as the steps that need them. */
export function legacySteps(legacyDir: string): Set<string> {
  const holds = (name: string): boolean => {
    try {
      return fs.readdirSync(path.join(legacyDir, name)).some((n) => !n.startsWith('.'));
    } catch {
      return false;
    }
  };
  const steps = new Set<string>();
  if (holds('fix-attrs.d')) steps.add('fix-attrs');
  if (holds('cont-init.d')) steps.add('cont-init');
  if (holds('cont-finish.d')) steps.add('cont-finish');
  if (holds('services.d')) { steps.add('services-up'); steps.add('services-down'); }
  return steps;
}

/**
 * The five system definitions, their oneshots running `t6Container legacy STEP`; a step
 * not in `needed` (its directory is empty or missing) gets a script with no command, which
 * t6-rc runs without a process (most images have no legacy layout at all).
 */
export function writeSystemDefinitions(dir: string, t6Container: string, needed?: ReadonlySet<string>): void {
  if (!path.isAbsolute(t6Container) || /[\s"'\\]/.test(t6Container)) {
    throw new Error(`${t6Container}: the t6-container path must be absolute, without blanks or quotes (it goes into an up script)`);
  }
  const step = (name: string): string => (needed === undefined || needed.has(name) ? `${t6Container} legacy ${name}\n` : `# nothing to do: no ${name} in this image\n`);
  const defs: Record<string, Definition> = {
    top: { type: 'bundle', 'contents.d': ['base', 'user', 'legacy-services', 'user2'] },
    base: { type: 'bundle', 'contents.d': ['fix-attrs', 'legacy-cont-init'] },
    'fix-attrs': { type: 'oneshot', up: step('fix-attrs') },
    'legacy-cont-init': { type: 'oneshot', 'dependencies.d': ['fix-attrs'], up: step('cont-init'), down: step('cont-finish') },
    'legacy-services': { type: 'oneshot', 'dependencies.d': ['base', 'user'], up: step('services-up'), down: step('services-down') },
  };
  for (const [name, def] of Object.entries(defs)) writeDefinition(dir, name, def);
}

function writeDefinition(dir: string, name: string, def: Definition): void {
  const at = path.join(dir, name);
  fs.mkdirSync(at, { recursive: true, mode: 0o755 });
  for (const [file, value] of Object.entries(def)) {
    if (typeof value === 'string') {
      fs.writeFileSync(path.join(at, file), file === 'type' ? `${value}\n` : value, { mode: 0o644 });
      continue;
    }
    fs.mkdirSync(path.join(at, file), { recursive: true, mode: 0o755 });
    for (const entry of value) fs.writeFileSync(path.join(at, file, entry), '', { mode: 0o644 });
  }
}
