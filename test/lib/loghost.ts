/** A LoggerHost for tests: fixed or real clock, collected outputs, real timers, processors reaped here. */
import { tainFromUnixMs, tainNow, type Tain } from '../../src/s6/tai.ts';
import type { LoggerHost } from '../../src/log/engine.ts';
import { reapAll } from '../../src/sys/spawn.ts';

export interface TestHost extends LoggerHost {
  out: Buffer[];
  alerts: string[];
  warnings: string[];
  clock: { tain: Tain | undefined };
  dispose(): void;
}

export function testHost(opts: { fixedMs?: number } = {}): TestHost {
  const waiting = new Map<number, (w: number) => void>();
  const early = new Map<number, number>();
  const onChild = (): void => {
    for (const { pid, wstat } of reapAll()) {
      const w = waiting.get(pid);
      if (w !== undefined) { waiting.delete(pid); w(wstat); } else early.set(pid, wstat);
    }
  };
  process.on('SIGCHLD', onChild);
  const clock = { tain: opts.fixedMs === undefined ? undefined : tainFromUnixMs(opts.fixedMs) };
  const host: TestHost = {
    out: [], alerts: [], warnings: [], clock,
    now: () => clock.tain ?? tainNow(),
    setTimer: (ms, fn) => { const t = setTimeout(fn, ms); return () => clearTimeout(t); },
    waitPid: (pid) => new Promise((resolve) => {
      const w = early.get(pid);
      if (w !== undefined) { early.delete(pid); resolve(w); } else waiting.set(pid, resolve);
    }),
    warn: (m) => { host.warnings.push(m); },
    mask: 0o644,
    stdout: (d) => { host.out.push(d); return true; },
    alert: (d) => { host.alerts.push(d.toString()); },
    dispose: () => { process.off('SIGCHLD', onChild); },
  };
  return host;
}
