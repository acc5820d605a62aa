/** `bucardo compare SYNC`: the sync's tables on all its databases, by key ranges and content hashes. */
import { Command, Option } from 'commander';
import { fileOption, topologyPath, action, EXIT } from '../common.js';
import { loadTopology } from '../../engine/topology/load.js';
import { compareSync } from '../../engine/compare/index.js';
import { renderCompareJson, renderCompareText } from '../../engine/compare/render.js';
import { BucardoError } from '../../engine/errors.js';

interface CompareOpts {
  file?: string;
  format: 'text' | 'json';
  chunkRows?: string;
}

export function register(program: Command): void {
  fileOption(program.command('compare'))
    .argument('<sync>', 'the sync whose tables are compared')
    .description("compare the sync's tables across all its databases, by key ranges and content hashes (never loading a table into memory)")
    .addOption(new Option('--format <format>', 'text or json').choices(['text', 'json']).default('text'))
    .option('--chunk-rows <n>', 'rows per chunk on the first pass (default 10000)')
    .addHelpText('after', '\nExit codes: 0 equal, 2 differences, 1 error.\nCompare once the runner has caught up: changes not yet replicated show as differences.')
    .action(action(async (sync: string, opts: CompareOpts) => {
      let chunkRows: number | undefined;
      if (opts.chunkRows !== undefined) {
        chunkRows = Number(opts.chunkRows);
        if (!Number.isInteger(chunkRows) || chunkRows < 1) throw new BucardoError('bad_flag', `--chunk-rows must be a positive integer, not "${opts.chunkRows}"`);
      }
      const topology = loadTopology(topologyPath(opts));
      const result = await compareSync(topology, sync, { chunkRows });
      process.stdout.write(opts.format === 'json' ? renderCompareJson(result) : renderCompareText(result));
      return result.equal ? EXIT.ok : EXIT.differences;
    }));
}
