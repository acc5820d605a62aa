import type { Command } from 'commander';
import { fileOption, action } from '../common.js';
import { BucardoError } from '../../engine/errors.js';

/** `bucardo demo` (placeholder until implemented). */
export function register(program: Command): void {
  fileOption(program.command('demo').description('demo (not implemented yet)')).action(
    action(() => {
      throw new BucardoError('not_implemented', 'bucardo demo is not implemented yet');
    }),
  );
}
