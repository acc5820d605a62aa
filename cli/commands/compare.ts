import type { Command } from 'commander';
import { fileOption, action } from '../common.js';
import { BucardoError } from '../../engine/errors.js';

/** `bucardo compare` (placeholder until implemented). */
export function register(program: Command): void {
  fileOption(program.command('compare').description('compare (not implemented yet)')).action(
    action(() => {
      throw new BucardoError('not_implemented', 'bucardo compare is not implemented yet');
    }),
  );
}
