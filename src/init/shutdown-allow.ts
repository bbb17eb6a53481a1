/**
 * `shutdown -a`: access control through /etc/shutdown.allow (linux-init.md §3.2). If the file
 * exists, at least one user it lists must be logged in (a USER_PROCESS entry in utmp).
 * The file: at most 4095 bytes, one user name per line, lines starting with `#` are
 * comments, at most 64 users (the rest ignored, with a warning). t6 also trims blanks
 * around a name, where s6 would count them as part of it.
 */
import fs from 'node:fs';
import { loggedInUsers } from './utmp.ts';

/** The default access file. */
export const DEFAULT_SHUTDOWN_ALLOW = '/etc/shutdown.allow';
/** The largest access file accepted. */
export const MAX_ALLOW_SIZE = 4095;
/** The most users read from it. */
export const MAX_ALLOW_USERS = 64;
/** utmp's user field: names are compared on their first 32 bytes. */
const UT_NAMESIZE = 32;

/** The outcome: go ahead (no file, or `user` is logged in), or refuse with a reason (exit 1). */
export type AccessResult =
  | { allowed: true; user: string | undefined; warnings: string[] }
  | { allowed: false; reason: string; warnings: string[] };

/** The user names listed in an access file's text (at most MAX_ALLOW_USERS), and whether some were dropped. */
export function parseShutdownAllow(text: string): { users: string[]; truncated: boolean } {
  const users: string[] = [];
  for (const raw of text.split('\n')) {
    const name = raw.trim();
    if (name === '' || name.startsWith('#')) continue;
    if (users.length === MAX_ALLOW_USERS) return { users, truncated: true };
    users.push(name);
  }
  return { users, truncated: false };
}

/** Truncates a name as utmp stores it. */
function utName(name: string): string {
  return Buffer.from(name).subarray(0, UT_NAMESIZE).toString('utf8');
}

/**
 * Checks the access file against utmp. Throws (fs errors, with the path) when a file exists
 * but cannot be read: the caller makes that exit 111.
 */
export function checkShutdownAllowed(allowPath: string = DEFAULT_SHUTDOWN_ALLOW, utmpPath?: string): AccessResult {
  let buf: Buffer;
  try {
    const st = fs.statSync(allowPath);
    if (st.size > MAX_ALLOW_SIZE) return { allowed: false, reason: `${allowPath} is too big: it needs to be ${MAX_ALLOW_SIZE} bytes or less`, warnings: [] };
    buf = fs.readFileSync(allowPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { allowed: true, user: undefined, warnings: [] };
    throw err;
  }
  if (buf.length > MAX_ALLOW_SIZE) return { allowed: false, reason: `${allowPath} is too big: it needs to be ${MAX_ALLOW_SIZE} bytes or less`, warnings: [] };
  const { users, truncated } = parseShutdownAllow(buf.toString('utf8'));
  const warnings = truncated ? [`${allowPath} lists more than ${MAX_ALLOW_USERS} authorized users - ignoring the extra ones`] : [];
  const wanted = new Set(users.map(utName));
  const present = loggedInUsers(utmpPath).find((e) => wanted.has(e.user));
  if (present === undefined) return { allowed: false, reason: 'no authorized users logged in', warnings };
  return { allowed: true, user: present.user, warnings };
}
