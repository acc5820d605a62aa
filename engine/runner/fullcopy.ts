/**
 * One run of a `kind: fullcopy` sync: every target's rows replaced by the source's, all
 * tables from one REPEATABLE READ snapshot of the single source, each target in its fenced
 * transaction (emptied by `deletemethod`, then loaded by COPY; one read feeds every
 * target). The source records the run and the sequences come up as in a delta run.
 */
import type { RunResult } from './types.js';
import type { RunInputs } from './inputs.js';
import { WRITE_SETUP_SQL } from './sql/apply.js';
import { copyTable } from './send.js';
import { tableOn } from './receiving.js';
import { qualify } from '../sql/ident.js';
import { deferMaintenance, deferHistoryPrune } from './finish.js';
import { withIndexesDropped } from './rebuild.js';
import { commitRun } from './commit.js';

export async function runFullcopy(inp: RunInputs): Promise<RunResult> {
  const { ctx, conns, plan, writers } = inp;
  const sync = ctx.sync;
  const read = await conns.get(ctx.sources[0], 'read');
  await read.query(sync.isolation === 'serializable' ? 'BEGIN ISOLATION LEVEL SERIALIZABLE' : 'BEGIN ISOLATION LEVEL REPEATABLE READ');
  const snap = (await read.query<{ s: string }>('SELECT pg_current_snapshot()::text AS s')).rows[0].s;
  const targets = ctx.databases.slice(1);
  const tw = targets.map((d) => writers.get(d.name)!);
  await Promise.all(tw.map((w) => w.query(WRITE_SETUP_SQL, [sync.name])));
  if (plan.tables.length) {
    // one statement for every table, so foreign keys between them do not stop a TRUNCATE
    await Promise.all(targets.map((d, i) => {
      const names = plan.tables.map((t) => tableOn(t, d.name)).map((t) => qualify(t.schema, t.name));
      return tw[i].query(sync.deletemethod === 'delete' ? names.map((n) => `DELETE FROM ${n}`).join(';\n') : `TRUNCATE ${names.join(', ')}${sync.deletemethod === 'truncate_cascade' ? ' CASCADE' : ''}`);
    }));
  }
  const rowsByTable: Record<string, number> = {};
  for (const t of plan.tables) {
    const copy = () => copyTable(inp, read, t, targets.map((d) => d.name));
    // rebuild_index: load without the indexes, build them after (the table was emptied above)
    rowsByTable[t.display] = await (sync.rebuildIndex ? withIndexesDropped(tw, targets.map((d) => tableOn(t, d.name)), copy) : copy());
  }
  await read.query('ROLLBACK');
  const rows = Object.values(rowsByTable).reduce((a, b) => a + b, 0);
  await commitRun(inp, { snapshots: { [ctx.sources[0].name]: snap }, rows, rowsByTable, conflicts: 0, conflictRecords: [] });
  const copiedInto = new Map(plan.tables.map((t) => [t.tableId, targets.map((d) => d.name)]));
  deferMaintenance(ctx, conns, plan.tables, copiedInto);
  deferHistoryPrune(ctx, conns);
  return { sync: sync.name, runId: inp.runId, wrote: true, rowsByTable, rows, conflicts: 0, started: inp.started, finished: new Date(), copied: plan.tables.map((t) => t.display) };
}
