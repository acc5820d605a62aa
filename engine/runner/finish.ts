/**
 * After every database committed (docs/protocol.md, step 8): record `confirmed` on every
 * source, then purge the deltas every consumer has confirmed and ANALYZE / VACUUM the
 * tables a copy loaded. Only the confirm is waited for: the rows are visible already, and
 * the purge and the maintenance run behind the run's report on the maintenance
 * connections (SyncConnections.defer), off the path of the next run. A failure here loses
 * nothing (the next run confirms and purges again), so it is not a failed run.
 */
import type pg from 'pg';
import type { SyncContext } from './context.js';
import type { SyncConnections } from './connections.js';
import { confirmSql, purgeSql, PURGE_SETUP_SQL, pruneHistorySql } from './sql/state.js';
import { vacuumDeltasSql, afterCopySql } from './sql/maintain.js';

/** A purge that removes more rows than this from a delta table is followed by a VACUUM of it (off the run's path). */
const VACUUM_AFTER_PURGE = 10_000;

/**
 * Every table of a sync is purged on a source at least this often; in between, a run
 * purges only the tables it consumed changes of there (the others have nothing new it
 * could free: a DELETE per table, planned each time, cost a 1,000-table sync 0.7 s of
 * server time per run). The full purge also frees what a purge that failed left behind.
 */
const FULL_PURGE_EVERY_MS = 60_000;
const lastFullPurge = new Map<string, number>();

/** The tables to purge on `db` now: every one once a minute (`full`), else those `consumed` names there. */
export function tablesToPurge<T extends { tableId: string }>(
  key: string,
  tables: T[],
  consumed: Set<string> | undefined,
  now = Date.now(),
): { due: T[]; full: boolean } {
  if (now - (lastFullPurge.get(key) ?? 0) >= FULL_PURGE_EVERY_MS) {
    lastFullPurge.set(key, now);
    return { due: tables, full: true };
  }
  return { due: tables.filter((t) => consumed?.has(t.tableId)), full: false };
}

/**
 * `consumed`: per source, the tables whose changes this run consumed there (pending or
 * truncated). `changeIndexes`: the sources that have a change index (metadata 4), purged too.
 */
export async function finishRun(
  ctx: SyncContext,
  conns: SyncConnections,
  writers: Map<string, pg.Client>,
  snapshots: Record<string, string>,
  runSeq: number,
  tables: { tableId: string; schema: string; name: string; receiving?: Record<string, { schema: string; name: string }> }[],
  copiedInto: Map<string, string[]>,
  consumed: Map<string, Set<string>>,
  changeIndexes: Set<string>,
): Promise<void> {
  await Promise.all(
    ctx.sources.map(async (s) => {
      const c = writers.get(s.name)!;
      try {
        await c.query(confirmSql(ctx.schema), [ctx.sync.name, JSON.stringify(snapshots), String(runSeq)]);
      } catch {
        return; /* retried by the next run */
      }
      const { due, full } = tablesToPurge(`${ctx.schema}\u0000${ctx.sync.name}\u0000${s.name}`, tables, consumed.get(s.name));
      // the change index with the full purge only: a run reads a table's notes from its
      // watermark's xmin on, in the index, so the older ones cost it nothing meanwhile
      const index = changeIndexes.has(s.name) && full;
      conns.defer(conns.get(s, 'maintain').then((m) => purge(ctx, m, s.name, due, index)));
    }),
  );
  deferMaintenance(ctx, conns, tables, copiedInto);
  deferHistoryPrune(ctx, conns);
}

/** When each (topology schema, sync, database) last pruned its run history, in this process. */
const lastPrune = new Map<string, number>();
const PRUNE_EVERY_MS = 3600_000;

/** run_history: old runs and conflicts go, at most once an hour per database, off the run's path. */
export function deferHistoryPrune(ctx: SyncContext, conns: SyncConnections, now = Date.now()): void {
  for (const d of ctx.databases) {
    const k = `${ctx.schema}\u0000${ctx.sync.name}\u0000${d.name}`;
    if (now - (lastPrune.get(k) ?? 0) < PRUNE_EVERY_MS) continue;
    lastPrune.set(k, now);
    conns.defer(conns.get(d, 'maintain').then((m) => m.query(pruneHistorySql(ctx.schema), [ctx.sync.name, String(ctx.topology.runHistoryMs)])));
  }
}

/**
 * The deltas every consumer confirmed, then a VACUUM of each delta table that lost many
 * rows (autovacuum would get there, but the next runs would read the dead rows until then:
 * the delta tables have no index, runs scan them whole).
 */
async function purge(ctx: SyncContext, m: pg.Client, db: string, tables: { tableId: string }[], changeIndex: boolean): Promise<void> {
  await m.query(PURGE_SETUP_SQL, [db]);
  const res = (await m.query(
    purgeSql(
      ctx.schema,
      tables.map((t) => t.tableId),
      changeIndex,
    ),
  )) as unknown as pg.QueryResult[] | pg.QueryResult;
  const list = Array.isArray(res) ? res : [res];
  const big = tables.filter((_, i) => (list[i]?.rowCount ?? 0) > VACUUM_AFTER_PURGE);
  if (big.length)
    await m.query(
      vacuumDeltasSql(
        ctx.schema,
        big.map((t) => t.tableId),
      ),
    );
}

/** maintainCopied on the maintenance connections of the databases a copy loaded, deferred. */
export function deferMaintenance(
  ctx: SyncContext,
  conns: SyncConnections,
  tables: { tableId: string; schema: string; name: string; receiving?: Record<string, { schema: string; name: string }> }[],
  copiedInto: Map<string, string[]>,
): void {
  if (!ctx.sync.analyzeAfterCopy && !ctx.sync.vacuumAfterCopy) return;
  const loaded = ctx.databases.filter((d) => [...copiedInto.values()].some((dbs) => dbs.includes(d.name)));
  if (!loaded.length) return;
  conns.defer(
    (async () => {
      const maint = new Map(await Promise.all(loaded.map(async (d) => [d.name, await conns.get(d, 'maintain')] as const)));
      await maintainCopied(ctx, maint, tables, copiedInto);
    })(),
  );
}

/**
 * analyze_after_copy / vacuum_after_copy on the receivers of whole-table copies (after
 * commit). rebuild_index happens inside the copy (rebuild.ts): the indexes are new.
 */
async function maintainCopied(
  ctx: SyncContext,
  clients: Map<string, pg.Client>,
  tables: { tableId: string; schema: string; name: string; receiving?: Record<string, { schema: string; name: string }> }[],
  copiedInto: Map<string, string[]>,
): Promise<void> {
  const perDb = new Map<string, { schema: string; name: string }[]>();
  for (const t of tables) {
    for (const db of copiedInto.get(t.tableId) ?? []) perDb.set(db, [...(perDb.get(db) ?? []), t.receiving?.[db] ?? t]); // its name on that database
  }
  await Promise.all(
    [...perDb].map(async ([db, loaded]) => {
      const sql = afterCopySql(loaded, { analyze: ctx.sync.analyzeAfterCopy, vacuum: ctx.sync.vacuumAfterCopy });
      if (sql) await clients.get(db)!.query(sql);
    }),
  );
}
