// Plan steps as data: plain JSON that plan files carry, compared as data by apply; SQL
// only from toStatements.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { validateTopologyText } from '../../engine/topology/load.js';
import { computePlan } from '../../engine/planner/plan.js';
import { toStatements, type Step } from '../../engine/sql/steps.js';
import { writePlanFile, readPlanFile, planFileMatches } from '../../cli/planfile.js';
import type { DatabaseCatalog, TableInfo } from '../../engine/catalog/types.js';
import type { Plan } from '../../engine/planner/types.js';
import { BucardoError } from '../../engine/errors.js';
import { emptyInstalledState } from '../../engine/catalog/read.js';

const YAML = `version: 1
databases:
  a: {url: "postgres://u@h1/db"}
  b: {url: "postgres://u@h2/db"}
relgroups:
  g:
    tables: [public.items, {schema: "Sales EU", table: "Order \\"Lines\\""}, public.pay]
syncs:
  s1: {relgroup: g, sources: [a], targets: [b]}
`;

function table(schema: string, name: string, opts: Partial<TableInfo> = {}): TableInfo {
  return {
    schema,
    name,
    kind: 'r',
    columns: [{ name: 'id', type: 'integer', notNull: true, generated: false, identity: '' }],
    primaryKey: ['id'],
    uniqueKeys: [],
    estimatedRows: 10,
    privileges: { select: true, insert: true, update: true, delete: true, truncate: true, trigger: true },
    owner: 'postgres',
    owned: true,
    ...opts,
  };
}

function catalog(database: string): DatabaseCatalog {
  const parts = [{ schema: 'public', name: 'pay_1', leaf: true }];
  return {
    database,
    serverVersion: 170000,
    currentUser: 'u',
    isSuperuser: true,
    canCreateSchema: true,
    canSetReplicationRole: true,
    tables: [table('public', 'items'), table('Sales EU', 'Order "Lines"'), table('public', 'pay', { kind: 'p', partitions: parts })],
    sequences: [],
    partitionsOf: parts.map((p) => ({ ...p, rootSchema: 'public', rootName: 'pay' })),
    installed: emptyInstalledState('bucardo_main'),
  };
}

function freshPlan(): Plan {
  const plan = computePlan(
    validateTopologyText(YAML, 'bucardo.yaml', {}),
    new Map([
      ['a', { ok: true, catalog: catalog('a') }],
      ['b', { ok: true, catalog: catalog('b') }],
    ]),
  );
  assert.deepEqual(plan.errors, []);
  return plan;
}

test('steps are plain JSON: a round trip through a plan file loses nothing', () => {
  const steps = freshPlan().changes.flatMap((c) => c.steps);
  const kinds = new Set(steps.map((s) => s.kind));
  for (const k of [
    'create_schema',
    'create_metadata_table',
    'init_meta',
    'create_delta_table',
    'install_function',
    'create_trigger',
    'register_object',
    'register_sync',
    'register_table',
  ]) {
    assert.ok(kinds.has(k as Step['kind']), `a fresh plan has a ${k} step`);
  }
  assert.deepEqual(JSON.parse(JSON.stringify(steps)), steps);
});

test('toStatements quotes every name and passes every value as a parameter', () => {
  const statements = freshPlan().changes.flatMap((c) => c.steps.flatMap(toStatements));
  const texts = statements.map((s) => s.text).join('\n');
  assert.match(texts, /CREATE TRIGGER "bucardo_main_[0-9a-f]{12}_i" AFTER INSERT ON "Sales EU"\."Order ""Lines""" REFERENCING NEW TABLE AS bucardo_new/);
  assert.match(texts, /CREATE TRIGGER "bucardo_main_[0-9a-f]{12}_p" BEFORE TRUNCATE ON "public"\."pay_1"/);
  assert.doesNotMatch(texts, /Order "Lines"[^"]/, 'the table name never appears unquoted');
  const reg = statements.find((s) => s.text.startsWith('INSERT INTO "bucardo_main"."sync_relation"'))!;
  assert.equal(reg.values![0], 's1');
  assert.deepEqual(reg.values!.slice(2), ['public', 'items', ['id'], false]);
});

test('a plan file carries the steps; apply refuses it when a step differs, even where the changes are the same', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bucardo-planfile-'));
  try {
    const yaml = path.join(dir, 'bucardo.yaml');
    fs.writeFileSync(yaml, YAML);
    const plan = freshPlan();
    const out = path.join(dir, 'plan.json');
    writePlanFile(out, yaml, validateTopologyText(YAML, yaml, {}), plan);
    const doc = readPlanFile(out);
    assert.ok(doc.changes.every((c) => c.steps.length > 0));
    assert.equal(planFileMatches(doc, freshPlan().changes), true);

    const other = freshPlan();
    const fn = other.changes.find((c) => c.objectType === 'function')!;
    fn.steps = fn.steps.map((s) => (s.kind === 'install_function' ? { ...s, body: s.body.replace('RETURN NULL;', 'RETURN NULL; -- other') } : s));
    assert.equal(planFileMatches(doc, other.changes), false, 'same changes, other steps');

    // a plan file of an earlier bucardo, without steps, is refused
    const old = JSON.parse(fs.readFileSync(out, 'utf8'));
    for (const c of old.changes) delete c.steps;
    fs.writeFileSync(out, JSON.stringify(old));
    assert.throws(
      () => readPlanFile(out),
      (e: unknown) => e instanceof BucardoError && e.code === 'bad_plan_file' && /earlier version of bucardo/.test(e.message),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
