/** `bucardo kick SYNC [--wait [SECONDS]]`: wake a running runner for one sync. */
import type { Command } from 'commander';
import { topologyPath, action, EXIT } from '../common.js';
import { fileOption, parseSeconds } from '../flags.js';
import { loadTopology } from '../../engine/topology/load.js';
import { kick } from '../../engine/runner/kick.js';
import { BucardoError } from '../../engine/errors.js';

/** --wait without a value. */
const DEFAULT_WAIT_SECONDS = 60;

export function register(program: Command): void {
  fileOption(program.command('kick'))
    .description('wake the runner for SYNC; with --wait, until a run of SYNC that started after the kick finished')
    .argument('<sync>', 'the sync to run')
    .option(
      '--wait [seconds]',
      `wait for that run to finish (default ${DEFAULT_WAIT_SECONDS} s); exit 1 if it failed or timed out`,
      parseSeconds('--wait', 'a number of seconds'),
    )
    .action(
      action(async (sync: string, opts: { file?: string; wait?: number | true }) => {
        const wait = opts.wait === undefined ? null : opts.wait === true ? DEFAULT_WAIT_SECONDS : opts.wait;
        const r = await kick(loadTopology(topologyPath(opts)), sync, wait);
        if (!r.waited) {
          process.stdout.write(`kicked sync ${sync}\n`);
          return EXIT.ok;
        }
        if (r.ok) {
          process.stdout.write(`sync ${sync}: run finished\n`);
          return EXIT.ok;
        }
        if (r.timedOut) throw new BucardoError('kick_timeout', `${r.error}`, { hint: 'is a runner (bucardo run) running for this topology?' });
        throw new BucardoError('run_failed', `the run of sync ${sync} failed: ${r.error}`);
      }),
    );
}
