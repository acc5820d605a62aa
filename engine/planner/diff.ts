/**
 * Desired objects of one database against its live catalog: the changes that make them
 * match. Drift (an object dropped, disabled or edited by hand) is found here because the
 * comparison is with pg_catalog, not with the memory of the last apply; the registry
 * (bucardo_<name>.installed) only says what was ours, so that objects no longer wanted are
 * destroyed and nothing of another topology is touched.
 */
import { createTwoFilesPatch } from 'diff';
import type { DatabaseCatalog, TriggerInfo } from '../catalog/types.js';
import type { Change, Statement } from './types.js';
import { approxRows } from './types.js';
import type { DesiredDatabase } from './desired.js';
import { syncTableKey } from './desired.js';
import { describeCustomChanges, receivingChanges, type ReceivingChange } from './custom.js';
import type { CaptureDef, TriggerDef } from '../sql/capture.js';
import { metadataFingerprint, METADATA_VERSION } from '../sql/capture.js';
import { qualify, quoteIdent, displayName, displayIdent, fingerprint as fingerprintOf } from '../sql/ident.js';
import { schemaName, type CaptureEvent } from '../names.js';
import * as sql from '../sql/steps.js';

/** Execution order inside a database's transaction. */
const PHASE = {
  dropTrigger: 0, dropFunction: 1, dropDelta: 2, dropSyncTable: 3, dropSync: 4, dropSchema: 5,
  schema: 10, metadata: 11, delta: 12, function: 13, trigger: 14, sync: 15, syncTable: 16,
} as const;

/** How a plan names what each trigger captures. */
const EVENT_LABEL: Record<CaptureEvent, string> = {
  insert: 'INSERT', update: 'UPDATE', delete: 'DELETE', truncate: 'TRUNCATE', keychange: 'UPDATE of the key (old keys)',
  before_truncate: 'TRUNCATE of the whole partitioned table (before)', partition_truncate: 'TRUNCATE of this partition (its keys, before)',
};

export function diffDatabase(topologyName: string, desired: DesiredDatabase | undefined, cat: DatabaseCatalog): Change[] {
  const schema = schemaName(topologyName);
  const inst = cat.installed;
  const changes: Change[] = [];
  const database = cat.database;
  const add = (c: Omit<Change, 'database'>) => changes.push({ database, ...c });
  const registered = new Map(inst.registry.map((r) => [`${r.objectType}\u0000${r.objectName}`, r]));
  const wasOurs = (type: string, name: string) => registered.has(`${type}\u0000${name}`);

  // ---- nothing wanted here: remove all that is ours ----
  if (!desired) {
    for (const t of inst.triggers) {
      // the schema (and with it the registry) goes as a whole: only the DROP TRIGGER
      const d = destroyTrigger(schema, t, 'not in the topology any more');
      add({ ...d, statements: d.statements.slice(0, 1) });
    }
    if (inst.schemaExists) {
      for (const name of inst.functions.keys()) {
        add({ action: 'destroy', objectType: 'function', object: `function ${schema}.${name}()`, reason: 'not in the topology any more', statements: [], phase: PHASE.dropFunction });
      }
      for (const name of inst.tables.keys()) {
        if (!name.startsWith('delta_')) continue;
        add({ action: 'destroy', objectType: 'delta_table', object: `table ${schema}.${name}`, reason: 'not in the topology any more; pending changes in it are dropped', statements: [], phase: PHASE.dropDelta });
      }
      for (const s of inst.syncs) add({ action: 'destroy', objectType: 'sync', object: `sync ${s.name}`, reason: 'not in the topology any more', statements: [], phase: PHASE.dropSync });
      add({ action: 'destroy', objectType: 'schema', object: `schema ${schema}`, reason: `no sync of topology ${topologyName} uses this database; its metadata and run history go too`, statements: [sql.dropSchemaStatement(schema)], phase: PHASE.dropSchema });
    }
    return changes;
  }

  // ---- schema and metadata tables ----
  const metaFp = metadataFingerprint(topologyName);
  if (!inst.schemaExists) {
    add({
      action: 'create', objectType: 'schema', object: `schema ${schema}`,
      reason: `metadata of topology ${topologyName} (installed objects, syncs, watermarks, run history)`,
      statements: [...sql.createSchemaStatements(topologyName, schema), sql.registryUpsert(schema, { type: 'schema', name: schema, fingerprint: metaFp })],
      phase: PHASE.schema,
    });
  } else {
    // an install by an earlier bucardo lacks what later versions added; anything else missing was dropped by hand
    const older = inst.meta.schema_version !== undefined && inst.meta.schema_version !== METADATA_VERSION;
    let added = false;
    for (const t of sql.metadataTableNames(topologyName, schema)) {
      if (inst.tables.has(t)) continue;
      const statements = sql.metadataTableStatements(topologyName, schema, t);
      const kind = statements[0]?.text.startsWith('CREATE SEQUENCE') ? 'sequence' : 'table';
      add({
        action: 'create', objectType: 'metadata_table', object: `${kind} ${schema}.${t}`,
        reason: older ? `metadata ${kind} added by this version of bucardo (metadata version ${inst.meta.schema_version} -> ${METADATA_VERSION})` : `metadata ${kind} missing (dropped outside bucardo?)`,
        statements: added ? statements : [...statements, sql.setMeta(schema, 'schema_version', METADATA_VERSION)], phase: PHASE.metadata,
      });
      added = true;
    }
  }

  // ---- capture objects ----
  const wantedTriggers = new Set<string>();
  const wantedFunctions = new Set<string>();
  const wantedDeltas = new Set<string>();
  for (const { def, table, syncs } of desired.captures.values()) {
    wantedFunctions.add(def.function.name);
    wantedDeltas.add(def.deltaTable.name);
    const tdisp = table.display;
    const forWhom = `capture of ${tdisp} for sync${syncs.length > 1 ? 's' : ''} ${syncs.join(', ')}`;
    const reg = (type: string, name: string, fp: string): Statement =>
      sql.registryUpsert(schema, { type, name, tableSchema: table.schema, tableName: table.name, fingerprint: fp, detail: { table_id: def.id, syncs } });

    // delta table
    const dName = `${schema}.${def.deltaTable.name}`;
    const liveCols = inst.tables.get(def.deltaTable.name);
    const deltaStatements = [...def.deltaTable.ddl.map((text) => ({ text })), reg('delta_table', dName, def.deltaTable.fingerprint)];
    if (!liveCols) {
      add({ action: 'create', objectType: 'delta_table', object: `table ${dName}`, reason: `delta storage of ${tdisp}${wasOurs('delta_table', dName) ? ' (missing: dropped outside bucardo?)' : ''}`, statements: deltaStatements, phase: PHASE.delta });
    } else {
      const live = liveCols.map((c) => `${c.name} ${c.type}`).join(', ');
      const want = def.deltaTable.columns.map((c) => `${c.name} ${c.type}`).join(', ');
      if (live !== want) {
        add({
          action: 'replace', objectType: 'delta_table', object: `table ${dName}`,
          reason: `columns are (${live}) but the key of ${tdisp} needs (${want}); changes still pending in it are dropped`,
          statements: [{ text: `DROP TABLE ${qualify(schema, def.deltaTable.name)}` }, ...deltaStatements], phase: PHASE.delta,
        });
      }
    }

    // function
    const fName = `${schema}.${def.function.name}()`;
    const liveFn = inst.functions.get(def.function.name);
    const fnStatements = [{ text: def.function.ddl }, reg('function', fName, def.function.fingerprint)];
    if (!liveFn) {
      add({ action: 'create', objectType: 'function', object: `function ${fName}`, reason: `${forWhom}${wasOurs('function', fName) ? ' (missing: dropped outside bucardo?)' : ''}`, statements: fnStatements, phase: PHASE.function });
    } else if (liveFn.language !== 'plpgsql' || liveFn.returnType !== 'trigger' || liveFn.argCount !== 0) {
      add({
        action: 'replace', objectType: 'function', object: `function ${fName}`,
        reason: `is a ${liveFn.language} function returning ${liveFn.returnType}, not bucardo's capture function`,
        statements: [{ text: `DROP FUNCTION ${qualify(schema, def.function.name)} CASCADE` }, ...fnStatements], phase: PHASE.function,
      });
    } else if (liveFn.body !== def.function.body) {
      const reg0 = registered.get(`function\u0000${fName}`);
      const why = reg0 && reg0.fingerprint !== def.function.fingerprint && wasEditedByUs(reg0.fingerprint, liveFn.body)
        ? `capture options changed (${forWhom})`
        : 'body differs from what bucardo installed (edited outside bucardo?)';
      add({
        action: 'update', objectType: 'function', object: `function ${fName}`, reason: why,
        diff: createTwoFilesPatch(`${fName} (live)`, `${fName} (wanted)`, liveFn.body, def.function.body, undefined, undefined, { context: 3 }),
        statements: fnStatements, phase: PHASE.function,
      });
    }

    // triggers (on the table, and on each of its partitions)
    for (const trg of def.triggers) {
      const on = trg.table;
      const ondisp = displayName(on.schema, on.name);
      const partition = on.schema !== table.schema || on.name !== table.name;
      wantedTriggers.add(`${on.schema}\u0000${on.name}\u0000${trg.name}`);
      const live = inst.triggers.find((t) => t.tableSchema === on.schema && t.tableName === on.name && t.name === trg.name);
      const obj = `trigger ${displayIdent(trg.name)} on ${ondisp}`;
      const tStatements = [...trg.ddl.map((text) => ({ text })), reg('trigger', `${trg.name} on ${ondisp}`, trg.fingerprint)];
      if (!live) {
        const what = `${forWhom}${partition ? `, partition ${ondisp}` : ''}, ${EVENT_LABEL[trg.event]}`;
        add({ action: 'create', objectType: 'trigger', object: obj, reason: `${what}${wasOurs('trigger', `${trg.name} on ${ondisp}`) ? ' (missing: dropped outside bucardo?)' : ''}`, statements: tStatements, phase: PHASE.trigger });
        continue;
      }
      const mismatch = triggerMismatch(live, trg, def, schema);
      if (mismatch) {
        add({
          action: 'replace', objectType: 'trigger', object: obj, reason: `definition differs: ${mismatch}`,
          statements: [{ text: `DROP TRIGGER ${quoteIdent(trg.name)} ON ${qualify(on.schema, on.name)}` }, ...tStatements], phase: PHASE.trigger,
        });
      } else if (live.enabled !== trg.enabled) {
        const how = trg.enabled === 'A' ? 'ENABLE ALWAYS' : 'ENABLE';
        const state = { D: 'disabled', O: 'enabled', R: 'enabled for replica only', A: 'enabled always' }[live.enabled] ?? live.enabled;
        const want = trg.enabled === 'A' ? 'enabled always (makedelta)' : 'enabled';
        add({
          action: 'update', objectType: 'trigger', object: obj,
          reason: live.enabled === 'D' ? 'disabled outside bucardo: changes to the table are not being captured' : `is ${state}, wanted ${want}`,
          statements: [{ text: `ALTER TABLE ${qualify(on.schema, on.name)} ${how} TRIGGER ${quoteIdent(trg.name)}` }, reg('trigger', `${trg.name} on ${ondisp}`, trg.fingerprint)],
          phase: PHASE.trigger,
        });
      }
    }
  }

  // ---- capture objects no longer wanted ----
  for (const t of inst.triggers) {
    if (!wantedTriggers.has(`${t.tableSchema}\u0000${t.tableName}\u0000${t.name}`)) add(destroyTrigger(schema, t, 'its table is no longer captured by any sync of this database'));
  }
  for (const name of inst.functions.keys()) {
    if (wantedFunctions.has(name)) continue;
    const fName = `${schema}.${name}()`;
    add({
      action: 'destroy', objectType: 'function', object: `function ${fName}`, reason: 'its table is no longer captured here',
      statements: [{ text: `DROP FUNCTION IF EXISTS ${qualify(schema, name)}() CASCADE` }, sql.registryDelete(schema, 'function', fName)], phase: PHASE.dropFunction,
    });
  }
  for (const name of inst.tables.keys()) {
    if (!name.startsWith('delta_') || wantedDeltas.has(name)) continue;
    const dName = `${schema}.${name}`;
    add({
      action: 'destroy', objectType: 'delta_table', object: `table ${dName}`, reason: 'its table is no longer captured here; changes still pending in it are dropped',
      statements: [{ text: `DROP TABLE IF EXISTS ${qualify(schema, name)}` }, sql.registryDelete(schema, 'delta_table', dName)], phase: PHASE.dropDelta,
    });
  }

  // ---- syncs and their tables ----
  const liveSyncs = new Map(inst.syncs.map((s) => [s.name, s]));
  for (const [name, s] of desired.syncs) {
    const live = liveSyncs.get(name);
    const st = sql.upsertSync(schema, { name, kind: s.spec.kind, role: s.role, fingerprint: s.fingerprint, detail: s.detail });
    if (!live) {
      add({ action: 'create', objectType: 'sync', object: `sync ${name}`, reason: `${s.spec.kind} sync, this database is a ${s.role}`, statements: [st], phase: PHASE.sync });
    } else if (live.fingerprint !== s.fingerprint || live.role !== s.role || live.kind !== s.spec.kind) {
      const custom = live.detail ? describeCustomChanges(live.detail, s.detail) : [];
      const reason = live.role !== s.role ? `role changes from ${live.role} to ${s.role}` : `definition changed${custom.length ? `: ${custom.join('; ')}` : ''}`;
      add({ action: 'update', objectType: 'sync', object: `sync ${name}`, reason, statements: [st], phase: PHASE.sync });
    }
  }
  for (const s of inst.syncs) {
    if (desired.syncs.has(s.name)) continue;
    add({ action: 'destroy', objectType: 'sync', object: `sync ${s.name}`, reason: 'not in the topology any more; its watermark goes too', statements: sql.deleteSync(schema, s.name), phase: PHASE.dropSync });
  }
  const liveRel = new Map(inst.syncRelations.map((r) => [syncTableKey(r.sync, r.tableId), r]));
  // a receiver whose name, columns, filter or transform of a table changed (planner/custom.ts)
  const recopies = new Map<string, ReceivingChange>();
  for (const [name, s] of desired.syncs) {
    const live = liveSyncs.get(name);
    if (!live?.detail || s.spec.kind !== 'delta' || live.fingerprint === s.fingerprint) continue;
    for (const c of receivingChanges(live.detail, s.detail, desired.database)) {
      const t = [...desired.syncTables.values()].find((x) => x.sync === name && `${x.table.schema}.${x.table.name}` === c.table);
      if (t) recopies.set(syncTableKey(name, t.table.id), c);
    }
  }
  for (const [k, st] of desired.syncTables) {
    const live = liveRel.get(k);
    const keyCols = st.table.key.map((c) => c.name);
    const obj = `sync ${st.sync}: table ${st.table.display}`;
    if (!live) {
      const copy = st.copyOnCreate;
      const rows = st.table.estimatedRows;
      const reason = copy
        ? `new in the sync; onetimecopy ${copy}: the next run copies it from ${st.copyFrom} (${approxRows(rows)})`
        : 'new in the sync';
      add({
        action: 'create', objectType: 'sync_table', object: obj, reason,
        statements: [sql.insertSyncRelation(schema, { sync: st.sync, tableId: st.table.id, tableSchema: st.table.schema, tableName: st.table.name, keyColumns: keyCols, copyPending: Boolean(copy) })],
        phase: PHASE.syncTable,
      });
    } else if (recopies.has(k)) {
      const c = recopies.get(k)!;
      add({
        action: 'update', objectType: 'sync_table', object: obj,
        reason: c.recopy
          ? `${c.what}: the next run empties ${st.table.display} here and copies the rows again from ${st.copyFrom}`
          : `${c.what}: changes from now on follow it; rows already here (a source) are left as they are`,
        statements: c.recopy ? [sql.requestRecopy(schema, st.sync, st.table.id, c.what)] : [], phase: PHASE.syncTable,
      });
    } else if (live.keyColumns.join('\u0000') !== keyCols.join('\u0000')) {
      add({
        action: 'update', objectType: 'sync_table', object: obj, reason: `replication key changes from (${live.keyColumns.join(', ')}) to (${keyCols.join(', ')})`,
        statements: [sql.updateSyncRelationKey(schema, st.sync, st.table.id, keyCols)], phase: PHASE.syncTable,
      });
    }
  }
  for (const r of inst.syncRelations) {
    if (desired.syncTables.has(syncTableKey(r.sync, r.tableId)) || !desired.syncs.has(r.sync)) continue;
    add({
      action: 'destroy', objectType: 'sync_table', object: `sync ${r.sync}: table ${displayName(r.tableSchema, r.tableName)}`, reason: 'removed from the sync',
      statements: [sql.deleteSyncRelation(schema, r.sync, r.tableId)], phase: PHASE.dropSyncTable,
    });
  }
  return changes;
}

function destroyTrigger(schema: string, t: TriggerInfo, reason: string): Omit<Change, 'database'> {
  const tdisp = displayName(t.tableSchema, t.tableName);
  return {
    action: 'destroy', objectType: 'trigger', object: `trigger ${displayIdent(t.name)} on ${tdisp}`, reason,
    statements: [{ text: `DROP TRIGGER IF EXISTS ${quoteIdent(t.name)} ON ${qualify(t.tableSchema, t.tableName)}` }, sql.registryDelete(schema, 'trigger', `${t.name} on ${tdisp}`)],
    phase: PHASE.dropTrigger,
  };
}

/** Why a live trigger is not the one wanted, or null when its definition matches. */
function triggerMismatch(live: TriggerInfo, want: TriggerDef, def: CaptureDef, schema: string): string | null {
  if (live.functionSchema !== schema || live.functionName !== def.function.name) return `calls ${displayName(live.functionSchema, live.functionName)}() instead of ${displayName(schema, def.function.name)}()`;
  if (live.type !== want.tgtype) return `fires ${describeType(live.type)} instead of ${describeType(want.tgtype)}`;
  if (live.oldTable !== want.oldTable || live.newTable !== want.newTable) {
    if (want.event === 'update' && live.newTable === want.newTable) return want.oldTable ? 'it does not keep the old rows (the table is partitioned now)' : 'it keeps the old rows too (installed by an earlier bucardo)';
    return 'its transition tables were changed';
  }
  const key = want.event === 'keychange';
  if (live.hasWhen !== key) return key ? 'its WHEN condition was removed' : 'a WHEN condition was added';
  if ([...live.columns].sort().join('\u0000') !== [...want.columns].sort().join('\u0000')) {
    return key ? `it fires only on UPDATE OF ${live.columns.join(', ')}, so it misses a key changed by a BEFORE trigger (installed by an earlier bucardo)` : 'a column list was added';
  }
  return null;
}

function describeType(t: number): string {
  const when = t & 2 ? 'BEFORE' : t & 64 ? 'INSTEAD OF' : 'AFTER';
  const ev = [t & 4 && 'INSERT', t & 8 && 'DELETE', t & 16 && 'UPDATE', t & 32 && 'TRUNCATE'].filter(Boolean).join(' OR ');
  return `${when} ${ev} FOR EACH ${t & 1 ? 'ROW' : 'STATEMENT'}`;
}

/** The registry's fingerprint is of the body we last installed: equal to the live body means only options changed. */
function wasEditedByUs(registeredFp: string, liveBody: string): boolean {
  return registeredFp === fingerprintOf(liveBody);
}
