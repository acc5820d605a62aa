/**
 * Steps 5 to 9 of a delta run (docs/protocol.md): what each database receives, in an
 * order that reads every source before anything is written into it.
 *
 *   5. plan: which tables each database empties (a replicated TRUNCATE, an `always`
 *      onetimecopy), which it copies whole, which rows go through staging, which tables
 *      one large sender applies directly.
 *   6. stage: the winners' rows into a temp table on every receiving database (and back
 *      into a source that this run empties: its own pending changes must survive).
 *   7. targets (no writers of their own): empty, onetimecopy, direct apply.
 *   8. sources: their read transactions end (so nothing of the run itself can hold a lock
 *      that a write of the run waits for behind an application's), then they are emptied
 *      and copied into, the first source last (it feeds the onetimecopies).
 *   9. apply the staged rows: as is on targets and on tables this run holds locked;
 *      guarded on other tables of a source (sql/apply.ts guardedApplySql), where a key
 *      whose local change the run has not seen is deferred, never overwritten; deferred
 *      keys go back to their senders as pending changes (requeue).
 */
import type pg from 'pg';
import type { RunInputs } from './inputs.js';
import type { RunTable } from './scope.js';
import type { SourceRead, TableLocks } from './snapshot.js';
import { assertNotRewritten, touchedTables } from './snapshot.js';
import { newestTruncater } from './conflicts.js';
import { uniqueViolation } from './constraints.js';
import { copyBetween } from './copy.js';
import { withIndexesDropped } from './rebuild.js';
import { pendingKeysOnlyOutSql } from './sql/pending.js';
import {
  createStagingSql,
  emptyTablesSql,
  applyStagingSql,
  guardedApplySql,
  deferAllSql,
  GUARD_SETUP_SQL,
  requeueOutSql,
  requeueInSql,
  createKeepSql,
  copyIntoKeepSql,
  guardedClearSql,
  TRUNCATE_TS_SETUP_SQL,
  clearDeferredOutSql,
  emptinessSql,
  plainApplySql,
  UNDO_PLAIN_APPLY_SQL,
  UNDO_GUARDED_APPLY_SQL,
  WRITE_SETUP_SQL,
} from './sql/apply.js';
import { SQLSTATE } from '../sqlstate.js';
import { ROLLBACK_SQL } from './sql/transaction.js';
import { subsetApplySql } from './sql/receiving.js';
import { tableOn, directAllowed } from './receiving.js';
import { stageRows, copyTable, applyDirect } from './send.js';

/** Up to this many pending keys, a source's rows are read by one index probe per key (winnerRowsSql). */
const BY_KEY_MAX = 10_000;
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

/** What step 5 decided, and what the later steps add up. */
export interface Work {
  /** db -> tables this run empties there at once (a target, or a source that holds the table locked). */
  toEmpty: Map<string, RunTable[]>;
  /** source db -> tables it empties row by row, guarded (a replicated TRUNCATE; guardedClearSql), and the source that truncated. */
  toClear: Map<string, { t: RunTable; truncater: SourceRead }[]>;
  /** tableId -> databases a onetimecopy loads it into. */
  copyTargets: Map<string, string[]>;
  /** db -> tableId -> rows staged there. */
  staged: Map<string, Map<string, number>>;
  /** tableId -> its one sender, for a direct apply. */
  direct: Map<string, SourceRead>;
  rowsByTable: Record<string, number>;
  copied: string[];
  /** Changes handed back to their senders, per table (display name). */
  deferred: Record<string, number>;
}

const isSourceOf = (inp: RunInputs) => {
  const names = new Set(inp.ctx.sources.map((s) => s.name));
  return (db: string) => names.has(db);
};

/** Databases that receive `from`'s rows of `t`: all the others, and itself where this run empties its table. */
function receiversOf(inp: RunInputs, work: Work, t: RunTable, from: string): string[] {
  const emptied = (db: string) => (work.toEmpty.get(db) ?? []).includes(t) || (work.copyTargets.get(t.tableId) ?? []).includes(db);
  return inp.ctx.databases.map((d) => d.name).filter((db) => db !== from || emptied(db));
}

/** Step 5: every write transaction writes as `replica` with the sync as origin; then what each database receives. */
export async function planWork(inp: RunInputs, reads: SourceRead[], locks: TableLocks): Promise<Work> {
  const { ctx, scope, writers } = inp;
  await Promise.all(ctx.databases.map((d) => writers.get(d.name)!.query(WRITE_SETUP_SQL, [ctx.sync.name])));
  const isSource = isSourceOf(inp);
  const work: Work = {
    toEmpty: new Map(),
    toClear: new Map(),
    copyTargets: new Map(),
    staged: new Map(),
    direct: new Map(),
    rowsByTable: {},
    copied: [],
    deferred: {},
  };
  const push = (db: string, t: RunTable) => work.toEmpty.set(db, [...(work.toEmpty.get(db) ?? []).filter((x) => x !== t), t]);
  // a replicated TRUNCATE empties every database but the one that truncated last; every
  // change that beat it in step 4 is pending still and goes (back) everywhere. A source
  // empties row by row, keeping its winning changes, unless it holds the table locked.
  for (const t of scope.tables) {
    const last = newestTruncater(reads, t.tableId);
    if (!last) continue;
    for (const d of ctx.databases) {
      if (d.name === last.db) continue;
      if (isSource(d.name) && !locks.locked.get(d.name)?.has(t.tableId))
        work.toClear.set(d.name, [...(work.toClear.get(d.name) ?? []), { t, truncater: last }]);
      else push(d.name, t);
    }
    work.rowsByTable[t.display] = 0;
  }
  // onetimecopy: which receivers take the whole table (on a source the table is locked since
  // step 2). Not a table that another source truncated after the copy's source: it is
  // emptied everywhere but there, and what survives the TRUNCATE goes everywhere as changes
  // (copying the first source's rows from before it would bring them back).
  const copyable = (t: RunTable) => {
    const tr = newestTruncater(reads, t.tableId);
    return !tr || tr === reads[0];
  };
  if (scope.tables.some((t) => t.copyInto.length)) {
    await Promise.all(
      ctx.databases.map(async (d) => {
        // into a source, only a table it holds locked (step 2 left the others unlocked: not empty)
        const due = scope.tables.filter((t) => t.copyInto.includes(d.name) && copyable(t) && (!isSource(d.name) || locks.locked.get(d.name)?.has(t.tableId)));
        if (!due.length) return;
        // a re-copy (sync_recopy) empties the table whatever onetimecopy says
        const again = due.filter((t) => t.recopyInto.includes(d.name));
        for (const t of again) push(d.name, t);
        const once = due.filter((t) => !again.includes(t));
        let take = once;
        if (ctx.sync.onetimecopy === 'if_empty' && once.length) {
          const r = await writers.get(d.name)!.query<{ id: string; full: boolean }>(emptinessSql(once.map((t) => tableOn(t, d.name))));
          const full = new Set(r.rows.filter((x) => x.full).map((x) => x.id));
          take = once.filter((t) => !full.has(t.tableId));
        } else {
          for (const t of once) push(d.name, t);
        }
        take = [...take, ...again];
        for (const t of take) work.copyTargets.set(t.tableId, [...(work.copyTargets.get(t.tableId) ?? []), d.name]);
      }),
    );
  }
  for (const t of scope.tables) {
    const senders = reads.filter((r) => (r.pending.get(t.tableId)?.n ?? 0) > 0);
    if (!senders.length) continue;
    work.rowsByTable[t.display] = senders.reduce((a, r) => a + r.pending.get(t.tableId)!.n, 0);
    const direct = senders.length === 1 && receiversOf(inp, work, t, senders[0].db);
    if (direct && senders[0].pending.get(t.tableId)!.n >= DIRECT_MIN_ROWS && direct.every((db) => !isSource(db)) && directAllowed(t, direct)) {
      work.direct.set(t.tableId, senders[0]);
      continue;
    }
    for (const d of ctx.databases) {
      if (senders.some((s) => receiversOf(inp, work, t, s.db).includes(d.name))) {
        const m = work.staged.get(d.name) ?? new Map<string, number>();
        m.set(t.tableId, 0);
        work.staged.set(d.name, m);
      }
    }
  }
  return work;
}

/** Step 6: every winning source's rows of every staged table, read once, into every receiver's staging table. */
export async function stage(inp: RunInputs, reads: SourceRead[], work: Work): Promise<void> {
  const { scope, writers } = inp;
  await Promise.all(
    [...work.staged].map(([db, m]) =>
      writers.get(db)!.query(
        createStagingSql(
          db,
          scope.tables.filter((t) => m.has(t.tableId)).map((t) => tableOn(t, db)),
        ),
      ),
    ),
  );
  // a source taking a TRUNCATE keeps the keys whose own change won step 4
  for (const [db, list] of work.toClear) {
    const w = writers.get(db)!;
    const r = reads.find((x) => x.db === db)!;
    for (const { t } of list) {
      await w.query(createKeepSql(db, t));
      if ((r.pending.get(t.tableId)?.n ?? 0) > 0) await copyBetween(r.client, pendingKeysOnlyOutSql(t), [{ client: w, sql: copyIntoKeepSql(t) }]);
    }
  }
  for (const t of scope.tables) {
    if (work.direct.has(t.tableId)) continue;
    for (const r of reads) {
      if ((r.pending.get(t.tableId)?.n ?? 0) === 0) continue;
      const receivers = receiversOf(inp, work, t, r.db);
      const byKey = r.pending.get(t.tableId)!.n <= BY_KEY_MAX && t.keyIndexedOn.includes(r.db);
      const n = await stageRows(inp, r, t, receivers, byKey);
      for (const db of receivers) work.staged.get(db)!.set(t.tableId, work.staged.get(db)!.get(t.tableId)! + n.get(db)!);
    }
  }
}

/** Step 7: databases that are not sources of the sync: empty, onetimecopy, direct apply. */
export async function loadTargets(inp: RunInputs, reads: SourceRead[], work: Work): Promise<void> {
  const isSource = isSourceOf(inp);
  const targets = inp.ctx.databases.map((d) => d.name).filter((db) => !isSource(db));
  await Promise.all(
    targets
      .filter((db) => work.toEmpty.has(db))
      .map((db) =>
        emptyTables(
          inp.writers.get(db)!,
          work.toEmpty.get(db)!.map((t) => tableOn(t, db)),
          false,
        ),
      ),
  );
  await copyWhole(inp, reads[0], work, targets);
  for (const t of inp.scope.tables) {
    const r = work.direct.get(t.tableId);
    if (r) await applyDirect(inp, r.client, t, receiversOf(inp, work, t, r.db));
  }
}

/**
 * Step 8: sources. Each one's read transaction ends first: a run must not hold a lock on
 * a database where it then writes (an application's TRUNCATE queued between the two
 * would make the run wait for itself, which PostgreSQL cannot see as a deadlock). The
 * first source feeds the onetimecopies, so it comes last.
 */
export async function loadSources(inp: RunInputs, reads: SourceRead[], work: Work): Promise<void> {
  const [first, ...others] = reads;
  const read = touchedTables(inp, reads);
  const end = async (r: SourceRead) => {
    await assertNotRewritten(r.client, r.db, inp.ctx.sync.name, read);
    await r.client.query(ROLLBACK_SQL);
  };
  await Promise.all(others.map(end));
  for (const r of others) await emptySource(inp, r, work);
  await copyWhole(
    inp,
    first,
    work,
    others.map((r) => r.db),
  );
  await end(first);
  await emptySource(inp, first, work);
}

/** A source's share of step 8: tables it holds locked emptied at once, the others row by row (deferring what it must not touch). */
async function emptySource(inp: RunInputs, r: SourceRead, work: Work): Promise<void> {
  const w = inp.writers.get(r.db)!;
  const tables = work.toEmpty.get(r.db);
  if (tables)
    await emptyTables(
      w,
      tables.map((t) => tableOn(t, r.db)),
      true,
    );
  const clears = work.toClear.get(r.db);
  if (!clears) return;
  await w.query(GUARD_SETUP_SQL, [r.snapshot]);
  for (const { t, truncater } of clears) {
    const res = (await w.query(guardedClearSql(inp.ctx.schema, t))) as unknown as pg.QueryResult<{ n: string }>[];
    const n = Number(res[res.length - 1].rows[0].n);
    if (!n) continue;
    // back to the truncating source: a deletion of each key at the time of its TRUNCATE
    await w.query(TRUNCATE_TS_SETUP_SQL, [truncater.truncates.get(t.tableId)!]);
    await copyBetween(w, clearDeferredOutSql(t), [{ client: inp.writers.get(truncater.db)!, sql: requeueInSql(inp.ctx.schema, t) }]);
    work.deferred[t.display] = (work.deferred[t.display] ?? 0) + n;
  }
}

/**
 * onetimecopy into `into` (databases already emptied where `always`): each table from the
 * first source's snapshot, one read feeding every receiver. rebuild_index on targets only:
 * a source's table is locked by this run, and a copy into it is rare.
 */
async function copyWhole(inp: RunInputs, first: SourceRead, work: Work, into: string[]): Promise<void> {
  const { ctx, scope, writers } = inp;
  const isSource = isSourceOf(inp);
  for (const t of scope.tables) {
    const dbs = (work.copyTargets.get(t.tableId) ?? []).filter((db) => into.includes(db));
    if (!dbs.length) continue;
    const copy = () => copyTable(inp, first.client, t, dbs);
    const rebuild = ctx.sync.rebuildIndex ? dbs.filter((db) => !isSource(db)) : [];
    await (rebuild.length
      ? withIndexesDropped(
          rebuild.map((db) => writers.get(db)!),
          rebuild.map((db) => tableOn(t, db)),
          copy,
        )
      : copy());
    if (!work.copied.includes(t.display)) work.copied.push(t.display);
  }
}

/** Deferred keys per receiver: [table, sender index, count]. */
export type Deferred = Map<string, { t: RunTable; src: number; n: number }[]>;

/** Step 9: the staged rows, as is or guarded. */
export async function applyStaged(inp: RunInputs, reads: SourceRead[], work: Work, locks: TableLocks): Promise<Deferred> {
  const { ctx, scope, writers } = inp;
  const isSource = isSourceOf(inp);
  const deferred: Deferred = new Map();
  await Promise.all(
    [...work.staged].map(async ([db, m]) => {
      const w = writers.get(db)!;
      const tables = scope.tables.filter((t) => m.has(t.tableId));
      const shape = (t: RunTable) => ({
        ...tableOn(t, db),
        analyze: m.get(t.tableId)! > ANALYZE_STAGING_ROWS,
        sorted: m.get(t.tableId)! > SORT_STAGING_ROWS && t.keyIndexedOn.includes(db),
      });
      const held = locks.locked.get(db);
      const guarded = isSource(db) ? tables.filter((t) => !held?.has(t.tableId)) : [];
      const plain = tables.filter((t) => !guarded.includes(t));
      if (plain.length) {
        try {
          await w.query(plainApplySql(plain.flatMap((t) => (tableOn(t, db).subset ? subsetApplySql : applyStagingSql)(shape(t)))));
        } catch (e) {
          if ((e as { code?: string }).code !== SQLSTATE.unique_violation) throw e;
          await w.query(UNDO_PLAIN_APPLY_SQL);
          throw await uniqueViolation(
            inp,
            db,
            w,
            plain.map((t) => tableOn(t, db)),
            e,
          );
        }
      }
      if (!guarded.length) return;
      await w.query(GUARD_SETUP_SQL, [reads.find((r) => r.db === db)!.snapshot]);
      for (const t of guarded) {
        let res: pg.QueryResult<{ src: number; n: string }>[];
        try {
          const latest = ctx.strategyFor(t.schema, t.name).kind === 'latest';
          res = (await w.query(guardedApplySql(ctx.schema, { ...shape(t), arbiter: t.keyUniqueOn.includes(db), latest }))) as unknown as typeof res;
        } catch (e) {
          // the insert waited too long for a local transaction inserting one of the keys (a
          // prepared transaction may stay for hours): write nothing of this table here, and
          // hand every key back; the rest of the run goes on
          if ((e as { code?: string }).code === SQLSTATE.unique_violation) {
            await w.query(UNDO_GUARDED_APPLY_SQL);
            throw await uniqueViolation(inp, db, w, [t], e);
          }
          if ((e as { code?: string }).code !== SQLSTATE.lock_not_available) throw e;
          res = (await w.query(deferAllSql(t))) as unknown as typeof res;
        }
        for (const row of res[res.length - 1].rows) {
          const list = deferred.get(db) ?? [];
          list.push({ t, src: row.src, n: Number(row.n) });
          deferred.set(db, list);
          work.deferred[t.display] = (work.deferred[t.display] ?? 0) + Number(row.n);
        }
      }
    }),
  );
  return deferred;
}

/** Deferred keys back into their senders' delta tables, in the senders' write transactions. */
export async function requeue(inp: RunInputs, deferred: Deferred): Promise<void> {
  const { ctx, writers } = inp;
  for (const [db, list] of deferred) {
    for (const { t, src } of list) {
      const sender = ctx.sources[src].name;
      await copyBetween(writers.get(db)!, requeueOutSql(t, src), [{ client: writers.get(sender)!, sql: requeueInSql(ctx.schema, t) }]);
    }
  }
}

/** One TRUNCATE for all, else DELETE (see emptyTablesSql). */
export async function emptyTables(c: pg.Client, tables: { schema: string; name: string }[], deleteOnly: boolean): Promise<void> {
  const [first, fallback] = emptyTablesSql(tables, deleteOnly);
  try {
    await c.query(first);
  } catch (e) {
    if (!fallback || (e as { code?: string }).code !== SQLSTATE.feature_not_supported) throw e;
    await c.query(fallback);
  }
}
