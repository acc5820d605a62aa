/**
 * What a run moved, per table and database, for after_sync's `ctx.summary` (SPEC section
 * 6, docs/custom-code.md). Counted from what the run already knows (no query): the keys
 * each source won in step 4, the rows staged into or applied directly on each database,
 * less the keys a receiver deferred.
 */
import type { RunInputs } from '../inputs.js';
import type { SourceRead } from '../snapshot.js';
import type { Work, Deferred } from '../receive.js';
import type { RunResult } from '../types.js';
import type { SyncContext } from '../context.js';

type Traffic = NonNullable<RunResult['traffic']>;

/** Per table: rows sent by each source, rows taken by each database. */
export function trafficOf(inp: RunInputs, reads: SourceRead[], work: Work, deferred: Deferred): Traffic {
  const out: Traffic = {};
  const entry = (display: string) => (out[display] ??= { sent: {}, received: {} });
  const add = (m: Record<string, number>, db: string, n: number) => {
    if (n) m[db] = (m[db] ?? 0) + n;
  };
  for (const t of inp.scope.tables) {
    for (const r of reads) add(entry(t.display).sent, r.db, r.pending.get(t.tableId)?.n ?? 0);
    const direct = work.direct.get(t.tableId);
    if (direct) for (const d of inp.ctx.databases) if (d.name !== direct.db) add(entry(t.display).received, d.name, direct.pending.get(t.tableId)!.n);
  }
  for (const [db, m] of work.staged) {
    for (const t of inp.scope.tables) {
      const n = m.get(t.tableId) ?? 0;
      const back = (deferred.get(db) ?? []).filter((x) => x.t.tableId === t.tableId).reduce((a, x) => a + x.n, 0);
      add(entry(t.display).received, db, n - back);
    }
  }
  for (const k of Object.keys(out)) if (!Object.keys(out[k].sent).length && !Object.keys(out[k].received).length) delete out[k];
  return out;
}

/** after_sync's ctx.summary. */
export interface RunSummary {
  rows: number;
  /** Per table: all its rows, those each source sent, those each database took. */
  tables: Record<string, { rows: number; sent: Record<string, number>; received: Record<string, number> }>;
  conflicts: number;
  /** The conflicts recorded (up to 10,000 per run; `conflicts` counts them all). */
  conflict_records: { table: string; key: Record<string, unknown>; winner: string | null; merged: boolean; changed: { database: string; at: string }[] }[];
  /** Tables copied whole (onetimecopy, fullcopy). */
  copied: string[];
  /** Changes handed back to their source for the next run, per table. */
  deferred: Record<string, number>;
  started: string;
  finished: string;
  duration_ms: number;
}

export function makeSummary(ctx: SyncContext, r: RunResult): RunSummary {
  const tables: RunSummary['tables'] = {};
  for (const [display, rows] of Object.entries(r.rowsByTable)) {
    const traffic = r.traffic?.[display];
    // a fullcopy sends every row of its one source to every target
    const fullcopy = ctx.sync.kind === 'fullcopy';
    tables[display] = {
      rows,
      sent: traffic?.sent ?? (fullcopy ? { [ctx.sources[0].name]: rows } : {}),
      received: traffic?.received ?? (fullcopy ? Object.fromEntries(ctx.targets.map((d) => [d.name, rows])) : {}),
    };
  }
  return {
    rows: r.rows,
    tables,
    conflicts: r.conflicts,
    conflict_records: (r.conflictRecords ?? []).map((c) => ({ table: c.table, key: c.key, winner: c.winner, merged: Boolean(c.merged), changed: c.changed })),
    copied: r.copied,
    deferred: r.deferred ?? {},
    started: r.started.toISOString(),
    finished: r.finished.toISOString(),
    duration_ms: r.finished.getTime() - r.started.getTime(),
  };
}
