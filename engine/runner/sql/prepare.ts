/**
 * The first query of a run, on every database of the sync at once (one round trip each):
 * the sync's watermark here, its tables with their keys and current columns, and the
 * sequences' values. The tables' details (columns, key indexes, foreign keys) cost ~0.4 ms
 * per table to gather, so a connection keeps them from one run to the next:
 *
 * - Each run reads the sync's own registry rows (sync_relation, sync_recopy: which tables,
 *   their keys, the onetimecopies due), cheaply, and reads every detail again when they
 *   changed (an apply).
 * - Each table's details carry a fingerprint of the catalog rows they come from (its
 *   pg_class, pg_attribute, pg_type, pg_index and pg_constraint rows, each with its xmin,
 *   which any ALTER, CREATE INDEX or constraint change renews). Once a run has taken its
 *   snapshots, and so knows which tables it reads and writes, assertDetailsCurrent compares
 *   those tables' fingerprints with the catalog as it is then, on every database. A table
 *   altered before the snapshot (its new column's values may be in the rows the run reads)
 *   fails the attempt, and the run starts again with the details read afresh.
 *
 * A 1,000-table sync's one-row run so checks one table, not 1,000. And the check comes
 * after the snapshot: reading the details before it, as the first query does, missed an
 * ALTER TABLE ... ADD COLUMN that committed, with rows filling the column, between the
 * two, and the run sent those rows without the column (runner-ddl.test).
 */
import type pg from 'pg';
import { displayName, qualify, quoteIdent, quoteLiteral } from '../../sql/ident.js';
import { CHANGE_INDEX_SINCE } from '../../sql/metadata.js';
import { tableId } from '../../objectnames.js';
import type { DatabaseState, RelationInfo, SequenceShape } from '../types.js';
import type { QualifiedName } from '../../topology/types.js';
import { BucardoError, describePgError } from '../../errors.js';
import { SQLSTATE } from '../../sqlstate.js';
import { deepFreeze } from '../frozen.js';

/** A btree index `i` whose key columns are exactly the replication key (as a set): lookups and order by key. */
const KEY_INDEX = `i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
  AND EXISTS (SELECT 1 FROM pg_catalog.pg_class ic JOIN pg_catalog.pg_am am ON am.oid = ic.relam WHERE ic.oid = i.indexrelid AND am.amname = 'btree')
  AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM unnest((i.indkey::int2[])[0:i.indnkeyatts - 1]) k(n)
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.n)
    = (SELECT array_agg(x ORDER BY x) FROM unnest(r.key_columns) x)`;

/**
 * The sync's relations joined to their tables in this database's catalog (r, c). `renamed`:
 * some tables have another name here (a target's `name:` override): three parameters from
 * $`at` list them (table id, schema, name there). `only`: just the table ids in that parameter.
 */
function relsSql(schema: string, renamed: boolean, at: number, only?: string): string {
  const [sch, nam, join] = renamed
    ? [
        'coalesce(rn.sch, r.table_schema)',
        'coalesce(rn.nam, r.table_name)',
        `\n     LEFT JOIN unnest($${at}::text[], $${at + 1}::text[], $${at + 2}::text[]) AS rn(id, sch, nam) ON rn.id = r.table_id`,
      ]
    : ['r.table_schema', 'r.table_name', ''];
  return `${qualify(schema, 'sync_relation')} r${join}
     LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = ${sch}
     LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = ${nam} AND c.relkind IN ('r', 'p')
    WHERE r.sync = $1${only ? ` AND r.table_id = ANY(${only}::text[])` : ''}`;
}

/** One table's catalog fingerprint (c: its pg_class row, NULL when it does not exist). */
const CATALOG_VERSION = `md5(concat_ws('/', c.oid, c.xmin,
       (SELECT string_agg(concat_ws(':', a.attnum, a.xmin, ty.xmin), ',' ORDER BY a.attnum)
          FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid WHERE a.attrelid = c.oid AND a.attnum > 0),
       (SELECT string_agg(concat_ws(':', i.indexrelid, i.xmin), ',' ORDER BY i.indexrelid) FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid),
       (SELECT string_agg(concat_ws(':', con.oid, con.xmin, pc.xmin), ',' ORDER BY con.oid)
          FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class pc ON pc.oid = con.confrelid WHERE con.conrelid = c.oid AND con.contype = 'f')))`;

/**
 * The version of the sync's registry rows here (which tables, their keys, the copies due):
 * any INSERT or UPDATE gives a row the new xmin of its transaction, and a DELETE takes one
 * away, so the count and an order-free sum of the rows' (table id, xmin) hashes change
 * with them (a collision: odds of 2^-64 per change). Cheap because every run reads it:
 * the earlier md5 of every row's text cost 4-5 ms per run at 1,000 tables.
 */
function registryVersionSql(t: (n: string) => string): string {
  const version = (table: string, alias: string) =>
    `(SELECT count(*)::text || ':' || coalesce(sum(hashtextextended(${alias}.table_id || '/' || ${alias}.xmin::text, 0)), 0)::text FROM ${t(table)} ${alias} WHERE ${alias}.sync = $1)`;
  // and the apply that last made or dropped a log trigger: which tables the index notes
  const since = `coalesce((SELECT value FROM ${t('meta')} WHERE key = ${quoteLiteral(CHANGE_INDEX_SINCE)}), '')`;
  return `${version('sync_relation', 'r')} || '/' || ${version('sync_recopy', 'rc')} || '/' || ${since}`;
}

/**
 * The relgroup's sequences ($2 schemas, $3 names): last value (as pg_sequences shows it:
 * NULL before the first nextval, or without the privilege to read it) and shape. Looked up
 * by name from the list: the pg_sequences view scans all of pg_class, 2-3 ms per run in a
 * database of 1,000 tables, sequences or not.
 */
const SEQUENCES_SQL = `(SELECT coalesce(json_agg(json_build_object('schema', q.sch, 'name', q.nam,
       'value', CASE WHEN has_sequence_privilege(c.oid, 'SELECT,USAGE') THEN pg_catalog.pg_sequence_last_value(c.oid)::text END,
       'start', s.seqstart::text, 'min', s.seqmin::text, 'max', s.seqmax::text, 'inc', s.seqincrement::text)), '[]')
     FROM unnest($2::text[], $3::text[]) AS q(sch, nam)
     JOIN pg_catalog.pg_namespace n ON n.nspname = q.sch
     JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = q.nam AND c.relkind = 'S'
     JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid)`;

function prepareSql(schema: string, renamed: boolean, withRelations: boolean): string {
  const t = (n: string) => qualify(schema, n);
  return `SELECT
  (SELECT json_build_object('run_seq', run_seq::text, 'snapshots', snapshots) FROM ${t('sync_state')} WHERE sync = $1) AS state,
  EXISTS (SELECT 1 FROM ${t('sync')} WHERE name = $1) AS registered,
  ${registryVersionSql(t)} AS registry_version,
  ${withRelations ? relationsSql(schema, t, relsSql(schema, renamed, 4)) : 'NULL::json'} AS relations,
  ${SEQUENCES_SQL} AS sequences,
  (SELECT system_identifier::text FROM pg_catalog.pg_control_system()) AS system_identifier,
  (SELECT value FROM ${t('meta')} WHERE key = 'system_identifier') AS recorded_system_identifier`;
}

/** The catalog fingerprint of some of the sync's tables ($2: their ids; renamed ones from $3), as assertDetailsCurrent compares them. */
function catalogVersionsSql(schema: string, renamed: boolean): string {
  return `SELECT r.table_id, ${CATALOG_VERSION} AS version FROM ${relsSql(schema, renamed, 3, '$2')}`;
}

/** The tables' details: keys, columns, key indexes, foreign keys, copy flags. */
function relationsSql(schema: string, t: (n: string) => string, rels: string): string {
  // the log trigger of the table's delta table (engine/objectnames.ts captureTriggerName)
  const logTrigger = `EXISTS (SELECT 1 FROM pg_catalog.pg_trigger tg
          WHERE tg.tgrelid = to_regclass(${quoteLiteral(quoteIdent(schema))} || '.' || quote_ident('delta_' || r.table_id))
            AND tg.tgname = ${quoteLiteral(`${schema}_`)} || r.table_id || '_l' AND tg.tgenabled = 'A')`;
  return `(SELECT coalesce(json_agg(json_build_object(
       'tableId', r.table_id, 'schema', r.table_schema, 'name', r.table_name, 'catalogVersion', ${CATALOG_VERSION},
       'keyColumns', r.key_columns, 'copyPending', r.copy_pending, 'changeIndexed', ${logTrigger},
       'recopy', EXISTS (SELECT 1 FROM ${t('sync_recopy')} rc WHERE rc.sync = r.sync AND rc.table_id = r.table_id),
       'columns', (SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), 'builtin', a.atttypid < 16384,
                                     'base', CASE WHEN ty.typtype = 'd' THEN format_type(ty.typbasetype, ty.typtypmod) END) ORDER BY a.attnum)
                     FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''),
       'keyIndexed', EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND ${KEY_INDEX}),
       'keyUnique', EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indimmediate AND ${KEY_INDEX}),
       'fks', (SELECT coalesce(json_agg(json_build_object('name', con.conname, 'parentSchema', pn.nspname, 'parentName', pc.relname,
           'childCols', (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(n, ord) JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n),
           'parentCols', (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(n, ord) JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n))), '[]')
         FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class pc ON pc.oid = con.confrelid JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
        WHERE con.conrelid = c.oid AND con.contype = 'f' AND con.conparentid = 0))
     ORDER BY r.table_schema, r.table_name), '[]')
     FROM ${rels})`;
}

interface Row {
  state: { run_seq: string; snapshots: Record<string, string> } | null;
  registered: boolean;
  registry_version: string;
  relations: RelationInfo[] | null;
  sequences: ({ schema: string; name: string; value: string | null } & SequenceShape)[];
  system_identifier: string | null;
  recorded_system_identifier: string | null;
}

/**
 * Per write connection, then per (schema, sync, renamed tables): the tables' details of the
 * last read and the registry version they were read at. Kept with the connection, which a
 * failed run closes: whatever the fingerprints may miss (a rename of a foreign key's
 * parent column) is read again after the run it makes fail.
 */
const relationsCache = new WeakMap<pg.Client, Map<string, { version: string; relations: RelationInfo[] }>>();

const cacheKey = (schema: string, sync: string, renamed: { from: QualifiedName; to: QualifiedName }[]) => JSON.stringify([schema, sync, renamed]);

/** The three parameters of relsSql's renamed tables. */
function renamedParams(renamed: { from: QualifiedName; to: QualifiedName }[]): unknown[] {
  if (!renamed.length) return [];
  return [renamed.map((x) => tableId(x.from.schema, x.from.name)), renamed.map((x) => x.to.schema), renamed.map((x) => x.to.name)];
}

/** Sequence key used in DatabaseState.sequences. */
export function seqKey(s: { schema: string; name: string }): string {
  return JSON.stringify([s.schema, s.name]);
}

export async function readDatabaseState(
  c: pg.Client,
  database: string,
  schema: string,
  sync: string,
  sequences: QualifiedName[],
  renamed: { from: QualifiedName; to: QualifiedName }[] = [],
): Promise<DatabaseState> {
  let row: Row;
  try {
    const params: unknown[] = [sync, sequences.map((s) => s.schema), sequences.map((s) => s.name)];
    const key = cacheKey(schema, sync, renamed);
    const cache = relationsCache.get(c) ?? new Map<string, { version: string; relations: RelationInfo[] }>();
    relationsCache.set(c, cache);
    row = (await c.query<Row>(prepareSql(schema, false, false), params)).rows[0];
    const known = cache.get(key);
    if (known?.version === row.registry_version) row.relations = known.relations;
    else {
      row = (await c.query<Row>(prepareSql(schema, renamed.length > 0, true), [...params, ...renamedParams(renamed)])).rows[0];
      // shared with the next runs as it is (frozen.ts), never copied: scope.ts recognises it
      const relations = deepFreeze(row.relations ?? []);
      cache.set(key, { version: row.registry_version, relations });
      row.relations = relations;
    }
  } catch (e) {
    if ((e as { code?: string }).code === SQLSTATE.undefined_table || (e as { code?: string }).code === SQLSTATE.invalid_schema_name) {
      throw new BucardoError('not_installed', `sync ${sync} is not installed in database ${database} (schema ${schema} is missing or incomplete)`, {
        hint: 'run bucardo apply first',
        cause: e,
      });
    }
    throw new BucardoError('query_failed', `reading the state of sync ${sync} in database ${database} failed: ${describePgError(e)}`, { cause: e });
  }
  const seqs: Record<string, string | null> = {};
  const shapes: Record<string, SequenceShape> = {};
  for (const s of row.sequences) {
    seqs[seqKey(s)] = s.value;
    shapes[seqKey(s)] = { start: s.start, min: s.min, max: s.max, inc: s.inc };
  }
  return {
    database,
    registered: row.registered,
    runSeq: row.state ? Number(row.state.run_seq) : 0,
    snapshots: row.state?.snapshots ?? {},
    relations: row.relations ?? [],
    sequences: seqs,
    sequenceShapes: shapes,
    systemIdentifier: row.system_identifier,
    recordedSystemIdentifier: row.recorded_system_identifier,
  };
}

/**
 * The tables `ids` as this database's catalog describes them now are the ones the run was
 * scoped with (the fingerprints of `relations`); otherwise the connection forgets the
 * details it keeps and the run fails with `details_changed`, which run.ts starts again at
 * once. Called once the run holds its snapshots (see the header).
 */
export async function assertDetailsCurrent(
  c: pg.Client,
  database: string,
  schema: string,
  sync: string,
  renamed: { from: QualifiedName; to: QualifiedName }[],
  relations: RelationInfo[],
  ids: string[],
): Promise<void> {
  if (!ids.length) return;
  const now = await c.query<{ table_id: string; version: string }>(catalogVersionsSql(schema, renamed.length > 0), [sync, ids, ...renamedParams(renamed)]);
  const byId = new Map(relations.map((r) => [r.tableId, r]));
  const changed = now.rows.find((r) => byId.get(r.table_id)?.catalogVersion !== r.version);
  if (!changed) return;
  relationsCache.get(c)?.delete(cacheKey(schema, sync, renamed));
  const rel = byId.get(changed.table_id);
  throw new BucardoError(
    'details_changed',
    `table ${rel ? displayName(rel.schema, rel.name) : changed.table_id} changed in database ${database} as sync ${sync}'s run started (ALTER TABLE, an index or a constraint); the run starts again with its new definition`,
  );
}

/**
 * Of the tables ($1 schemas, $2 names; a partitioned table's leaf partitions for it), the
 * ones rewritten since the transaction's snapshot: an ALTER TABLE that rewrites a table, or
 * a TRUNCATE, gives it a new file, and to a snapshot taken before either committed the
 * table looks empty (neither is MVCC-safe). Run in a REPEATABLE READ transaction: its
 * pg_class rows are as of the snapshot, pg_relation_filenode() as of now. (Looked up per
 * table: as a join filter, pg_relation_filenode() ran on every row of pg_class, 3 ms.)
 */
export const REWRITTEN_SQL = `SELECT DISTINCT sch AS schema, nam AS name FROM (
  SELECT t.sch, t.nam, pg_catalog.pg_relation_filenode(p.relid) AS cur,
         (SELECT c.relfilenode FROM pg_catalog.pg_class c WHERE c.oid = p.relid) AS seen
    FROM unnest($1::text[], $2::text[]) AS t(sch, nam)
    JOIN pg_catalog.pg_namespace n ON n.nspname = t.sch
    JOIN pg_catalog.pg_class top ON top.relnamespace = n.oid AND top.relname = t.nam
    CROSS JOIN LATERAL (SELECT top.oid AS relid WHERE top.relkind = 'r'
                        UNION SELECT x.relid FROM pg_catalog.pg_partition_tree(top.oid) x WHERE x.isleaf) p
) f WHERE cur IS DISTINCT FROM seen`;
