/**
 * fix-attrs.d's account field, resolved from the image's own /etc/passwd and /etc/group
 * (read as files: the container's accounts, not the host's, and no NSS modules in pid 1):
 *
 *   user             the user's uid and primary gid
 *   user:group       each part by name, or as a number when it is all digits
 *   …,uid:gid        numbers used when the names do not resolve
 *
 * s6-envuidgid -B would turn an unknown name into 0 (root) without a fallback; t6 refuses
 * it instead, which is surely what a line naming an account meant.
 */
import fs from 'node:fs';

/** Names to ids, from passwd and group files. */
export interface AccountDb {
  users: Map<string, { uid: number; gid: number }>;
  groups: Map<string, number>;
  /** Each user's supplementary groups: the gids of the groups that list it as a member. */
  memberOf: Map<string, number[]>;
}

const isNumber = (s: string): boolean => /^[0-9]+$/.test(s) && Number(s) <= 0xfffffffe;

/** Reads a passwd and a group file (a missing file is empty; a malformed line is skipped). */
export function readAccountDb(passwdPath: string, groupPath: string): AccountDb {
  const lines = (file: string): string[][] => {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(':'));
  };
  const users = new Map<string, { uid: number; gid: number }>();
  for (const f of lines(passwdPath)) {
    if (f.length >= 4 && f[0] !== '' && isNumber(f[2]!) && isNumber(f[3]!) && !users.has(f[0]!)) {
      users.set(f[0]!, { uid: Number(f[2]), gid: Number(f[3]) });
    }
  }
  const groups = new Map<string, number>();
  const memberOf = new Map<string, number[]>();
  for (const f of lines(groupPath)) {
    if (f.length >= 3 && f[0] !== '' && isNumber(f[2]!) && !groups.has(f[0]!)) {
      groups.set(f[0]!, Number(f[2]));
      for (const member of (f[3] ?? '').split(',').filter((m) => m !== '')) memberOf.set(member, [...(memberOf.get(member) ?? []), Number(f[2])]);
    }
  }
  return { users, groups, memberOf };
}

/** The ids of an account field, or the reason it has none. */
export function resolveAccount(field: string, db: AccountDb): { uid: number; gid: number } | { error: string } {
  const comma = field.indexOf(',');
  const account = comma < 0 ? field : field.slice(0, comma);
  let fallback: { uid: number; gid: number } | undefined;
  if (comma >= 0) {
    const f = field.slice(comma + 1).split(':');
    if (f.length !== 2 || !isNumber(f[0]!) || !isNumber(f[1]!)) return { error: `fallback ${JSON.stringify(field.slice(comma + 1))} is not uid:gid in numbers` };
    fallback = { uid: Number(f[0]), gid: Number(f[1]) };
  }
  const found = lookup(account, db);
  if (found !== undefined) return found;
  return fallback ?? { error: `unknown account ${JSON.stringify(account)}` };
}

/** `user` or `user:group` by name (or number, in the second form); undefined when a part does not resolve. */
function lookup(account: string, db: AccountDb): { uid: number; gid: number } | undefined {
  const colon = account.indexOf(':');
  if (colon < 0) return db.users.get(account);
  const user = account.slice(0, colon);
  const group = account.slice(colon + 1);
  const uid = db.users.get(user)?.uid ?? (isNumber(user) ? Number(user) : undefined);
  const gid = db.groups.get(group) ?? (isNumber(group) ? Number(group) : undefined);
  return uid === undefined || gid === undefined ? undefined : { uid, gid };
}

/**
 * s6-setuidgid's account: `uid:gid` in numbers (no supplementary groups), or a user name:
 * its uid, its primary gid, and the groups that list it. Undefined when the name is unknown.
 */
export function setuidgidAccount(account: string, db: AccountDb): { uid: number; gid: number; groups: number[] } | undefined {
  const numeric = /^([0-9]+):([0-9]+)$/.exec(account);
  if (numeric !== null) return { uid: Number(numeric[1]), gid: Number(numeric[2]), groups: [] };
  const user = db.users.get(account);
  if (user === undefined) return undefined;
  return { ...user, groups: [...new Set([user.gid, ...(db.memberOf.get(account) ?? [])])] };
}
