/** `bucardo destroy`: remove everything this topology installed, touching no user data. */
import type { Command } from 'commander';
import { fileOption, topologyPath, action } from '../common.js';
import { loadTopology } from '../../engine/topology/load.js';
import { applyFlow } from '../applyflow.js';

export function register(program: Command): void {
  fileOption(program.command('destroy'))
    .description("remove every trigger, function, table and schema this topology installed (never a user's row); asks on a terminal unless --auto-approve")
    .option('--auto-approve', 'do not ask for approval (needed when there is no terminal)')
    .option('--no-color', 'no colours (also when not on a terminal or with NO_COLOR)')
    .action(action(async (opts: { file?: string; autoApprove?: boolean; color?: boolean }) => {
      const file = topologyPath(opts);
      return applyFlow(loadTopology(file), file, { destroy: true, autoApprove: Boolean(opts.autoApprove), noColor: opts.color === false });
    }));
}
