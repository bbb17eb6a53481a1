/** The reaper moved to sys/reaper.ts (one for t6-svscan and t6-log); this adapter keeps scanner.ts's `new Reaper(onError)` until it imports that one. */
import { Reaper as SysReaper } from '../sys/reaper.ts';

export class Reaper extends SysReaper {
  constructor(onError: (err: unknown) => void) {
    super({ onError });
  }
}
