/**
 * Pending deltas on one source (docs/protocol.md, step 3): which tables have any (the
 * change index, or a probe of every delta table where the index cannot be trusted yet), then
 * each pending table's keys, with the time of their latest change, go into a temp table
 * `bucardo_pk_<id>` that lives until the read transaction ends. The watermark and the
 * sync name reach the SQL through set_config (read back with current_setting in an
 * InitPlan, evaluated once), never spliced into the text.
 */
import { createHash } from 'node:crypto';
import { quoteIdent, qualify, quoteLiteral } from '../../sql/ident.js';
import { deltaTableName } from '../../objectnames.js';
import { CHANGE_INDEX } from '../../sql/capture.js';
import { CHANGE_INDEX_SINCE } from '../../sql/metadata.js';
import { pendingCondition } from './watermark.js';

/** Temp table of a table's pending keys on a source's read connection. */
export const pendingTable = (tableId: string) => `bucardo_pk_${tableId}`;

const LAST = "(SELECT current_setting('bucardo.last_snapshot')::pg_snapshot)";
const SYNC = "(SELECT current_setting('bucardo.sync'))";

function pendingWhere(hasLast: boolean): string {
  return pendingCondition(hasLast ? { snapshot: LAST, nullable: false } : null, SYNC);
}

/**
 * The read transaction's first statement ($1 the watermark's text or '', $2 the sync):
 * the snapshot, the settings the texts below read back, and whether this source's change
 * index can be trusted for the watermark (`trusted`: true, false, or null where the install has
 * no change index yet). It is trusted when the apply that last made a `log` trigger
 * here (meta `change_index_since`, read in the same snapshot) is visible in the watermark:
 * every transaction the watermark has not seen then started writing into the delta tables
 * after that apply committed, when every delta table had its trigger (docs/protocol.md,
 * step 3). The read transaction waits at most 5 s for a lock: it needs only ACCESS SHARE,
 * which only DDL or a TRUNCATE contends for, and such an application statement may itself
 * wait for a lock the run holds on another of its connections, a cycle PostgreSQL cannot
 * see; the run then fails and is retried, and the application's statement goes through.
 */
export function pendingSetupSql(schema: string): string {
  // no meta row: NULL (no change index); no watermark yet: false
  return `SELECT pg_current_snapshot()::text AS snapshot,
  set_config('bucardo.last_snapshot', $1, true), set_config('bucardo.sync', $2, true), set_config('lock_timeout', '5s', true),
  (SELECT coalesce(pg_visible_in_snapshot(value::xid8, NULLIF($1, '')::pg_snapshot), false)
     FROM ${qualify(schema, 'meta')} WHERE key = ${quoteLiteral(CHANGE_INDEX_SINCE)}) AS trusted`;
}

/**
 * With a trusted change index ($1: the sync's table ids): the tables with a note that the
 * watermark has not seen (one descent of the index on (table_id, txid) per table: ~1 us
 * each, where probing a delta table opens and locks it, ~10 us), then the pending
 * TRUNCATEs, in one result: `kind` 'c' or 't'. Per table, not one range scan of the
 * index by transaction id: notes of other syncs' tables, of tables another sync has not
 * consumed yet, are never read. A table named may still have nothing pending for this
 * sync (its own writes, an UPDATE that matched no row: a statement-level trigger fires
 * anyway): probeSql over those tables alone settles it.
 */
export function changedTablesSql(schema: string): string {
  const unseen = pendingCondition({ snapshot: LAST, nullable: false }, null, 'c');
  return `SELECT 'c' AS kind, t.id AS table_id, NULL::text AS ts FROM unnest($1::text[]) AS t(id)
  WHERE EXISTS (SELECT 1 FROM ${qualify(schema, CHANGE_INDEX)} c WHERE c.table_id = t.id AND ${unseen})
UNION ALL
SELECT 't', g.* FROM (${pendingTruncatesSql(schema, true)}) g`;
}

/**
 * First pass: the tables with at least one pending delta (an EXISTS probe each: cheap, and
 * an idle wake-up creates no temp table), then (table_id, ts) per pending TRUNCATE. The
 * probe is one statement over every table of the sync, prepared once per read connection
 * under a name derived from its text (probeStatement): planning its UNION cost far more
 * than running it, 150-200 ms of every run at 1,000 tables against 20-30 ms to execute
 * the prepared plan. It has no parameters (the watermark comes from the run's settings),
 * so PostgreSQL keeps the one generic plan, and replans it by itself after DDL.
 */
export function probeStatement(schema: string, tables: { tableId: string }[], hasLast: boolean): { name: string; text: string } {
  const memo = probeMemo.get(tables) ?? new Map<string, { name: string; text: string }>();
  probeMemo.set(tables, memo);
  const key = `${schema}\0${hasLast}`;
  if (!memo.has(key)) memo.set(key, makeProbeStatement(schema, tables, hasLast));
  return memo.get(key)!;
}

/** The same probe over a few tables (those the change index names): planned each time, nothing kept on the connection. */
export function probeSql(schema: string, tables: { tableId: string }[], hasLast: boolean): string {
  return makeProbeStatement(schema, tables, hasLast).text;
}

/** By the scope's (reused, frozen) list of tables: the probe's text is 1,000 EXISTS long. */
const probeMemo = new WeakMap<object, Map<string, { name: string; text: string }>>();

function makeProbeStatement(schema: string, tables: { tableId: string }[], hasLast: boolean): { name: string; text: string } {
  const where = pendingWhere(hasLast);
  const text = tables.length
    ? tables
        .map(
          (t) =>
            `SELECT ${quoteLiteral(t.tableId)}::text AS table_id WHERE EXISTS (SELECT 1 FROM ${qualify(schema, deltaTableName(t.tableId))} WHERE ${where})`,
        )
        .join(' UNION ALL ')
    : `SELECT NULL::text AS table_id WHERE false`;
  return { name: `bucardo_probe_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`, text };
}

/** The newest pending TRUNCATE per table. */
export function pendingTruncatesSql(schema: string, hasLast: boolean): string {
  return `SELECT table_id, max(_bucardo_ts)::text AS ts FROM ${qualify(schema, 'truncate_log')} WHERE ${pendingWhere(hasLast)} GROUP BY table_id`;
}

/**
 * Second pass, for the tables the probe found: CREATE TEMP TABLE ... AS per table, then
 * (table_id, n, max ts) per table as the last result set. `ordered` (the key has a btree
 * index on this source, so its types sort): the keys are written in key order, so that
 * a join that walks them (index probes, a merge join) yields rows in key order, the order
 * a receiver's index takes them fastest (measured: no slower than the hash aggregate).
 */
export function pendingSql(schema: string, tables: { tableId: string; keyColumns: string[]; ordered?: boolean }[], hasLast: boolean): string {
  const where = pendingWhere(hasLast);
  const parts: string[] = [];
  for (const t of tables) {
    const keys = t.keyColumns.map(quoteIdent).join(', ');
    parts.push(
      `CREATE TEMP TABLE ${quoteIdent(pendingTable(t.tableId))} ON COMMIT DROP AS SELECT ${keys}, max(_bucardo_ts) AS _bucardo_ts FROM ${qualify(schema, deltaTableName(t.tableId))} WHERE ${where} GROUP BY ${keys}${t.ordered ? ` ORDER BY ${keys}` : ''}`,
    );
  }
  parts.push(
    tables
      .map(
        (t) =>
          `SELECT ${quoteLiteral(t.tableId)}::text AS table_id, count(*)::bigint AS n, max(_bucardo_ts)::text AS ts FROM ${quoteIdent(pendingTable(t.tableId))}`,
      )
      .join(' UNION ALL '),
  );
  return parts.join(';\n');
}

/**
 * The rows a receiver needs for the pending keys: every key with the source's current
 * row, or NULLs and `false` where the source no longer has it (a delete).
 *
 * `byKey`: one index probe per key (a LATERAL subquery that OFFSET 0 keeps from being
 * flattened into a join), for small key sets on a table with an index on the key. The
 * pending-key table is never analysed, so the planner guesses it at ~2,000 rows whatever
 * it holds and, for a table without fresh statistics, picks a hash join over the whole
 * table: 70 ms per run for ~80 keys of a growing pgbench_history (docs/benchmarks.md),
 * against ~0.1 ms by key. Large sets keep the join: the planner sizes them right (their
 * page count is real), and a hash join over the table beats 10^5 probes.
 */
export function winnerRowsSql(
  table: { schema: string; name: string; tableId: string; keyColumns: string[]; binary?: boolean },
  columns: string[],
  src: number,
  byKey = false,
): string {
  const keySet = new Set(table.keyColumns);
  // the staged row also carries its sender and the time of its change (sql/apply.ts STAGED_SRC, STAGED_TS)
  const sel = `${columns.map((c) => (keySet.has(c) ? `k.${quoteIdent(c)}` : `t.${quoteIdent(c)}`)).join(', ')}`;
  const tail = `k._bucardo_ts, ${Math.trunc(src)}::int`;
  const on = table.keyColumns.map((c) => `t.${quoteIdent(c)} = k.${quoteIdent(c)}`).join(' AND ');
  const pk = quoteIdent(pendingTable(table.tableId));
  if (byKey) {
    const inner = columns.filter((c) => !keySet.has(c)).map((c) => `t.${quoteIdent(c)}`);
    return `COPY (SELECT ${sel}, t.ctid IS NOT NULL, ${tail} FROM ${pk} k LEFT JOIN LATERAL (SELECT ${['t.ctid', ...inner].join(', ')} FROM ${qualify(table.schema, table.name)} t WHERE ${on} OFFSET 0) t ON true) TO STDOUT${copyFormat(table)}`;
  }
  return `COPY (SELECT ${sel}, t.ctid IS NOT NULL, ${tail} FROM ${pk} k LEFT JOIN ${qualify(table.schema, table.name)} t ON ${on}) TO STDOUT${copyFormat(table)}`;
}

/** A pending-keys table's keys alone, in key order (the deletes of a direct apply). */
export function pendingKeysOnlyOutSql(table: { tableId: string; keyColumns: string[]; binary?: boolean }): string {
  const keys = table.keyColumns.map(quoteIdent).join(', ');
  return `COPY (SELECT ${keys} FROM ${quoteIdent(pendingTable(table.tableId))}) TO STDOUT${copyFormat(table)}`;
}

/**
 * The current rows of the pending keys that still exist on the source (the inserts of a
 * direct apply), joined however the planner likes: the sets are large here (a direct
 * apply has thousands of keys), so the temp table's real page count sizes it right, and
 * the planner weighs one probe per key against a scan of the table by the table's size.
 * On 100k keys of a 1M-row pgbench_accounts it hashes the keys and scans the table
 * (106-117 ms on A) where forced probes took 233 ms (many keys have two index entries
 * right after an UPDATE). A hash join's rows come in the table's physical order, a merge
 * join's or the probes' in key order (the pending keys are written sorted): any order is
 * correct, key order only helps the receiver's index.
 */
export function presentRowsSql(table: { schema: string; name: string; tableId: string; keyColumns: string[]; binary?: boolean }, columns: string[]): string {
  const sel = columns.map((c) => `t.${quoteIdent(c)}`).join(', ');
  const on = table.keyColumns.map((c) => `t.${quoteIdent(c)} = k.${quoteIdent(c)}`).join(' AND ');
  return `COPY (SELECT ${sel} FROM ${quoteIdent(pendingTable(table.tableId))} k JOIN ${qualify(table.schema, table.name)} t ON ${on}) TO STDOUT${copyFormat(table)}`;
}

/** A whole table's rows (onetimecopy, fullcopy). */
export function wholeTableSql(table: { schema: string; name: string; binary?: boolean }, columns: string[]): string {
  return `COPY (SELECT ${columns.map(quoteIdent).join(', ')} FROM ${qualify(table.schema, table.name)}) TO STDOUT${copyFormat(table)}`;
}

/**
 * The COPY options of a table's row streams: binary where RunTable.binary allows it (the
 * receiver parses no text: 1M pgbench_accounts rows 1.25 s -> 1.16 s keyed, 0.87 -> 0.81 s
 * unindexed + primary key, median of 3), else text under the fixed session settings.
 */
export function copyFormat(table: { binary?: boolean }): string {
  return table.binary ? ' WITH (FORMAT binary)' : '';
}

/** COPY of a pending-keys table's keys and times (to the conflict hub). */
export function pendingKeysOutSql(tableId: string, keyColumns: string[]): string {
  return `COPY (SELECT ${keyColumns.map(quoteIdent).join(', ')}, _bucardo_ts FROM ${quoteIdent(pendingTable(tableId))}) TO STDOUT`;
}
