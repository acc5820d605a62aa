/**
 * plan and apply for targets of other engines (SPEC section 7). bucardo installs nothing
 * there but its bookkeeping table (the watermark of each sync, engine/targets/receiver.ts),
 * which plan shows as a change; each table a sync sends there must exist with the key and
 * the columns sent, else plan fails naming it, with the CREATE TABLE it would take.
 */
import type { Topology, ForeignDatabaseSpec } from '../topology/types.js';
import type { Change, Plan } from '../planner/types.js';
import type { CatalogResult } from '../planner/plan.js';
import type { DatabaseCatalog } from '../catalog/types.js';
import { resolveSyncs, type ResolvedTable } from '../planner/resolve.js';
import { receivingOn } from '../topology/receiving.js';
import { withReceiver, type ReceiverTable } from '../targets/receiver.js';
import { BucardoError } from '../errors.js';
import { SQLITE_STATE_TABLE } from '../sql/sqlite.js';

/** A receiver table from what plan resolved: columns and types as the first source's catalog has them. */
function plannedTable(t: ResolvedTable, first: DatabaseCatalog, db: string): ReceiverTable | null {
  const info = first.tables.find((x) => x.schema === t.schema && x.name === t.name);
  if (!info) return null;
  const o = receivingOn({ columns: t.columns, where: t.where }, t.targets?.get(db), true);
  const copied = info.columns.filter((c) => !c.generated);
  const columns = o.columns ?? copied.map((c) => c.name);
  return {
    name: o.name?.name ?? t.name,
    schema: o.name?.schema ?? t.schema,
    display: t.display,
    keyColumns: t.key.map((k) => k.name),
    columns,
    types: columns.map((c) => copied.find((x) => x.name === c)?.type ?? 'text'),
  };
}

/** The foreign databases' share of a plan, added to `plan`: their errors and the bookkeeping to create. */
export async function planForeignTargets(topology: Topology, results: Map<string, CatalogResult>, plan: Plan): Promise<void> {
  const used = [...topology.syncs.values()].filter((s) => s.foreignTargets?.length);
  if (!used.length) return;
  const catalogs = new Map<string, DatabaseCatalog>();
  for (const [db, r] of results) if (r.ok) catalogs.set(db, r.catalog);
  const tables = new Map<string, ReceiverTable[]>();
  for (const s of resolveSyncs(topology, catalogs).syncs) {
    const first = catalogs.get(s.spec.sources[0]);
    if (!first) continue;
    for (const db of s.spec.foreignTargets ?? []) {
      const list = tables.get(db) ?? [];
      for (const t of s.tables) {
        const rt = plannedTable(t, first, db);
        if (rt && !list.some((x) => x.name === rt.name)) list.push(rt);
      }
      tables.set(db, list);
    }
  }
  for (const name of new Set(used.flatMap((s) => s.foreignTargets ?? []))) {
    const spec = topology.foreignDatabases!.get(name)!;
    try {
      await withReceiver(spec, async (r) => {
        for (const p of await r.checkTables(tables.get(name) ?? [])) {
          plan.errors.push({
            code: 'missing_table',
            database: name,
            message: `table ${JSON.stringify(p.table.name)} (${p.table.display}) in ${spec.type} database ${name} ${p.problem}`,
            hint: `create it there, for example:\n${p.createTable}`,
          });
        }
        // null: no bookkeeping table at all (the sync name does not matter here)
        if (!(await r.readState(''))) plan.changes.push(bookkeepingChange(spec));
      });
    } catch (e) {
      if (!(e instanceof BucardoError)) throw e;
      plan.errors.push({ code: e.code, database: name, message: e.message, hint: e.hint });
    }
  }
}

function bookkeepingChange(spec: ForeignDatabaseSpec): Change {
  return {
    database: spec.name,
    action: 'create',
    objectType: 'metadata_table',
    object: `table ${SQLITE_STATE_TABLE}`,
    reason: `the watermark of each sync in ${spec.type} database ${spec.name}: the one object bucardo installs there`,
    steps: [],
    phase: 0,
  };
}

/** Carries out a change on a foreign database (the bookkeeping table is all there is); false: not such a database. */
export async function executeForeignChange(topology: Topology, change: Change): Promise<boolean> {
  const spec = topology.foreignDatabases?.get(change.database);
  if (!spec) return false;
  await withReceiver(spec, (r) => r.installBookkeeping());
  return true;
}
