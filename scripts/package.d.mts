// Types of scripts/package.mjs, for test/integration/package.test.ts.
/** Where `npm run package` writes. */
export const DEFAULT_OUT: string;
/** What buildPackages wrote: paths and sizes in bytes. */
export interface PackagesResult {
  tar?: { path: string; bytes: number; treeBytes: number };
  deb?: { path: string; bytes: number; installedBytes: number };
  pages: string[];
  ms: number;
}
/** package.json's version and the Debian package's. */
export function versions(): { version: string; debVersion: string };
/** The file names this version's packages get in `out`. */
export function outputs(out?: string): { tar: string; deb: string };
/** A wrapper's text without its fallback to the build tree. */
export function relocatable(name: string, text: string): string;
/** Builds the tarball and the .deb into `out` (fast: the .deb in gzip -1). */
export function buildPackages(out?: string, opts?: { tar?: boolean; deb?: boolean; fast?: boolean }): PackagesResult;
