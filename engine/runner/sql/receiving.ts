/**
 * The SQL of tables that a database takes its own way (SPEC section 6; engine/runner/receiving.ts):
 * reading a source through a row filter, and writing only some of a receiver's columns.
 *
 * A filter is the user's SQL over the source row. It is evaluated in a subquery whose only
 * FROM item is the user's table, unaliased: bare column names are the table's columns
 * (never bucardo's pending-key table joined next to it, which has the key's names too),
 * and `orders.region` works as the user would write it. The text is the user's own,
 * reviewed with the topology; it is wrapped in parentheses, never spliced into anything
 * else.
 *
 * Some columns only: a receiver's other columns keep their values, so its rows are
 * updated in place, new ones inserted (the columns not sent take their defaults), those
 * no longer present deleted; never delete then insert (the form of a full row,
 * sql/apply.ts applyStagingSql), which would reset them.
 */
import { quoteIdent, qualify } from '../../sql/ident.js';
import { copyFormat, pendingTable, winnerRowsSql, wholeTableSql, presentRowsSql } from './pending.js';
import { PRESENT, applyNames, type ApplyTable } from './apply.js';

interface Sent {
  schema: string;
  name: string;
  tableId: string;
  keyColumns: string[];
  columns: string[];
  binary?: boolean;
  where?: string;
}

/** The filter as a boolean column of the subquery: NULL counts as no match. */
const MATCH = '_bucardo_match';
const matchOf = (where: string) => `((${where}) IS TRUE) AS ${MATCH}`;

/**
 * winnerRowsSql (sql/pending.ts) through the table's filter: a row that exists but does
 * not match is sent as not present, so that the receiver deletes it (a row moving out of
 * the filter by an UPDATE) or does not insert it.
 */
export function sendWinnerRowsSql(t: Sent, src: number, byKey: boolean): string {
  if (!t.where) return winnerRowsSql(t, t.columns, src, byKey);
  const keySet = new Set(t.keyColumns);
  const tbl = qualify(t.schema, t.name);
  const sel = t.columns.map((c) => (keySet.has(c) ? `k.${quoteIdent(c)}` : `t.${quoteIdent(c)}`)).join(', ');
  const tail = `t.${MATCH} IS TRUE, k._bucardo_ts, ${Math.trunc(src)}::int`;
  const pk = quoteIdent(pendingTable(t.tableId));
  if (byKey) {
    // one index probe per key, as winnerRowsSql
    const inner = [...t.columns.filter((c) => !keySet.has(c)).map((c) => `${tbl}.${quoteIdent(c)}`), matchOf(t.where)];
    const on = t.keyColumns.map((c) => `${tbl}.${quoteIdent(c)} = k.${quoteIdent(c)}`).join(' AND ');
    return `COPY (SELECT ${sel}, ${tail} FROM ${pk} k LEFT JOIN LATERAL (SELECT ${inner.join(', ')} FROM ${tbl} WHERE ${on} OFFSET 0) t ON true) TO STDOUT${copyFormat(t)}`;
  }
  const inner = [...t.columns.map((c) => quoteIdent(c)), matchOf(t.where)];
  const on = t.keyColumns.map((c) => `t.${quoteIdent(c)} = k.${quoteIdent(c)}`).join(' AND ');
  return `COPY (SELECT ${sel}, ${tail} FROM ${pk} k LEFT JOIN (SELECT ${inner.join(', ')} FROM ${tbl}) t ON ${on}) TO STDOUT${copyFormat(t)}`;
}

/** wholeTableSql through the filter (onetimecopy, fullcopy: only matching rows). */
export function sendWholeTableSql(t: Sent): string {
  if (!t.where) return wholeTableSql(t, t.columns);
  return `COPY (SELECT ${t.columns.map(quoteIdent).join(', ')} FROM ${qualify(t.schema, t.name)} WHERE (${t.where})) TO STDOUT${copyFormat(t)}`;
}

/** presentRowsSql through the filter (direct apply: the keys were all deleted, only matching rows come back). */
export function sendPresentRowsSql(t: Sent): string {
  if (!t.where) return presentRowsSql(t, t.columns);
  const on = t.keyColumns.map((c) => `t.${quoteIdent(c)} = k.${quoteIdent(c)}`).join(' AND ');
  const cols = t.columns.map(quoteIdent);
  return `COPY (SELECT ${cols.map((c) => `t.${c}`).join(', ')} FROM ${quoteIdent(pendingTable(t.tableId))} k JOIN (SELECT ${cols.join(', ')} FROM ${qualify(t.schema, t.name)} WHERE (${t.where})) t ON ${on}) TO STDOUT${copyFormat(t)}`;
}

/** `SET c = s.c, ...` of the sent columns that are not the key; null when the key is all that is sent. */
function setList(t: { keyColumns: string[]; columns: string[] }): string | null {
  const set = t.columns.filter((c) => !t.keyColumns.includes(c)).map((c) => `${quoteIdent(c)} = s.${quoteIdent(c)}`);
  return set.length ? set.join(', ') : null;
}

/**
 * applyStagingSql for a receiver that takes some columns only (a target, or a source's
 * table the run holds locked): delete the keys no longer present, update the rows that
 * exist, insert the others.
 */
export function subsetApplySql(t: ApplyTable): string[] {
  const { st, tbl, on, cols } = applyNames(t);
  const out: string[] = [];
  if (t.analyze) out.push(`ANALYZE ${st}`);
  out.push(`DELETE FROM ${tbl} t USING ${st} s WHERE ${on} AND NOT s.${PRESENT}`);
  const set = setList(t);
  if (set) out.push(`UPDATE ${tbl} t SET ${set} FROM ${st} s WHERE ${on} AND s.${PRESENT}`);
  const order = t.sorted ? ` ORDER BY ${t.keyColumns.map(quoteIdent).join(', ')}` : '';
  out.push(
    `INSERT INTO ${tbl} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM ${st} s WHERE s.${PRESENT} AND NOT EXISTS (SELECT 1 FROM ${tbl} t WHERE ${on})${order}`,
  );
  return out;
}

/**
 * The writes of guardedApplySql (sql/apply.ts) for a source that takes some columns only:
 * of the rows the run locked (lk) and did not defer (rq), delete those no longer present
 * and update the others; insert the staged rows that had no row to lock. The deferral
 * around it is unchanged: nothing the run has not seen is written over.
 */
export function subsetGuardedWritesSql(
  t: ApplyTable & { arbiter: boolean },
  p: { tbl: string; st: string; lk: string; rq: string; on: (a: string, b: string) => string },
): string[] {
  const { tbl, st, lk, rq, on } = p;
  const keys = t.keyColumns.map(quoteIdent).join(', ');
  const cols = t.columns.map(quoteIdent).join(', ');
  const mine = `${on('t', 'l')} AND t.tableoid = l._bucardo_toid AND t.ctid = l._bucardo_tid AND ${on('s', 'l')} AND NOT EXISTS (SELECT 1 FROM ${rq} r WHERE ${on('r', 'l')})`;
  const out = [`DELETE FROM ${tbl} t USING ${lk} l, ${st} s WHERE ${mine} AND NOT s.${PRESENT}`];
  const set = setList(t);
  if (set) out.push(`UPDATE ${tbl} t SET ${set} FROM ${lk} l, ${st} s WHERE ${mine} AND s.${PRESENT}`);
  out.push(
    `INSERT INTO ${tbl} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM ${st} s WHERE s.${PRESENT} AND NOT EXISTS (SELECT 1 FROM ${rq} r WHERE ${on('r', 's')})` +
      ` AND NOT EXISTS (SELECT 1 FROM ${lk} l WHERE ${on('l', 's')})${t.sorted ? ` ORDER BY ${keys}` : ''}${t.arbiter ? ` ON CONFLICT (${keys}) DO NOTHING` : ''}`,
  );
  return out;
}
