/** `bucardo status [SYNC]`: state, last run, pending changes and lag per sync. */
import { Option, type Command } from 'commander';
import { fileOption, topologyPath, action, EXIT } from '../common.js';
import { loadTopology } from '../../engine/topology/load.js';
import { readStatus, type SyncStatus } from '../../engine/runner/status.js';
import { redactSecrets } from '../../engine/connect.js';

export function register(program: Command): void {
  fileOption(program.command('status'))
    .description('per sync: state, last run (start, end, rows, conflicts, error), pending changes and lag')
    .argument('[sync]', 'only this sync')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(action(async (sync: string | undefined, opts: { file?: string; format: 'text' | 'json' }) => {
      const { report, problems } = await readStatus(loadTopology(topologyPath(opts)), sync);
      if (opts.format === 'json') process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else process.stdout.write(renderText(report.syncs));
      for (const p of problems) process.stderr.write(`warning: ${redactSecrets(p)}\n`);
      return problems.length ? EXIT.error : EXIT.ok;
    }));
}

function renderText(syncs: SyncStatus[]): string {
  if (!syncs.length) return 'No syncs in the topology.\n';
  const header = ['SYNC', 'STATE', 'LAST RUN', 'DURATION', 'ROWS', 'CONFLICTS', 'TOTAL CONFLICTS', 'PENDING', 'LAG'];
  const rows = syncs.map((s) => {
    const r = s.last_run;
    const dur = r && r.finished ? `${new Date(r.finished).getTime() - new Date(r.started).getTime()} ms` : '-';
    return [
      s.name + (s.enabled ? '' : ' (disabled)'),
      s.state,
      r ? r.started.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : 'never',
      dur,
      r ? String(r.rows) : '-',
      r ? String(r.conflicts) : '-',
      String(s.conflicts_total),
      s.pending === null ? '?' : String(s.pending),
      s.lag_seconds === null ? '?' : `${s.lag_seconds.toFixed(1)} s`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  const out = [line(header), ...rows.map(line)];
  for (const s of syncs) if (s.last_run?.error) out.push('', `${s.name}: last run failed: ${s.last_run.error}`);
  return out.join('\n') + '\n';
}
