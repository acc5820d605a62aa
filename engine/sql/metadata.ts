/**
 * DDL of bucardo's own metadata in each database: the per-topology schema and the tables
 * (and the one sequence) in it that record what apply installed, the syncs, their
 * watermarks and the run history. The capture objects on the user's tables are
 * engine/sql/capture.ts's. Pure text generation: no pg here.
 */
import { quoteIdent, quoteLiteral, fingerprint } from './ident.js';
import { schemaName } from '../objectnames.js';
import { DELTA_TXID, DELTA_TS, DELTA_ORIGIN, KICK_SEQUENCE, CHANGE_INDEX } from './capture.js';

/**
 * Version of the metadata layout below; stored in meta('schema_version'). An install of an
 * earlier version is upgraded in place (engine/planner/upgrade.ts): the tables it lacks are
 * created and the columns it lacks added, so a column added in a later version must be
 * nullable or have a DEFAULT (ADD COLUMN fills the rows already there).
 */
export const METADATA_VERSION = '4';

/**
 * meta key: the id of the transaction (an apply) that last made a `log` trigger in this
 * database. A run trusts the change index of a source only for a watermark in which that
 * transaction is visible (docs/protocol.md, step 3).
 */
export const CHANGE_INDEX_SINCE = 'change_index_since';

/** One metadata table or sequence: its DDL (CREATE and its indexes), from the quoted schema. */
interface MetadataObject {
  name: string;
  kind: 'table' | 'sequence';
  ddl: (s: string) => string[];
}

// In creation order: sync_relation references sync. Names are plain lower-case words, so
// they are written bare after the quoted schema.
const OBJECTS: MetadataObject[] = [
  // key/value facts: topology name, metadata version, last apply
  { name: 'meta', kind: 'table', ddl: (s) => [`CREATE TABLE ${s}.meta (key text PRIMARY KEY, value text NOT NULL)`] },
  // every object apply installed, with the fingerprint of its definition
  {
    name: 'installed',
    kind: 'table',
    ddl: (s) => [
      `CREATE TABLE ${s}.installed (
  object_type text NOT NULL,
  object_name text NOT NULL,
  table_schema text,
  table_name text,
  fingerprint text NOT NULL,
  detail jsonb NOT NULL DEFAULT '{}',
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (object_type, object_name))`,
    ],
  },
  // syncs this database takes part in, as registered by apply
  {
    name: 'sync',
    kind: 'table',
    ddl: (s) => [
      `CREATE TABLE ${s}.sync (
  name text PRIMARY KEY,
  kind text NOT NULL,
  role text NOT NULL CHECK (role IN ('source', 'target')),
  fingerprint text NOT NULL,
  detail jsonb NOT NULL DEFAULT '{}',
  applied_at timestamptz NOT NULL DEFAULT now())`,
    ],
  },
  // tables of each sync; copy_pending: onetimecopy still to do into this database
  {
    name: 'sync_relation',
    kind: 'table',
    ddl: (s) => [
      `CREATE TABLE ${s}.sync_relation (
  sync text NOT NULL REFERENCES ${s}.sync (name) ON DELETE CASCADE,
  table_id text NOT NULL,
  table_schema text NOT NULL,
  table_name text NOT NULL,
  key_columns text[] NOT NULL,
  copy_pending boolean NOT NULL DEFAULT false,
  added_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sync, table_id))`,
    ],
  },
  // tables the next run empties here and copies whole again, whatever onetimecopy says:
  // how this database receives them (name, columns, filter, transform) changed (metadata 3)
  {
    name: 'sync_recopy',
    kind: 'table',
    ddl: (s) => [
      `CREATE TABLE ${s}.sync_recopy (
  sync text NOT NULL,
  table_id text NOT NULL,
  reason text NOT NULL,
  requested_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sync, table_id),
  FOREIGN KEY (sync, table_id) REFERENCES ${s}.sync_relation (sync, table_id) ON DELETE CASCADE)`,
    ],
  },
  // the runner's consumption watermark per sync (docs/protocol.md)
  {
    name: 'sync_state',
    kind: 'table',
    ddl: (s) => [
      `CREATE TABLE ${s}.sync_state (
  sync text PRIMARY KEY,
  run_seq bigint NOT NULL DEFAULT 0,
  snapshots jsonb NOT NULL DEFAULT '{}',
  confirmed jsonb NOT NULL DEFAULT '{}',
  updated_at timestamptz NOT NULL DEFAULT now())`,
    ],
  },
  // run history, one row per run and database that took part
  {
    name: 'run',
    kind: 'table',
    ddl: (s) => [
      `CREATE TABLE ${s}.run (
  run_id text NOT NULL,
  sync text NOT NULL,
  started timestamptz NOT NULL,
  finished timestamptz,
  rows bigint NOT NULL DEFAULT 0,
  rows_by_table jsonb NOT NULL DEFAULT '{}',
  conflicts integer NOT NULL DEFAULT 0,
  error text,
  runner text,
  PRIMARY KEY (run_id))`,
      `CREATE INDEX ON ${s}.run (sync, started DESC)`,
    ],
  },
  {
    name: 'conflict',
    kind: 'table',
    ddl: (s) => [
      `CREATE TABLE ${s}.conflict (
  run_id text NOT NULL,
  sync text NOT NULL,
  table_schema text NOT NULL,
  table_name text NOT NULL,
  key jsonb NOT NULL,
  winner text,
  detail jsonb NOT NULL DEFAULT '{}',
  at timestamptz NOT NULL DEFAULT now())`,
      `CREATE INDEX ON ${s}.conflict (sync, at DESC)`,
    ],
  },
  // TRUNCATE of captured tables, consumed like deltas
  {
    name: 'truncate_log',
    kind: 'table',
    ddl: (s) => [
      `CREATE TABLE ${s}.truncate_log (
  table_id text NOT NULL,
  ${DELTA_TXID} xid8 NOT NULL DEFAULT pg_current_xact_id(),
  ${DELTA_TS} timestamptz NOT NULL DEFAULT now(),
  ${DELTA_ORIGIN} text DEFAULT current_setting('bucardo.origin', true))`,
      `CREATE INDEX ON ${s}.truncate_log (${DELTA_TXID})`,
    ],
  },
  // which transaction wrote changes of which table, one row per (transaction, table): the
  // delta tables' `log` triggers fill it (capture.ts), and a run reads it to find the
  // tables with pending changes instead of probing every delta table (metadata 4)
  {
    name: CHANGE_INDEX,
    kind: 'table',
    ddl: (s) => [
      `CREATE TABLE ${s}.${CHANGE_INDEX} (
  table_id text NOT NULL,
  ${DELTA_TXID} xid8 NOT NULL DEFAULT pg_current_xact_id())`,
      `CREATE INDEX ON ${s}.${CHANGE_INDEX} (table_id, ${DELTA_TXID})`,
    ],
  },
  // bumped by writers that cannot notify (two-phase commit): see doorbellKey in capture.ts
  { name: KICK_SEQUENCE, kind: 'sequence', ddl: (s) => [`CREATE SEQUENCE ${s}.${KICK_SEQUENCE} AS bigint CYCLE`] },
];

/** The metadata tables and sequences, in creation order: what a complete install holds. */
export const METADATA_OBJECTS: readonly { name: string; kind: 'table' | 'sequence' }[] = OBJECTS.map(({ name, kind }) => ({ name, kind }));

/** CREATE SCHEMA and its comment, which marks the schema as bucardo's (engine/catalog/read.ts). */
export function schemaDDL(topology: string, schema: string): string[] {
  const s = quoteIdent(schema);
  return [
    `CREATE SCHEMA ${s}`,
    `COMMENT ON SCHEMA ${s} IS ${quoteLiteral(`bucardo topology ${topology}: installed by bucardo apply, removed by bucardo destroy`)}`,
  ];
}

/** The statements creating one metadata table (with its indexes) or sequence. */
export function metadataObjectDDL(schema: string, name: string): string[] {
  const o = OBJECTS.find((x) => x.name === name);
  if (!o) throw new Error(`unknown metadata object ${name}`);
  return o.ddl(quoteIdent(schema));
}

/** The columns of one metadata table, in order, each with its definition as CREATE TABLE writes it. */
export function metadataColumns(schema: string, name: string): { name: string; definition: string }[] {
  const o = OBJECTS.find((x) => x.name === name);
  if (o?.kind !== 'table') return [];
  const create = o.ddl(quoteIdent(schema))[0];
  return splitTopLevel(create.slice(create.indexOf('(') + 1, create.lastIndexOf(')')))
    .filter((part) => !/^(PRIMARY KEY|FOREIGN KEY|UNIQUE|CHECK|CONSTRAINT)\b/.test(part))
    .map((definition) => ({ name: definition.split(/\s/)[0], definition }));
}

/** The parts of a list separated by commas outside parentheses and quotes, trimmed. */
function splitTopLevel(list: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    const ch = list[i];
    if (ch === "'") quoted = !quoted;
    else if (!quoted && ch === '(') depth++;
    else if (!quoted && ch === ')') depth--;
    else if (!quoted && depth === 0 && ch === ',') {
      parts.push(list.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(list.slice(start).trim());
  return parts.filter(Boolean);
}

/** ALTER TABLE adding one column of a metadata table to an install of an earlier layout. */
export function addMetadataColumnDDL(schema: string, table: string, column: string): string {
  const c = metadataColumns(schema, table).find((x) => x.name === column);
  if (!c) throw new Error(`unknown metadata column ${table}.${column}`);
  return `ALTER TABLE ${quoteIdent(schema)}.${table} ADD COLUMN IF NOT EXISTS ${c.definition}`;
}

/** Fingerprint of the metadata layout: a changed layout shows as an update of the schema. */
export function metadataFingerprint(topology: string): string {
  const schema = schemaName(topology);
  const ddl = [...schemaDDL(topology, schema), ...OBJECTS.flatMap((o) => o.ddl(quoteIdent(schema)))];
  return fingerprint(`${METADATA_VERSION}\n${ddl.join(';\n')}`);
}
