/**
 * One run of a `kind: fullcopy` sync: every target's rows replaced by the source's, all
 * tables from one REPEATABLE READ snapshot of the single source, each target in its fenced
 * transaction (emptied by `deletemethod`, then loaded by COPY; one read feeds every
 * target). The source records the run and the sequences come up as in a delta run.
 */
import type { RunResult } from './types.js';
import type { RunInputs } from './inputs.js';
import { WRITE_SETUP_SQL, fullcopyEmptySql } from './sql/apply.js';
import { copyTable } from './send.js';
import { beginReadSql, CURRENT_SNAPSHOT_SQL, ROLLBACK_SQL } from './sql/transaction.js';
import { tableOn } from './receiving.js';
import { deferMaintenance, deferHistoryPrune } from './finish.js';
import { withIndexesDropped } from './rebuild.js';
import { commitRun } from './commit.js';
import { copyIntoReceivers } from './foreign.js';
import { assertScopeCurrent, assertNotRewritten } from './snapshot.js';

export async function runFullcopy(inp: RunInputs): Promise<RunResult> {
  const { ctx, conns, scope, writers } = inp;
  const sync = ctx.sync;
  const read = await conns.get(ctx.sources[0], 'read');
  // The snapshot's transaction, ended once every table is copied. On a failure the run's
  // error path closes the connection instead (run.ts): a ROLLBACK sent after a COPY cut
  // short would never be answered (pg-copy-streams stops reading the connection).
  await read.query(beginReadSql(sync.isolation));
  const snap = (await read.query<{ snapshot: string }>(CURRENT_SNAPSHOT_SQL)).rows[0].snapshot;
  await assertScopeCurrent(inp, [], true);
  const targets = ctx.databases.slice(1);
  const tw = targets.map((d) => writers.get(d.name)!);
  await Promise.all(tw.map((w) => w.query(WRITE_SETUP_SQL, [sync.name])));
  if (scope.tables.length) {
    // one statement for every table, so foreign keys between them do not stop a TRUNCATE
    await Promise.all(
      targets.map((d, i) =>
        tw[i].query(
          fullcopyEmptySql(
            scope.tables.map((t) => tableOn(t, d.name)),
            sync.deletemethod,
          ),
        ),
      ),
    );
  }
  const rowsByTable: Record<string, number> = {};
  for (const t of scope.tables) {
    const copy = () =>
      copyTable(
        inp,
        read,
        t,
        targets.map((d) => d.name),
      );
    // rebuild_index: load without the indexes, build them after (the table was emptied above)
    rowsByTable[t.display] = await (sync.rebuildIndex
      ? withIndexesDropped(
          tw,
          targets.map((d) => tableOn(t, d.name)),
          copy,
        )
      : copy());
  }
  if (inp.receivers) for (const [t, n] of Object.entries(await copyIntoReceivers(inp, read))) rowsByTable[t] = Math.max(rowsByTable[t] ?? 0, n);
  await assertNotRewritten(read, ctx.sources[0].name, sync.name, scope.tables);
  await read.query(ROLLBACK_SQL);
  const rows = Object.values(rowsByTable).reduce((a, b) => a + b, 0);
  await commitRun(inp, { snapshots: { [ctx.sources[0].name]: snap }, rows, rowsByTable, conflicts: 0, conflictRecords: [] });
  const copiedInto = new Map(scope.tables.map((t) => [t.tableId, targets.map((d) => d.name)]));
  deferMaintenance(ctx, conns, scope.tables, copiedInto);
  deferHistoryPrune(ctx, conns);
  return {
    sync: sync.name,
    runId: inp.runId,
    wrote: true,
    rowsByTable,
    rows,
    conflicts: 0,
    started: inp.started,
    finished: new Date(),
    copied: scope.tables.map((t) => t.display),
  };
}
