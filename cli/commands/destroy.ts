import type { Command } from 'commander';
import { fileOption, action } from '../common.js';
import { BucardoError } from '../../engine/errors.js';

/** `bucardo destroy` (placeholder until implemented). */
export function register(program: Command): void {
  fileOption(program.command('destroy').description('destroy (not implemented yet)')).action(
    action(() => {
      throw new BucardoError('not_implemented', 'bucardo destroy is not implemented yet');
    }),
  );
}
