import type { Command } from 'commander';
import { fileOption, action } from '../common.js';
import { BucardoError } from '../../engine/errors.js';

/** `bucardo init` (placeholder until implemented). */
export function register(program: Command): void {
  fileOption(program.command('init').description('init (not implemented yet)')).action(
    action(() => {
      throw new BucardoError('not_implemented', 'bucardo init is not implemented yet');
    }),
  );
}
