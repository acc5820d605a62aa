import type { Command } from 'commander';
import { fileOption, action } from '../common.js';
import { BucardoError } from '../../engine/errors.js';

/** `bucardo plan` (placeholder until implemented). */
export function register(program: Command): void {
  fileOption(program.command('plan').description('plan (not implemented yet)')).action(
    action(() => {
      throw new BucardoError('not_implemented', 'bucardo plan is not implemented yet');
    }),
  );
}
