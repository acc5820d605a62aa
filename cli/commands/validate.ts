import type { Command } from 'commander';
import { topologyPath, action, EXIT } from '../common.js';
import { fileOption } from '../flags.js';
import { loadTopologyAndModules } from '../../engine/topology/load.js';

export function register(program: Command): void {
  fileOption(
    program
      .command('validate')
      .description('check the topology file (schema, references, loops); connects to no database')
      .addHelpText('after', '\nExit codes: 0 valid, 1 invalid (every problem printed as FILE:LINE:COLUMN: message).'),
  ).action(
    // Loads and checks the file; connects to nothing. Problems are thrown as a TopologyError,
    // which `action` prints as FILE:LINE:COL: lines and turns into exit 1.
    action(async (opts: { file?: string }) => {
      const file = topologyPath(opts);
      const t = await loadTopologyAndModules(file);
      const n = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;
      process.stdout.write(`${file}: valid (${n(t.databases.size, 'database')}, ${n(t.relgroups.size, 'relgroup')}, ${n(t.syncs.size, 'sync')})\n`);
      return EXIT.ok;
    }),
  );
}
