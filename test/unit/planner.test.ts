// The planner without a database: synthetic catalogs in, changes and problems out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateTopologyText } from '../../engine/topology/load.js';
import { computePlan, type CatalogResult } from '../../engine/planner/plan.js';
import { summarize } from '../../engine/planner/types.js';
import { renderText, renderJson } from '../../engine/planner/render.js';
import { captureDef, CHANGE_INDEX_MIN_TABLES } from '../../engine/sql/capture.js';
import type { DatabaseCatalog, TableInfo } from '../../engine/catalog/types.js';
import { emptyInstalledState } from '../../engine/catalog/read.js';

const YAML = `version: 1
databases:
  a: {url: "postgres://u:secret@h1/db"}
  b: {url: "postgres://u:secret@h2/db"}
relgroups:
  g:
    tables: [public.items, {match: "public.audit_*"}]
    exclude: [public.audit_tmp]
syncs:
  s1: {relgroup: g, sources: [a], targets: [b], onetimecopy: always}
`;

function table(name: string, opts: Partial<TableInfo> = {}): TableInfo {
  return {
    schema: 'public',
    name,
    kind: 'r',
    columns: [
      { name: 'id', type: 'integer', notNull: true, generated: false, identity: '' },
      { name: 'v', type: 'text', notNull: false, generated: false, identity: '' },
    ],
    primaryKey: ['id'],
    uniqueKeys: [],
    estimatedRows: 1234,
    privileges: { select: true, insert: true, update: true, delete: true, truncate: true, trigger: true },
    owner: 'postgres',
    owned: true,
    ...opts,
  };
}

function catalog(database: string, tables: TableInfo[]): DatabaseCatalog {
  return {
    database,
    serverVersion: 170000,
    currentUser: 'u',
    isSuperuser: true,
    canCreateSchema: true,
    canSetReplicationRole: true,
    tables,
    sequences: [],
    partitionsOf: [],
    installed: emptyInstalledState('bucardo_main'),
  };
}

const ok = (c: DatabaseCatalog): CatalogResult => ({ ok: true, catalog: c });
const topo = () => validateTopologyText(YAML, 'bucardo.yaml', {});
const tables = () => [table('items'), table('audit_log'), table('audit_tmp'), table('other')];

test('a fresh pair of databases: creates only, globs and excludes resolved on the first source, copies noted', () => {
  const plan = computePlan(
    topo(),
    new Map([
      ['a', ok(catalog('a', tables()))],
      ['b', ok(catalog('b', tables()))],
    ]),
  );
  assert.deepEqual(plan.errors, []);
  assert.ok(plan.changes.every((c) => c.action === 'create'));
  const captured = new Set(plan.changes.filter((c) => c.objectType === 'trigger').map((c) => c.object.split(' on ')[1]));
  // the user's tables only: a sync under CHANGE_INDEX_MIN_TABLES tables has no change index
  assert.deepEqual([...captured].sort(), ['public.audit_log', 'public.items']);
  assert.ok(!plan.changes.some((c) => c.steps.some((s) => s.kind === 'mark_change_index')));
  assert.ok(plan.changes.filter((c) => c.database === 'b').every((c) => ['schema', 'sync', 'sync_table'].includes(c.objectType)));
  assert.deepEqual(
    plan.copies.map((c) => [c.table, c.from, c.to, c.mode, c.estimatedRows]),
    [
      ['public.items', 'a', 'b', 'always', 1234],
      ['public.audit_log', 'a', 'b', 'always', 1234],
    ],
  );
  const s = summarize(plan.changes);
  assert.equal(s.add, plan.changes.length);
  const text = renderText(plan, { file: 'bucardo.yaml', describe: (d) => d, color: false });
  assert.match(text, new RegExp(`Plan: ${s.add} to add, 0 to change, 0 to destroy\\.\\n$`));
  assert.doesNotMatch(text + renderJson(plan), /secret/);
});

test('blocking problems: a keyless table, a table missing on the target, a column mismatch, an unreachable database', () => {
  const a = catalog('a', [table('items', { primaryKey: null }), table('audit_log')]);
  const b = catalog('b', [table('items', { primaryKey: null })]);
  const plan = computePlan(
    topo(),
    new Map([
      ['a', ok(a)],
      ['b', ok(b)],
    ]),
  );
  assert.deepEqual(plan.errors.map((e) => e.code).sort(), ['missing_table', 'no_key']);
  const mismatch = catalog('b', [
    table('items', { columns: [{ name: 'id', type: 'bigint', notNull: true, generated: false, identity: '' }] }),
    table('audit_log'),
  ]);
  const p2 = computePlan(
    topo(),
    new Map([
      ['a', ok(catalog('a', tables()))],
      ['b', ok(mismatch)],
    ]),
  );
  assert.equal(p2.errors.length, 1);
  assert.match(p2.errors[0].message, /column id is integer on a but bigint on b; column v is missing on b/);
  const p3 = computePlan(
    topo(),
    new Map<string, CatalogResult>([
      ['a', ok(catalog('a', tables()))],
      ['b', { ok: false, error: { code: 'unreachable', database: 'b', message: 'cannot connect to database b' } }],
    ]),
  );
  assert.deepEqual(
    p3.errors.map((e) => e.code),
    ['unreachable'],
  );
  assert.deepEqual(p3.changes, [], 'nothing is planned for the databases of a sync with an unreachable member');
});

test('a sync of CHANGE_INDEX_MIN_TABLES tables or more: each delta table gets its log trigger, and the change index is dated once', () => {
  const many = Array.from({ length: CHANGE_INDEX_MIN_TABLES }, (_, i) => table(`audit_${String(i).padStart(3, '0')}`));
  const plan = computePlan(
    topo(),
    new Map([
      ['a', ok(catalog('a', [table('items'), ...many]))],
      ['b', ok(catalog('b', [table('items'), ...many]))],
    ]),
  );
  assert.deepEqual(plan.errors, []);
  const logs = plan.changes.filter((c) => c.objectType === 'trigger' && / on bucardo_main\.delta_[0-9a-f]{12}$/.test(c.object));
  assert.equal(logs.length, CHANGE_INDEX_MIN_TABLES + 1, 'one log trigger per captured table');
  assert.ok(logs.every((c) => c.database === 'a' && c.action === 'create' && /_l on /.test(c.object)));
  const marks = plan.changes.filter((c) => c.steps.some((s) => s.kind === 'mark_change_index'));
  assert.equal(marks.length, 1, 'the change index is dated once per database');
  assert.equal(marks[0], logs[logs.length - 1]);
});

test('drift: installed objects equal to the wanted ones give no changes; a disabled trigger is an update; an orphan a destroy', () => {
  const a = catalog('a', tables());
  const key = [{ name: 'id', type: 'integer' }];
  const defs = ['items', 'audit_log'].map((n) => captureDef('main', { schema: 'public', name: n }, key, { autokick: true, makedelta: false }));
  const inst = a.installed;
  inst.schemaExists = true;
  for (const t of ['meta', 'installed', 'sync', 'sync_relation', 'sync_recopy', 'sync_state', 'run', 'conflict', 'truncate_log', 'change_index', 'kick_seq'])
    inst.tables.set(t, []);
  for (const d of defs) {
    inst.tables.set(
      d.deltaTable.name,
      d.deltaTable.columns.map((c) => ({ name: c.name, type: c.type, notNull: true, generated: false, identity: '' })),
    );
    inst.functions.set(d.function.name, { name: d.function.name, body: d.function.body, language: 'plpgsql', returnType: 'trigger', argCount: 0 });
    for (const t of d.triggers) {
      inst.triggers.push({
        tableSchema: t.table.schema,
        tableName: t.table.name,
        name: t.name,
        enabled: t.enabled,
        functionSchema: 'bucardo_main',
        functionName: d.function.name,
        type: { insert: 4, delete: 8, update: 16, truncate: 32, keychange: 17, before_truncate: 34, partition_truncate: 34, log: 4 }[t.event],
        oldTable: t.event === 'delete' ? 'bucardo_old' : null,
        newTable: t.event === 'update' || t.event === 'insert' ? 'bucardo_new' : null,
        hasWhen: t.event === 'keychange',
        hasColumns: false,
        columns: [],
        definition:
          t.event === 'keychange'
            ? `CREATE TRIGGER x AFTER UPDATE ON t FOR EACH ROW WHEN (${t.keyColumns.map((k) => `(old.${k} IS DISTINCT FROM new.${k})`).join(' OR ')}) EXECUTE FUNCTION f()`
            : '',
      });
    }
  }
  const b = () => ok(catalog('b', tables()));
  const p0 = computePlan(
    topo(),
    new Map([
      ['a', ok(a)],
      ['b', b()],
    ]),
  );
  // on a, only the sync registrations are missing
  assert.deepEqual(
    p0.changes.filter((c) => c.database === 'a' && !['sync', 'sync_table'].includes(c.objectType)),
    [],
  );
  inst.triggers[1].enabled = 'D';
  inst.triggers.push({ ...inst.triggers[0], tableName: 'other', name: 'bucardo_main_000000000000_i' });
  const p1 = computePlan(
    topo(),
    new Map([
      ['a', ok(a)],
      ['b', b()],
    ]),
  );
  const drift = p1.changes.filter((c) => c.database === 'a' && !['sync', 'sync_table'].includes(c.objectType));
  assert.deepEqual(
    drift.map((c) => [c.action, c.object]),
    [
      ['destroy', 'trigger bucardo_main_000000000000_i on public.other'],
      ['update', `trigger ${inst.triggers[1].name} on public.items`],
    ],
  );
  // an UPDATE trigger that still keeps the old rows (an earlier capture design), and a
  // key-change trigger limited to UPDATE OF some columns (another earlier design), are
  // replaced in place: one CREATE OR REPLACE TRIGGER each
  inst.triggers.pop();
  inst.triggers[1].enabled = 'O';
  inst.triggers[1].oldTable = 'bucardo_old';
  const kc = inst.triggers.find((t) => t.tableName === 'audit_log' && t.name.endsWith('_k'))!;
  kc.columns = ['id'];
  kc.hasColumns = true;
  const p2 = computePlan(
    topo(),
    new Map([
      ['a', ok(a)],
      ['b', b()],
    ]),
  );
  const upgraded = p2.changes.filter((c) => c.database === 'a' && c.objectType === 'trigger');
  assert.deepEqual(
    upgraded.map((c) => [c.action, c.object, c.reason, c.steps.map((s) => s.kind).join(' ')]).sort(),
    [
      [
        'update',
        `trigger ${inst.triggers[1].name} on public.items`,
        'installed by an earlier bucardo: it keeps the old rows too; replaced in place',
        'replace_trigger register_object',
      ],
      [
        'update',
        `trigger ${kc.name} on public.audit_log`,
        'installed by an earlier bucardo: it fires only on UPDATE OF id, so it misses a key changed by a BEFORE trigger; replaced in place',
        'replace_trigger register_object',
      ],
    ].sort(),
  );
});

test('whenColumns reads the columns a key-change trigger compares, quoted names included', async () => {
  const { whenColumns } = await import('../../engine/planner/diff.js');
  assert.deepEqual(
    whenColumns(
      'CREATE TRIGGER x AFTER UPDATE ON public.t FOR EACH ROW WHEN (((old.id IS DISTINCT FROM new.id) OR (old."Line ""No""" IS DISTINCT FROM new."Line ""No"""))) EXECUTE FUNCTION f()',
    ),
    ['id', 'Line "No"'],
  );
  assert.deepEqual(whenColumns('CREATE TRIGGER x AFTER UPDATE ON public.t FOR EACH ROW WHEN ((old.id IS DISTINCT FROM new.id)) EXECUTE FUNCTION f()'), ['id']);
});

test('a database in no sync: nothing planned there when it holds nothing; unreachable, a warning that blocks nothing', () => {
  const yaml = YAML.replace('relgroups:', '  c: {url: "postgres://u:secret@h3/db"}\nrelgroups:');
  const t = validateTopologyText(yaml, 'bucardo.yaml', {});
  const ab: [string, CatalogResult][] = [
    ['a', ok(catalog('a', tables()))],
    ['b', ok(catalog('b', tables()))],
  ];
  const reachable = computePlan(t, new Map([...ab, ['c', ok(catalog('c', tables()))]]));
  assert.deepEqual(outline(reachable), { errors: [], warnings: [], onC: 0 });
  const gone: CatalogResult = { ok: false, error: { code: 'unreachable', database: 'c', message: 'cannot connect to database c' } };
  const plan = computePlan(t, new Map([...ab, ['c', gone]]));
  assert.deepEqual(outline(plan), { errors: [], warnings: ['unreachable c'], onC: 0 });
  assert.match(plan.warnings[0].message, /^database c is in no sync of topology main any more, .*: cannot connect to database c$/);
  assert.ok(plan.changes.length > 0, 'a and b are still planned');
});

/** The problems of a plan and how many changes it has on database c. */
function outline(plan: ReturnType<typeof computePlan>) {
  return {
    errors: plan.errors.map((e) => `${e.code} ${e.database}`),
    warnings: plan.warnings.map((e) => `${e.code} ${e.database}`),
    onC: plan.changes.filter((c) => c.database === 'c').length,
  };
}
