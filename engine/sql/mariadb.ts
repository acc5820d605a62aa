/**
 * The SQL text that bucardo sends to MariaDB/MySQL targets (SPEC section 7;
 * engine/targets/mariadb.ts runs it). Same rules as for PostgreSQL: every name quoted
 * here by quoteMariadbIdent, every value a `?` parameter. The table `schema.table` of a
 * sync is the table `table` in the entry's database, unless a target override renames it.
 * Statements work on whole batches (multi-row VALUES, key lists): one round trip per
 * batch, never one per row.
 */
import type { MariadbColumnType } from '../targets/mariadb-values.js';

/** `name` with embedded backticks doubled: MariaDB's and MySQL's identifier quoting. */
export function quoteMariadbIdent(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

const q = quoteMariadbIdent;

/** The one object bucardo installs in a MariaDB database: each sync's watermark there (docs/targets.md). */
export const MARIADB_STATE_TABLE = 'bucardo_sync_state';

export const MARIADB_CREATE_STATE_SQL = `CREATE TABLE IF NOT EXISTS ${q(MARIADB_STATE_TABLE)} (
  ${q('sync')} VARCHAR(255) NOT NULL PRIMARY KEY,
  ${q('run_seq')} BIGINT NOT NULL,
  ${q('snapshots')} LONGTEXT NOT NULL,
  ${q('tables')} LONGTEXT NOT NULL,
  ${q('run_id')} VARCHAR(64),
  ${q('finished')} VARCHAR(40),
  ${q('rows')} BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`;

/**
 * The run's session: UTC (DATETIME values are written as UTC text, and NOW() agrees),
 * strict mode so that a value MariaDB cannot hold is an error instead of a silent
 * conversion, and a bounded wait for another writer's row locks (the run then fails and
 * is retried, like SQLite's busy timeout). The sql_mode is set whole: NO_BACKSLASH_ESCAPES
 * from the server's default would break mysql2's escaping of the `?` values, ANSI_QUOTES
 * nothing here (names are in backticks).
 */
export const MARIADB_SESSION_SQL = `SET SESSION time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', innodb_lock_wait_timeout = ?`;

/** ? sync */
export const MARIADB_READ_STATE_SQL = `SELECT ${['run_seq', 'snapshots', 'tables', 'run_id', 'finished', 'rows'].map(q).join(', ')} FROM ${q(MARIADB_STATE_TABLE)} WHERE ${q('sync')} = ?`;

/** ? sync, run_seq, snapshots, tables, run_id, finished, rows */
export const MARIADB_WRITE_STATE_SQL = mariadbUpsertSql(
  MARIADB_STATE_TABLE,
  ['sync', 'run_seq', 'snapshots', 'tables', 'run_id', 'finished', 'rows'],
  ['sync'],
  1,
);

/** ? table name: the base table in the connection's database, with its storage engine (names compared exactly by the caller). */
export const MARIADB_TABLE_SQL = `SELECT table_name AS name, engine FROM information_schema.tables
WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' AND table_name = ?`;

/** ? table name: its columns. */
export const MARIADB_COLUMNS_SQL = `SELECT table_name AS tbl, column_name AS name FROM information_schema.columns
WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position`;

/** ? table name: the columns of its PRIMARY KEY and UNIQUE indexes (an index on a column's prefix does not make the column unique). */
export const MARIADB_UNIQUE_INDEXES_SQL = `SELECT table_name AS tbl, index_name AS ix, column_name AS name, sub_part AS part FROM information_schema.statistics
WHERE table_schema = DATABASE() AND table_name = ? AND non_unique = 0 ORDER BY index_name, seq_in_index`;

export const MARIADB_WARNINGS_SQL = 'SHOW WARNINGS';

/** ? sequence name: does it exist in the connection's database (names compared exactly by the caller). */
export const MARIADB_SEQUENCE_SQL = `SELECT table_name AS name FROM information_schema.tables
WHERE table_schema = DATABASE() AND table_type = 'SEQUENCE' AND table_name = ?`;

/** ? value (a BigInt, which mysql2 binds as the bare integer SETVAL's grammar takes). MariaDB's SETVAL never moves a sequence back. */
export function mariadbSetvalSql(sequence: string): string {
  return `SELECT SETVAL(${q(sequence)}, ?)`;
}

/**
 * Insert or update `rows` rows by key: idempotent, so a run redone after a crash writes
 * the same. Without other columns the update is a no-op assignment of the key (INSERT
 * IGNORE would turn every error into a warning).
 */
export function mariadbUpsertSql(table: string, columns: string[], key: string[], rows: number): string {
  const others = columns.filter((c) => !key.includes(c));
  const set = (others.length ? others : key.slice(0, 1)).map((c) => `${q(c)} = VALUES(${q(c)})`).join(', ');
  return `${mariadbInsertSql(table, columns, rows)} ON DUPLICATE KEY UPDATE ${set}`;
}

/** Plain multi-row insert (into a table the run emptied: onetimecopy, fullcopy). */
export function mariadbInsertSql(table: string, columns: string[], rows: number): string {
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  return `INSERT INTO ${q(table)} (${columns.map(q).join(', ')}) VALUES ${Array(rows).fill(tuple).join(', ')}`;
}

/** Delete `rows` rows by key: `k IN (?, ?)`, or `(k1, k2) IN ((?, ?), (?, ?))`. */
export function mariadbDeleteSql(table: string, key: string[], rows: number): string {
  const one = key.length === 1 ? '?' : `(${key.map(() => '?').join(', ')})`;
  const head = key.length === 1 ? q(key[0]) : `(${key.map(q).join(', ')})`;
  return `DELETE FROM ${q(table)} WHERE ${head} IN (${Array(rows).fill(one).join(', ')})`;
}

/** TRUNCATE's equivalent in the run's transaction: MariaDB's TRUNCATE is DDL and would commit it. */
export function mariadbEmptySql(table: string): string {
  return `DELETE FROM ${q(table)}`;
}

export function mariadbHasRowsSql(table: string): string {
  return `SELECT EXISTS (SELECT 1 FROM ${q(table)}) AS full`;
}

/** Every row of the compared columns (compare matches them by key). */
export function mariadbReadRowsSql(table: string, columns: string[], key: string[]): string {
  return `SELECT ${columns.map(q).join(', ')} FROM ${q(table)} ORDER BY ${key.map(q).join(', ')}`;
}

/** The CREATE TABLE a table needs on a MariaDB target (plan's hint): InnoDB, utf8mb4, binary comparison of text keys. */
export function mariadbCreateTableSql(table: string, columns: { name: string; type: MariadbColumnType }[], key: string[]): string {
  const cols = columns.map((c) => `  ${q(c.name)} ${c.type}${key.includes(c.name) ? ' NOT NULL' : ''}`);
  return `CREATE TABLE ${q(table)} (\n${[...cols, `  PRIMARY KEY (${key.map(q).join(', ')})`].join(',\n')}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;`;
}
