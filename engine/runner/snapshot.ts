/**
 * Steps 2 and 3 of a delta run (docs/protocol.md): lock the tables that this run will
 * empty or copy whole on a database that has writers of its own, then take a snapshot of
 * every source and read its pending keys in it.
 *
 * Why the table locks come first: a run replaces such a table's rows wholesale (a
 * replicated TRUNCATE, a onetimecopy into a source). Row by row, a run can tell a local
 * write that committed after its snapshot and leave it alone (receive.ts); a wholesale
 * replacement cannot. With the table locked in EXCLUSIVE mode before the snapshot, every
 * local write of it either committed before the snapshot (so the run sees it and settles
 * it like any other change) or waits until the run has committed.
 */
import type pg from 'pg';
import type { RunInputs } from './inputs.js';
import type { DatabaseSpec } from '../topology/types.js';
import { BucardoError } from '../errors.js';
import { PENDING_SETUP_SQL, probeSql, pendingSql, pendingTruncatesSql } from './sql/pending.js';
import { lockTablesSql } from './sql/apply.js';

/** What a run read on one source, in its snapshot. */
export interface SourceRead {
  /** Position in the sync's `sources`. */
  index: number;
  db: string;
  spec: DatabaseSpec;
  /** The REPEATABLE READ transaction holding the snapshot (ended before the run writes here). */
  client: pg.Client;
  snapshot: string;
  /** tableId -> pending keys and the newest change among them (after step 4, the keys this source won). */
  pending: Map<string, { n: number; ts: string | null }>;
  /** tableId -> time of the newest pending TRUNCATE */
  truncates: Map<string, string>;
}

/** The tables to lock in EXCLUSIVE mode, per source database, and the tables with a TRUNCATE pending before the snapshot. */
export interface TableLocks {
  locked: Map<string, Set<string>>;
  truncated: Set<string>;
}

/** How long a run waits for a table lock before it gives up and is retried (an application's transaction holds the table). */
const TABLE_LOCK_WAIT = '2s';

/**
 * Step 2. Which tables a run may replace wholesale on a source: those with a TRUNCATE
 * pending on some source (every source but the newest truncater is emptied), those a
 * onetimecopy loads into that source, and with `lock_tables` all of them. Read in each
 * source's fenced transaction (READ COMMITTED: the latest committed state).
 */
export async function lockTables(inp: RunInputs): Promise<TableLocks> {
  const { ctx, plan, writers } = inp;
  const truncated = new Set<string>();
  await Promise.all(
    ctx.sources.map(async (s) => {
      const r = await writers.get(s.name)!.query<{ table_id: string }>(pendingTruncatesSql(ctx.schema), [plan.last[s.name] ?? '', ctx.sync.name]);
      for (const row of r.rows) if (plan.tables.some((t) => t.tableId === row.table_id)) truncated.add(row.table_id);
    }),
  );
  const locked = new Map<string, Set<string>>();
  for (const s of ctx.sources) {
    const ids = plan.tables
      .filter((t) => ctx.sync.lockTables || truncated.has(t.tableId) || t.copyInto.includes(s.name))
      .map((t) => t.tableId);
    if (ids.length) locked.set(s.name, new Set(ids));
  }
  await Promise.all(
    [...locked].map(([db, ids]) => writers.get(db)!.query(lockTablesSql(plan.tables.filter((t) => ids.has(t.tableId)), TABLE_LOCK_WAIT))),
  );
  return { locked, truncated };
}

/** Step 3: every source in parallel: BEGIN REPEATABLE READ, the snapshot, the pending keys. */
export async function readSources(inp: RunInputs, locks: TableLocks): Promise<SourceRead[]> {
  const { ctx, conns, plan } = inp;
  const sync = ctx.sync;
  const begin = sync.isolation === 'serializable' ? 'BEGIN ISOLATION LEVEL SERIALIZABLE' : 'BEGIN ISOLATION LEVEL REPEATABLE READ';
  const reads = await Promise.all(
    ctx.sources.map(async (db, index): Promise<SourceRead> => {
      const client = await conns.get(db, 'read');
      await client.query(begin);
      const lastSnap = plan.last[db.name] ?? '';
      const setup = await client.query<{ snapshot: string }>(PENDING_SETUP_SQL, [lastSnap, sync.name]);
      const probe = (await client.query(probeSql(ctx.schema, plan.tables, lastSnap !== ''))) as unknown as pg.QueryResult[];
      const found = new Set((probe[0].rows as { table_id: string }[]).map((r) => r.table_id));
      const truncs = probe[1].rows as { table_id: string; ts: string }[];
      let counts: { table_id: string; n: string; ts: string | null }[] = [];
      if (found.size) {
        const pendingOf = plan.tables.filter((t) => found.has(t.tableId)).map((t) => ({ ...t, ordered: t.keyIndexedOn.includes(db.name) }));
        const res = (await client.query(pendingSql(ctx.schema, pendingOf, lastSnap !== ''))) as unknown as pg.QueryResult[];
        counts = res[res.length - 1].rows as typeof counts;
      }
      return {
        index,
        db: db.name,
        spec: db,
        client,
        snapshot: setup.rows[0].snapshot,
        pending: new Map(counts.map((r) => [r.table_id, { n: Number(r.n), ts: r.ts }])),
        truncates: new Map(truncs.filter((t) => plan.tables.some((x) => x.tableId === t.table_id)).map((t) => [t.table_id, t.ts])),
      };
    }),
  );
  assertSameHistory(inp, reads);
  // A TRUNCATE that committed between step 2 and the snapshot found its table unlocked:
  // the run cannot empty it safely. Rare; the run is redone at once.
  for (const r of reads) {
    for (const id of r.truncates.keys()) {
      if (!locks.truncated.has(id)) {
        throw new BucardoError('run_raced', `sync ${sync.name}: a TRUNCATE of ${plan.tables.find((t) => t.tableId === id)?.display ?? id} committed on database ${r.db} while the run started; the run is redone`);
      }
    }
  }
  return reads;
}

/** xmax of a pg_snapshot's text form (xmin:xmax:xip,...). */
export function snapshotXmax(snapshot: string): bigint {
  return BigInt(snapshot.split(':')[1]);
}

/**
 * A source must be the very database whose transactions the watermark counts. One restored
 * from a dump or a backup, or moved by logical replication, hands out transaction ids again
 * from a lower number (every new change would look consumed, and be purged) or belongs to
 * another cluster. Nothing is consumed then: the run fails, naming the database.
 */
export function assertSameHistory(inp: RunInputs, reads: SourceRead[]): void {
  const { ctx, plan, states } = inp;
  for (const r of reads) {
    const st = states.get(r.db)!;
    const last = plan.last[r.db];
    const hint = 'see "A source restored, replaced or moved" in docs/protocol.md: check the data, then reset the watermark of this database';
    if (st.recordedSystemIdentifier && st.systemIdentifier && st.recordedSystemIdentifier !== st.systemIdentifier) {
      throw new BucardoError('source_replaced', `database ${r.db} of sync ${ctx.sync.name} is on another PostgreSQL cluster (system identifier ${st.systemIdentifier}) than the one sync runs read before (${st.recordedSystemIdentifier}): it was restored or moved, so its transaction ids do not continue the watermark; nothing was consumed`, { hint });
    }
    if (last && snapshotXmax(r.snapshot) < snapshotXmax(last)) {
      throw new BucardoError('source_replaced', `the transaction ids of database ${r.db} went backwards (now ${snapshotXmax(r.snapshot)}, sync ${ctx.sync.name} already consumed up to ${snapshotXmax(last)}): it was restored from a dump or backup, or replaced; its new changes would be taken for consumed ones, so nothing was consumed`, { hint });
    }
  }
}
