/**
 * One run of a delta sync, exactly as docs/protocol.md describes it: a REPEATABLE READ
 * snapshot per source, pending keys in temp tables, conflicts resolved in SQL on the
 * first source, one write transaction per database fed by COPY streams, the watermark
 * vector written everywhere, commit, then confirm and purge.
 *
 * Nothing here holds rows in Node memory: keys and rows flow database to database as COPY
 * text; only counts, snapshots and at most CONFLICT_DETAIL_CAP conflict records come back.
 */
import type pg from 'pg';
import { createHash } from 'node:crypto';
import type { SyncContext } from './context.js';
import type { SyncConnections } from './connections.js';
import type { ConflictRecord, RunResult } from './types.js';
import type { RunPlan, RunTable } from './plan.js';
import type { ConflictStrategy } from '../topology/types.js';
import { BucardoError } from '../errors.js';
import { copyBetween } from './copy.js';
import { PENDING_SETUP_SQL, probeSql, pendingSql, winnerRowsSql, wholeTableSql, pendingKeysOutSql, pendingKeysOnlyOutSql, presentRowsSql } from './sql/pending.js';
import * as C from './sql/conflicts.js';
import {
  WRITE_SETUP_SQL, createStagingSql, copyIntoStagingSql, copyIntoTableSql, emptyTablesSql, applyStagingSql, lockStagedSql, UNLOCK_SQL,
  createDeleteKeysSql, copyIntoDeleteKeysSql, directDeleteSql,
} from './sql/apply.js';
import { writeStateSql, writeStateParams, setvalSql } from './sql/state.js';
import { qualify, quoteLiteral } from '../sql/ident.js';
import { finishRun } from './finish.js';
import { CONFLICT_DETAIL_CAP } from './log.js';
import { withIndexesDropped } from './rebuild.js';

/** Up to this many pending keys, a source's rows are read by one index probe per key (winnerRowsSql). */
const BY_KEY_MAX = 10_000;
/**
 * Lock-first phase (lockStaged) up to this many staged rows per database: each lock is a
 * heap write and a WAL record, worth it for the small runs that meet application writers,
 * not for a bulk catch-up.
 */
const LOCK_FIRST_MAX = 10_000;
const LOCK_ATTEMPTS = 10;
/** Staging sets larger than this are inserted in key order (applyStagingSql). */
const SORT_STAGING_ROWS = 1_000;
/** Staging sets larger than this are ANALYZEd before the DELETE/INSERT. */
const ANALYZE_STAGING_ROWS = 5_000;
/**
 * From this many pending keys, a table that one source sends to receivers with no writers
 * of their own is applied directly (applyDirect) rather than through a staging table.
 * Below it both forms cost about the same and the staged one is a round trip shorter.
 */
const DIRECT_MIN_ROWS = 5_000;

export interface RunInputs {
  ctx: SyncContext;
  conns: SyncConnections;
  plan: RunPlan;
  runId: string;
  started: Date;
  runner: string;
}

interface SourceRead {
  index: number;
  db: string;
  client: pg.Client;
  snapshot: string;
  /** tableId -> pending keys and newest change */
  pending: Map<string, { n: number; ts: string | null }>;
  /** tableId -> time of the newest pending TRUNCATE */
  truncates: Map<string, string>;
}

/** Runs one delta sync; the read transactions are open on entry to nothing, closed on return. */
export async function runDelta(inp: RunInputs): Promise<RunResult> {
  const { ctx, conns, plan } = inp;
  const sync = ctx.sync;
  const begin = sync.isolation === 'serializable' ? 'BEGIN ISOLATION LEVEL SERIALIZABLE' : 'BEGIN ISOLATION LEVEL REPEATABLE READ';

  // 3. snapshots and pending keys, every source in parallel
  const reads: SourceRead[] = await Promise.all(
    ctx.sources.map(async (db, index) => {
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
        client,
        snapshot: setup.rows[0].snapshot,
        pending: new Map(counts.map((r) => [r.table_id, { n: Number(r.n), ts: r.ts }])),
        truncates: new Map(truncs.filter((t) => plan.tables.some((x) => x.tableId === t.table_id)).map((t) => [t.table_id, t.ts])),
      };
    }),
  );

  const anyPending = reads.some((r) => [...r.pending.values()].some((p) => p.n > 0) || r.truncates.size > 0);
  const anyCopy = plan.tables.some((t) => t.copyClear.length > 0);
  if (!anyPending && !anyCopy) {
    // 4. nothing to do: roll back; sequences may still need bringing up
    await Promise.all(reads.map((r) => r.client.query('ROLLBACK')));
    await applySetvalsOnly(inp);
    return { sync: sync.name, runId: inp.runId, wrote: false, rowsByTable: {}, rows: 0, conflicts: 0, started: inp.started, finished: new Date(), copied: [] };
  }

  // 5. conflicts
  const conflicts = await resolveConflicts(inp, reads);

  // 6. one write transaction per database
  const writers = await conns.all(ctx.databases, 'write');
  const opened = ctx.databases.map((d) => writers.get(d.name)!);
  const rowsByTable: Record<string, number> = {};
  const copied: string[] = [];
  await Promise.all(opened.map(async (w) => {
    await w.query('BEGIN');
    await w.query(WRITE_SETUP_SQL, [sync.name]);
  }));
  const sourceNames = new Set(ctx.sources.map((s) => s.name));
  const isSource = (db: string) => sourceNames.has(db);

  // 6a. replicated TRUNCATEs and onetimecopy replacements empty tables first
  const toEmpty = new Map<string, RunTable[]>();
  const push = (db: string, t: RunTable) => toEmpty.set(db, [...(toEmpty.get(db) ?? []).filter((x) => x !== t), t]);
  for (const t of plan.tables) {
    const truncatedBy = reads.filter((r) => r.truncates.has(t.tableId)).map((r) => r.db);
    if (truncatedBy.length === 0) continue;
    for (const d of ctx.databases) {
      if (truncatedBy.includes(d.name)) continue;
      push(d.name, t);
    }
    rowsByTable[t.display] = rowsByTable[t.display] ?? 0;
  }
  // onetimecopy: which receivers take the whole table
  const copyTargets = new Map<string, string[]>();
  if (plan.tables.some((t) => t.copyInto.length)) {
    await Promise.all(
      ctx.databases.map(async (d) => {
        const due = plan.tables.filter((t) => t.copyInto.includes(d.name));
        if (!due.length) return;
        let take = due;
        if (sync.onetimecopy === 'if_empty') {
          const q = due.map((t) => `SELECT ${quoteLiteral(t.tableId)}::text AS id, EXISTS (SELECT 1 FROM ${qualify(t.schema, t.name)}) AS full`).join(' UNION ALL ');
          const r = await writers.get(d.name)!.query<{ id: string; full: boolean }>(q);
          const full = new Set(r.rows.filter((x) => x.full).map((x) => x.id));
          take = due.filter((t) => !full.has(t.tableId));
        } else {
          for (const t of due) push(d.name, t);
        }
        for (const t of take) copyTargets.set(t.tableId, [...(copyTargets.get(t.tableId) ?? []), d.name]);
      }),
    );
  }
  await Promise.all([...toEmpty].map(([db, ts]) => emptyTables(writers.get(db)!, ts, isSource(db))));

  // 6b. onetimecopy: the whole table from the first source's snapshot, to every receiver at once
  for (const t of plan.tables) {
    const into = copyTargets.get(t.tableId);
    if (!into?.length) continue;
    const copy = () => copyBetween(reads[0].client, wholeTableSql(t, t.columns), into.map((db) => ({ client: writers.get(db)!, sql: copyIntoTableSql(t, t.columns) })));
    // rebuild_index: load without the indexes, build them after (the table is empty here).
    // Not on a receiver that is a source of this run: its own read transaction holds a lock
    // on the table that the DROP INDEX would wait for, forever.
    const rebuild = sync.rebuildIndex ? into.filter((db) => !isSource(db)).map((db) => writers.get(db)!) : [];
    await (rebuild.length ? withIndexesDropped(rebuild, t, copy) : copy());
    copied.push(t.display);
  }

  // 6c. staging: winners' current rows (or their absence) into every other database, and
  // back into the winner itself where this run emptied its table (a replicated TRUNCATE or
  // an `always` copy into a source must not wipe that source's own pending changes)
  const emptied = (db: string, t: RunTable) => (toEmpty.get(db) ?? []).includes(t) || (copyTargets.get(t.tableId) ?? []).includes(db);
  const receiversOf = (t: RunTable, from: string) => ctx.databases.map((d) => d.name).filter((db) => db !== from || emptied(db, t));
  const staged = new Map<string, Map<string, number>>(); // db -> tableId -> rows staged
  const direct = new Map<string, SourceRead>(); // tableId -> its one sender (applyDirect)
  for (const t of plan.tables) {
    const senders = reads.filter((r) => (r.pending.get(t.tableId)?.n ?? 0) > 0);
    if (!senders.length) continue;
    rowsByTable[t.display] = senders.reduce((a, r) => a + r.pending.get(t.tableId)!.n, 0);
    if (senders.length === 1 && senders[0].pending.get(t.tableId)!.n >= DIRECT_MIN_ROWS && receiversOf(t, senders[0].db).every((db) => !isSource(db))) {
      direct.set(t.tableId, senders[0]);
      continue;
    }
    for (const d of ctx.databases) {
      if (senders.some((s) => receiversOf(t, s.db).includes(d.name))) {
        const m = staged.get(d.name) ?? new Map<string, number>();
        m.set(t.tableId, 0);
        staged.set(d.name, m);
      }
    }
  }
  await Promise.all(
    [...staged].map(([db, m]) => writers.get(db)!.query(createStagingSql(plan.tables.filter((t) => m.has(t.tableId))))),
  );
  for (const t of plan.tables) {
    if (direct.has(t.tableId)) continue;
    for (const r of reads) {
      if ((r.pending.get(t.tableId)?.n ?? 0) === 0) continue;
      const receivers = receiversOf(t, r.db);
      const byKey = r.pending.get(t.tableId)!.n <= BY_KEY_MAX && t.keyIndexedOn.includes(r.db);
      const n = await copyBetween(r.client, winnerRowsSql(t, t.columns, byKey), receivers.map((db) => ({ client: writers.get(db)!, sql: copyIntoStagingSql(t, t.columns) })));
      for (const db of receivers) staged.get(db)!.set(t.tableId, staged.get(db)!.get(t.tableId)! + n);
    }
  }
  await Promise.all(
    [...staged].map(async ([db, m]) => {
      const w = writers.get(db)!;
      const tables = plan.tables.filter((t) => m.has(t.tableId));
      const total = [...m.values()].reduce((a, b) => a + b, 0);
      if (ctx.sources.length > 1 && isSource(db) && total <= LOCK_FIRST_MAX) await lockStaged(w, tables);
      const stmts = tables.flatMap((t) => applyStagingSql({ ...t, analyze: m.get(t.tableId)! > ANALYZE_STAGING_ROWS, sorted: m.get(t.tableId)! > SORT_STAGING_ROWS && t.keyIndexedOn.includes(db) }));
      return w.query(stmts.join(';\n'));
    }),
  );
  for (const t of plan.tables) {
    const r = direct.get(t.tableId);
    if (r) await applyDirect(r, t, receiversOf(t, r.db).map((db) => writers.get(db)!));
  }

  // 6d. watermark, history, conflicts, copy flags, sequences: one statement per database
  const rows = Object.values(rowsByTable).reduce((a, b) => a + b, 0);
  const snapshots = Object.fromEntries(reads.map((r) => [r.db, r.snapshot]));
  const conflictRows = JSON.stringify(
    conflicts.records.map((c) => ({ schema: c.schema, name: c.name, key: c.key, winner: c.winner, detail: { changed: c.changed } })),
  );
  await Promise.all(
    ctx.databases.map((d) => {
      return writers.get(d.name)!.query(writeStateSql(ctx.schema), writeStateParams({
        sync: sync.name, runSeq: plan.lastSeq + 1, snapshots, runId: inp.runId, started: inp.started, rows,
        rowsByTable, conflicts: conflicts.count, runner: inp.runner, conflictRows,
        copyDone: plan.tables.filter((t) => t.copyClear.includes(d.name)).map((t) => t.tableId), setvals: plan.setvals.get(d.name) ?? [],
      }));
    }),
  );

  // 7. commit one after another; the read snapshots end after
  for (const w of opened) await w.query('COMMIT');
  await Promise.all(reads.map((r) => r.client.query('ROLLBACK')));

  // 8. confirm and purge; analyze/vacuum what onetimecopy loaded
  await finishRun(ctx, conns, writers, snapshots, plan.tables, copyTargets);
  return {
    sync: sync.name, runId: inp.runId, wrote: true, rowsByTable, rows, conflicts: conflicts.count,
    conflictRecords: conflicts.records, started: inp.started, finished: new Date(), copied,
  };
}

/**
 * A large set of changes from one source to receivers that write nothing of their own
 * (docs/protocol.md, step 6c): the keys go to a temp table on every receiver, which
 * deletes them, then the rows that still exist stream from the source straight into the
 * table by COPY (presentRowsSql). No staging table: COPY's batched inserts are what make
 * this ~2.5x faster than INSERT ... SELECT.
 */
async function applyDirect(r: SourceRead, t: RunTable, receivers: pg.Client[]): Promise<void> {
  await Promise.all(receivers.map((w) => w.query(createDeleteKeysSql(t))));
  await copyBetween(r.client, pendingKeysOnlyOutSql(t), receivers.map((w) => ({ client: w, sql: copyIntoDeleteKeysSql(t) })));
  await Promise.all(receivers.map((w) => w.query(directDeleteSql(t))));
  await copyBetween(r.client, presentRowsSql(t, t.columns), receivers.map((w) => ({ client: w, sql: copyIntoTableSql(t, t.columns) })));
}

/**
 * Row-locks what a run is about to write on a database with writers of its own, giving
 * way on every lock timeout (lockStagedSql). After LOCK_ATTEMPTS it goes on without the
 * phase: the writes then wait like any transaction, and a real deadlock fails the run,
 * which is retried at once.
 */
async function lockStaged(c: pg.Client, tables: RunTable[]): Promise<void> {
  const sql = lockStagedSql(tables);
  for (let attempt = 1; attempt <= LOCK_ATTEMPTS; attempt++) {
    try {
      await c.query(sql);
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== '55P03') throw e;
      await c.query(UNLOCK_SQL);
      await new Promise((r) => setTimeout(r, Math.random() * 20));
    }
  }
}

/** One TRUNCATE for all, else DELETE (see emptyTablesSql). */
export async function emptyTables(c: pg.Client, tables: { schema: string; name: string }[], deleteOnly: boolean): Promise<void> {
  const [first, fallback] = emptyTablesSql(tables, deleteOnly);
  try {
    await c.query(first);
  } catch (e) {
    if (!fallback || (e as { code?: string }).code !== '0A000') throw e;
    await c.query(fallback);
  }
}

async function applySetvalsOnly(inp: RunInputs): Promise<void> {
  const { ctx, conns, plan } = inp;
  for (const [db, sv] of plan.setvals) {
    const spec = ctx.topology.databases.get(db)!;
    const c = await conns.get(spec, 'write');
    await c.query(setvalSql(), [sv.map((s) => s[0]), sv.map((s) => s[1]), sv.map((s) => s[2])]);
  }
}

/** The strategy of one table as a SQL winner rule, given each source's newest change. */
function winnerRule(ctx: SyncContext, strategy: ConflictStrategy, t: RunTable, reads: SourceRead[], seed: string): C.WinnerRule | 'abort' {
  const byNewest = (tsOf: (r: SourceRead) => string | null) =>
    [...reads].sort((a, b) => {
      const ta = tsOf(a) ?? '';
      const tb = tsOf(b) ?? '';
      return ta === tb ? a.index - b.index : ta < tb ? 1 : -1; // ISO UTC text sorts as time
    }).map((r) => r.index);
  switch (strategy.kind) {
    case 'latest':
      return { kind: 'latest' };
    case 'latest_table':
      return { kind: 'rank', rank: byNewest((r) => r.pending.get(t.tableId)?.ts ?? null) };
    case 'latest_sync':
      return { kind: 'rank', rank: byNewest((r) => [...r.pending.values()].reduce<string | null>((m, p) => (p.ts && (!m || p.ts > m) ? p.ts : m), null)) };
    case 'priority': {
      const names = ctx.sources.map((s) => s.name);
      const listed = strategy.order.map((n) => names.indexOf(n)).filter((i) => i >= 0);
      return { kind: 'rank', rank: [...listed, ...names.map((_, i) => i).filter((i) => !listed.includes(i))] };
    }
    case 'random':
      return { kind: 'random', seed };
    case 'skip':
      return { kind: 'none' };
    case 'abort':
      return 'abort';
    case 'custom':
      throw new BucardoError('not_supported', `sync ${ctx.sync.name}: custom conflict hooks are not supported yet (table ${t.display} uses ${strategy.module})`, {
        hint: 'pick a built-in strategy (latest, latest_table, latest_sync, priority, random, skip, abort)',
      });
    default: {
      const never: never = strategy;
      throw new Error(`unknown strategy ${JSON.stringify(never)}`);
    }
  }
}

interface Conflicts {
  count: number;
  records: ConflictRecord[];
}

/** Step 5: bring pending keys together on the first source, pick winners, drop the losers' keys. */
async function resolveConflicts(inp: RunInputs, reads: SourceRead[]): Promise<Conflicts> {
  const { ctx, plan } = inp;
  const out: Conflicts = { count: 0, records: [] };
  if (reads.length < 2) return out;
  const hub = reads[0];
  const seed = createHash('sha256').update(JSON.stringify([ctx.sync.name, plan.lastSeq, plan.last])).digest('hex').slice(0, 16);
  const names = ctx.sources.map((s) => s.name);
  for (const t of plan.tables) {
    const having = reads.filter((r) => (r.pending.get(t.tableId)?.n ?? 0) > 0);
    if (having.length < 2) continue;
    const strategy = ctx.strategyFor(t.schema, t.name);
    const rule = winnerRule(ctx, strategy, t, having, seed);
    for (const r of having) {
      if (r.index === 0) continue;
      await hub.client.query(C.createShippedSql(ctx.schema, r.index, t.tableId, t.keyColumns));
      await copyBetween(r.client, pendingKeysOutSql(t.tableId, t.keyColumns), [{ client: hub.client, sql: C.copyIntoShippedSql(r.index, t.tableId, t.keyColumns) }]);
    }
    const srcs = having.map((r) => r.index);
    const [create, count] = C.conflictSql(t.tableId, t.keyColumns, srcs, rule === 'abort' ? { kind: 'none' } : rule);
    await hub.client.query(create);
    const n = Number((await hub.client.query<{ n: string }>(count)).rows[0].n);
    if (n === 0) continue;
    out.count += n;
    const cap = rule === 'abort' ? 20 : Math.max(0, CONFLICT_DETAIL_CAP - out.records.length);
    if (cap > 0) {
      const det = await hub.client.query<{ key: Record<string, unknown>; winner: number | null; srcs: number[]; tss: string[] }>(C.conflictDetailSql(t.tableId, t.keyColumns, cap));
      for (const d of det.rows) {
        out.records.push({
          table: t.display, schema: t.schema, name: t.name, key: d.key,
          winner: d.winner === null ? null : names[d.winner],
          changed: d.srcs.map((s, i) => ({ database: names[s], at: d.tss[i] })),
        });
      }
    }
    if (rule === 'abort') {
      const shown = out.records.slice(0, 5).map((r) => JSON.stringify(r.key)).join(', ');
      throw new BucardoError('conflict_abort', `sync ${ctx.sync.name} found ${n} conflicting key${n === 1 ? '' : 's'} in table ${t.display} (${shown}${n > 5 ? ', ...' : ''}) and its conflict strategy is abort: nothing was written`, {
        hint: 'resolve the rows by hand on the sources (or pick another strategy), then run again',
        details: { table: t.display, keys: out.records.map((r) => r.key) },
      });
    }
    // losers (everyone with skip) forget the conflicting keys
    for (const r of having) {
      if (r.index === 0) {
        const del = await hub.client.query(C.dropLostSql(t.tableId, t.keyColumns, true));
        r.pending.get(t.tableId)!.n -= del.rowCount ?? 0;
        continue;
      }
      await r.client.query(C.createLostSql(t.tableId, t.keyColumns));
      await copyBetween(hub.client, C.lostKeysOutSql(t.tableId, t.keyColumns, r.index), [{ client: r.client, sql: C.copyIntoLostSql(t.tableId, t.keyColumns) }]);
      const del = await r.client.query(C.dropLostSql(t.tableId, t.keyColumns, false));
      r.pending.get(t.tableId)!.n -= del.rowCount ?? 0;
    }
  }
  return out;
}

