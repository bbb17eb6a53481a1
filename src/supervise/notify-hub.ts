/**
 * sd_notify for t6-svscan: one datagram socket for every service with `flag-sd-notify`,
 * bound on first use to an abstract address (`@t6/notify/…`: no path length limit, no file
 * to leave behind, reachable by a daemon that dropped root). Which service a datagram is
 * from is read from the kernel's credentials (SO_PASSCRED), never from the message: the
 * sender must be a process of the service's tree (its `run`, a process of `run`'s session,
 * or a descendant of either; sd-notify.ts). Anything else is refused and counted, so a
 * stranger cannot make a service ready, and one service cannot speak for another.
 *
 * Bounds: a datagram is at most 4 KiB (sys/notifysocket.ts), refusals are warned about at
 * most once per REFUSAL_WARN_MS, and the socket is drained a bounded number at a time.
 */
import fs from 'node:fs';
import { NotifySocket } from '../sys/notifysocket.ts';
import { parseNotifyMessage, serviceOfSender, type NotifyMessage } from './sd-notify.ts';
import { bugText, strerror } from '../sys/errors.ts';

const REFUSAL_WARN_MS = 10_000;
/** After a failed bind, the next service to start tries again no sooner than this. */
const BIND_RETRY_MS = 10_000;

/** The address tried first for the scan directory `scandir`: its device and inode, so the next t6-svscan on it finds the same one. */
export function notifyAddress(scandir: string): string {
  try {
    const st = fs.statSync(scandir, { bigint: true });
    return `@t6/notify/${st.dev}:${st.ino}`;
  } catch {
    return `@t6/notify/${process.pid}`;
  }
}

/** One service's place on the hub, while its `run` lives. */
export interface NotifyRegistration {
  /** MAINPID=: `pid` speaks for the service too, if it is of the service's tree (else false). */
  alias(pid: number): boolean;
  /** `run` died: its messages are no longer taken. */
  cancel(): void;
}

/** The scanner's sd_notify socket, as a Supervisor sees it. */
export interface NotifyHub {
  /** NOTIFY_SOCKET's value, binding the socket on first use; undefined if it cannot be had (warned about). */
  address(): string | undefined;
  /** Takes the messages of the tree of `runPid`. */
  register(runPid: number, onMessage: (msg: NotifyMessage) => void): NotifyRegistration;
}

/** What the hub counts (t6 metrics). */
export interface NotifyCounters {
  received: number;
  /** From no service's tree (or from outside t6-svscan's pid namespace: no pid to place). */
  refused: number;
  /** Not a valid message (NUL, bad UTF-8), or too big. */
  malformed: number;
}

/** The hub's socket handed to the next image. */
export interface NotifyHandOver {
  fd: number;
  address: string;
}

interface Entry {
  readonly onMessage: (msg: NotifyMessage) => void;
  readonly pids: Set<number>;
}

/** How a SocketNotifyHub is set up. */
export interface NotifyHubOptions {
  /** The abstract address to try first (`@t6/notify/DEV:INO` of the scan directory). */
  address: string;
  report(level: 'warning', message: string): void;
  monotonicMs(): number;
}

/** The real hub (see the file's header). */
export class SocketNotifyHub implements NotifyHub {
  readonly counters: NotifyCounters = { received: 0, refused: 0, malformed: 0 };
  readonly #opts: NotifyHubOptions;
  #socket: NotifySocket | undefined;
  #failedAt = -Infinity;
  #byPid = new Map<number, Entry>();
  #warnedAt = -Infinity;
  #unwarned = 0;

  constructor(opts: NotifyHubOptions, handedOver?: NotifyHandOver) {
    this.#opts = opts;
    if (handedOver !== undefined) this.#listen(NotifySocket.fromFd(handedOver.fd, handedOver.address));
  }

  address(): string | undefined {
    if (this.#socket !== undefined) return this.#socket.address;
    const now = this.#opts.monotonicMs();
    if (now - this.#failedAt < BIND_RETRY_MS) return undefined;
    // Taken already (another scanner of the same directory left it, or someone squats it):
    // a name of our own instead; services started from now on get that one.
    for (const address of [this.#opts.address, `${this.#opts.address}/${process.pid}.${Math.floor(now)}`]) {
      try {
        this.#listen(NotifySocket.bind(address));
        return address;
      } catch (err) {
        this.#opts.report('warning', `unable to bind the sd_notify socket ${address}: ${strerror(err)}`);
      }
    }
    this.#failedAt = now;
    return undefined;
  }

  register(runPid: number, onMessage: (msg: NotifyMessage) => void): NotifyRegistration {
    const entry: Entry = { onMessage, pids: new Set([runPid]) };
    this.#byPid.set(runPid, entry);
    return {
      alias: (pid) => {
        if (!Number.isInteger(pid) || pid <= 1 || this.#route(pid) !== entry) return false;
        // One main pid at a time: a new MAINPID= replaces the last (the map cannot grow with a service's forks).
        for (const old of entry.pids) {
          if (old !== runPid && this.#byPid.get(old) === entry) this.#byPid.delete(old);
          if (old !== runPid) entry.pids.delete(old);
        }
        entry.pids.add(pid);
        this.#byPid.set(pid, entry);
        return true;
      },
      cancel: () => {
        for (const pid of entry.pids) if (this.#byPid.get(pid) === entry) this.#byPid.delete(pid);
        entry.pids.clear();
      },
    };
  }

  /** Re-exec: the socket, still bound, for the next image (undefined: none was bound). */
  handOver(): NotifyHandOver | undefined {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket === undefined) return undefined;
    return { fd: socket.handOver(), address: socket.address };
  }

  /** Closes the socket; registrations stay but hear nothing. */
  close(): void {
    this.#socket?.close();
    this.#socket = undefined;
  }

  #listen(socket: NotifySocket): void {
    this.#socket = socket;
    socket.listen(
      (sender, payload) => this.#deliver(sender.pid, payload),
      (err) => {
        this.#opts.report('warning', `the sd_notify socket ${socket.address} failed: ${strerror(err)} - it is bound again for the next service started`);
        if (this.#socket === socket) this.#socket = undefined;
        socket.close();
      },
      (refusal) => {
        this.counters.received++;
        if (refusal.reason === 'oversized') {
          this.counters.malformed++;
          this.#warn(`an sd_notify message of ${refusal.bytes} bytes from pid ${refusal.sender?.pid ?? '?'} was refused: too big`);
        } else {
          this.counters.refused++;
          this.#warn('an sd_notify message was refused: its sender is outside t6-svscan\'s pid namespace');
        }
      },
    );
  }

  #deliver(pid: number, payload: Buffer): void {
    this.counters.received++;
    const entry = this.#route(pid);
    if (entry === undefined) {
      this.counters.refused++;
      this.#warn(`an sd_notify message from pid ${pid} was refused: not a process of a service with flag-sd-notify`);
      return;
    }
    const parsed = parseNotifyMessage(payload);
    if (!parsed.ok) {
      this.counters.malformed++;
      this.#warn(`an sd_notify message from pid ${pid} was refused: ${parsed.reason}`);
      return;
    }
    if (parsed.message.problems.length > 0) this.#warn(`in an sd_notify message from pid ${pid}: ${parsed.message.problems.join('; ')}`);
    try {
      entry.onMessage(parsed.message);
    } catch (err) {
      // A bug in one service's handling must not close the socket every service shares.
      this.#opts.report('warning', `internal error on an sd_notify message from pid ${pid}: ${bugText(err)}`);
    }
  }

  /** The service whose tree holds `pid` (sd-notify.ts serviceOfSender; an unreadable sender is in none). */
  #route(pid: number): Entry | undefined {
    return serviceOfSender(pid, (p) => this.#byPid.get(p));
  }

  #warn(message: string): void {
    const now = this.#opts.monotonicMs();
    if (now - this.#warnedAt < REFUSAL_WARN_MS) {
      this.#unwarned++;
      return;
    }
    const more = this.#unwarned > 0 ? ` (and ${this.#unwarned} more refused since the last warning)` : '';
    this.#warnedAt = now;
    this.#unwarned = 0;
    this.#opts.report('warning', message + more);
  }
}
