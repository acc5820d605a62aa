// Upgrading an install of an earlier bucardo, planned without a database: the metadata
// it lacks is added in place, and an install of a later bucardo blocks the plan.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateTopologyText } from '../../engine/topology/load.js';
import { computePlan } from '../../engine/planner/plan.js';
import { toStatements } from '../../engine/sql/steps.js';
import { METADATA_OBJECTS, METADATA_VERSION, metadataColumns } from '../../engine/sql/metadata.js';
import type { DatabaseCatalog } from '../../engine/catalog/types.js';
import { emptyInstalledState } from '../../engine/catalog/read.js';

const YAML = `version: 1
databases:
  a: {url: "postgres://u@h1/db"}
  b: {url: "postgres://u@h2/db"}
relgroups:
  g:
    tables: [public.items]
syncs:
  s1: {relgroup: g, sources: [a], targets: [b]}
`;

/** A database with public.items and bucardo's metadata as `version` left it: every table but `without`, `run` lacking `runner`. */
function catalog(database: string, version: string, without: string[]): DatabaseCatalog {
  const installed = emptyInstalledState('bucardo_main');
  installed.schemaExists = true;
  installed.meta = { topology: 'main', schema_version: version };
  for (const { name, kind } of METADATA_OBJECTS) {
    if (without.includes(name) || kind !== 'table') continue;
    const cols = metadataColumns('bucardo_main', name).filter((c) => !(name === 'run' && c.name === 'runner'));
    installed.tables.set(
      name,
      cols.map((c) => ({ name: c.name, type: 'text', notNull: false, generated: false, identity: '' })),
    );
  }
  installed.tables.set('kick_seq', []);
  return {
    database,
    serverVersion: 170000,
    currentUser: 'u',
    isSuperuser: true,
    canCreateSchema: true,
    canSetReplicationRole: true,
    tables: [
      {
        schema: 'public',
        name: 'items',
        kind: 'r',
        columns: [{ name: 'id', type: 'integer', notNull: true, generated: false, identity: '' }],
        primaryKey: ['id'],
        uniqueKeys: [],
        estimatedRows: 10,
        privileges: { select: true, insert: true, update: true, delete: true, truncate: true, trigger: true },
        owner: 'u',
        owned: true,
      },
    ],
    sequences: [],
    partitionsOf: [],
    installed,
  };
}

const plan = (a: DatabaseCatalog, b: DatabaseCatalog) =>
  computePlan(
    validateTopologyText(YAML, 'bucardo.yaml', {}),
    new Map([
      ['a', { ok: true, catalog: a }],
      ['b', { ok: true, catalog: b }],
    ]),
  );

test('metadata of an earlier version: one in-place update that adds the tables and columns it lacks and sets the version', () => {
  const p = plan(catalog('a', '2', ['sync_recopy']), catalog('b', '2', ['sync_recopy']));
  assert.deepEqual(p.errors, []);
  const up = p.changes.filter((c) => c.objectType === 'schema' || c.objectType === 'metadata_table');
  assert.deepEqual(
    up.map((c) => [c.database, c.action, c.object]),
    [
      ['a', 'update', 'schema bucardo_main'],
      ['b', 'update', 'schema bucardo_main'],
    ],
  );
  assert.equal(
    up[0].reason,
    `metadata version 2 -> ${METADATA_VERSION} (installed by an earlier bucardo), in place: adds table sync_recopy, column run.runner`,
  );
  assert.deepEqual(
    up[0].steps.map((s) => s.kind),
    ['create_metadata_table', 'add_metadata_column', 'set_meta', 'register_object'],
  );
  const sql = up[0].steps.flatMap(toStatements);
  assert.equal(sql[1].text, 'ALTER TABLE "bucardo_main".run ADD COLUMN IF NOT EXISTS runner text');
  assert.deepEqual(sql[2].values, ['schema_version', METADATA_VERSION]);
  assert.ok(p.changes.every((c) => c.action !== 'destroy' && c.action !== 'replace'));
});

test('metadata of this version with a table dropped by hand: a create, not an upgrade', () => {
  const p = plan(catalog('a', METADATA_VERSION, ['conflict']), catalog('b', METADATA_VERSION, []));
  const meta = p.changes.filter((c) => c.objectType === 'schema' || c.objectType === 'metadata_table');
  assert.deepEqual(
    meta.map((c) => [c.database, c.action, c.object, c.reason]),
    [['a', 'create', 'table bucardo_main.conflict', 'metadata table missing (dropped outside bucardo?)']],
  );
});

test('metadata of a later version blocks the plan on that database', () => {
  const p = plan(catalog('a', '99', []), catalog('b', METADATA_VERSION, []));
  assert.deepEqual(
    p.errors.map((e) => [e.code, e.database]),
    [['metadata_newer', 'a']],
  );
  assert.match(p.errors[0].message, /metadata version 99, installed by a later bucardo/);
  assert.ok(p.changes.every((c) => c.database !== 'a'));
});

test('metadataColumns reads each column definition whole, defaults and references included', () => {
  assert.deepEqual(
    metadataColumns('bucardo_main', 'sync_relation').map((c) => c.name),
    ['sync', 'table_id', 'table_schema', 'table_name', 'key_columns', 'copy_pending', 'added_at'],
  );
  assert.equal(metadataColumns('bucardo_main', 'sync_relation')[0].definition, 'sync text NOT NULL REFERENCES "bucardo_main".sync (name) ON DELETE CASCADE');
  assert.equal(metadataColumns('bucardo_main', 'truncate_log').at(-1)!.definition, "_bucardo_origin text DEFAULT current_setting('bucardo.origin', true)");
  assert.deepEqual(
    metadataColumns('bucardo_main', 'meta').map((c) => c.definition),
    ['key text PRIMARY KEY', 'value text NOT NULL'],
  );
});

test('replace_trigger is one CREATE OR REPLACE TRIGGER, then ENABLE ALWAYS again with makedelta (the replace resets it)', () => {
  const texts = toStatements({
    kind: 'replace_trigger',
    name: 'bucardo_main_0a1b2c3d4e5f_k',
    event: 'keychange',
    table: { schema: 'public', name: 'items' },
    function: { schema: 'bucardo_main', name: 'capture_0a1b2c3d4e5f' },
    keyColumns: ['id'],
    oldTable: null,
    newTable: null,
    enabled: 'A',
  }).map((s) => s.text);
  assert.deepEqual(texts, [
    'CREATE OR REPLACE TRIGGER "bucardo_main_0a1b2c3d4e5f_k" AFTER UPDATE ON "public"."items" FOR EACH ROW WHEN (OLD."id" IS DISTINCT FROM NEW."id") EXECUTE FUNCTION "bucardo_main"."capture_0a1b2c3d4e5f"()',
    'ALTER TABLE "public"."items" ENABLE ALWAYS TRIGGER "bucardo_main_0a1b2c3d4e5f_k"',
  ]);
});
