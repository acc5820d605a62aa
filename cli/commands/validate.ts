import type { Command } from 'commander';
import { fileOption, action } from '../common.js';
import { BucardoError } from '../../engine/errors.js';

/** `bucardo validate` (placeholder until implemented). */
export function register(program: Command): void {
  fileOption(program.command('validate').description('validate (not implemented yet)')).action(
    action(() => {
      throw new BucardoError('not_implemented', 'bucardo validate is not implemented yet');
    }),
  );
}
