import type { Command } from 'commander';
import { fileOption, action } from '../common.js';
import { BucardoError } from '../../engine/errors.js';

/** `bucardo run` (placeholder until implemented). */
export function register(program: Command): void {
  fileOption(program.command('run').description('run (not implemented yet)')).action(
    action(() => {
      throw new BucardoError('not_implemented', 'bucardo run is not implemented yet');
    }),
  );
}
