// Types of scripts/package-opt.mjs, for the tests that build a rootfs with it.
/** The repository's root. */
export const ROOT: string;
/** Bytes of the regular files under `p` (symbolic links not followed). */
export function treeBytes(p: string): number;
/** What packageOpt wrote: sizes in bytes per part. */
export interface PackageOptResult {
  out: string;
  totalBytes: number;
  parts: { bin: number; dist: number; node: number; koffi: number };
  stripped: boolean;
  sourceMaps: boolean;
  ms: number;
}
/** Writes the self-contained t6 folder (/opt/t6's shape) into `out`, replacing it. */
export function packageOpt(out: string, opts?: { strip?: boolean; sourceMaps?: boolean; systemNode?: string }): PackageOptResult;
