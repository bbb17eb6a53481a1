/**
 * A qemu driver for boot tests: boots a kernel + initramfs under software emulation with the
 * serial console on qemu's stdin/stdout, and drives it expect-style (`waitFor`, `send`).
 * Flags, console quirks and pitfalls: ../shared/BOOT-LAB.md. child_process is fine here:
 * this is the test process, not the supervisor.
 *
 * Commands typed at a guest shell (`run`) answer on the guest's second serial port
 * (ttyS1, a file here), not on the console: the console also carries kernel messages, the
 * catch-all log and t6-rc's progress, which can arrive in the middle of an answer.
 *
 * Safety nets: a hard timeout that SIGKILLs qemu by its pid (qemu is spawned without a
 * shell, so the pid is qemu's), a kill on the test process's exit, and fast failure when
 * the console shows a kernel panic, a failed initramfs unpack or an init that cannot run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Where the kernel and the image are cached (gitignored). */
export const VM_CACHE = path.join(ROOT, '.cache/vm');

/** The kernel command line of BOOT-LAB.md; `quiet` still shows panics and `reboot: Power down`. */
export const DEFAULT_APPEND = 'console=ttyS0 rdinit=/sbin/init quiet panic=-1';

/** Console lines that mean the boot has failed; waiting any longer is pointless. */
const FATAL = /Kernel panic|Initramfs unpacking failed|Failed to execute \/sbin\/init|Attempted to kill init|No working init found/;

export interface VmAssets {
  qemu: string;
  kernel: string;
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir || '.', cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return undefined;
}

/**
 * qemu and a kernel, or why not. The kernel comes from $T6_VM_KERNEL, else from
 * scripts/vm/fetch-kernel.sh (Debian's cloud kernel, cached in .cache/vm).
 */
export function findVmAssets(): VmAssets | { missing: string } {
  const qemu = process.env.T6_VM_QEMU ?? which('qemu-system-x86_64');
  if (qemu === undefined) return { missing: 'qemu-system-x86_64 not found (apt-get install --no-install-recommends qemu-system-x86)' };
  const fromEnv = process.env.T6_VM_KERNEL;
  if (fromEnv !== undefined) {
    return fs.existsSync(fromEnv) ? { qemu, kernel: fromEnv } : { missing: `T6_VM_KERNEL=${fromEnv} does not exist` };
  }
  const r = spawnSync('sh', [path.join(ROOT, 'scripts/vm/fetch-kernel.sh'), VM_CACHE], { encoding: 'utf8' });
  const kernel = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || kernel === '' || !fs.existsSync(kernel)) {
    return { missing: `no kernel: scripts/vm/fetch-kernel.sh failed: ${(r.stderr || r.error?.message || '').trim()}` };
  }
  return { qemu, kernel };
}

/** What scripts/vm/build-initramfs.mjs reports. */
export interface ImageSummary {
  image: string;
  compress: string;
  imageBytes: number;
  stagedBytes: number;
  ms: number;
}

/** Builds the initramfs (scripts/vm/build-initramfs.mjs) and returns its summary. */
export function buildInitramfs(args: string[] = []): ImageSummary {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/vm/build-initramfs.mjs'), ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build-initramfs failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as ImageSummary;
}

export interface QemuOptions {
  kernel: string;
  initrd: string;
  append?: string;
  /** Guest RAM; at least 512M, the unpacked image lives in a tmpfs capped at half of it. */
  memory?: string;
  /** tcg (default; KVM is not usable on our machines, BOOT-LAB.md) or kvm ($T6_VM_ACCEL). */
  accel?: 'tcg' | 'kvm';
  /** true: the serial port is multiplexed with qemu's monitor (Ctrl-A X quits), for people. */
  interactive?: boolean;
  /** A raw disk image attached as a virtio block device (/dev/vda in the guest). */
  disk?: string;
  /** A Unix socket for qemu's monitor (Vm.monitor sends commands to it, e.g. sendkey). */
  monitorSocket?: string;
  /** A file that receives the guest's second serial port (/dev/ttyS1): Vm.run's answers. */
  answerFile?: string;
  /** A virtio NIC on qemu's user network, the guest's port 22 forwarded to this port of 127.0.0.1. */
  sshPort?: number;
}

/** qemu-system-x86_64's arguments: BOOT-LAB.md's boot command. */
export function qemuArgs(o: QemuOptions): string[] {
  const accel = o.accel ?? (process.env.T6_VM_ACCEL === 'kvm' ? 'kvm' : 'tcg');
  return [
    '-accel', accel, '-cpu', 'max', '-machine', 'pc', '-m', o.memory ?? '512M', '-smp', '1',
    // No NIC (no option ROM), no VGA, and no monitor on stdio (a Ctrl-A sent by a test is
    // not qemu's escape key), unless interactive.
    '-nodefaults', '-no-user-config', '-display', 'none',
    '-serial', o.interactive === true ? 'mon:stdio' : 'stdio',
    ...(o.answerFile === undefined ? [] : ['-serial', `file:${o.answerFile}`]),
    // A guest reboot or a panic (panic=-1) ends qemu; so does a poweroff, with status 0.
    '-no-reboot',
    '-kernel', o.kernel, '-initrd', o.initrd, '-append', o.append ?? DEFAULT_APPEND,
    ...(o.disk === undefined ? [] : ['-drive', `file=${o.disk},if=virtio,format=raw`]),
    ...(o.monitorSocket === undefined ? [] : ['-monitor', `unix:${o.monitorSocket},server=on,wait=off`]),
    // romfile= : no iPXE option ROM to load, the kernel is given directly.
    ...(o.sshPort === undefined ? [] : ['-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${o.sshPort}-:22`, '-device', 'virtio-net-pci,netdev=n0,romfile=']),
  ];
}

export interface BootOptions extends QemuOptions {
  qemu: string;
  /** Hard limit on qemu's life; it is SIGKILLed after that (default 60 s). */
  timeoutMs?: number;
  /** Copy the console to this stream as it comes ($T6_VM_ECHO=1: stderr). */
  echo?: NodeJS.WritableStream;
}

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** ms from spawning qemu. */
  ms: number;
}

/** A match of waitFor: the regex's match and when it was seen (ms from spawning qemu). */
export interface Seen {
  match: RegExpExecArray;
  ms: number;
}

/** What a command run in the guest's shell printed (stdout and stderr), and its exit status. */
export interface Answer {
  output: string;
  status: number;
}

/** One booted machine, driven over its serial console. */
export class Vm {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Hard-timeout kill happened. */
  timedOut = false;
  /** Set once qemu has exited. */
  exit: QemuExit | undefined;
  readonly exited: Promise<QemuExit>;
  /** Matches so far, by label, in ms from spawn. */
  readonly marks: Record<string, number> = {};

  readonly #start = performance.now();
  /** The guest's ttyS1, where `run` has commands answer. */
  readonly #answerFile: string;
  #runs = 0;
  #raw = '';
  #cursor = 0;
  #waiters = new Set<() => void>();
  #hardTimer: NodeJS.Timeout;
  #onProcessExit = (): void => this.kill();

  private constructor(opts: BootOptions) {
    const echo = opts.echo ?? (process.env.T6_VM_ECHO === '1' ? process.stderr : undefined);
    const answerDir = fs.mkdtempSync(path.join(os.tmpdir(), 't6-vm-'));
    this.#answerFile = path.join(answerDir, 'ttyS1');
    this.child = spawn(opts.qemu, qemuArgs({ ...opts, answerFile: this.#answerFile }), { stdio: ['pipe', 'pipe', 'pipe'] });
    if (this.child.pid === undefined) throw new Error(`unable to spawn ${opts.qemu}`);
    this.pid = this.child.pid;
    const take = (chunk: Buffer): void => {
      const text = chunk.toString('latin1');
      this.#raw += text;
      echo?.write(text);
      for (const w of [...this.#waiters]) w();
    };
    this.child.stdout!.on('data', take);
    this.child.stderr!.on('data', take); // qemu's own complaints, in the transcript too
    this.child.stdin!.on('error', () => { /* qemu gone: exit handling reports it */ });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal, ms: this.elapsed() };
        clearTimeout(this.#hardTimer);
        process.off('exit', this.#onProcessExit);
        fs.rmSync(answerDir, { recursive: true, force: true });
        for (const w of [...this.#waiters]) w();
        resolve(this.exit);
      });
    });
    this.#hardTimer = setTimeout(() => {
      this.timedOut = true;
      this.kill();
    }, opts.timeoutMs ?? 60_000);
    this.#hardTimer.unref();
    process.on('exit', this.#onProcessExit);
  }

  /** Spawns qemu. */
  static boot(opts: BootOptions): Vm {
    return new Vm(opts);
  }

  /** Sends one command to qemu's monitor (needs monitorSocket), e.g. `sendkey ctrl-alt-delete`. */
  async monitor(socketPath: string, command: string): Promise<void> {
    const net = await import('node:net');
    await new Promise<void>((resolve, reject) => {
      // The monitor prints "(qemu) " when ready, and again once the command is done.
      let seen = '';
      let sent = false;
      const sock = net.createConnection(socketPath);
      sock.on('data', (chunk: Buffer) => {
        seen += chunk.toString('latin1');
        const prompts = seen.split('(qemu)').length - 1;
        if (!sent && prompts >= 1) { sent = true; sock.write(`${command}\n`); }
        else if (sent && prompts >= 2) { sock.end(); resolve(); }
      });
      sock.on('error', reject);
    });
  }

  /** ms since qemu was spawned. */
  elapsed(): number {
    return Math.round(performance.now() - this.#start);
  }

  /**
   * The console so far, as text: `\r` removed (the guest sends `\r\n`) and busybox ash's
   * cursor-position query (`ESC[6n`, after every prompt) taken out, so that regexes can
   * match lines and prompts plainly.
   */
  get transcript(): string {
    return this.#raw.replace(/\r/g, '').replace(/\x1b\[6n/g, '');
  }

  /** The console bytes as they came. */
  get rawTranscript(): string {
    return this.#raw;
  }

  /**
   * Waits until `re` matches the console text after the previous match; the next waitFor
   * starts after this match. Rejects on timeout, if qemu exits first, or on a fatal console
   * line (panic, unpack failure, no init). `label` names the mark (default: the regex).
   */
  waitFor(re: RegExp, timeoutMs: number, label = String(re)): Promise<Seen> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const text = this.transcript;
        const rest = text.slice(this.#cursor);
        const sticky = new RegExp(re.source, re.flags.replace(/[gy]/g, ''));
        const match = sticky.exec(rest);
        if (match !== null) {
          this.#cursor += match.index + match[0].length;
          const ms = this.elapsed();
          this.marks[label] = ms;
          done();
          resolve({ match, ms });
          return true;
        }
        const fatal = FATAL.exec(rest);
        if (fatal !== null) {
          done();
          reject(this.#failure(`the guest failed ("${fatal[0]}") while waiting for ${label}`));
          return true;
        }
        if (this.exit !== undefined) {
          done();
          reject(this.#failure(`qemu exited (code ${this.exit.code}, signal ${this.exit.signal}${this.timedOut ? ', hard timeout' : ''}) while waiting for ${label}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(this.#failure(`timed out after ${timeoutMs} ms waiting for ${label}`));
      }, timeoutMs);
      const waiter = (): void => { check(); };
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      this.#waiters.add(waiter);
      check();
    });
  }

  /**
   * Types text on the serial console. Send `\r` for Enter. busybox ash echoes what is typed
   * and, believing the terminal 80 columns wide, breaks long command lines when echoing
   * them: never match on the echo of a long command; make the command print a marker the
   * echo cannot contain (e.g. `echo done-$((40+2))`, matched as `done-42`).
   */
  send(text: string): void {
    this.child.stdin!.write(text);
  }

  /**
   * Types `command` at the guest's shell (which must be at its prompt) and returns what it
   * printed and its exit status; resolves once `prompt` shows again. The command runs in a
   * subshell with stdout and stderr on /dev/ttyS1, between a begin and an end line that
   * carry this run's number: nothing else writes there, so no console message can mix in.
   */
  async run(command: string, prompt: RegExp, timeoutMs = 20_000): Promise<Answer> {
    const id = ++this.#runs;
    this.send(`{ echo t6-begin-${id}; ( ${command} ) 2>&1; echo "t6-end-${id} $?"; } >/dev/ttyS1\r`);
    const answer = new RegExp(String.raw`(?:^|\n)t6-begin-${id}\n([\s\S]*?)t6-end-${id} (\d+)\n`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let text = '';
      try { text = fs.readFileSync(this.#answerFile, 'latin1').replace(/\r/g, ''); } catch { /* not created yet */ }
      const m = answer.exec(text);
      if (m !== null) {
        await this.waitFor(prompt, timeoutMs, `prompt after ${command}`);
        return { output: m[1]!, status: Number(m[2]) };
      }
      if (this.exit !== undefined) throw this.#failure(`qemu exited while running ${command}`);
      if (Date.now() > deadline) throw this.#failure(`timed out after ${timeoutMs} ms waiting for the answer to ${command} on ttyS1 (so far: ${JSON.stringify(text.slice(-500))})`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Waits for qemu to exit (on its own); SIGKILLs it after timeoutMs. */
  async waitExit(timeoutMs: number): Promise<QemuExit> {
    const timer = setTimeout(() => this.kill(), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILLs qemu by its pid, if it still runs. */
  kill(): void {
    if (this.exit !== undefined) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch { /* already gone */ }
  }

  #failure(message: string): Error {
    const tail = this.transcript.split('\n').slice(-40).join('\n');
    return new Error(`${message} (${this.elapsed()} ms after spawning qemu)\n--- console (last 40 lines) ---\n${tail}`);
  }
}

/** A TCP port of 127.0.0.1 that is free now (for qemu's hostfwd). */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** What scripts/debian/build.mjs reports. */
export interface DebianImage {
  image: string;
  initrd: string;
  kernel: string;
  sshKey: string;
  ms: number;
}

/** The kernel command line of the Debian image: root on the virtio disk, read-only until fsck. */
export const DEBIAN_APPEND = 'console=ttyS0 root=/dev/vda ro net.ifnames=0 quiet panic=-1';

/** Builds (or finds cached) the Debian image of scripts/debian/build.mjs; needs root and debootstrap. */
export function buildDebianImage(): DebianImage {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/debian/build.mjs')], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`scripts/debian/build.mjs failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as DebianImage;
}
