/**
 * rebuild_index: a table that a copy loads whole (onetimecopy into an empty or emptied
 * table, fullcopy) is loaded without its indexes, which are built afterwards, all inside
 * the receiver's write transaction: a failure or a crash rolls the drop back with
 * everything else. Bucardo does the same (it hides the indexes during the COPY, then
 * REINDEXes). Building a btree from sorted input is much cheaper than 10^6 insertions:
 * 1M pgbench_accounts rows, COPY into the keyed table 1.25 s, COPY then ADD PRIMARY KEY
 * 0.87 s (median of 3, see docs/benchmarks.md).
 *
 * An index is left in place (and maintained by the COPY as usual) where dropping it would
 * lose something or is not allowed: a foreign key references it, it belongs to a
 * partitioned index, it has its own tablespace or a comment, or it backs a constraint
 * under another name or with a comment.
 */

/** One index to drop before the copy and re-create after it. */
export interface SavedIndex {
  drop: string;
  create: string;
}

/** $1: the table (qualified, quoted). Rows: (drop, create) statements, in index oid order. */
export const SAVE_INDEXES_SQL = `SELECT
  CASE WHEN con.oid IS NULL THEN format('DROP INDEX %s', i.indexrelid::regclass)
       ELSE format('ALTER TABLE %s DROP CONSTRAINT %I', i.indrelid::regclass, con.conname) END AS drop,
  concat_ws('; ',
    CASE WHEN con.oid IS NULL THEN pg_catalog.pg_get_indexdef(i.indexrelid)
         ELSE format('ALTER TABLE %s ADD CONSTRAINT %I %s', i.indrelid::regclass, con.conname, pg_catalog.pg_get_constraintdef(con.oid)) END,
    CASE WHEN i.indisreplident THEN format('ALTER TABLE %s REPLICA IDENTITY USING INDEX %I', i.indrelid::regclass, ic.relname) END,
    CASE WHEN i.indisclustered THEN format('ALTER TABLE %s CLUSTER ON %I', i.indrelid::regclass, ic.relname) END) AS create
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
WHERE i.indrelid = $1::regclass
  AND tc.relkind = 'r' AND NOT tc.relispartition
  AND ic.reltablespace = 0
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint f WHERE f.contype = 'f' AND f.conindid = i.indexrelid)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits h WHERE h.inhrelid = i.indexrelid)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_description d WHERE d.classoid = 'pg_catalog.pg_class'::regclass AND d.objoid = i.indexrelid)
  AND (con.oid IS NULL OR (con.conname = ic.relname
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_description d WHERE d.classoid = 'pg_catalog.pg_constraint'::regclass AND d.objoid = con.oid)))
ORDER BY i.indexrelid`;
