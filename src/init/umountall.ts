/**
 * The last step before reboot(2): unmount every filesystem, most recent first, as
 * s6-linux-init-umountall does (linux-init.md §4.1). The tmpfs dir (/run, which holds what
 * is still running) and the first devtmpfs, proc and sysfs mounts are kept; a filesystem
 * that is busy is remounted read-only instead, so that nothing is left dirty.
 */
import { errorCode, strerror } from '../sys/errors.ts';
import { mount, umount, MS } from '../sys/system.ts';

/** One line of /proc/mounts. */
export interface MountEntry {
  source: string;
  target: string;
  fstype: string;
}

/** /proc/mounts escapes space, tab, newline and backslash as octal (`\040`). */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses the text of /proc/mounts (or /proc/self/mountinfo's simpler sibling). */
export function parseMounts(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 3) continue;
    out.push({ source: unescapeMountField(f[0]!), target: unescapeMountField(f[1]!), fstype: f[2]! });
  }
  return out;
}

/**
 * The mount points to unmount, in order: reverse mount order, without `keep` (the tmpfs
 * dir) and without the first devtmpfs, proc and sysfs (stage 4 still needs them; later
 * duplicates go). The initramfs root (`rootfs`) cannot be unmounted and is left out too.
 */
export function planUnmounts(entries: readonly MountEntry[], keep = '/run'): MountEntry[] {
  const kept = new Set<string>();
  const plan: MountEntry[] = [];
  for (const e of entries) {
    if (e.target === keep) continue;
    if (e.fstype === 'rootfs') continue;
    if ((e.fstype === 'devtmpfs' || e.fstype === 'proc' || e.fstype === 'sysfs') && !kept.has(e.fstype)) {
      kept.add(e.fstype);
      continue;
    }
    plan.push(e);
  }
  return plan.reverse();
}

/** What happened to one mount point. */
export interface UnmountResult {
  target: string;
  outcome: 'unmounted' | 'remounted read-only' | 'failed';
  error?: string;
}

/** The two system calls unmountAll makes (a parameter, so that tests can stand in for the kernel). */
export interface UnmountSys {
  umount(target: string): void;
  mount(source: string, target: string, fstype: string, flags: number): void;
}

/**
 * Unmounts `plan` in order; a busy filesystem is remounted read-only. Never throws. The
 * root of a booted system (`/`) is never detached: umount(2) on it remounts it read-only
 * instead (do_umount_root), so it is reported as such.
 */
export function unmountAll(plan: readonly MountEntry[], sys: UnmountSys = { umount, mount }): UnmountResult[] {
  const results: UnmountResult[] = [];
  for (const e of plan) {
    try {
      sys.umount(e.target);
      results.push({ target: e.target, outcome: e.target === '/' ? 'remounted read-only' : 'unmounted' });
      continue;
    } catch (err) {
      if (errorCode(err) !== 'EBUSY') {
        results.push({ target: e.target, outcome: 'failed', error: strerror(err) });
        continue;
      }
    }
    try {
      sys.mount(e.source, e.target, '', MS.REMOUNT | MS.RDONLY);
      results.push({ target: e.target, outcome: 'remounted read-only' });
    } catch (err) {
      results.push({ target: e.target, outcome: 'failed', error: `busy, and remounting read-only failed: ${strerror(err)}` });
    }
  }
  return results;
}
