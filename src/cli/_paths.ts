/** Where t6's own commands are, for the scripts the tools write. */
import path from 'node:path';

/** t6's bin directory: the bundles run from dist/, the commands are in bin/ beside it. */
export function t6BinDir(): string {
  return path.resolve(path.dirname(process.argv[1] ?? '.'), '..', 'bin');
}
