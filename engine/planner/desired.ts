/**
 * What each database should hold for a topology: the schema, the capture objects of each
 * (source database, table), and the registration of each sync and its tables.
 */
import type { Topology, SyncSpec } from '../topology/types.js';
import { registeredConflict, registeredModule, registeredOverride } from '../topology/registered.js';
import type { ModuleRef } from '../topology/types.js';
import type { ResolvedSync, ResolvedTable } from './resolve.js';
import type { PlanProblem } from './types.js';
import { captureDef, CHANGE_INDEX_MIN_TABLES, type CaptureDef } from '../sql/capture.js';
import { fingerprint } from '../sql/ident.js';

export interface DesiredSyncTable {
  sync: string;
  table: ResolvedTable;
  /** A onetimecopy into this database when the table is new to the sync. */
  copyOnCreate: false | 'always' | 'if_empty';
  copyFrom: string;
}

export interface DesiredSync {
  spec: SyncSpec;
  role: 'source' | 'target';
  fingerprint: string;
  detail: Record<string, unknown>;
}

/** The capture objects of one table in one source database, and the syncs they serve. */
export interface DesiredCapture {
  def: CaptureDef;
  table: ResolvedTable;
  syncs: string[];
}

export interface DesiredDatabase {
  database: string;
  captures: Map<string, DesiredCapture>;
  syncs: Map<string, DesiredSync>;
  syncTables: Map<string, DesiredSyncTable>;
}

/** Key of a sync table registration: sync NUL table id. */
export const syncTableKey = (sync: string, tableId: string) => `${sync}\u0000${tableId}`;

/** The sync's definition as stored in the sync row (no positions, no passwords, modules by relative path and content hash). */
function syncDetail(s: ResolvedSync): Record<string, unknown> {
  // spread first: the keys keep their order, so the fingerprints of syncs without custom code do not change
  const { pos: _pos, ...spec } = s.spec;
  const tables = s.tables.map((t) => ({
    schema: t.schema,
    name: t.name,
    key: t.key.map((k) => k.name),
    ...(t.conflict ? { conflict: registeredConflict(t.conflict) } : {}),
    ...(t.columns ? { columns: t.columns } : {}),
    ...(t.where ? { where: t.where } : {}),
    ...(t.targets?.size ? { targets: Object.fromEntries([...t.targets].map(([db, o]) => [db, registeredOverride(o)])) } : {}),
  }));
  const regHooks = Object.fromEntries(
    Object.entries(spec.hooks)
      .filter(([, m]) => m)
      .map(([k, m]) => [k, registeredModule(m as ModuleRef)]),
  );
  return { ...spec, conflict: registeredConflict(spec.conflict), hooks: regHooks, tables, sequences: s.sequences };
}

export function desiredState(topology: Topology, syncs: ResolvedSync[]): { dbs: Map<string, DesiredDatabase>; errors: PlanProblem[] } {
  const dbs = new Map<string, DesiredDatabase>();
  const errors: PlanProblem[] = [];
  const db = (name: string) => {
    let d = dbs.get(name);
    if (!d) {
      d = { database: name, captures: new Map(), syncs: new Map(), syncTables: new Map() };
      dbs.set(name, d);
    }
    return d;
  };
  // capture needs: per (db, table) the union of what every sync reading it asks for
  const needs = new Map<
    string,
    { db: string; table: ResolvedTable; autokick: boolean; makedelta: boolean | undefined; changeIndex: boolean; syncs: string[] }
  >();
  for (const s of syncs) {
    const detail = syncDetail(s);
    const fp = fingerprint(JSON.stringify(detail));
    for (const name of [...s.spec.sources, ...s.spec.targets]) {
      const role = s.spec.sources.includes(name) ? 'source' : 'target';
      db(name).syncs.set(s.spec.name, { spec: s.spec, role, fingerprint: fp, detail });
      for (const t of s.tables) {
        const receives = name !== s.spec.sources[0];
        const copy = s.spec.kind === 'delta' && receives && s.spec.onetimecopy !== 'never' ? s.spec.onetimecopy : false;
        db(name).syncTables.set(syncTableKey(s.spec.name, t.id), { sync: s.spec.name, table: t, copyOnCreate: copy, copyFrom: s.spec.sources[0] });
      }
    }
    if (s.spec.kind !== 'delta') continue;
    for (const src of s.spec.sources) {
      for (const t of s.tables) {
        const k = `${src}\u0000${t.id}`;
        const n = needs.get(k);
        const autokick = t.autokick ?? s.spec.autokick;
        const changeIndex = s.tables.length >= CHANGE_INDEX_MIN_TABLES;
        if (!n) {
          needs.set(k, { db: src, table: t, autokick, makedelta: t.makedelta, changeIndex, syncs: [s.spec.name] });
          continue;
        }
        if (n.table.key.map((c) => c.name).join('\u0000') !== t.key.map((c) => c.name).join('\u0000')) {
          errors.push({
            code: 'key_conflict',
            database: src,
            object: t.display,
            message: `table ${t.display} is replicated with key (${n.table.key.map((c) => c.name).join(', ')}) by sync ${n.syncs[0]} but (${t.key.map((c) => c.name).join(', ')}) by sync ${s.spec.name}`,
            hint: 'use the same key for a table in every sync',
          });
        }
        n.autokick ||= autokick;
        n.changeIndex ||= changeIndex;
        n.makedelta = n.makedelta || t.makedelta;
        n.syncs.push(s.spec.name);
      }
    }
  }
  for (const n of needs.values()) {
    const dbName = n.db;
    const makedelta = n.makedelta ?? topology.databases.get(dbName)?.makedelta ?? false;
    const def = captureDef(topology.name, { schema: n.table.schema, name: n.table.name }, n.table.key, {
      autokick: n.autokick,
      makedelta,
      changeIndex: n.changeIndex,
      partitioned: n.table.partitionedOn.includes(dbName),
      partitions: n.table.partitions.get(dbName),
    });
    db(dbName).captures.set(n.table.id, { def, table: n.table, syncs: n.syncs });
  }
  return { dbs, errors };
}
