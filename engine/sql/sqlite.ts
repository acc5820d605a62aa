/**
 * The SQL text that bucardo sends to SQLite targets (SPEC section 7; engine/targets/sqlite.ts
 * runs it). Same rules as for PostgreSQL: every name quoted here, every value a `?`
 * parameter. SQLite has no schemas in bucardo's sense: the table `schema.table` of a
 * sync is the table `table` there (as in Bucardo 5), unless a target override renames it.
 */
import type { SqliteAffinity } from '../targets/values.js';

/** "name" with embedded double quotes doubled: SQLite's identifier quoting is PostgreSQL's. */
export function quoteSqliteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const q = quoteSqliteIdent;

/** The one object bucardo installs in a SQLite database: each sync's watermark there (docs/targets.md). */
export const SQLITE_STATE_TABLE = 'bucardo_sync_state';

export const SQLITE_CREATE_STATE_SQL = `CREATE TABLE IF NOT EXISTS ${q(SQLITE_STATE_TABLE)} (
  sync TEXT PRIMARY KEY,
  run_seq INTEGER NOT NULL,
  snapshots TEXT NOT NULL,
  tables TEXT NOT NULL DEFAULT '[]',
  run_id TEXT,
  finished TEXT,
  rows INTEGER
)`;

/** ? sync */
export const SQLITE_READ_STATE_SQL = `SELECT run_seq, snapshots, tables, run_id, finished, rows FROM ${q(SQLITE_STATE_TABLE)} WHERE sync = ?`;

/** ? sync, run_seq, snapshots, tables, run_id, finished, rows */
export const SQLITE_WRITE_STATE_SQL = `INSERT INTO ${q(SQLITE_STATE_TABLE)} (sync, run_seq, snapshots, tables, run_id, finished, rows) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (sync) DO UPDATE SET run_seq = excluded.run_seq, snapshots = excluded.snapshots, tables = excluded.tables,
  run_id = excluded.run_id, finished = excluded.finished, rows = excluded.rows`;

/** ? table name: one row per column (name, pk position). */
export const SQLITE_COLUMNS_SQL = 'SELECT name, pk FROM pragma_table_info(?) ORDER BY cid';
/** ? table name: its unique indexes. */
export const SQLITE_UNIQUE_INDEXES_SQL = 'SELECT name FROM pragma_index_list(?) WHERE "unique" = 1';
/** ? index name: its columns. */
export const SQLITE_INDEX_COLUMNS_SQL = 'SELECT name FROM pragma_index_info(?) ORDER BY seqno';
/** ? table name: is there such a table. */
export const SQLITE_TABLE_EXISTS_SQL = `SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?`;

/** Insert or replace one row by its key: idempotent, so a run redone after a crash writes the same. */
export function sqliteUpsertSql(table: string, columns: string[], key: string[]): string {
  const others = columns.filter((c) => !key.includes(c));
  const head = `INSERT INTO ${q(table)} (${columns.map(q).join(', ')}) VALUES (${columns.map(() => '?').join(', ')}) ON CONFLICT (${key.map(q).join(', ')})`;
  return others.length ? `${head} DO UPDATE SET ${others.map((c) => `${q(c)} = excluded.${q(c)}`).join(', ')}` : `${head} DO NOTHING`;
}

/** Plain insert (into a table the run emptied: onetimecopy, fullcopy). */
export function sqliteInsertSql(table: string, columns: string[]): string {
  return `INSERT INTO ${q(table)} (${columns.map(q).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
}

/** Delete one row by its key. */
export function sqliteDeleteSql(table: string, key: string[]): string {
  return `DELETE FROM ${q(table)} WHERE ${key.map((c) => `${q(c)} = ?`).join(' AND ')}`;
}

/** TRUNCATE's equivalent: SQLite turns an unqualified DELETE into its truncate optimisation. */
export function sqliteEmptySql(table: string): string {
  return `DELETE FROM ${q(table)}`;
}

export function sqliteHasRowsSql(table: string): string {
  return `SELECT EXISTS (SELECT 1 FROM ${q(table)}) AS full`;
}

/** Every row of the compared columns in key order (compare). */
export function sqliteReadRowsSql(table: string, columns: string[], key: string[]): string {
  return `SELECT ${columns.map(q).join(', ')} FROM ${q(table)} ORDER BY ${key.map(q).join(', ')}`;
}

/** The CREATE TABLE a table needs on a SQLite target (plan's hint), with the affinity of each column's mapping. */
export function sqliteCreateTableSql(table: string, columns: { name: string; affinity: SqliteAffinity }[], key: string[]): string {
  const cols = columns.map((c) => `  ${q(c.name)} ${c.affinity}${key.includes(c.name) ? ' NOT NULL' : ''}`);
  return `CREATE TABLE ${q(table)} (\n${[...cols, `  PRIMARY KEY (${key.map(q).join(', ')})`].join(',\n')}\n);`;
}
