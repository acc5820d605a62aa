/** `bucardo compare SYNC`: the sync's tables on all its databases, by key ranges and content hashes. */
import type { Command } from 'commander';
import { topologyPath, action, EXIT } from '../common.js';
import { fileOption, formatOption, parseCount } from '../flags.js';
import { loadTopology } from '../../engine/topology/load.js';
import { compareSync } from '../../engine/compare/index.js';
import { renderCompareJson, renderCompareText } from '../../engine/compare/render.js';

interface CompareOpts {
  file?: string;
  format: 'text' | 'json';
  chunkRows?: number;
}

export function register(program: Command): void {
  fileOption(program.command('compare'))
    .argument('<sync>', 'the sync whose tables are compared')
    .description("compare the sync's tables across all its databases, by key ranges and content hashes (never loading a table into memory)")
    .addOption(formatOption(['text', 'json'], 'text or json'))
    .option('--chunk-rows <n>', 'rows per chunk on the first pass (default 10000)', parseCount('--chunk-rows', 'a positive whole number of rows'))
    .addHelpText(
      'after',
      '\nExit codes: 0 equal, 2 differences, 1 error.\nCompare once the runner has caught up: changes not yet replicated show as differences.',
    )
    .action(
      action(async (sync: string, opts: CompareOpts) => {
        const topology = loadTopology(topologyPath(opts));
        const result = await compareSync(topology, sync, { chunkRows: opts.chunkRows });
        process.stdout.write(opts.format === 'json' ? renderCompareJson(result) : renderCompareText(result));
        return result.equal ? EXIT.ok : EXIT.differences;
      }),
    );
}
