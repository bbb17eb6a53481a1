/**
 * What the client commands (svc, svstat, svwait, svscanctl, svok) share: s6-style option
 * parsing that answers a bad command line with the usage string, `--help`, and the exit
 * code of each kind of ClientError.
 */
import { type OptionSpec, type ParsedOption, getopt } from './_getopt.ts';
import { UsageError } from './_run.ts';
import type { ClientErrorCode } from '../s6/client.ts';
import { EXIT } from '../s6/exit.ts';

/**
 * Parses `args` like skalibs' subgetopt, plus `--help`. Returns undefined when help was
 * asked for (the caller prints it); throws UsageError(usage) on a bad option, as s6 does.
 */
export function parseClientArgs(args: readonly string[], spec: OptionSpec, usage: string): { options: ParsedOption[]; rest: string[] } | undefined {
  let parsed: { options: ParsedOption[]; rest: string[] };
  try {
    parsed = getopt(args, { ...spec, long: { help: 'flag', ...spec.long } });
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(usage);
    throw err;
  }
  return parsed.options.some((o) => o.name === 'help') ? undefined : parsed;
}

/** Exit codes of t6-svc (s6-svc ≥ 2.14), also used by t6-svscanctl: one meaning per code. */
export const CONTROL_EXIT: Record<ClientErrorCode, number> = {
  'not-supervised': EXIT.notSupervised,
  'broken-supervise-dir': EXIT.failed,
  system: EXIT.system,
};
