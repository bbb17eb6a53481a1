// What the Debian image builders share (build.mjs for t6's image, build-systemd.mjs for the
// reference): failing with a message, running a command without a shell, short hashes for
// cache keys, and the mirror apt already uses.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';

/**
 * For a builder called NAME: `fail(message)` (prints `NAME: message`, exits 1), `run(cmd, args)`
 * (its stdout; fails on a non-zero exit), and `tryRun`, the same but throwing, for steps that
 * must undo something (a mount) before the builder exits.
 */
export function tools(name) {
  const fail = (message) => {
    process.stderr.write(`${name}: ${message}\n`);
    process.exit(1);
  };
  const tryRun = (cmd, args, opts = {}) => {
    const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.error?.message || '').trim().slice(-2000)}`);
    return r.stdout;
  };
  const run = (cmd, args, opts = {}) => {
    try {
      return tryRun(cmd, args, opts);
    } catch (err) {
      return fail(err.message);
    }
  };
  return { fail, run, tryRun };
}

/** 16 hex digits of the SHA-256 of the parts: a cache key. */
export const sha = (...parts) => crypto.createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 16);

/** The mirror apt already uses (CONTAINER-LAB.md), else Debian's. */
export function mirror() {
  try {
    const m = /^URIs:\s*(\S+)/m.exec(fs.readFileSync('/etc/apt/sources.list.d/debian.sources', 'utf8'));
    if (m !== null && !m[1].includes('security')) return m[1];
  } catch { /* none */ }
  return 'http://deb.debian.org/debian';
}
