/**
 * Step 10 of a run (docs/protocol.md): in every database's write transaction, one
 * statement writes the watermark (compare and set over the run_seq the run read), the
 * run's history row, its conflicts, the onetimecopy flags it cleared and the sequences it
 * brought up; then the transactions commit one after another. A state that changed since
 * the run read it (which the fence rules out) fails the run before anything commits.
 *
 * The write transactions committed here were opened by the fence (step 1, run.ts) and
 * carried every step in between: they are ended here, not by a helper around one step.
 */
import type { RunInputs } from './inputs.js';
import type { ConflictRecord } from './types.js';
import type { SourceRead } from './snapshot.js';
import { writeStateSql, writeStateParams, setvalSql } from './sql/state.js';
import { COMMIT_SQL, ROLLBACK_SQL } from './sql/transaction.js';
import { BucardoError } from '../errors.js';
import { commitReceivers } from './foreign.js';

export interface RunRecord {
  snapshots: Record<string, string>;
  rows: number;
  rowsByTable: Record<string, number>;
  conflicts: number;
  conflictRecords: ConflictRecord[];
}

export async function commitRun(inp: RunInputs, rec: RunRecord): Promise<void> {
  const { ctx, scope, writers, states } = inp;
  const sources = new Set(ctx.sources.map((s) => s.name));
  const conflictRows = JSON.stringify(
    rec.conflictRecords.map((c) => ({
      schema: c.schema,
      name: c.name,
      key: c.key,
      winner: c.winner,
      detail: { changed: c.changed, ...(c.merged ? { merged: true } : {}) },
    })),
  );
  const oks = await Promise.all(
    ctx.databases.map(async (d) => {
      const r = await writers.get(d.name)!.query<{ ok: boolean }>(
        writeStateSql(ctx.schema),
        writeStateParams({
          sync: ctx.sync.name,
          runSeq: scope.nextSeq,
          snapshots: rec.snapshots,
          runId: inp.runId,
          started: inp.started,
          rows: rec.rows,
          rowsByTable: rec.rowsByTable,
          conflicts: rec.conflicts,
          runner: inp.runner,
          conflictRows,
          copyDone: scope.tables.filter((t) => t.copyClear.includes(d.name)).map((t) => t.tableId),
          setvals: scope.setvals.get(d.name) ?? [],
          expectedSeq: scope.expectedSeq.get(d.name) ?? 0,
          systemIdentifier: sources.has(d.name) ? (states.get(d.name)?.systemIdentifier ?? null) : null,
        }),
      );
      return { db: d.name, ok: r.rows[0].ok };
    }),
  );
  const moved = oks.filter((o) => !o.ok).map((o) => o.db);
  if (moved.length) {
    throw new BucardoError(
      'state_changed',
      `sync ${ctx.sync.name}: the watermark in database ${moved.join(', ')} changed while this run was in progress (another runner?); nothing was committed`,
      {
        hint: 'run one runner per sync at a time; the run is retried',
      },
    );
  }
  // targets of other engines first: a PostgreSQL commit failing after them only makes the run redo idempotent writes (foreign.ts)
  if (inp.receivers) await commitReceivers(inp, rec.snapshots, rec.rows);
  for (const d of ctx.databases) await writers.get(d.name)!.query(COMMIT_SQL);
}

/**
 * The end of a run that found nothing pending and no onetimecopy due (step 3): the read
 * transactions end, the sequences come up where they differ, and the write transactions
 * commit, having written nothing else (no xid, no WAL); no watermark moves.
 */
export async function commitIdle(inp: RunInputs, reads: SourceRead[]): Promise<void> {
  const { ctx, scope, writers } = inp;
  await Promise.all(reads.map((r) => r.client.query(ROLLBACK_SQL)));
  await Promise.all(
    ctx.databases.map(async (d) => {
      const w = writers.get(d.name)!;
      const sv = scope.setvals.get(d.name);
      if (sv) await w.query(setvalSql(), [sv.map((s) => s[0]), sv.map((s) => s[1]), sv.map((s) => s[2])]);
      await w.query(COMMIT_SQL);
    }),
  );
}
