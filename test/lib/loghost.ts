/** A LoggerHost for tests: fixed or real clock, collected outputs, real timers (counted), processors reaped here. */
import { tainFromUnixMs, tainNow, type Tain } from '../../src/s6/tai.ts';
import type { LoggerHost } from '../../src/log/engine.ts';
import { Reaper } from '../../src/sys/reaper.ts';

export interface TestHost extends LoggerHost {
  out: Buffer[];
  alerts: string[];
  warnings: string[];
  clock: { tain: Tain | undefined };
  /** Timer callbacks run so far (each a retry, for a logdir): proof that time has passed for the logger. */
  timersRun: number;
  dispose(): void;
}

export function testHost(opts: { fixedMs?: number } = {}): TestHost {
  const children = new Reaper({ keepUnwatched: true });
  const onChild = (): void => children.reap();
  process.on('SIGCHLD', onChild);
  const clock = { tain: opts.fixedMs === undefined ? undefined : tainFromUnixMs(opts.fixedMs) };
  const host: TestHost = {
    out: [], alerts: [], warnings: [], clock, timersRun: 0,
    now: () => clock.tain ?? tainNow(),
    setTimer: (ms, fn) => { const t = setTimeout(() => { fn(); host.timersRun++; }, ms); return () => clearTimeout(t); },
    waitPid: (pid) => children.waitPid(pid),
    warn: (m) => { host.warnings.push(m); },
    mask: 0o644,
    stdout: (d) => { host.out.push(d); return true; },
    alert: (d) => { host.alerts.push(d.toString()); },
    dispose: () => { process.off('SIGCHLD', onChild); },
  };
  return host;
}
