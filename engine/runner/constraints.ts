/**
 * Step 9's end (docs/protocol.md, "Constraints replication cannot satisfy"): a unique index
 * other than the key that the winners' rows collide on, and foreign keys left without
 * their parent (PostgreSQL does not check them under session_replication_role = replica:
 * a parent deleted on one source while a child was inserted on another). Either fails the
 * run before anything commits, with one message naming the database, the table, the keys
 * and the constraint; the rows are settled by hand (or, once hooks exist, by on_error).
 */
import type pg from 'pg';
import type { RunInputs } from './inputs.js';
import type { RunTable } from './scope.js';
import type { Work } from './receive.js';
import { BucardoError } from '../errors.js';
import { displayName } from '../sql/ident.js';
import { stagingTable } from './sql/apply.js';
import { tableOn } from './receiving.js';
import { UNIQUE_COLUMNS_SQL, uniqueCulpritsSql, orphansSql } from './sql/constraints.js';

const HINT =
  'settle the rows by hand on the sources (change or delete one of them there), then the next run goes through; see "Constraints replication cannot satisfy" in docs/protocol.md';

/**
 * A unique violation (23505) raised while `db` took the staged rows of one of `tables`,
 * after the failed statement was rolled back to its savepoint: the error, naming the keys.
 */
export async function uniqueViolation(inp: RunInputs, db: string, w: pg.Client, tables: RunTable[], e: unknown): Promise<BucardoError> {
  const err = e as { table?: string; schema?: string; constraint?: string; detail?: string };
  const t = tables.find((x) => x.name === err.table && (!err.schema || x.schema === err.schema)) ?? tables[0];
  let keys: unknown[] = [];
  try {
    const cols = (await w.query<{ cols: string[] | null }>(UNIQUE_COLUMNS_SQL, [displayName(t.schema, t.name), err.constraint ?? ''])).rows[0]?.cols;
    if (cols?.length) keys = (await w.query<{ key: unknown }>(uniqueCulpritsSql(t, cols))).rows.map((r) => r.key);
  } catch {
    /* the message below still names the table and the constraint */
  }
  const shown = keys.length ? ` the row${keys.length > 1 ? 's' : ''} with key ${keys.map((k) => JSON.stringify(k)).join(', ')}` : ' a row';
  return new BucardoError(
    'constraint_violation',
    `sync ${inp.ctx.sync.name} cannot write table ${t.display} on database ${db}:${shown} would violate unique constraint ${err.constraint ?? '?'}${err.detail ? ` (${err.detail})` : ''}; nothing was written`,
    { hint: HINT, details: { database: db, table: t.display, constraint: err.constraint, keys } },
  );
}

/** Foreign keys of the tables the run wrote on each database, checked before commit. */
export async function checkForeignKeys(inp: RunInputs, work: Work): Promise<void> {
  const { scope, writers, ctx } = inp;
  await Promise.all(
    [...work.staged].map(async ([db, m]) => {
      // by their names on this database (a target may hold a table under another name)
      const named = (t: { schema: string; name: string }) => (x: RunTable) => tableOn(x, db).schema === t.schema && tableOn(x, db).name === t.name;
      const staged = (t: { schema: string; name: string }) => scope.tables.find((x) => named(t)(x) && m.has(x.tableId));
      // every FK of this database whose child or parent table took staged rows
      const fks = scope.tables.flatMap((t) => t.fks[db] ?? []).filter((fk) => staged(fk.child) || staged(fk.parent));
      for (const fk of fks) {
        const child = scope.tables.find(named(fk.child))!;
        const parent = staged(fk.parent);
        const sql = orphansSql(
          fk,
          child.keyColumns,
          staged(fk.child) ? stagingTable(child.tableId) : null,
          parent ? { table: stagingTable(parent.tableId), keyColumns: parent.keyColumns } : null,
        );
        const rows = (await writers.get(db)!.query<{ key: unknown }>(sql)).rows;
        if (!rows.length) continue;
        throw new BucardoError(
          'constraint_violation',
          `sync ${ctx.sync.name} would leave rows of table ${child.display} on database ${db} without their parent in ${displayName(fk.parent.schema, fk.parent.name)}: key ${rows.map((r) => JSON.stringify(r.key)).join(', ')} violate${rows.length === 1 ? 's' : ''} foreign key ${fk.name} (a parent deleted on one source while a child was written on another?); nothing was written`,
          { hint: HINT, details: { database: db, table: child.display, constraint: fk.name, keys: rows.map((r) => r.key) } },
        );
      }
    }),
  );
}
