/**
 * One run of a `kind: fullcopy` sync: every target's rows replaced by the source's, all
 * tables from one REPEATABLE READ snapshot of the single source, each target in one
 * transaction (emptied by `deletemethod`, then loaded by COPY; one read feeds every
 * target). Sequences are brought up as in a delta run.
 */
import type pg from 'pg';
import type { RunResult } from './types.js';
import type { RunInputs } from './delta.js';
import { wholeTableSql } from './sql/pending.js';
import { WRITE_SETUP_SQL, copyIntoTableSql } from './sql/apply.js';
import { writeStateSql, writeStateParams } from './sql/state.js';
import { copyBetween } from './copy.js';
import { qualify } from '../sql/ident.js';
import { deferMaintenance } from './finish.js';
import { withIndexesDropped } from './rebuild.js';

export async function runFullcopy(inp: RunInputs): Promise<RunResult> {
  const { ctx, conns, plan } = inp;
  const sync = ctx.sync;
  const read = await conns.get(ctx.sources[0], 'read');
  await read.query(sync.isolation === 'serializable' ? 'BEGIN ISOLATION LEVEL SERIALIZABLE' : 'BEGIN ISOLATION LEVEL REPEATABLE READ');
  const snap = (await read.query<{ s: string }>('SELECT pg_current_snapshot()::text AS s')).rows[0].s;
  const targets = ctx.databases.slice(1);
  const writers = await conns.all(targets, 'write');
  const opened: pg.Client[] = [];
  for (const d of targets) {
    const w = writers.get(d.name)!;
    await w.query('BEGIN');
    opened.push(w);
  }
  await Promise.all(targets.map((d) => writers.get(d.name)!.query(WRITE_SETUP_SQL, [sync.name])));
  const names = plan.tables.map((t) => qualify(t.schema, t.name));
  if (names.length) {
    // one statement for every table, so foreign keys between them do not stop a TRUNCATE
    const empty = sync.deletemethod === 'delete' ? names.map((n) => `DELETE FROM ${n}`).join(';\n') : `TRUNCATE ${names.join(', ')}${sync.deletemethod === 'truncate_cascade' ? ' CASCADE' : ''}`;
    await Promise.all(targets.map((d) => writers.get(d.name)!.query(empty)));
  }
  const rowsByTable: Record<string, number> = {};
  for (const t of plan.tables) {
    const copy = () => copyBetween(read, wholeTableSql(t, t.columns), targets.map((d) => ({ client: writers.get(d.name)!, sql: copyIntoTableSql(t, t.columns) })));
    // rebuild_index: load without the indexes, build them after (the table was emptied above)
    rowsByTable[t.display] = await (sync.rebuildIndex ? withIndexesDropped(targets.map((d) => writers.get(d.name)!), t, copy) : copy());
  }
  const rows = Object.values(rowsByTable).reduce((a, b) => a + b, 0);
  const snapshots = { [ctx.sources[0].name]: snap };
  const all = ctx.databases;
  const srcWriter = await conns.get(ctx.sources[0], 'write');
  // the source records the run too (status reads it there), in its own small transaction
  const stateOn = new Map<string, pg.Client>([[ctx.sources[0].name, srcWriter], ...writers]);
  await Promise.all(
    all.map((d) => {
      return stateOn.get(d.name)!.query(writeStateSql(ctx.schema), writeStateParams({
        sync: sync.name, runSeq: plan.lastSeq + 1, snapshots, runId: inp.runId, started: inp.started, rows,
        rowsByTable, conflicts: 0, runner: inp.runner, conflictRows: '[]',
        copyDone: plan.tables.filter((t) => t.copyClear.includes(d.name)).map((t) => t.tableId), setvals: plan.setvals.get(d.name) ?? [],
      }));
    }),
  );
  for (const w of opened) await w.query('COMMIT');
  await read.query('ROLLBACK');
  const copiedInto = new Map(plan.tables.map((t) => [t.tableId, targets.map((d) => d.name)]));
  deferMaintenance(ctx, conns, plan.tables, copiedInto);
  return { sync: sync.name, runId: inp.runId, wrote: true, rowsByTable, rows, conflicts: 0, started: inp.started, finished: new Date(), copied: plan.tables.map((t) => t.display) };
}
