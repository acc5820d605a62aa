/**
 * The planner: {topology, live catalogs} -> Plan. Pure (imports no pg): the catalogs are
 * read by engine/catalog and handed in, so every planning rule is unit-testable.
 */
import type { Topology } from '../topology/types.js';
import type { DatabaseCatalog } from '../catalog/types.js';
import type { Plan, PlanProblem, CopyNote } from './types.js';
import { resolveSyncs } from './resolve.js';
import { desiredState, syncTableKey } from './desired.js';
import { diffDatabase } from './diff.js';
import { checkedAs, runnerNote, schemaLacks } from './privileges.js';
import { newerMetadataProblem } from './upgrade.js';
import { fingerprint } from '../sql/ident.js';
import { schemaName } from '../objectnames.js';

/** Per database: its catalog, or the reason it could not be read (unreachable...). */
export type CatalogResult = { ok: true; catalog: DatabaseCatalog } | { ok: false; error: PlanProblem };

/** Databases named by some sync. The others under databases: are still read: what the topology installed there must go. */
export function syncedDatabases(topology: Topology): Set<string> {
  const used = new Set<string>();
  for (const s of topology.syncs.values()) for (const d of [...s.sources, ...s.targets]) used.add(d);
  return used;
}

/**
 * An unreachable database in no sync blocks nothing (no sync needs it), but whatever the
 * topology installed there stays, capture included, so the user is told.
 */
function unsyncedUnreachable(topology: string, e: PlanProblem): PlanProblem {
  return {
    code: e.code,
    database: e.database,
    message: `database ${e.database} is in no sync of topology ${topology} any more, so anything the topology installed there is to be removed, but it cannot be read: ${e.message}`,
    hint: 'make it reachable and run apply again; remove it from databases: once it holds nothing of this topology',
  };
}

/**
 * Databases that a sync was installed with (its registration on a database still in the
 * file says so) but that are no longer under databases:. bucardo keeps no connection
 * strings, so it cannot reach them to clean up; the user is told how, once per database.
 */
function removedDatabases(topology: Topology, catalogs: Map<string, DatabaseCatalog>): PlanProblem[] {
  const syncsOf = new Map<string, Set<string>>();
  for (const cat of catalogs.values()) {
    for (const row of cat.installed.syncs) {
      const d = row.detail as { sources?: unknown; targets?: unknown } | undefined;
      for (const db of [d?.sources, d?.targets].flatMap((x) => (Array.isArray(x) ? x : []))) {
        if (typeof db !== 'string' || topology.databases.has(db)) continue;
        syncsOf.set(db, (syncsOf.get(db) ?? new Set()).add(row.name));
      }
    }
  }
  return [...syncsOf].map(([db, syncs]) => {
    const names = [...syncs].sort();
    return {
      code: 'removed_database',
      database: db,
      message: `database ${db} is not in the file any more, but sync${names.length > 1 ? 's' : ''} ${names.join(', ')} ${names.length > 1 ? 'were' : 'was'} installed with it: what topology ${topology.name} installed there stays (schema ${schemaName(topology.name)}, and where it was a source the capture triggers, whose change logs keep growing)`,
      hint: `to remove it, list ${db} under databases: (in no sync) and run apply, then delete the entry; or run bucardo destroy with it listed`,
    };
  });
}

export function computePlan(topology: Topology, results: Map<string, CatalogResult>, opts: { destroy?: boolean } = {}): Plan {
  const errors: PlanProblem[] = [];
  const warnings: PlanProblem[] = [];
  const catalogs = new Map<string, DatabaseCatalog>();
  const synced = syncedDatabases(topology);
  for (const [db, r] of results) {
    if (r.ok) catalogs.set(db, r.catalog);
    else if (synced.has(db)) errors.push(r.error);
    else warnings.push(unsyncedUnreachable(topology.name, r.error));
  }
  if (!opts.destroy) warnings.push(...removedDatabases(topology, catalogs));
  const resolved = opts.destroy ? { syncs: [], errors: [], warnings: [] } : resolveSyncs(topology, catalogs);
  errors.push(...resolved.errors);
  warnings.unshift(...resolved.warnings);
  const desired = desiredState(topology, resolved.syncs);
  errors.push(...desired.errors);

  // A database that shares a sync with one whose catalog could not be read is not planned:
  // without the whole sync, its wanted objects are unknown, and an empty wish would read as
  // "destroy everything". The unreachable database is already an error.
  const blocked = new Set<string>();
  for (const s of topology.syncs.values()) {
    const dbs = [...s.sources, ...s.targets];
    if (dbs.some((d) => results.has(d) && !catalogs.has(d))) for (const d of dbs) blocked.add(d);
  }
  const changes = [];
  for (const cat of catalogs.values()) {
    if (checkedAs(cat) === 'runner') {
      warnings.push(runnerNote(cat));
      for (const l of schemaLacks('runner', cat)) errors.push({ code: 'privilege', database: cat.database, object: cat.installed.schema, ...l });
    }
    // what cannot be read cannot be compared: planned as if absent, it would all be destroyed
    if (blocked.has(cat.database) || !cat.installed.readable) continue;
    const want = desired.dbs.get(cat.database);
    if (!opts.destroy && !want && !cat.installed.schemaExists && !cat.installed.triggers.length) continue;
    // The schema of one topology and its metadata hold the other schema's objects only by name.
    if (!opts.destroy && want && !cat.installed.schemaExists && !cat.canCreateSchema) {
      errors.push({
        code: 'privilege',
        database: cat.database,
        message: `user ${cat.currentUser} may not create schema ${schemaName(topology.name)} in database ${cat.database}`,
        hint: `GRANT CREATE ON DATABASE to ${cat.currentUser}, or create the schema for it`,
      });
    }
    // destroy drops the schema whole, whatever its layout
    const newer = opts.destroy ? null : newerMetadataProblem(cat.database, cat.installed);
    if (newer) {
      errors.push(newer);
      continue;
    }
    const unsynced = !opts.destroy && !want ? `database ${cat.database} is in no sync of topology ${topology.name} any more` : undefined;
    changes.push(...diffDatabase(topology.name, opts.destroy ? undefined : want, cat, unsynced));
  }
  const order = [...topology.databases.keys()];
  changes.sort((a, b) => order.indexOf(a.database) - order.indexOf(b.database) || a.phase - b.phase);

  const copies: CopyNote[] = [];
  for (const c of changes) {
    for (const step of c.steps) {
      if (step.kind !== 'register_table' || !step.copyPending) continue;
      const st = desired.dbs.get(c.database)?.syncTables.get(syncTableKey(step.sync, step.tableId));
      if (st?.copyOnCreate)
        copies.push({
          sync: st.sync,
          table: st.table.display,
          from: st.copyFrom,
          to: c.database,
          mode: st.copyOnCreate,
          estimatedRows: st.table.estimatedRows,
        });
    }
  }
  const fingerprints: Record<string, string> = {};
  for (const cat of catalogs.values()) fingerprints[cat.database] = catalogFingerprint(cat);
  return { topology: topology.name, changes, errors, warnings, copies, fingerprints };
}

/**
 * Fingerprint of everything in a catalog that a plan depends on: bucardo's objects and
 * the user tables' columns, keys and privileges. Row estimates are left out: they move
 * with autovacuum, not with anything apply cares about.
 */
export function catalogFingerprint(cat: DatabaseCatalog): string {
  const inst = cat.installed;
  return fingerprint(
    JSON.stringify({
      tables: cat.tables.map(({ estimatedRows: _e, ...t }) => t),
      sequences: cat.sequences,
      installed: {
        schemaExists: inst.schemaExists,
        meta: inst.meta,
        tables: [...inst.tables.entries()].sort(),
        functions: [...inst.functions.entries()].sort(),
        triggers: inst.triggers,
        registry: inst.registry,
        syncs: inst.syncs,
        syncRelations: inst.syncRelations.map(({ copyPending: _c, ...r }) => r),
      },
      canCreateSchema: cat.canCreateSchema,
    }),
  );
}
