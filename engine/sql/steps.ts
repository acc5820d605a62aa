/**
 * The steps of a plan, as data, and `toStatements(step)`: the one way from a step to SQL
 * (names quoted, values as parameters). The planner (engine/planner) decides which steps
 * a change takes; this module alone turns them into statements, for apply to run in the
 * database's transaction. Steps are plain JSON (plan files carry them, and apply compares
 * a saved plan's steps with fresh ones as data). Registry steps keep
 * bucardo_<name>.installed in step with what was done, in the same transaction.
 */
import { qualify, quoteIdent, quoteLiteral } from './ident.js';
import { schemaDDL, metadataObjectDDL, addMetadataColumnDDL, CHANGE_INDEX_SINCE } from './metadata.js';
import { deltaTableDDL, functionDDL, triggerDDL, enableTriggerDDL, CHANGE_INDEX, type KeyColumn, type TriggerSpec } from './capture.js';
import type { QualifiedName } from '../topology/types.js';

/** One SQL statement; values are always bind parameters. */
export interface Statement {
  text: string;
  values?: unknown[];
}

/** Steps on bucardo's schema and its metadata tables (engine/sql/metadata.ts). */
export type MetadataStep =
  /** The topology's schema, with the comment that marks it as bucardo's. */
  | { kind: 'create_schema'; schema: string; topology: string }
  /** One metadata table (with its indexes) or sequence. */
  | { kind: 'create_metadata_table'; schema: string; table: string }
  /** Every privilege granted on metadata table `from` (but its owner's), granted on `to` too. */
  | { kind: 'copy_grants'; schema: string; from: string; to: string }
  /** A column that a later metadata version added to a table an earlier bucardo created. */
  | { kind: 'add_metadata_column'; schema: string; table: string; column: string }
  /** The facts a new schema starts with: its topology and metadata version. */
  | { kind: 'init_meta'; schema: string; topology: string; version: string }
  | { kind: 'set_meta'; schema: string; key: string; value: string }
  /** meta('change_index_since'): this transaction's id, from whose commit runs trust the change index (docs/protocol.md, step 3). */
  | { kind: 'mark_change_index'; schema: string }
  /** The change index's notes of a table no longer captured. */
  | { kind: 'forget_changes'; schema: string; tableId: string }
  /** The schema and all in it: metadata, delta tables, capture functions (and so their triggers). */
  | { kind: 'drop_schema'; schema: string };

/**
 * Steps on the capture objects (engine/sql/capture.ts). A drop with ifExists removes an
 * object of ours that may be gone already; without, it clears what stands in the way of
 * a replacement (a function: whatever its arguments, as there may be one of that name only).
 */
export type CaptureStep =
  | { kind: 'create_delta_table'; topology: string; table: QualifiedName; captured: QualifiedName; key: KeyColumn[] }
  | { kind: 'drop_table'; table: QualifiedName; ifExists: boolean }
  | { kind: 'install_function'; function: QualifiedName; body: string }
  | { kind: 'drop_function'; function: QualifiedName; ifExists: boolean }
  | ({ kind: 'create_trigger' } & TriggerSpec)
  /**
   * CREATE OR REPLACE TRIGGER (PostgreSQL 14+): the trigger of that name gets this
   * definition in one statement, so the table is never without it (an upgrade).
   */
  | ({ kind: 'replace_trigger' } & TriggerSpec)
  | { kind: 'enable_trigger'; table: QualifiedName; name: string; always: boolean }
  | { kind: 'drop_trigger'; table: QualifiedName; name: string; ifExists: boolean };

/** Steps on bucardo's records in the schema: the registry of installed objects, syncs and their tables. */
export type RegistryStep =
  /** An installed object, with the fingerprint of its definition (upsert). */
  | {
      kind: 'register_object';
      schema: string;
      objectType: string;
      objectName: string;
      table: QualifiedName | null;
      fingerprint: string;
      detail: Record<string, unknown>;
    }
  | { kind: 'unregister_object'; schema: string; objectType: string; objectName: string }
  /** A sync this database takes part in, with its definition (upsert). */
  | { kind: 'register_sync'; schema: string; sync: string; syncKind: string; role: string; fingerprint: string; detail: unknown }
  /** Removes a sync's registration, tables and watermark; its run history goes with it. */
  | { kind: 'unregister_sync'; schema: string; sync: string }
  /** A table of a sync; copyPending marks the onetimecopy the next run does into this database. */
  | { kind: 'register_table'; schema: string; sync: string; tableId: string; table: QualifiedName; keyColumns: string[]; copyPending: boolean }
  | { kind: 'set_table_key'; schema: string; sync: string; tableId: string; keyColumns: string[] }
  /** The next run empties the table here and copies it whole again, whatever onetimecopy says (sync_recopy, metadata 3). */
  | { kind: 'request_recopy'; schema: string; sync: string; tableId: string; reason: string }
  | { kind: 'unregister_table'; schema: string; sync: string; tableId: string };

export type Step = MetadataStep | CaptureStep | RegistryStep;

const ddl = (texts: string[]): Statement[] => texts.map((text) => ({ text }));

export function toStatements(step: Step): Statement[] {
  switch (step.kind) {
    case 'create_schema':
      return ddl(schemaDDL(step.topology, step.schema));
    case 'create_metadata_table':
      return ddl(metadataObjectDDL(step.schema, step.table));
    case 'add_metadata_column':
      return [{ text: addMetadataColumnDDL(step.schema, step.table, step.column) }];
    case 'init_meta':
      return [
        {
          text: `INSERT INTO ${qualify(step.schema, 'meta')} (key, value) VALUES ('topology', $1), ('schema_version', $2)`,
          values: [step.topology, step.version],
        },
      ];
    case 'set_meta':
      return [
        {
          text: `INSERT INTO ${qualify(step.schema, 'meta')} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
          values: [step.key, step.value],
        },
      ];
    case 'mark_change_index':
      return [
        {
          text: `INSERT INTO ${qualify(step.schema, 'meta')} (key, value) VALUES ('${CHANGE_INDEX_SINCE}', pg_current_xact_id()::text) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
        },
      ];
    case 'copy_grants': {
      // DO takes no parameters: the two names are quoted literals of regclass casts
      const from = quoteLiteral(qualify(step.schema, step.from));
      const to = quoteLiteral(qualify(step.schema, step.to));
      return [
        {
          text: `DO $bucardo$
DECLARE g record;
BEGIN
  FOR g IN SELECT a.grantee, string_agg(DISTINCT a.privilege_type, ', ') AS privs
             FROM pg_catalog.pg_class c CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
            WHERE c.oid = ${from}::regclass AND a.grantee <> c.relowner
            GROUP BY a.grantee LOOP
    EXECUTE format('GRANT %s ON %s TO %s', g.privs, ${to}::regclass,
                   CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END);
  END LOOP;
END $bucardo$`,
        },
      ];
    }
    case 'forget_changes':
      return [{ text: `DELETE FROM ${qualify(step.schema, CHANGE_INDEX)} WHERE table_id = $1`, values: [step.tableId] }];
    case 'drop_schema':
      return [{ text: `DROP SCHEMA IF EXISTS ${quoteIdent(step.schema)} CASCADE` }];
    case 'create_delta_table':
      return ddl(deltaTableDDL(step.topology, step.table, step.captured, step.key));
    case 'drop_table':
      return [{ text: `DROP TABLE ${step.ifExists ? 'IF EXISTS ' : ''}${qualify(step.table.schema, step.table.name)}` }];
    case 'install_function':
      return [{ text: functionDDL(step.function, step.body) }];
    case 'drop_function': {
      const fn = qualify(step.function.schema, step.function.name);
      return [{ text: step.ifExists ? `DROP FUNCTION IF EXISTS ${fn}() CASCADE` : `DROP FUNCTION ${fn} CASCADE` }];
    }
    case 'create_trigger': {
      const { kind: _kind, ...spec } = step;
      return ddl(triggerDDL(spec));
    }
    case 'replace_trigger': {
      const { kind: _kind, ...spec } = step;
      return ddl(triggerDDL(spec, true));
    }
    case 'enable_trigger':
      return [{ text: enableTriggerDDL(step.table, step.name, step.always) }];
    case 'drop_trigger':
      return [{ text: `DROP TRIGGER ${step.ifExists ? 'IF EXISTS ' : ''}${quoteIdent(step.name)} ON ${qualify(step.table.schema, step.table.name)}` }];
    case 'register_object':
      return [
        {
          text: `INSERT INTO ${qualify(step.schema, 'installed')} (object_type, object_name, table_schema, table_name, fingerprint, detail, applied_at)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, now())
ON CONFLICT (object_type, object_name) DO UPDATE
  SET table_schema = EXCLUDED.table_schema, table_name = EXCLUDED.table_name, fingerprint = EXCLUDED.fingerprint,
      detail = EXCLUDED.detail, applied_at = EXCLUDED.applied_at`,
          values: [step.objectType, step.objectName, step.table?.schema ?? null, step.table?.name ?? null, step.fingerprint, JSON.stringify(step.detail)],
        },
      ];
    case 'unregister_object':
      return [
        { text: `DELETE FROM ${qualify(step.schema, 'installed')} WHERE object_type = $1 AND object_name = $2`, values: [step.objectType, step.objectName] },
      ];
    case 'register_sync':
      return [
        {
          text: `INSERT INTO ${qualify(step.schema, 'sync')} (name, kind, role, fingerprint, detail, applied_at) VALUES ($1, $2, $3, $4, $5::jsonb, now())
ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, role = EXCLUDED.role, fingerprint = EXCLUDED.fingerprint,
  detail = EXCLUDED.detail, applied_at = EXCLUDED.applied_at`,
          values: [step.sync, step.syncKind, step.role, step.fingerprint, JSON.stringify(step.detail)],
        },
      ];
    case 'unregister_sync':
      return [
        { text: `DELETE FROM ${qualify(step.schema, 'sync_state')} WHERE sync = $1`, values: [step.sync] },
        { text: `DELETE FROM ${qualify(step.schema, 'sync')} WHERE name = $1`, values: [step.sync] },
      ];
    case 'register_table':
      return [
        {
          text: `INSERT INTO ${qualify(step.schema, 'sync_relation')} (sync, table_id, table_schema, table_name, key_columns, copy_pending)
VALUES ($1, $2, $3, $4, $5::text[], $6)`,
          values: [step.sync, step.tableId, step.table.schema, step.table.name, step.keyColumns, step.copyPending],
        },
      ];
    case 'set_table_key':
      return [
        {
          text: `UPDATE ${qualify(step.schema, 'sync_relation')} SET key_columns = $3::text[] WHERE sync = $1 AND table_id = $2`,
          values: [step.sync, step.tableId, step.keyColumns],
        },
      ];
    case 'request_recopy':
      return [
        {
          text: `INSERT INTO ${qualify(step.schema, 'sync_recopy')} (sync, table_id, reason) VALUES ($1, $2, $3)
ON CONFLICT (sync, table_id) DO UPDATE SET reason = EXCLUDED.reason, requested_at = now()`,
          values: [step.sync, step.tableId, step.reason],
        },
      ];
    case 'unregister_table':
      return [{ text: `DELETE FROM ${qualify(step.schema, 'sync_relation')} WHERE sync = $1 AND table_id = $2`, values: [step.sync, step.tableId] }];
    default: {
      const never: never = step;
      throw new Error(`unknown step ${JSON.stringify(never)}`);
    }
  }
}
