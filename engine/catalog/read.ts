/**
 * Reads a database's catalog: user tables with their columns, keys and privileges,
 * sequences, and everything the topology's schema holds (metadata, capture functions,
 * delta tables) plus the triggers on user tables that call into it. Filters are bind
 * parameters; names come back exact.
 */
import type pg from 'pg';
import { schemaName } from '../objectnames.js';
import { qualify } from '../sql/ident.js';
import type { DatabaseCatalog, InstalledState, TableInfo, ColumnInfo, TriggerInfo, FunctionInfo, InstalledGrant } from './types.js';

// Topology schemas (of any topology) are bucardo's, not the user's: they carry our comment.
const USER_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND coalesce(obj_description(n.oid, 'pg_namespace'), '') NOT LIKE 'bucardo topology %'`;

export async function readCatalog(c: pg.Client, database: string, topology: string): Promise<DatabaseCatalog> {
  const info = await c.query<{ v: string; u: string; su: boolean; cancreate: boolean; canrole: boolean }>(
    `SELECT current_setting('server_version_num') AS v, current_user AS u,
            (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su,
            has_database_privilege(current_database(), 'CREATE') AS cancreate,
            CASE WHEN current_setting('server_version_num')::int >= 150000
                 THEN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                      OR has_parameter_privilege('session_replication_role', 'SET')
                 ELSE (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) END AS canrole`,
  );
  const i = info.rows[0];
  const [tables, sequences, partitionsOf, installed] = [await readTables(c), await readSequences(c), await readPartitions(c), await readInstalled(c, topology)];
  for (const t of tables) {
    if (t.kind !== 'p') continue;
    t.partitions = partitionsOf.filter((p) => p.rootSchema === t.schema && p.rootName === t.name).map(({ schema, name, leaf }) => ({ schema, name, leaf }));
  }
  return {
    database,
    serverVersion: Number(i.v),
    currentUser: i.u,
    isSuperuser: i.su,
    canCreateSchema: i.cancreate,
    canSetReplicationRole: i.canrole,
    tables,
    sequences,
    partitionsOf,
    installed,
  };
}

/** Every partition (any level) with the root of its tree (pg_partition_root, PostgreSQL 12+). */
async function readPartitions(c: pg.Client) {
  const r = await c.query<{ schema: string; name: string; leaf: boolean; root_schema: string; root_name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind <> 'p' AS leaf, rn.nspname AS root_schema, rc.relname AS root_name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_class rc ON rc.oid = pg_partition_root(c.oid) JOIN pg_namespace rn ON rn.oid = rc.relnamespace
      WHERE c.relispartition AND c.relkind IN ('r', 'p') AND ${USER_SCHEMAS}
      ORDER BY 1, 2`,
  );
  return r.rows.map((p) => ({ schema: p.schema, name: p.name, leaf: p.leaf, rootSchema: p.root_schema, rootName: p.root_name }));
}

async function readTables(c: pg.Client): Promise<TableInfo[]> {
  const r = await c.query<{
    schema: string;
    name: string;
    kind: string;
    reltuples: string;
    cols: ColumnInfo[] | null;
    pk: string[] | null;
    uniq: string[][] | null;
    sel: boolean;
    ins: boolean;
    upd: boolean;
    del: boolean;
    trn: boolean;
    trg: boolean;
    owner: string;
    owned: boolean;
  }>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind, c.reltuples::text AS reltuples,
            (SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                                               'notNull', a.attnotnull, 'generated', a.attgenerated <> '',
                                               'identity', a.attidentity) ORDER BY a.attnum)
               FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS cols,
            (SELECT array_agg(a.attname::text ORDER BY k.ord)
               FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisprimary) AS pk,
            (SELECT json_agg(u.cols ORDER BY u.indexrelid)
               FROM (SELECT i.indexrelid, array_agg(a.attname::text ORDER BY k.ord) AS cols, bool_and(a.attnotnull) AS nn
                       FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                      WHERE i.indrelid = c.oid AND i.indisunique AND NOT i.indisprimary AND i.indpred IS NULL
                        AND i.indexprs IS NULL AND i.indisvalid
                      GROUP BY i.indexrelid) u WHERE u.nn) AS uniq,
            has_table_privilege(c.oid, 'SELECT') AS sel, has_table_privilege(c.oid, 'INSERT') AS ins,
            has_table_privilege(c.oid, 'UPDATE') AS upd, has_table_privilege(c.oid, 'DELETE') AS del,
            has_table_privilege(c.oid, 'TRUNCATE') AS trn, has_table_privilege(c.oid, 'TRIGGER') AS trg,
            pg_get_userbyid(c.relowner) AS owner, pg_has_role(c.relowner, 'USAGE') AS owned
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND ${USER_SCHEMAS}
      ORDER BY n.nspname, c.relname`,
  );
  return r.rows.map((t) => ({
    schema: t.schema,
    name: t.name,
    kind: t.kind,
    columns: t.cols ?? [],
    primaryKey: t.pk,
    uniqueKeys: t.uniq ?? [],
    estimatedRows: Math.max(-1, Math.round(Number(t.reltuples))),
    privileges: { select: t.sel, insert: t.ins, update: t.upd, delete: t.del, truncate: t.trn, trigger: t.trg },
    owner: t.owner,
    owned: t.owned,
  }));
}

async function readSequences(c: pg.Client) {
  const r = await c.query<{ schema: string; name: string; sel: boolean; upd: boolean }>(
    `SELECT n.nspname AS schema, c.relname AS name, has_sequence_privilege(c.oid, 'SELECT') AS sel, has_sequence_privilege(c.oid, 'UPDATE') AS upd
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'S' AND ${USER_SCHEMAS} ORDER BY 1, 2`,
  );
  return r.rows.map((s) => ({ schema: s.schema, name: s.name, canSelect: s.sel, canUpdate: s.upd }));
}

/** What a database holds of a topology before apply ever ran there. */
export function emptyInstalledState(schema: string): InstalledState {
  return {
    schema,
    schemaExists: false,
    schemaOwned: false,
    schemaUsage: false,
    readable: true,
    grants: [],
    meta: {},
    tables: new Map(),
    functions: new Map(),
    triggers: [],
    registry: [],
    syncs: [],
    syncRelations: [],
  };
}

async function readInstalled(c: pg.Client, topology: string): Promise<InstalledState> {
  const schema = schemaName(topology);
  const state = emptyInstalledState(schema);
  const ns = await c.query<{ oid: string; owned: boolean; usage: boolean }>(
    `SELECT oid::text, pg_has_role(nspowner, 'USAGE') AS owned, has_schema_privilege(oid, 'USAGE') AS usage FROM pg_namespace WHERE nspname = $1`,
    [schema],
  );
  // Triggers are read even without the schema: a trigger left behind by hand is drift.
  // Clones of a row-level trigger on the partitions of a partitioned table (tgparentid)
  // come and go with their parent: only the parent's is ours to manage.
  state.triggers = await readTriggers(c, schema, `^bucardo_${topology}_[0-9a-f]{12}_[iudtkbpl]$`);
  if (!ns.rows.length) return state;
  state.schemaExists = true;
  state.schemaOwned = ns.rows[0].owned;
  state.schemaUsage = ns.rows[0].usage;

  const tables = await c.query<{ name: string; cols: ColumnInfo[] | null }>(
    `SELECT c.relname AS name,
            (SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                                               'notNull', a.attnotnull, 'generated', a.attgenerated <> '', 'identity', a.attidentity)
                             ORDER BY a.attnum)
               FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS cols
       FROM pg_class c WHERE c.relnamespace = $1::oid AND c.relkind IN ('r', 'S')`,
    [ns.rows[0].oid],
  );
  for (const t of tables.rows) state.tables.set(t.name, t.cols ?? []);
  state.grants = await readGrants(c, ns.rows[0].oid);
  // a role that may not read the metadata (a runner without its grants) sees an install it cannot check, not an empty one
  state.readable = ns.rows[0].usage && METADATA_READ.every((t) => !state.tables.has(t) || state.grants.find((g) => g.name === t)?.held.includes('SELECT'));
  if (!state.readable) return state;

  const fns = await c.query<FunctionInfo & { argCount: number }>(
    `SELECT p.proname AS name, p.prosrc AS body, l.lanname AS language, format_type(p.prorettype, NULL) AS "returnType",
            p.pronargs AS "argCount"
       FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.pronamespace = $1::oid`,
    [ns.rows[0].oid],
  );
  for (const f of fns.rows) state.functions.set(f.name, f);

  const q = (t: string) => qualify(schema, t);
  if (state.tables.has('meta')) {
    const m = await c.query<{ key: string; value: string }>(`SELECT key, value FROM ${q('meta')}`);
    for (const row of m.rows) state.meta[row.key] = row.value;
  }
  if (state.tables.has('installed')) {
    const r = await c.query(
      `SELECT object_type AS "objectType", object_name AS "objectName", table_schema AS "tableSchema",
              table_name AS "tableName", fingerprint, detail FROM ${q('installed')} ORDER BY 1, 2`,
    );
    state.registry = r.rows;
  }
  if (state.tables.has('sync')) {
    const r = await c.query(`SELECT name, kind, role, fingerprint, detail FROM ${q('sync')} ORDER BY name`);
    state.syncs = r.rows;
  }
  if (state.tables.has('sync_relation')) {
    const r = await c.query(
      `SELECT sync, table_id AS "tableId", table_schema AS "tableSchema", table_name AS "tableName",
              key_columns AS "keyColumns", copy_pending AS "copyPending"
         FROM ${q('sync_relation')} ORDER BY sync, table_schema, table_name`,
    );
    state.syncRelations = r.rows;
  }
  return state;
}

/** The metadata tables readInstalled reads. */
const METADATA_READ = ['meta', 'installed', 'sync', 'sync_relation'];

async function readGrants(c: pg.Client, oid: string): Promise<InstalledGrant[]> {
  const r = await c.query<{ name: string; kind: string; held: string[] }>(
    `SELECT c.relname AS name, c.relkind AS kind,
            array(SELECT p FROM unnest(CASE WHEN c.relkind = 'S' THEN ARRAY['USAGE', 'SELECT', 'UPDATE']
                                            ELSE ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'] END) p
                   WHERE CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, p) ELSE has_table_privilege(c.oid, p) END) AS held
       FROM pg_class c WHERE c.relnamespace = $1::oid AND c.relkind IN ('r', 'S') ORDER BY 1`,
    [oid],
  );
  return r.rows.map((g) => ({ name: g.name, kind: g.kind === 'S' ? 'sequence' : 'table', held: g.held }));
}

async function readTriggers(c: pg.Client, schema: string, namePattern: string): Promise<TriggerInfo[]> {
  const r = await c.query<TriggerInfo>(
    `SELECT tn.nspname AS "tableSchema", tc.relname AS "tableName", t.tgname AS name, t.tgenabled AS enabled,
            fn.nspname AS "functionSchema", p.proname AS "functionName", t.tgtype::int AS type,
            t.tgoldtable AS "oldTable", t.tgnewtable AS "newTable", t.tgqual IS NOT NULL AS "hasWhen",
            cardinality(t.tgattr::int2[]) > 0 AS "hasColumns",
            coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
                       WHERE a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr::int2[])), '{}') AS columns,
            pg_get_triggerdef(t.oid) AS definition
       FROM pg_trigger t
       JOIN pg_class tc ON tc.oid = t.tgrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
       JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace fn ON fn.oid = p.pronamespace
      WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND (fn.nspname = $1 OR t.tgname ~ $2)
      ORDER BY 1, 2, 3`,
    [schema, namePattern],
  );
  return r.rows;
}
