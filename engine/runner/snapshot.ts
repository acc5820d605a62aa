/**
 * Steps 2 and 3 of a delta run (docs/protocol.md): lock the tables that this run will
 * copy whole into a database that has writers of its own, then take a snapshot of every
 * source and read its pending keys in it.
 *
 * Why those table locks come first: a onetimecopy into a source replaces the table's rows
 * wholesale. Row by row, a run can tell a local write that committed after its snapshot
 * and leave it alone (receive.ts); a wholesale copy cannot. With the table locked in
 * EXCLUSIVE mode before the snapshot, every local write of it either committed before the
 * snapshot (so the run sees it and settles it like any other change) or waits until the
 * run has committed. `lock_tables: true` does the same for every table of the sync.
 * (A replicated TRUNCATE needs no table lock: a source empties its table row by row,
 * guarded like any other write into it.)
 */
import type pg from 'pg';
import type { RunInputs } from './inputs.js';
import type { DatabaseSpec } from '../topology/types.js';
import type { RelationInfo } from './types.js';
import { BucardoError } from '../errors.js';
import { pendingSetupSql, changedTablesSql, probeStatement, probeSql, pendingTruncatesSql, pendingSql } from './sql/pending.js';
import { lockTablesSql, emptinessSql, probeInSavepoint } from './sql/apply.js';
import { beginReadSql } from './sql/transaction.js';
import { assertDetailsCurrent, REWRITTEN_SQL } from './sql/prepare.js';
import { displayName } from '../sql/ident.js';

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
  /** The source has a change index (metadata 4): the run's purge clears it too. */
  changeIndex: boolean;
}

/** The tables locked in EXCLUSIVE mode, per source database. */
export interface TableLocks {
  locked: Map<string, Set<string>>;
}

/**
 * How long a run waits for a table lock before it gives up and is retried: while it waits,
 * the applications' writers of the table queue behind it, so this is the longest stall a
 * onetimecopy into a source (or lock_tables) can add to them.
 */
const TABLE_LOCK_WAIT = '500ms';

/**
 * Step 2: a onetimecopy into a source locks its table there (with `if_empty`, only a table
 * that is empty: a copy into any other is skipped, and needs no lock); with `lock_tables`,
 * every table on every source.
 */
export async function lockTables(inp: RunInputs): Promise<TableLocks> {
  const { ctx, scope, writers } = inp;
  const locked = new Map<string, Set<string>>();
  await Promise.all(
    ctx.sources.map(async (s) => {
      let due = scope.tables.filter((t) => t.copyInto.includes(s.name));
      if (due.length && ctx.sync.onetimecopy === 'if_empty') {
        // in a savepoint rolled back at once: the look must not keep the tables' locks for the
        // run (an application's TRUNCATE queued behind them would block the run's own reads)
        const res = (await writers.get(s.name)!.query(probeInSavepoint(emptinessSql(due)))) as unknown as pg.QueryResult<{ id: string; full: boolean }>[];
        const full = new Set(res[1].rows.filter((x) => x.full).map((x) => x.id));
        due = due.filter((t) => !full.has(t.tableId));
      }
      const ids = scope.tables.filter((t) => ctx.sync.lockTables || due.includes(t)).map((t) => t.tableId);
      if (ids.length) locked.set(s.name, new Set(ids));
    }),
  );
  await Promise.all(
    [...locked].map(([db, ids]) =>
      writers.get(db)!.query(
        lockTablesSql(
          scope.tables.filter((t) => ids.has(t.tableId)),
          TABLE_LOCK_WAIT,
        ),
      ),
    ),
  );
  return { locked };
}

/**
 * Step 3: every source in parallel: BEGIN REPEATABLE READ, the snapshot, the pending keys.
 * The read transactions stay open for the steps that read from them (4 to 8), which end
 * them (receive.ts loadSources; delta.ts when there is nothing to do); a failed run closes
 * the connections instead.
 */
export async function takeSnapshots(inp: RunInputs): Promise<SourceRead[]> {
  const { ctx, conns, scope } = inp;
  const sync = ctx.sync;
  const reads = await Promise.all(
    ctx.sources.map(async (db, index): Promise<SourceRead> => {
      const client = await conns.get(db, 'read');
      await client.query(beginReadSql(sync.isolation));
      const lastSnap = scope.last[db.name] ?? '';
      const setup = await client.query<{ snapshot: string; trusted: boolean | null }>(pendingSetupSql(ctx.schema), [lastSnap, sync.name]);
      const { indexed, probed } = byChangeIndex(scope.tables, inp.states.get(db.name)!.relations);
      const { found, truncs } =
        setup.rows[0].trusted && indexed.length
          ? await changedTables(client, ctx.schema, indexed, probed)
          : await probeAll(client, ctx.schema, scope.tables, lastSnap !== '');
      let counts: { table_id: string; n: string; ts: string | null }[] = [];
      if (found.size) {
        const pendingOf = scope.tables.filter((t) => found.has(t.tableId)).map((t) => ({ ...t, ordered: t.keyIndexedOn.includes(db.name) }));
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
        truncates: new Map(truncs.filter((t) => scope.tables.some((x) => x.tableId === t.table_id)).map((t) => [t.table_id, t.ts])),
        changeIndex: setup.rows[0].trusted !== null,
      };
    }),
  );
  assertSameHistory(inp, reads);
  return reads;
}

type Truncates = { table_id: string; ts: string }[];

type Table = RunInputs['scope']['tables'][number];

/**
 * The scope's tables whose changes this source's change index notes (their delta tables
 * have the `log` trigger: a sync of CHANGE_INDEX_MIN_TABLES tables or more) and the others;
 * kept while the scope and the details are (both are reused, frozen), so that the probe of
 * the others stays one prepared statement.
 */
function byChangeIndex(tables: Table[], relations: RelationInfo[]): { indexed: Table[]; probed: Table[] } {
  const perScope = splitMemo.get(tables) ?? new WeakMap<RelationInfo[], { indexed: Table[]; probed: Table[] }>();
  splitMemo.set(tables, perScope);
  let split = perScope.get(relations);
  if (!split) {
    const noted = new Set(relations.filter((r) => r.changeIndexed).map((r) => r.tableId));
    split = { indexed: tables.filter((t) => noted.has(t.tableId)), probed: tables.filter((t) => !noted.has(t.tableId)) };
    perScope.set(relations, split);
  }
  return split;
}
const splitMemo = new WeakMap<Table[], WeakMap<RelationInfo[], { indexed: Table[]; probed: Table[] }>>();

/**
 * The tables with pending changes by the change index: those it names (few, whatever the
 * sync's size), each then probed for a change this sync has not made itself; the tables it
 * does not note (`probed`) are probed as ever.
 */
async function changedTables(client: pg.Client, schema: string, indexed: Table[], probed: Table[]): Promise<{ found: Set<string>; truncs: Truncates }> {
  const res = await client.query<{ kind: 'c' | 't'; table_id: string; ts: string }>(changedTablesSql(schema), [indexed.map((t) => t.tableId)]);
  const truncs = res.rows.filter((r) => r.kind === 't');
  const ids = new Set(res.rows.filter((r) => r.kind === 'c').map((r) => r.table_id));
  const candidates = indexed.filter((t) => ids.has(t.tableId));
  const found = new Set<string>();
  if (candidates.length) for (const r of (await client.query<{ table_id: string }>(probeSql(schema, candidates, true))).rows) found.add(r.table_id);
  if (probed.length) for (const r of (await client.query<{ table_id: string }>(probeStatement(schema, probed, true))).rows) found.add(r.table_id);
  return { found, truncs };
}

/** Every delta table of the sync probed (no trusted change index: a first run, an install before metadata 4, right after an apply made or dropped a log trigger, or a sync under CHANGE_INDEX_MIN_TABLES tables). */
async function probeAll(client: pg.Client, schema: string, tables: Table[], hasLast: boolean): Promise<{ found: Set<string>; truncs: Truncates }> {
  const probe = await client.query<{ table_id: string }>(probeStatement(schema, tables, hasLast));
  const truncs = (await client.query<{ table_id: string; ts: string }>(pendingTruncatesSql(schema, hasLast))).rows;
  return { found: new Set(probe.rows.map((r) => r.table_id)), truncs };
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
  const { ctx, scope, states } = inp;
  for (const r of reads) {
    const st = states.get(r.db)!;
    const last = scope.last[r.db];
    const hint = 'see "A source restored, replaced or moved" in docs/protocol.md: check the data, then reset the watermark of this database';
    if (st.recordedSystemIdentifier && st.systemIdentifier && st.recordedSystemIdentifier !== st.systemIdentifier) {
      throw new BucardoError(
        'source_replaced',
        `database ${r.db} of sync ${ctx.sync.name} is on another PostgreSQL cluster (system identifier ${st.systemIdentifier}) than the one sync runs read before (${st.recordedSystemIdentifier}): it was restored or moved, so its transaction ids do not continue the watermark; nothing was consumed`,
        { hint },
      );
    }
    if (last && snapshotXmax(r.snapshot) < snapshotXmax(last)) {
      throw new BucardoError(
        'source_replaced',
        `the transaction ids of database ${r.db} went backwards (now ${snapshotXmax(r.snapshot)}, sync ${ctx.sync.name} already consumed up to ${snapshotXmax(last)}): it was restored from a dump or backup, or replaced; its new changes would be taken for consumed ones, so nothing was consumed`,
        { hint },
      );
    }
  }
}

/**
 * After the snapshots: the tables this run reads or writes (pending changes or TRUNCATEs
 * on a source, a copy due anywhere; `all`: every table) are, on every database, the ones
 * the run was scoped with. See sql/prepare.ts: an ALTER TABLE that committed before the
 * snapshot fails the attempt, and run.ts starts it again with the new definition.
 */
export async function assertScopeCurrent(inp: RunInputs, reads: SourceRead[], all = false): Promise<void> {
  const { ctx, states, writers } = inp;
  const ids = touchedTables(inp, reads, all).map((t) => t.tableId);
  if (!ids.length) return;
  await Promise.all(
    ctx.databases.map((d) =>
      assertDetailsCurrent(writers.get(d.name)!, d.name, ctx.schema, ctx.sync.name, ctx.renamedOn(d.name), states.get(d.name)!.relations, ids),
    ),
  );
}

/**
 * Before a source's read transaction ends: none of the tables the run read there was
 * rewritten after its snapshot (REWRITTEN_SQL), or what the run took for deleted rows may
 * only have been invisible to it; the run then starts again at once (`details_changed`).
 * Reading a table holds its ACCESS SHARE lock to the end of the transaction, so a rewrite
 * that has not committed by now can no longer change what the run read.
 */
export async function assertNotRewritten(client: pg.Client, db: string, sync: string, tables: { schema: string; name: string }[]): Promise<void> {
  if (!tables.length) return;
  const res = await client.query<{ schema: string; name: string }>(REWRITTEN_SQL, [tables.map((t) => t.schema), tables.map((t) => t.name)]);
  if (!res.rows.length) return;
  const t = res.rows[0];
  throw new BucardoError(
    'details_changed',
    `table ${displayName(t.schema, t.name)} in database ${db} was rewritten (ALTER TABLE or TRUNCATE) as sync ${sync}'s run read it; the run starts again`,
  );
}

/** The tables a run reads or writes: pending or truncated on a source, or due for a copy (`all`: every one). */
export function touchedTables(inp: RunInputs, reads: SourceRead[], all = false): RunInputs['scope']['tables'] {
  const ids = new Set<string>();
  for (const r of reads) {
    for (const [id, p] of r.pending) if (p.n > 0) ids.add(id);
    for (const id of r.truncates.keys()) ids.add(id);
  }
  return inp.scope.tables.filter((t) => all || t.copyClear.length || ids.has(t.tableId));
}
