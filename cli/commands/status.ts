import type { Command } from 'commander';
import { fileOption, action } from '../common.js';
import { BucardoError } from '../../engine/errors.js';

/** `bucardo status` (placeholder until implemented). */
export function register(program: Command): void {
  fileOption(program.command('status').description('status (not implemented yet)')).action(
    action(() => {
      throw new BucardoError('not_implemented', 'bucardo status is not implemented yet');
    }),
  );
}
