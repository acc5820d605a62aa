/** `bucardo apply [PLANFILE]`: make the databases match the topology. */
import type { Command } from 'commander';
import { topologyPath, action } from '../common.js';
import { fileOption, noColorOption } from '../flags.js';
import { loadTopologyAndModules } from '../../engine/topology/load.js';
import { applyFlow } from '../applyflow.js';

export function register(program: Command): void {
  fileOption(program.command('apply'))
    .description('make the databases match the topology: one transaction per database; asks on a terminal unless --auto-approve')
    .argument('[planfile]', 'a plan saved with `plan -o`: do exactly it, or refuse if any database changed since')
    .option('--auto-approve', 'do not ask for approval (needed when there is no terminal)')
    .addOption(noColorOption())
    .action(
      action(async (planFile: string | undefined, opts: { file?: string; autoApprove?: boolean; color?: boolean }) => {
        const file = topologyPath(opts);
        return applyFlow(await loadTopologyAndModules(file), file, {
          destroy: false,
          autoApprove: Boolean(opts.autoApprove) || Boolean(planFile),
          planFile,
          noColor: opts.color === false,
        });
      }),
    );
}
