/**
 * POSIX-style option parsing as skalibs' subgetopt does it: bundled letters (`-wU`),
 * option arguments attached or separate (`-T100`, `-T 100`), `--` ends options, the first
 * non-option ends options. Long options are `--name` or `--name=value` when declared.
 */
import { UsageError } from './_run.ts';

/** One parsed option, in command-line order. */
export interface ParsedOption {
  name: string;
  value: string | undefined;
}

/** The spec: letters without argument, letters with argument, long names (with or without argument). */
export interface OptionSpec {
  flags?: string;
  withArg?: string;
  long?: Record<string, 'flag' | 'arg'>;
}

/** Parses `args`; throws UsageError on an unknown option or a missing argument. */
export function getopt(args: readonly string[], spec: OptionSpec): { options: ParsedOption[]; rest: string[] } {
  const options: ParsedOption[] = [];
  const flags = spec.flags ?? '';
  const withArg = spec.withArg ?? '';
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') { i++; break; }
    if (arg.startsWith('--') && spec.long !== undefined) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      const kind = spec.long[name];
      if (kind === undefined) throw new UsageError(`unknown option --${name}`);
      if (kind === 'flag') {
        if (eq >= 0) throw new UsageError(`option --${name} takes no argument`);
        options.push({ name, value: undefined });
      } else {
        let value = eq >= 0 ? arg.slice(eq + 1) : args[++i];
        if (value === undefined) throw new UsageError(`option --${name} needs an argument`);
        options.push({ name, value });
      }
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    for (let j = 1; j < arg.length; j++) {
      const letter = arg[j]!;
      if (withArg.includes(letter)) {
        let value = arg.slice(j + 1);
        if (value === '') {
          const next = args[++i];
          if (next === undefined) throw new UsageError(`option -${letter} needs an argument`);
          value = next;
        }
        options.push({ name: letter, value });
        break;
      }
      if (!flags.includes(letter)) throw new UsageError(`unknown option -${letter}`);
      options.push({ name: letter, value: undefined });
    }
  }
  return { options, rest: args.slice(i) };
}

/** Parses an unsigned decimal option value, or throws UsageError naming the option. */
export function uintOption(name: string, value: string | undefined): number {
  if (value === undefined || !/^\d+$/.test(value)) throw new UsageError(`option -${name} needs an unsigned integer, got ${JSON.stringify(value)}`);
  return Number(value);
}
