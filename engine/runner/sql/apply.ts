/**
 * The receiving side of a run (docs/protocol.md, step 6): a staging temp table per table
 * shaped like the receiver's own table, filled by COPY from the winning sources; then,
 * for every table in one round trip, delete the changed keys and insert the rows that
 * still exist. Session settings first: replica role (no capture, no user triggers, no FK
 * checks: the rows are already consistent on their source) and the origin mark.
 */
import { quoteIdent, qualify } from '../../sql/ident.js';

export const stagingTable = (tableId: string) => `bucardo_st_${tableId}`;
export const PRESENT = '_bucardo_present';

export const WRITE_SETUP_SQL = `SELECT set_config('session_replication_role', 'replica', true), set_config('bucardo.origin', $1, true)`;

export function createStagingSql(tables: { tableId: string; schema: string; name: string; columns: string[] }[]): string {
  return tables
    .map(
      (t) =>
        `CREATE TEMP TABLE ${quoteIdent(stagingTable(t.tableId))} ON COMMIT DROP AS SELECT ${t.columns.map(quoteIdent).join(', ')}, true AS ${PRESENT} FROM ${qualify(t.schema, t.name)} WITH NO DATA`,
    )
    .join(';\n');
}

export function copyIntoStagingSql(tableId: string, columns: string[]): string {
  return `COPY ${quoteIdent(stagingTable(tableId))} (${columns.map(quoteIdent).join(', ')}, ${PRESENT}) FROM STDIN`;
}

export function copyIntoTableSql(table: { schema: string; name: string }, columns: string[]): string {
  return `COPY ${qualify(table.schema, table.name)} (${columns.map(quoteIdent).join(', ')}) FROM STDIN`;
}

/**
 * Empties several tables of one receiver: one TRUNCATE for all (so foreign keys among
 * them do not stop it), falling back to DELETE (no FK checks under the replica role) when
 * a table outside the list references one of them. `deleteOnly`: the receiver is a source
 * of the run, whose own read snapshot may hold locks that TRUNCATE would wait for.
 */
export function emptyTablesSql(tables: { schema: string; name: string }[], deleteOnly: boolean): string[] {
  const names = tables.map((t) => qualify(t.schema, t.name));
  const deletes = names.map((n) => `DELETE FROM ${n}`);
  if (deleteOnly) return [deletes.join(';\n')];
  return [`SAVEPOINT bucardo_empty; TRUNCATE ${names.join(', ')}; RELEASE SAVEPOINT bucardo_empty`, `ROLLBACK TO SAVEPOINT bucardo_empty; ${deletes.join('; ')}; RELEASE SAVEPOINT bucardo_empty`];
}

/** DELETE the staged keys, INSERT the staged rows that exist: two statements per table. */
export function applyStagingSql(t: { tableId: string; schema: string; name: string; keyColumns: string[]; columns: string[]; analyze: boolean }): string[] {
  const st = quoteIdent(stagingTable(t.tableId));
  const tbl = qualify(t.schema, t.name);
  const on = t.keyColumns.map((c) => `t.${quoteIdent(c)} = s.${quoteIdent(c)}`).join(' AND ');
  const cols = t.columns.map(quoteIdent).join(', ');
  const out: string[] = [];
  // Large staging sets: give the planner real numbers (a temp table has no statistics).
  if (t.analyze) out.push(`ANALYZE ${st}`);
  out.push(`DELETE FROM ${tbl} t USING ${st} s WHERE ${on}`);
  out.push(`INSERT INTO ${tbl} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM ${st} WHERE ${PRESENT}`);
  return out;
}
