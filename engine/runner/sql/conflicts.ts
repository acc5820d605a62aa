/**
 * Conflict resolution in SQL, on the first source (the "hub"), once every other source's
 * pending keys of a table were streamed there (docs/protocol.md, step 5). A conflict is a
 * key pending on two or more sources; the winner is a source index (position in the
 * sync's `sources`), or NULL for `skip`. Only generated integers and hex are spliced.
 */
import { quoteIdent, quoteLiteral, qualify } from '../../sql/ident.js';
import { deltaTableName } from '../../objectnames.js';
import { pendingTable } from './pending.js';

export const shippedTable = (src: number, tableId: string) => `bucardo_px_${src}_${tableId}`;
export const conflictTable = (tableId: string) => `bucardo_cf_${tableId}`;
export const lostTable = (tableId: string) => `bucardo_lost_${tableId}`;

/** How the winner of one conflicting key is chosen, as SQL over (src, _bucardo_ts) rows. */
export type WinnerRule =
  | { kind: 'latest' }
  /** rank: source indexes, best first (priority, latest_table, latest_sync). */
  | { kind: 'rank'; rank: number[] }
  | { kind: 'random'; seed: string }
  | { kind: 'none' };

function winnerExpr(rule: WinnerRule, keys: string): string {
  switch (rule.kind) {
    case 'latest':
      return '(array_agg(src ORDER BY _bucardo_ts DESC, src))[1]';
    case 'rank':
      return `(array_agg(src ORDER BY array_position(ARRAY[${rule.rank.map((n) => String(Math.trunc(n))).join(', ')}]::int[], src), src))[1]`;
    case 'random':
      // md5 of seed, source and key: stable for the same run inputs (a re-run after a crash picks the same winners)
      return `(array_agg(src ORDER BY md5(${quoteLiteral(rule.seed)} || ':' || src::text || ':' || ROW(${keys})::text), src))[1]`;
    case 'none':
      return 'NULL::int';
    default: {
      const never: never = rule;
      throw new Error(`unknown winner rule ${JSON.stringify(never)}`);
    }
  }
}

/** CREATE TABLE of a shipped pending-key set, shaped like the hub's delta table (the hub may have no pending set of its own). */
export function createShippedSql(schema: string, src: number, tableId: string, keyColumns: string[]): string {
  return `CREATE TEMP TABLE ${quoteIdent(shippedTable(src, tableId))} ON COMMIT DROP AS SELECT ${keyColumns.map(quoteIdent).join(', ')}, _bucardo_ts FROM ${qualify(schema, deltaTableName(tableId))} WITH NO DATA`;
}

export function copyIntoShippedSql(src: number, tableId: string, keyColumns: string[]): string {
  return `COPY ${quoteIdent(shippedTable(src, tableId))} (${keyColumns.map(quoteIdent).join(', ')}, _bucardo_ts) FROM STDIN`;
}

/**
 * The conflicts of one table into `bucardo_cf_<id>`, then its count. `srcs`: the source
 * indexes with pending keys in this table (0 = the hub itself). `truncs`: sources with a
 * pending TRUNCATE of the table; $1 holds their times, in the same order. A TRUNCATE is a
 * change of every key at its time: it competes for each key pending elsewhere like any
 * change (per source and key, the newest of its changes counts).
 */
export function conflictSql(tableId: string, keyColumns: string[], srcs: number[], truncs: number[], rule: WinnerRule): string[] {
  const keys = keyColumns.map(quoteIdent).join(', ');
  const union = srcs
    .map((s) => `SELECT ${keys}, ${Math.trunc(s)} AS src, _bucardo_ts FROM ${quoteIdent(s === 0 ? pendingTable(tableId) : shippedTable(s, tableId))}`)
    .join(' UNION ALL ');
  const all = truncs.length
    ? `SELECT ${keys}, src, max(_bucardo_ts) AS _bucardo_ts FROM (SELECT * FROM p UNION ALL ${truncs
        .map((s, i) => `SELECT ${keys}, ${Math.trunc(s)}, ($1::timestamptz[])[${i + 1}] FROM (SELECT DISTINCT ${keys} FROM p) k`)
        .join(' UNION ALL ')}) x GROUP BY ${keys}, src`
    : 'SELECT * FROM p';
  return [
    `CREATE TEMP TABLE ${quoteIdent(conflictTable(tableId))} ON COMMIT DROP AS WITH p AS (${union}), a AS (${all})
SELECT ${keys}, array_agg(src ORDER BY src) AS srcs, array_agg(_bucardo_ts ORDER BY src) AS tss, ${winnerExpr(rule, keys)} AS winner FROM a GROUP BY ${keys} HAVING count(*) > 1`,
    `SELECT count(*)::bigint AS n FROM ${quoteIdent(conflictTable(tableId))}`,
  ];
}

/** Up to `limit` conflicts, for the conflict table and the log. */
export function conflictDetailSql(tableId: string, keyColumns: string[], limit: number): string {
  const sel = keyColumns.map((c) => `cf.${quoteIdent(c)}`).join(', ');
  return `SELECT (SELECT to_jsonb(k) FROM (SELECT ${sel}) k) AS key, winner, srcs, tss::text[] AS tss FROM ${quoteIdent(conflictTable(tableId))} cf LIMIT ${Math.trunc(limit)}`;
}

/** Keys source `src` lost (or, with skip, everybody's): removed from its pending set. */
export function lostKeysOutSql(tableId: string, keyColumns: string[], src: number): string {
  return `COPY (SELECT ${keyColumns.map(quoteIdent).join(', ')} FROM ${quoteIdent(conflictTable(tableId))} WHERE ${src} = ANY(srcs) AND winner IS DISTINCT FROM ${src}) TO STDOUT`;
}

export function createLostSql(tableId: string, keyColumns: string[]): string {
  return `CREATE TEMP TABLE ${quoteIdent(lostTable(tableId))} ON COMMIT DROP AS SELECT ${keyColumns.map(quoteIdent).join(', ')} FROM ${quoteIdent(pendingTable(tableId))} WITH NO DATA`;
}

export function copyIntoLostSql(tableId: string, keyColumns: string[]): string {
  return `COPY ${quoteIdent(lostTable(tableId))} (${keyColumns.map(quoteIdent).join(', ')}) FROM STDIN`;
}

/** Drop lost keys from a source's pending set: from `bucardo_lost_<id>`, or on the hub straight from the conflicts. */
export function dropLostSql(tableId: string, keyColumns: string[], hub: boolean): string {
  const on = keyColumns.map((c) => `p.${quoteIdent(c)} = l.${quoteIdent(c)}`).join(' AND ');
  return hub
    ? `DELETE FROM ${quoteIdent(pendingTable(tableId))} p USING ${quoteIdent(conflictTable(tableId))} l WHERE ${on} AND 0 = ANY(l.srcs) AND l.winner IS DISTINCT FROM 0`
    : `DELETE FROM ${quoteIdent(pendingTable(tableId))} p USING ${quoteIdent(lostTable(tableId))} l WHERE ${on}`;
}
