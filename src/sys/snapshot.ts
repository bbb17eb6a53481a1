/**
 * pid 1's V8 startup snapshot (issue 12, boot): `node --build-snapshot` evaluates the
 * t6-linux-init bundle once at build time, and bin/init starts Node from the heap it left
 * (`--snapshot-blob`), skipping the bundle's compile and module evaluation, which under
 * software emulation are a third of a second. Node crashes on a damaged blob, so bin/init
 * only uses one that the build checked (the stamp beside it) and that has not changed since.
 */

/** The blob beside a bundle: dist/t6-linux-init.blob. */
export function snapshotBlobPath(bundle: string): string {
  return bundle.replace(/\.cjs$/, '') + '.blob';
}

/** The build's stamp: written once the blob has been built and a start from it checked. */
export function snapshotStampPath(bundle: string): string {
  return `${snapshotBlobPath(bundle)}.ok`;
}

/** bin/init's reason for starting without the snapshot, for pid 1 to report. */
export const SNAPSHOT_FALLBACK_ENV = 'T6_SNAPSHOT_FALLBACK';

let fromSnapshot = false;

/** Called by the bundle's deserialize-main function: this process started from the blob. */
export function markStartedFromSnapshot(): void {
  fromSnapshot = true;
}

/**
 * Whether this process started from a startup snapshot. Its `require` then knows Node's
 * built-in modules only; anything else (koffi) is loaded through createRequire.
 */
export function startedFromSnapshot(): boolean {
  return fromSnapshot;
}

/**
 * Node's flags without `--snapshot-blob`: a re-exec of pid 1 starts from the bundle, which
 * is what an upgrade just replaced, and a blob it may not have rebuilt cannot crash it.
 */
export function withoutSnapshotFlags(flags: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i]!;
    if (flag === '--snapshot-blob') i++;
    else if (!flag.startsWith('--snapshot-blob=')) kept.push(flag);
  }
  return kept;
}
