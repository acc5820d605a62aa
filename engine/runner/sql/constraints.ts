/**
 * Constraints between rows that replication cannot satisfy (docs/protocol.md, "Constraints
 * replication cannot satisfy"): a unique index other than the key, and foreign keys. The
 * runner writes with session_replication_role = replica, so PostgreSQL checks unique
 * indexes but not foreign keys; these queries name the rows at fault, so that the run
 * fails with one message naming the database, table, key and constraint.
 */
import { quoteIdent, qualify } from '../../sql/ident.js';
import { stagingTable, PRESENT } from './apply.js';

/** $1 the table (regclass text), $2 the index or constraint name: the index's columns. */
export const UNIQUE_COLUMNS_SQL = `SELECT array_agg(a.attname::text ORDER BY k.ord) AS cols
  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
 WHERE i.indrelid = $1::regclass AND ic.relname = $2`;

/**
 * Staged rows whose values of `cols` (a unique index) equal those of another staged row,
 * or of a row of the table that the run does not replace: up to 5 keys, as JSON.
 */
export function uniqueCulpritsSql(t: { tableId: string; schema: string; name: string; keyColumns: string[] }, cols: string[]): string {
  const st = quoteIdent(stagingTable(t.tableId));
  const eq = (a: string, b: string, cs: string[]) => cs.map((c) => `${a}.${quoteIdent(c)} = ${b}.${quoteIdent(c)}`).join(' AND ');
  const keyOf = (a: string) => `jsonb_build_object(${t.keyColumns.map((k) => `${quoteLiteralText(k)}, ${a}.${quoteIdent(k)}`).join(', ')})`;
  return `SELECT DISTINCT ${keyOf('s')} AS key FROM ${st} s
 WHERE s.${PRESENT} AND (
   EXISTS (SELECT 1 FROM ${qualify(t.schema, t.name)} t WHERE ${eq('t', 's', cols)} AND NOT (${eq('t', 's', t.keyColumns)})
             AND NOT EXISTS (SELECT 1 FROM ${st} s2 WHERE ${eq('s2', 't', t.keyColumns)}))
   OR EXISTS (SELECT 1 FROM ${st} s3 WHERE s3.${PRESENT} AND ${eq('s3', 's', cols)} AND NOT (${eq('s3', 's', t.keyColumns)})))
 LIMIT 5`;
}

function quoteLiteralText(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** A foreign key between two tables of one database (prepare.ts reads them). */
export interface ForeignKey {
  name: string;
  child: { schema: string; name: string };
  childCols: string[];
  parent: { schema: string; name: string };
  parentCols: string[];
}

/**
 * Child rows the run wrote or left behind without their parent: children in `childStaged`
 * (rows written into the child table) or whose parent key is in `parentStaged` (rows of the
 * parent the run replaced or deleted), with every FK column set and no parent row. Up to 5
 * child keys, as JSON. MATCH SIMPLE, as PostgreSQL's default.
 */
export function orphansSql(
  fk: ForeignKey,
  childKey: string[],
  childStaged: string | null,
  parentStaged: { table: string; keyColumns: string[] } | null,
): string {
  const c = 'c';
  const child = qualify(fk.child.schema, fk.child.name);
  const parent = qualify(fk.parent.schema, fk.parent.name);
  const set = fk.childCols.map((col) => `${c}.${quoteIdent(col)} IS NOT NULL`).join(' AND ');
  const joins = fk.childCols.map((col, i) => `p.${quoteIdent(fk.parentCols[i])} = ${c}.${quoteIdent(col)}`).join(' AND ');
  const scope: string[] = [];
  if (childStaged)
    scope.push(
      `EXISTS (SELECT 1 FROM ${quoteIdent(childStaged)} s WHERE s.${PRESENT} AND ${childKey.map((k) => `s.${quoteIdent(k)} = ${c}.${quoteIdent(k)}`).join(' AND ')})`,
    );
  if (parentStaged?.keyColumns.every((k) => fk.parentCols.includes(k))) {
    const on = parentStaged.keyColumns.map((k) => `s.${quoteIdent(k)} = ${c}.${quoteIdent(fk.childCols[fk.parentCols.indexOf(k)])}`).join(' AND ');
    scope.push(`EXISTS (SELECT 1 FROM ${quoteIdent(parentStaged.table)} s WHERE ${on})`);
  } else if (parentStaged) {
    scope.push('true'); // the FK references other columns than the parent's key: every child row
  }
  const keyOf = `jsonb_build_object(${childKey.map((k) => `${quoteLiteralText(k)}, ${c}.${quoteIdent(k)}`).join(', ')})`;
  return `SELECT ${keyOf} AS key FROM ${child} ${c}
 WHERE ${set} AND (${scope.join(' OR ') || 'false'}) AND NOT EXISTS (SELECT 1 FROM ${parent} p WHERE ${joins})
 LIMIT 5`;
}
