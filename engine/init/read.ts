/**
 * What `bucardo init` needs from an existing database: the catalog (readCatalog), which
 * sequences belong to which table, and why a table without a usable key has none.
 */
import type pg from 'pg';
import { withTransaction, BEGIN } from '../connect.js';
import { readCatalog } from '../catalog/read.js';
import type { DatabaseCatalog } from '../catalog/types.js';

export interface SequenceOwner {
  schema: string;
  name: string;
  /** The table whose column owns it (serial or identity), or null for a free-standing sequence. */
  table: { schema: string; name: string } | null;
}

/** A unique index that does not qualify as a replication key, and why. */
export interface UnusableIndex {
  schema: string;
  table: string;
  index: string;
  partial: boolean;
  expression: boolean;
  invalid: boolean;
  nullableColumns: string[];
}

export interface InitSource {
  catalog: DatabaseCatalog;
  sequences: SequenceOwner[];
  unusableIndexes: UnusableIndex[];
  /** Views and materialized views: never replicated (init says so). */
  views: { schema: string; name: string; materialized: boolean }[];
}

export async function readInitSource(c: pg.Client, database: string): Promise<InitSource> {
  // a snapshot that changes nothing: rolled back or committed alike
  return withTransaction(c, BEGIN.snapshot, async () => {
    // The topology name only picks which bucardo schema counts as installed state; unused here.
    const catalog = await readCatalog(c, database, 'main');
    const seq = await c.query<{ schema: string; name: string; tschema: string | null; tname: string | null }>(
      `SELECT sn.nspname AS schema, s.relname AS name, tn.nspname AS tschema, t.relname AS tname
         FROM pg_class s JOIN pg_namespace sn ON sn.oid = s.relnamespace
         LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
                              AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
         LEFT JOIN pg_class t ON t.oid = d.refobjid LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
        WHERE s.relkind = 'S' ORDER BY 1, 2`,
    );
    const known = new Set(catalog.sequences.map((s) => `${s.schema}\u0000${s.name}`));
    const sequences = seq.rows
      .filter((s) => known.has(`${s.schema}\u0000${s.name}`))
      .map((s) => ({ schema: s.schema, name: s.name, table: s.tschema !== null && s.tname !== null ? { schema: s.tschema, name: s.tname } : null }));
    const idx = await c.query<{ schema: string; tname: string; iname: string; partial: boolean; expr: boolean; invalid: boolean; nullable: string[] | null }>(
      `SELECT n.nspname AS schema, c.relname AS tname, ic.relname AS iname, i.indpred IS NOT NULL AS partial,
              i.indexprs IS NOT NULL AS expr, NOT i.indisvalid AS invalid,
              (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
                WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[]) AND NOT a.attnotnull) AS nullable
         FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indisunique AND NOT i.indisprimary ORDER BY 1, 2, 3`,
    );
    const unusableIndexes = idx.rows.map((r) => ({
      schema: r.schema,
      table: r.tname,
      index: r.iname,
      partial: r.partial,
      expression: r.expr,
      invalid: r.invalid,
      nullableColumns: r.nullable ?? [],
    }));
    const v = await c.query<{ schema: string; name: string; materialized: boolean }>(
      `SELECT n.nspname AS schema, c.relname AS name, c.relkind = 'm' AS materialized
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'
          AND coalesce(obj_description(n.oid, 'pg_namespace'), '') NOT LIKE 'bucardo topology %'
        ORDER BY 1, 2`,
    );
    return { catalog, sequences, unusableIndexes, views: v.rows };
  });
}
