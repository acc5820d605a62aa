// Which role plan checks a database for, and what each role lacks: pure, from synthetic catalogs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkedAs, tableLacks, replicationRoleLack, schemaLacks } from '../../engine/planner/privileges.js';
import { emptyInstalledState } from '../../engine/catalog/read.js';
import type { DatabaseCatalog, TableInfo } from '../../engine/catalog/types.js';
import type { SyncSpec } from '../../engine/topology/types.js';

const none = { select: false, insert: false, update: false, delete: false, truncate: false, trigger: false };

function catalog(o: Partial<DatabaseCatalog> = {}, installed: Partial<DatabaseCatalog['installed']> = {}): DatabaseCatalog {
  return {
    database: 'a',
    serverVersion: 150004,
    currentUser: 'runner',
    isSuperuser: false,
    canCreateSchema: false,
    canSetReplicationRole: false,
    tables: [],
    sequences: [],
    partitionsOf: [],
    ...o,
    installed: { ...emptyInstalledState('bucardo_main'), ...installed },
  };
}

const table = (privileges: Partial<TableInfo['privileges']>, owned = false): TableInfo => ({
  schema: 'public',
  name: 'items',
  kind: 'r',
  columns: [],
  primaryKey: ['id'],
  uniqueKeys: [],
  estimatedRows: 0,
  privileges: { ...none, ...privileges },
  owner: 'app_owner',
  owned,
});

const delta = (sources: string[], targets: string[] = []) => ({ name: 's1', kind: 'delta', sources, targets }) as unknown as SyncSpec;

test('checkedAs: a superuser, the schema owner, or a creator before the first apply is checked as the owner; anyone else as the runner', () => {
  assert.equal(checkedAs(catalog({ isSuperuser: true })), 'owner');
  assert.equal(checkedAs(catalog({ canCreateSchema: true })), 'owner');
  assert.equal(checkedAs(catalog({ canCreateSchema: true }, { schemaExists: true, schemaOwned: false })), 'runner');
  assert.equal(checkedAs(catalog({}, { schemaExists: true, schemaOwned: true })), 'owner');
  assert.equal(checkedAs(catalog()), 'runner');
});

test('tableLacks: the owner needs TRIGGER and ownership on a delta source, the runner SELECT there and DML where it writes', () => {
  const cat = catalog();
  assert.deepEqual(
    tableLacks('owner', delta(['a']), cat, table({ select: true })).map((l) => l.hint),
    ['GRANT TRIGGER ON public.items TO runner'],
  );
  assert.match(
    tableLacks('owner', delta(['a']), cat, table({ trigger: true }))[0].hint,
    /^GRANT app_owner TO runner, or ALTER TABLE public\.items OWNER TO runner$/,
  );
  assert.deepEqual(tableLacks('owner', delta(['a']), cat, table({ trigger: true }, true)), []);
  assert.deepEqual(tableLacks('runner', delta(['a'], ['b']), cat, table({ select: true })), [], 'a one-way source is only read');
  assert.deepEqual(
    tableLacks('runner', delta(['a', 'b']), cat, table({ update: true })).map((l) => l.hint),
    ['GRANT SELECT ON public.items TO runner', 'GRANT INSERT, DELETE ON public.items TO runner'],
  );
});

test('replicationRoleLack and schemaLacks concern the runner only; before PostgreSQL 15 the hint says a superuser is needed', () => {
  const spec = delta(['a'], ['b']);
  assert.equal(replicationRoleLack('owner', spec, catalog()), undefined);
  assert.match(replicationRoleLack('runner', spec, catalog())!.hint, /^GRANT SET ON PARAMETER session_replication_role TO runner$/);
  assert.match(
    replicationRoleLack('runner', spec, catalog({ serverVersion: 140010 }))!.hint,
    /PostgreSQL 14 has no GRANT SET ON PARAMETER: connect as a superuser/,
  );
  const inst = { schemaExists: true, schemaUsage: true, grants: [{ name: 'meta', kind: 'table' as const, held: ['SELECT'] }] };
  assert.deepEqual(schemaLacks('owner', catalog({}, inst)), []);
  assert.deepEqual(
    schemaLacks('runner', catalog({}, inst)).map((l) => l.message),
    ['user runner lacks INSERT, UPDATE, DELETE on 1 table of schema bucardo_main on database a (bucardo_main.meta)'],
  );
});
