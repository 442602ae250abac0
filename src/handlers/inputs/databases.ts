import { inputError } from '../../lib/errors.js';
import type { InputReader } from '../../lib/inputs.js';
import type { DatabaseSelection } from '../../core/multi-database.js';

/**
 * `databases` and `exclude-databases`, shared by pgdump-to-s3, verify-restore and prune-retention. Undefined when
 * `databases` is empty: the single-database behaviour of `database`, unchanged.
 */
export function readDatabaseSelection(inputs: InputReader): DatabaseSelection | undefined {
  const names = inputs.list('databases');
  const exclude = inputs.list('exclude-databases');
  if (names.length === 0) {
    if (exclude.length)
      throw inputError(
        'exclude-databases',
        'is set but `databases` is empty',
        'Set `databases: all` to back up every database except these, or clear `exclude-databases`.',
      );
    return undefined;
  }
  if (inputs.optional('database')) {
    throw inputError(
      'databases',
      'is set together with `database`',
      '`database` names the one stream of a single-database run; with `databases` each database is its own stream, named after it. Clear one of the two.',
    );
  }
  if (names.includes('all')) {
    if (names.length > 1)
      throw inputError(
        'databases',
        '`all` is combined with database names',
        'Use `all` alone (and leave databases out with `exclude-databases`), or list the databases without `all`.',
      );
    return { all: true, exclude };
  }
  if (exclude.length)
    throw inputError(
      'exclude-databases',
      'only applies to `databases: all`',
      'Leave the databases out of the `databases` list instead, or set `databases: all`.',
    );
  return { all: false, names: [...new Set(names)] };
}
