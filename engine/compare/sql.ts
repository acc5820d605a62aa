/**
 * The queries of `bucardo compare`, for one table on one database. Every name is quoted;
 * every key value is a bind parameter, cast to the key column's type on that database.
 *
 * Order: every database must sort keys the same way, or chunk boundaries would put a row
 * in different chunks on different databases. Collatable key columns are therefore
 * compared under COLLATE "C" (byte order), unless that database already sorts that column
 * bytewise (collation C/POSIX, or the database default is libc C), in which case the
 * clause is left out so the primary key's index serves the range scans.
 */
import type pg from 'pg';
import { quoteIdent, qualify } from '../sql/ident.js';

export interface KeyCol {
  name: string;
  /** format_type() on this database: SQL type syntax, quoted by PostgreSQL where needed. */
  type: string;
  /** Add COLLATE "C" to sort this column bytewise. */
  collateC: boolean;
}

/** One table as seen on one database. */
export interface TableView {
  database: string;
  client: pg.Client;
  schema: string;
  name: string;
  keys: KeyCol[];
  /** Compared columns, in the reference's order. */
  columns: string[];
  /** Only the rows matching this filter (the user's SQL over the table's columns: SPEC section 6). */
  where?: string;
}

/**
 * The rows compared: the table, or its rows matching the filter, in a subquery whose only
 * FROM item is the table (bare names in the filter are its columns).
 */
function rowsOf(v: TableView): string {
  return v.where ? `(SELECT * FROM ${qualify(v.schema, v.name)} WHERE (${v.where})) AS f` : qualify(v.schema, v.name);
}

/** A key range (lo, hi]: null ends are open. Key values are text, as `key::text` prints them. */
export interface KeyRange {
  lo: string[] | null;
  hi: string[] | null;
}

const C = ' COLLATE "C"';

function keyExpr(k: KeyCol, prefix = ''): string {
  return prefix + quoteIdent(k.name) + (k.collateC ? C : '');
}

function orderBy(v: TableView): string {
  return v.keys.map((k) => keyExpr(k)).join(', ');
}

function keyArray(v: TableView): string {
  return `ARRAY[${v.keys.map((k) => `${quoteIdent(k.name)}::text`).join(', ')}]`;
}

/** md5 of the row's text: ROW(...)::text quotes every value that needs it, so it is unambiguous. */
function rowHash(v: TableView): string {
  return `md5(ROW(${v.columns.map(quoteIdent).join(', ')})::text)`;
}

/** WHERE clause of a range, its parameters appended to `params`. */
function rangeWhere(v: TableView, r: KeyRange, params: unknown[]): string {
  const conds: string[] = [];
  const bound = (vals: string[], op: string) => {
    const rhs = v.keys.map((k, i) => {
      params.push(vals[i]);
      return `$${params.length}::${k.type}${k.collateC ? C : ''}`;
    });
    const lhs = v.keys.map((k) => keyExpr(k));
    conds.push(v.keys.length === 1 ? `${lhs[0]} ${op} ${rhs[0]}` : `ROW(${lhs.join(', ')}) ${op} ROW(${rhs.join(', ')})`);
  };
  if (r.lo) bound(r.lo, '>');
  if (r.hi) bound(r.hi, '<=');
  return conds.length ? `WHERE ${conds.join(' AND ')}` : '';
}

/**
 * Every `step`-th key of the range, in key order: the boundaries that cut the range into
 * chunks of `step` rows on this database. One sorted pass (an index scan where the order
 * allows); returns rows/step keys, never the rows.
 */
export async function sampleBoundaries(v: TableView, r: KeyRange, step: number): Promise<string[][]> {
  const params: unknown[] = [];
  const where = rangeWhere(v, r, params);
  params.push(step);
  const res = await v.client.query<{ k: string[] }>(
    `SELECT s.k FROM (SELECT ${keyArray(v)} AS k, row_number() OVER (ORDER BY ${orderBy(v)}) AS rn
                        FROM ${rowsOf(v)} ${where}) s
      WHERE s.rn % $${params.length}::bigint = 0 ORDER BY s.rn`,
    params,
  );
  return res.rows.map((row) => row.k);
}

export interface ChunkHash {
  rows: number;
  /** Two 64-bit sums of the rows' md5 halves; null for an empty chunk. */
  hash: string | null;
}

/**
 * Row count and content hash of one range. The hash is order-free: the sums of the two
 * 64-bit halves of each row's md5. Keys are unique, so equal sets of rows give equal
 * sums, and PostgreSQL needs neither a sort nor memory per row (an ordered
 * string_agg would hold 32 bytes per row of the chunk, and sort it).
 */
export async function hashRange(v: TableView, r: KeyRange): Promise<ChunkHash> {
  const params: unknown[] = [];
  const where = rangeWhere(v, r, params);
  const half = (from: number) => `sum(('x' || substr(s.h, ${from}, 16))::bit(64)::bigint::numeric)::text`;
  const res = await v.client.query<{ n: string; h: string | null }>(
    `SELECT count(*)::bigint AS n, ${half(1)} || ':' || ${half(17)} AS h
       FROM (SELECT ${rowHash(v)} AS h FROM ${rowsOf(v)} ${where}) s`,
    params,
  );
  return { rows: Number(res.rows[0].n), hash: res.rows[0].h };
}

/** Key and row hash of every row of a (small) range, in key order. */
export async function rowHashes(v: TableView, r: KeyRange): Promise<{ k: string[]; h: string }[]> {
  const params: unknown[] = [];
  const where = rangeWhere(v, r, params);
  const res = await v.client.query<{ k: string[]; h: string }>(
    `SELECT ${keyArray(v)} AS k, ${rowHash(v)} AS h FROM ${rowsOf(v)} ${where} ORDER BY ${orderBy(v)}`,
    params,
  );
  return res.rows;
}

/**
 * Puts keys (given as text) in this database's compare order; returns their indexes.
 * Used to list differing keys that come from several databases in one key order.
 */
export async function sortKeys(v: TableView, keys: string[][]): Promise<number[]> {
  if (keys.length <= 1) return keys.map((_, i) => i);
  const params = v.keys.map((_, j) => keys.map((k) => k[j]));
  const cols = v.keys.map((_, j) => `c${j + 1}`);
  const order = v.keys.map((k, j) => `u.${cols[j]}::${k.type}${k.collateC ? C : ''}`).join(', ');
  const res = await v.client.query<{ i: string }>(
    `SELECT u.i FROM unnest(${v.keys.map((_, j) => `$${j + 1}::text[]`).join(', ')}) WITH ORDINALITY AS u(${cols.join(', ')}, i)
      ORDER BY ${order}`,
    params,
  );
  return res.rows.map((row) => Number(row.i) - 1);
}

/**
 * Per column of a table on this database: its type, and whether sorting it bytewise
 * needs COLLATE "C". Names are parameters.
 */
export async function readColumnOrder(c: pg.Client, schema: string, name: string): Promise<Map<string, { type: string; collateC: boolean }>> {
  const res = await c.query<{ name: string; type: string; collate_c: boolean }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
            a.attcollation <> 0 AND NOT (
              coalesce(co.collname IN ('C', 'POSIX', 'ucs_basic'), false)
              OR (co.collname = 'default'
                  AND (SELECT coalesce(to_jsonb(d) ->> 'datlocprovider', 'c') = 'c' AND d.datcollate IN ('C', 'POSIX')
                         FROM pg_database d WHERE d.datname = current_database()))
            ) AS collate_c
       FROM pg_attribute a
       JOIN pg_class t ON t.oid = a.attrelid JOIN pg_namespace n ON n.oid = t.relnamespace
       LEFT JOIN pg_collation co ON co.oid = a.attcollation
      WHERE n.nspname = $1 AND t.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped`,
    [schema, name],
  );
  return new Map(res.rows.map((r) => [r.name, { type: r.type, collateC: r.collate_c }]));
}
