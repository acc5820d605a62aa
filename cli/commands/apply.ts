import type { Command } from 'commander';
import { fileOption, action } from '../common.js';
import { BucardoError } from '../../engine/errors.js';

/** `bucardo apply` (placeholder until implemented). */
export function register(program: Command): void {
  fileOption(program.command('apply').description('apply (not implemented yet)')).action(
    action(() => {
      throw new BucardoError('not_implemented', 'bucardo apply is not implemented yet');
    }),
  );
}
