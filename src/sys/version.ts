/**
 * t6's version, from package.json and nowhere else. The build (scripts/build.mjs) writes it
 * into every bundle through esbuild's `define` of `__T6_VERSION__`, so a command reads no
 * file for it; run from source (tests, type stripping), the global is not defined and
 * package.json is read once, when this module loads. At the bottom of the layers (pure: no
 * libc) so that any part of t6 may name it.
 */

/** Replaced by the version string in a bundle; not defined when run from source. */
declare const __T6_VERSION__: string | undefined;

/** The `version` of t6's package.json, read beside the sources ('unknown' if unreadable). */
function packageVersion(): string {
  const fs = process.getBuiltinModule('node:fs');
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** t6's version ("0.1.0"). */
export const VERSION: string = typeof __T6_VERSION__ === 'string' ? __T6_VERSION__ : packageVersion();
