/**
 * The LegacyHost of a process of its own (`t6-container legacy …`): children started with
 * posix_spawn and reaped on SIGCHLD by a Reaper of its own, the scanner reached through its
 * control FIFO as t6-svscanctl does. (pid 1 gives the steps its own host instead: its
 * reaper sees every child of the machine.)
 */
import { Reaper, reapedSpawns } from '../sys/reaper.ts';
import { kill } from '../sys/spawn.ts';
import { svscanctlSend } from '../s6/client.ts';
import type { LegacyHost, StartedChild } from './legacy-common.ts';

/** A host for a short-lived process; `close()` stops listening for SIGCHLD. */
export function processLegacyHost(scandir: string, env?: readonly string[]): LegacyHost & { close(): void } {
  // Every child is ours (not pid 1): a status reaped before anyone asks is kept for them.
  const reaper = new Reaper({ keepUnwatched: true });
  const onChild = (): void => reaper.reap();
  process.on('SIGCHLD', onChild);
  const spawns = reapedSpawns(reaper);
  // A signal handler does not keep Node's event loop alive: while a child runs, a timer
  // does (the loop would otherwise end with the child's status never read).
  let running = 0;
  let keepAlive: NodeJS.Timeout | undefined;
  const track = (delta: number): void => {
    running += delta;
    if (running > 0) keepAlive ??= setInterval(onChild, 3_600_000);
    else { clearInterval(keepAlive); keepAlive = undefined; }
  };
  return {
    async start(path: string): Promise<StartedChild> {
      let settle: (wstat: number) => void = () => {};
      const exited = new Promise<number>((resolve) => { settle = resolve; });
      track(1);
      let pid: number;
      try {
        // A new session makes it the leader of its own process group, for killGroup.
        pid = await spawns.spawnAsync({
          path, argv: [path], fds: new Map([[0, 'null']]), newSession: true, ...(env === undefined ? {} : { env }),
        }, (wstat) => { track(-1); settle(wstat); });
      } catch (err) {
        track(-1);
        throw err;
      }
      return { pid, exited };
    },
    killGroup(pgid: number, signal: number): void {
      kill(-pgid, signal);
    },
    rescan(prune: boolean): Promise<void> {
      return svscanctlSend(scandir, prune ? 'an' : 'a');
    },
    close(): void {
      clearInterval(keepAlive);
      process.off('SIGCHLD', onChild);
    },
  };
}
