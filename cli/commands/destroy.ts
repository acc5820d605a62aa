/** `bucardo destroy`: remove everything this topology installed, touching no user data. */
import type { Command } from 'commander';
import { topologyPath, action } from '../common.js';
import { fileOption, noColorOption } from '../flags.js';
import { loadTopology } from '../../engine/topology/load.js';
import { applyFlow } from '../applyflow.js';

export function register(program: Command): void {
  fileOption(program.command('destroy'))
    .description("remove every trigger, function, table and schema this topology installed (never a user's row); asks on a terminal unless --auto-approve")
    .option('--auto-approve', 'do not ask for approval (needed when there is no terminal)')
    .addOption(noColorOption())
    .action(
      action(async (opts: { file?: string; autoApprove?: boolean; color?: boolean }) => {
        const file = topologyPath(opts);
        return applyFlow(loadTopology(file), file, { destroy: true, autoApprove: Boolean(opts.autoApprove), noColor: opts.color === false });
      }),
    );
}
