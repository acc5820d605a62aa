import type { Command } from 'commander';
import { fileOption, action } from '../common.js';
import { BucardoError } from '../../engine/errors.js';

/** `bucardo kick` (placeholder until implemented). */
export function register(program: Command): void {
  fileOption(program.command('kick').description('kick (not implemented yet)')).action(
    action(() => {
      throw new BucardoError('not_implemented', 'bucardo kick is not implemented yet');
    }),
  );
}
