/**
 * SQL text of every change the planner can make, names quoted, values as parameters.
 * Registry statements keep bucardo_<name>.installed in step with what was done, in the
 * same transaction.
 */
import { qualify, quoteIdent } from './ident.js';
import { metadataDDL, METADATA_VERSION } from './capture.js';
import type { Statement } from '../planner/types.js';

export function registryUpsert(schema: string, o: { type: string; name: string; tableSchema?: string; tableName?: string; fingerprint: string; detail?: Record<string, unknown> }): Statement {
  return {
    text: `INSERT INTO ${qualify(schema, 'installed')} (object_type, object_name, table_schema, table_name, fingerprint, detail, applied_at)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, now())
ON CONFLICT (object_type, object_name) DO UPDATE
  SET table_schema = EXCLUDED.table_schema, table_name = EXCLUDED.table_name, fingerprint = EXCLUDED.fingerprint,
      detail = EXCLUDED.detail, applied_at = EXCLUDED.applied_at`,
    values: [o.type, o.name, o.tableSchema ?? null, o.tableName ?? null, o.fingerprint, JSON.stringify(o.detail ?? {})],
  };
}

export function registryDelete(schema: string, type: string, name: string): Statement {
  return { text: `DELETE FROM ${qualify(schema, 'installed')} WHERE object_type = $1 AND object_name = $2`, values: [type, name] };
}

/** The schema and every metadata table, with the facts of meta. */
export function createSchemaStatements(topology: string, schema: string): Statement[] {
  return [
    ...metadataDDL(topology).map((text) => ({ text })),
    {
      text: `INSERT INTO ${qualify(schema, 'meta')} (key, value) VALUES ('topology', $1), ('schema_version', $2)`,
      values: [topology, METADATA_VERSION],
    },
  ];
}

/** Metadata DDL statements that belong to one metadata table (CREATE TABLE and its indexes). */
export function metadataTableStatements(topology: string, schema: string, table: string): Statement[] {
  // metadataDDL writes these names as "schema".name (they are plain lower-case words)
  const q = `${quoteIdent(schema)}.${table}`;
  return metadataDDL(topology)
    .filter((s) => s.startsWith(`CREATE TABLE ${q} `) || s.startsWith(`CREATE SEQUENCE ${q} `) || s.includes(` ON ${q} `))
    .map((text) => ({ text }));
}

/** Names of the metadata tables and sequences, in creation order. */
export function metadataTableNames(topology: string, schema: string): string[] {
  const names: string[] = [];
  for (const kind of ['TABLE', 'SEQUENCE']) {
    const prefix = `CREATE ${kind} ${quoteIdent(schema)}.`;
    for (const s of metadataDDL(topology)) if (s.startsWith(prefix)) names.push(s.slice(prefix.length).split(' ')[0]);
  }
  return names;
}

export function dropSchemaStatement(schema: string): Statement {
  return { text: `DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE` };
}

export function upsertSync(schema: string, s: { name: string; kind: string; role: string; fingerprint: string; detail: unknown }): Statement {
  return {
    text: `INSERT INTO ${qualify(schema, 'sync')} (name, kind, role, fingerprint, detail, applied_at) VALUES ($1, $2, $3, $4, $5::jsonb, now())
ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, role = EXCLUDED.role, fingerprint = EXCLUDED.fingerprint,
  detail = EXCLUDED.detail, applied_at = EXCLUDED.applied_at`,
    values: [s.name, s.kind, s.role, s.fingerprint, JSON.stringify(s.detail)],
  };
}

/** Removes a sync's registration, tables and watermark; its run history goes with it. */
export function deleteSync(schema: string, name: string): Statement[] {
  return [
    { text: `DELETE FROM ${qualify(schema, 'sync_state')} WHERE sync = $1`, values: [name] },
    { text: `DELETE FROM ${qualify(schema, 'sync')} WHERE name = $1`, values: [name] },
  ];
}

export function insertSyncRelation(schema: string, r: { sync: string; tableId: string; tableSchema: string; tableName: string; keyColumns: string[]; copyPending: boolean }): Statement {
  return {
    text: `INSERT INTO ${qualify(schema, 'sync_relation')} (sync, table_id, table_schema, table_name, key_columns, copy_pending)
VALUES ($1, $2, $3, $4, $5::text[], $6)`,
    values: [r.sync, r.tableId, r.tableSchema, r.tableName, r.keyColumns, r.copyPending],
  };
}

/** The next run empties the table here and copies it whole again (sync_recopy, metadata 3). */
export function requestRecopy(schema: string, sync: string, tableId: string, reason: string): Statement {
  return {
    text: `INSERT INTO ${qualify(schema, 'sync_recopy')} (sync, table_id, reason) VALUES ($1, $2, $3)
ON CONFLICT (sync, table_id) DO UPDATE SET reason = EXCLUDED.reason, requested_at = now()`,
    values: [sync, tableId, reason],
  };
}

export function updateSyncRelationKey(schema: string, sync: string, tableId: string, keyColumns: string[]): Statement {
  return {
    text: `UPDATE ${qualify(schema, 'sync_relation')} SET key_columns = $3::text[] WHERE sync = $1 AND table_id = $2`,
    values: [sync, tableId, keyColumns],
  };
}

export function deleteSyncRelation(schema: string, sync: string, tableId: string): Statement {
  return { text: `DELETE FROM ${qualify(schema, 'sync_relation')} WHERE sync = $1 AND table_id = $2`, values: [sync, tableId] };
}

export function setMeta(schema: string, key: string, value: string): Statement {
  return {
    text: `INSERT INTO ${qualify(schema, 'meta')} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
    values: [key, value],
  };
}
