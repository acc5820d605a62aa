/** `bucardo status [SYNC]`: state, last run, pending changes and lag per sync, and what looks wrong. */
import type { Command } from 'commander';
import { topologyPath, action, printStderr, EXIT } from '../common.js';
import { fileOption, formatOption } from '../flags.js';
import { loadTopology } from '../../engine/topology/load.js';
import { readStatus, formatDuration, type StatusReport, type StaleSync, type SyncRunners, type RunnerRef } from '../../engine/runner/status.js';
import { redactSecrets } from '../../engine/connect.js';

const HELP = `
Text output: one row per sync (ROWS: the last run's; CONFLICTS: all resolved so far;
LAG: age of the oldest pending change), then a line for each sync that no runner has run
for more than twice its checktime plus 10 s ("is \`bucardo run\` running?"), each database
that could not be read, each failed run's full error, and per sync the runners (HOST:PID)
that hold it now, ran it last and are connected for it.

JSON output: {"format_version": "1", "syncs": [{"name", "enabled", "state", "last_run",
"conflicts_total", "pending", "lag_seconds"}] (last_run has "skipped": REASON when a
before_sync hook skipped it), "stale": [{"sync", "checktime_seconds",
"last_activity", "seconds_since"}], "unreadable": [{"sync", "database", "error"}],
"runners": [{"sync", "holding", "last_run_by", "connected": [...]}]} (a runner: {"host",
"pid"}; holding and last_run_by may be null), and with targets of other engines
"targets": [{"sync", "database", "type", "run_seq", "last_written", "rows"}].

Exit codes: 0 when every database of the syncs shown was read (whatever their state: a
failed or stale sync is reported, not an error of status); 1 when status could not do its
whole job: the topology file is invalid, SYNC is unknown, or a database could not be read
(what could be read is still printed; the unreadable databases are named on stderr).`;

export function register(program: Command): void {
  fileOption(program.command('status'))
    .description('per sync: state, last run (start, end, rows, conflicts, error), pending changes and lag')
    .argument('[sync]', 'only this sync')
    .addOption(formatOption(['text', 'json'], 'output format'))
    .addHelpText('after', HELP)
    .action(
      action(async (sync: string | undefined, opts: { file?: string; format: 'text' | 'json' }) => {
        const { report, problems } = await readStatus(loadTopology(topologyPath(opts)), sync);
        if (opts.format === 'json') process.stdout.write(`${redactSecrets(JSON.stringify(report, null, 2))}\n`);
        else process.stdout.write(redactSecrets(renderStatusText(report)));
        for (const p of problems) printStderr(`warning: ${p}\n`);
        return problems.length ? EXIT.error : EXIT.ok;
      }),
    );
}

/** Longest last error shown in the table; the whole message follows below it. */
const ERROR_WIDTH = 60;

/** The table and the notes under it. */
export function renderStatusText(report: StatusReport): string {
  const now = Date.now();
  const syncs = report.syncs;
  if (!syncs.length) return 'No syncs in the topology.\n';
  const header = ['SYNC', 'STATE', 'LAST RUN', 'AGE', 'ROWS', 'CONFLICTS', 'PENDING', 'LAG', 'LAST ERROR'];
  const rows = syncs.map((s) => {
    const r = s.last_run;
    const at = r ? (r.finished ?? r.started) : null;
    return [
      s.name + (s.enabled ? '' : ' (disabled)'),
      s.state,
      at ? at.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : 'never',
      at ? `${formatDuration((now - new Date(at).getTime()) / 1000)} ago` : '-',
      r ? String(r.rows) : '-',
      String(s.conflicts_total),
      s.pending === null ? '?' : String(s.pending),
      s.lag_seconds === null ? '?' : formatDuration(s.lag_seconds),
      r?.error ? shorten(r.error) : '-',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  const notes: string[] = [];
  for (const st of report.stale) notes.push(staleLine(st));
  for (const u of report.unreadable)
    notes.push(`sync ${u.sync}: database ${u.database} could not be read, so what it holds is missing above (the error is on stderr)`);
  for (const s of syncs)
    if (s.last_run?.error && shorten(s.last_run.error) !== s.last_run.error) notes.push(`sync ${s.name}: last run failed: ${s.last_run.error}`);
  for (const s of syncs) if (s.last_run?.skipped) notes.push(`sync ${s.name}: last run skipped by before_sync: ${s.last_run.skipped}`);
  for (const r of report.runners ?? []) {
    const line = runnersLine(r);
    if (line) notes.push(line);
  }
  for (const t of report.targets ?? [])
    notes.push(
      `sync ${t.sync}: ${t.type} database ${t.database} at run ${t.run_seq}${t.last_written ? `, last written ${t.last_written.replace('T', ' ').replace(/\.\d+Z$/, 'Z')} (${t.rows} row${t.rows === 1 ? '' : 's'})` : ', never written'}`,
    );
  if (notes.length) out.push('', ...notes);
  return `${out.join('\n')}\n`;
}

export function staleLine(st: StaleSync): string {
  const check = formatDuration(st.checktime_seconds);
  const what = st.seconds_since === null ? 'never run' : `no run for ${formatDuration(st.seconds_since)}`;
  return `sync ${st.sync}: ${what} although checktime is ${check} — is \`bucardo run\` running?`;
}

/** `sync S: runner H:P holds it now; last run by H:P; connected: H:P, H:P`, the parts known; null: none. */
function runnersLine(r: SyncRunners): string | null {
  const who = (x: RunnerRef) => `${x.host ?? '?'}:${x.pid}`;
  const parts: string[] = [];
  if (r.holding) parts.push(`runner ${who(r.holding)} holds it now`);
  if (r.last_run_by) parts.push(`last run by ${who(r.last_run_by)}`);
  if (r.connected.length) parts.push(`connected: ${r.connected.map(who).join(', ')}`);
  return parts.length ? `sync ${r.sync}: ${parts.join('; ')}` : null;
}

function shorten(text: string, width = ERROR_WIDTH): string {
  const one = text.split('\n')[0].trim();
  return one.length <= width && one === text ? one : `${one.slice(0, width - 1).trimEnd()}…`;
}
