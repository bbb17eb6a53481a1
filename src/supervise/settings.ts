/**
 * A service directory's settings files, read fresh at each use as s6-supervise does
 * (servicedir.md §2): an invalid one is warned about, naming the file, and its default used.
 */
import { SIGNALS } from '../sys/signals.ts';
import type { SupervisorFiles } from './servicefiles.ts';
import { readDecimalSetting } from '../s6/servicedir.ts';

/** The settings of one service directory. */
export class ServiceSettings {
  readonly #files: SupervisorFiles;
  /** The service directory as it is now (it follows a rename). */
  readonly #dir: () => string;
  readonly #warn: (message: string) => void;

  constructor(files: SupervisorFiles, dir: () => string, warn: (message: string) => void) {
    this.#files = files;
    this.#dir = dir;
    this.#warn = warn;
  }

  /** A signal file (`down-signal`, `reload-signal`), else `fallback`. */
  signal(file: string, fallback: number): number {
    const setting = this.#files.signalSetting(this.#dir(), file);
    if (setting.problem !== undefined) this.#warn(`${setting.problem} - using ${fallback === SIGNALS.TERM ? 'SIGTERM' : 'SIGHUP'}`);
    return setting.value ?? fallback;
  }

  /** An unsigned decimal file (`timeout-kill`, `notification-fd`…), else `fallback`. */
  uint(file: string, fallback: number): number {
    const setting = this.#files.uintSetting(this.#dir(), file);
    if (setting.problem !== undefined) this.#warn(`${setting.problem} - using the default`);
    return setting.value ?? fallback;
  }

  /** A decimal file (`backoff-factor`), else `fallback`. */
  decimal(file: string, fallback: number): number {
    // Read here rather than through SupervisorFiles: only t6's own files are decimal.
    const setting = readDecimalSetting(this.#dir(), file);
    if (setting.problem !== undefined) this.#warn(`${setting.problem} - using the default`);
    return setting.value ?? fallback;
  }

  /** Does the service directory hold this file (`flag-sd-notify`, `probe`)? */
  has(file: string): boolean {
    return this.#files.exists(`${this.#dir()}/${file}`);
  }
}
