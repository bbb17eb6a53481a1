/**
 * Waiting for a scanner to start supervising new service directories, on events: subscribe
 * to each `event/` fifodir first, then ask whether a supervisor holds the directory's lock;
 * those not supervised yet announce it with `s` (the supervisor takes the lock before it
 * says `s`, so no start falls between the question and the subscription).
 */
import path from 'node:path';
import { listenFifodir, type FifodirListener } from '../s6/fifodir.ts';
import { svOk } from '../s6/client.ts';

/** Waits until each of `dirs` is supervised or `deadline` (performance.now() ms; Infinity: none) passes; resolves with those still not supervised. */
export async function waitSupervised(dirs: readonly string[], deadline: number): Promise<string[]> {
  const waiting = new Set(dirs);
  let wake: (() => void) | undefined;
  const listeners: FifodirListener[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    for (const dir of dirs) {
      listeners.push(listenFifodir(path.join(dir, 'event'), (byte) => {
        if (byte !== 's' || !waiting.delete(dir)) return;
        if (waiting.size === 0) wake?.();
      }));
    }
    for (const dir of [...waiting]) if (await svOk(dir)) waiting.delete(dir);
    if (waiting.size === 0) return [];
    await new Promise<void>((resolve) => {
      wake = resolve;
      if (deadline !== Infinity) timer = setTimeout(resolve, Math.max(1, deadline - performance.now()));
    });
    return [...waiting];
  } finally {
    clearTimeout(timer);
    for (const l of listeners) l.close();
  }
}
