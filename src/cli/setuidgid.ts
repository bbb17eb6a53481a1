/**
 * t6-setuidgid ACCOUNT PROG [ARGS…]: runs PROG as ACCOUNT, as s6-setuidgid does, for images
 * whose scripts call it (`exec s6-setuidgid abc myapp`) without s6 installed. ACCOUNT is a
 * user name (its uid, its primary gid, and the groups of /etc/group that list it) or
 * `uid:gid` in numbers (no supplementary groups); empty, PROG runs as it is. The fds PROG
 * was meant to get (a notification-fd) stay open. Exit 100 usage, 1 unknown account, 111
 * when the ids cannot be taken or PROG cannot be run.
 */
import { type CommandIo, FatalError, UsageError } from './_run.ts';
import { EXIT } from '../s6/exit.ts';
import { readAccountDb, setuidgidAccount } from '../init/legacy-accounts.ts';
import { keepInheritedFds } from '../sys/fd.ts';
import { currentEnv, execve, findInPath } from '../sys/spawn.ts';
import { strerror } from '../sys/errors.ts';

const USAGE = 't6-setuidgid account prog...';

export async function main(args: string[], io: CommandIo): Promise<number> {
  if (args[0] === '--help') { io.out(`usage: ${USAGE}\n`); return EXIT.ok; }
  const [account, ...argv] = args;
  if (account === undefined || argv.length === 0) throw new UsageError(USAGE);
  if (account !== '') {
    const who = setuidgidAccount(account, readAccountDb('/etc/passwd', '/etc/group'));
    if (who === undefined) throw new FatalError(`unknown account: ${account}`, EXIT.failed);
    const { setgroups, setgid, setuid } = process;
    try {
      // Node has them on POSIX systems only: t6 runs on Linux.
      if (setgroups === undefined || setgid === undefined || setuid === undefined) throw new Error('no setuid on this platform');
      setgroups(who.groups);
      setgid(who.gid);
      setuid(who.uid);
    } catch (err) {
      throw new FatalError(`unable to become ${account}: ${strerror(err)}`, EXIT.system);
    }
  }
  keepInheritedFds();
  const env = currentEnv();
  const err = execve(findInPath(argv[0]!, env), argv, env);
  throw new FatalError(`unable to run ${argv[0]}: ${strerror(err)}`, EXIT.system);
}
