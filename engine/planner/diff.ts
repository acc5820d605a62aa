/**
 * Desired objects of one database against its live catalog: the changes that make them
 * match. Drift (an object dropped, disabled or edited by hand) is found here because the
 * comparison is with pg_catalog, not with the memory of the last apply; the registry
 * (bucardo_<name>.installed) only says what was ours, so that objects no longer wanted are
 * destroyed and nothing of another topology is touched. Each change carries its typed
 * steps; their SQL is engine/sql/steps.ts's.
 */
import { createTwoFilesPatch } from 'diff';
import type { DatabaseCatalog, RegistryRow, TriggerInfo } from '../catalog/types.js';
import type { Change } from './types.js';
import { approxRows } from './types.js';
import type { DesiredDatabase, DesiredCapture } from './desired.js';
import { syncTableKey } from './desired.js';
import { describeCustomChanges, receivingChanges, type ReceivingChange } from './custom.js';
import { CHANGE_INDEX, CHANGE_INDEX_MIN_TABLES, type CaptureDef, type TriggerDef } from '../sql/capture.js';
import { metadataFingerprint, METADATA_OBJECTS, METADATA_VERSION } from '../sql/metadata.js';
import { olderMetadata, metadataUpgrade } from './upgrade.js';
import type { Step } from '../sql/steps.js';
import { displayName, displayIdent, fingerprint as fingerprintOf } from '../sql/ident.js';
import { schemaName, tableId, captureTriggerName, type CaptureEvent } from '../objectnames.js';

/** Execution order inside a database's transaction. */
const PHASE = {
  dropTrigger: 0,
  dropFunction: 1,
  dropDelta: 2,
  dropSyncTable: 3,
  dropSync: 4,
  dropSchema: 5,
  schema: 10,
  metadata: 11,
  delta: 12,
  function: 13,
  trigger: 14,
  sync: 15,
  syncTable: 16,
} as const;

/** How a plan names what each trigger captures. */
const EVENT_LABEL: Record<CaptureEvent, string> = {
  insert: 'INSERT',
  update: 'UPDATE',
  delete: 'DELETE',
  truncate: 'TRUNCATE',
  keychange: 'UPDATE of the key (old keys)',
  before_truncate: 'TRUNCATE of the whole partitioned table (before)',
  partition_truncate: 'TRUNCATE of this partition (its keys, before)',
  log: 'notes in the change index which transactions wrote into it',
};

/** What the diff of one database shares: where its changes go and what the registry says was ours. */
interface DiffContext {
  topology: string;
  schema: string;
  cat: DatabaseCatalog;
  registered: Map<string, RegistryRow>;
  /** The metadata version of an install by an earlier bucardo (upgraded in place), else null. */
  older: string | null;
  add(c: Omit<Change, 'database'>): void;
}

/** `removedBecause`: why everything goes when nothing is desired (unset: the topology is being destroyed). */
export function diffDatabase(topologyName: string, desired: DesiredDatabase | undefined, cat: DatabaseCatalog, removedBecause?: string): Change[] {
  const changes: Change[] = [];
  const ctx: DiffContext = {
    topology: topologyName,
    schema: schemaName(topologyName),
    cat,
    registered: new Map(cat.installed.registry.map((r) => [`${r.objectType}\u0000${r.objectName}`, r])),
    older: cat.installed.schemaExists ? olderMetadata(cat.installed) : null,
    add: (c) => changes.push({ database: cat.database, ...c }),
  };
  if (!desired) {
    removeAll(ctx, removedBecause);
    return changes;
  }
  diffMetadata(ctx);
  for (const capture of desired.captures.values()) {
    const deltaMade = diffDeltaTable(ctx, capture);
    diffFunction(ctx, capture);
    diffTriggers(ctx, capture, deltaMade);
  }
  removeUnwantedCapture(ctx, desired);
  diffSyncs(ctx, desired);
  markChangeIndex(changes);
  return changes;
}

/**
 * Runs trust a database's change index only from the commit of the apply that last made one
 * of its `log` triggers (docs/protocol.md, step 3): the last change that makes one also
 * records that transaction's id (once per database).
 */
function markChangeIndex(changes: Change[]): void {
  const marking = changes.filter((c) => c.steps.some((st) => st.kind === 'mark_change_index'));
  for (const c of marking.slice(0, -1)) c.steps = c.steps.filter((st) => st.kind !== 'mark_change_index');
}

const wasOurs = (ctx: DiffContext, type: string, name: string) => ctx.registered.has(`${type}\u0000${name}`);

/** Nothing wanted here: all that is ours goes; the schema (and with it the registry) as a whole. */
function removeAll(ctx: DiffContext, because: string | undefined): void {
  const { schema, add } = ctx;
  const why = because ?? 'not in the topology any more';
  const inst = ctx.cat.installed;
  for (const t of inst.triggers) {
    // only the DROP TRIGGER: its registry row goes with the schema
    const d = destroyTrigger(schema, t, why);
    add({ ...d, steps: d.steps.slice(0, 1) });
  }
  if (!inst.schemaExists) return;
  for (const name of inst.functions.keys()) {
    add({
      action: 'destroy',
      objectType: 'function',
      object: `function ${schema}.${name}()`,
      reason: why,
      steps: [],
      phase: PHASE.dropFunction,
    });
  }
  for (const name of inst.tables.keys()) {
    if (!name.startsWith('delta_')) continue;
    add({
      action: 'destroy',
      objectType: 'delta_table',
      object: `table ${schema}.${name}`,
      reason: `${why}; pending changes in it are dropped`,
      steps: [],
      phase: PHASE.dropDelta,
    });
  }
  for (const s of inst.syncs) add({ action: 'destroy', objectType: 'sync', object: `sync ${s.name}`, reason: why, steps: [], phase: PHASE.dropSync });
  add({
    action: 'destroy',
    objectType: 'schema',
    object: `schema ${schema}`,
    reason: `${because ?? `no sync of topology ${ctx.topology} uses this database`}; its metadata and run history go too`,
    steps: [{ kind: 'drop_schema', schema }],
    phase: PHASE.dropSchema,
  });
}

/** The schema and bucardo's metadata tables in it. */
function diffMetadata(ctx: DiffContext): void {
  const { topology, schema, add } = ctx;
  const inst = ctx.cat.installed;
  if (!inst.schemaExists) {
    add({
      action: 'create',
      objectType: 'schema',
      object: `schema ${schema}`,
      reason: `metadata of topology ${topology} (installed objects, syncs, watermarks, run history)`,
      steps: [
        { kind: 'create_schema', schema, topology },
        ...METADATA_OBJECTS.map((o): Step => ({ kind: 'create_metadata_table', schema, table: o.name })),
        { kind: 'init_meta', schema, topology, version: METADATA_VERSION },
        { kind: 'register_object', schema, objectType: 'schema', objectName: schema, table: null, fingerprint: metadataFingerprint(topology), detail: {} },
      ],
      phase: PHASE.schema,
    });
    return;
  }
  if (ctx.older) {
    add({ ...metadataUpgrade(topology, schema, inst, ctx.older), phase: PHASE.metadata });
    return;
  }
  // anything of the current layout missing was dropped by hand
  for (const { name, kind } of METADATA_OBJECTS) {
    if (inst.tables.has(name)) continue;
    add({
      action: 'create',
      objectType: 'metadata_table',
      object: `${kind} ${schema}.${name}`,
      reason: `metadata ${kind} missing (dropped outside bucardo?)`,
      steps: [{ kind: 'create_metadata_table', schema, table: name }],
      phase: PHASE.metadata,
    });
  }
}

/** "capture of T for sync(s) ..." */
const forWhom = ({ table, syncs }: DesiredCapture) => `capture of ${table.display} for sync${syncs.length > 1 ? 's' : ''} ${syncs.join(', ')}`;

/** The registry row of one capture object, recording the table and the syncs it serves. */
function register(ctx: DiffContext, { def, table, syncs }: DesiredCapture, type: string, name: string, fp: string): Step {
  return {
    kind: 'register_object',
    schema: ctx.schema,
    objectType: type,
    objectName: name,
    table: { schema: table.schema, name: table.name },
    fingerprint: fp,
    detail: { table_id: def.id, syncs },
  };
}

/** Whether the plan makes the delta table (anew): its triggers are then made with it. */
function diffDeltaTable(ctx: DiffContext, capture: DesiredCapture): boolean {
  const { def, table } = capture;
  const { schema, add } = ctx;
  const dName = `${schema}.${def.deltaTable.name}`;
  const delta = { schema, name: def.deltaTable.name };
  const liveCols = ctx.cat.installed.tables.get(def.deltaTable.name);
  const steps: Step[] = [
    { kind: 'create_delta_table', topology: ctx.topology, table: delta, captured: def.table, key: def.deltaTable.key },
    register(ctx, capture, 'delta_table', dName, def.deltaTable.fingerprint),
  ];
  if (!liveCols) {
    add({
      action: 'create',
      objectType: 'delta_table',
      object: `table ${dName}`,
      reason: `delta storage of ${table.display}${wasOurs(ctx, 'delta_table', dName) ? ' (missing: dropped outside bucardo?)' : ''}`,
      steps,
      phase: PHASE.delta,
    });
    return true;
  }
  const live = liveCols.map((c) => `${c.name} ${c.type}`).join(', ');
  const want = def.deltaTable.columns.map((c) => `${c.name} ${c.type}`).join(', ');
  if (live === want) return false;
  add({
    action: 'replace',
    objectType: 'delta_table',
    object: `table ${dName}`,
    reason: `columns are (${live}) but the key of ${table.display} needs (${want}); changes still pending in it are dropped`,
    steps: [{ kind: 'drop_table', table: delta, ifExists: false }, ...steps],
    phase: PHASE.delta,
  });
  return true;
}

function diffFunction(ctx: DiffContext, capture: DesiredCapture): void {
  const { def } = capture;
  const { schema, add } = ctx;
  const fName = `${schema}.${def.function.name}()`;
  const fn = { schema, name: def.function.name };
  const liveFn = ctx.cat.installed.functions.get(def.function.name);
  const steps: Step[] = [
    { kind: 'install_function', function: fn, body: def.function.body },
    register(ctx, capture, 'function', fName, def.function.fingerprint),
  ];
  if (!liveFn) {
    add({
      action: 'create',
      objectType: 'function',
      object: `function ${fName}`,
      reason: `${forWhom(capture)}${wasOurs(ctx, 'function', fName) ? ' (missing: dropped outside bucardo?)' : ''}`,
      steps,
      phase: PHASE.function,
    });
  } else if (liveFn.language !== 'plpgsql' || liveFn.returnType !== 'trigger' || liveFn.argCount !== 0) {
    add({
      action: 'replace',
      objectType: 'function',
      object: `function ${fName}`,
      reason: `is a ${liveFn.language} function returning ${liveFn.returnType}, not bucardo's capture function`,
      steps: [{ kind: 'drop_function', function: fn, ifExists: false }, ...steps],
      phase: PHASE.function,
    });
  } else if (liveFn.body !== def.function.body) {
    const reg = ctx.registered.get(`function\u0000${fName}`);
    const ours = reg && reg.fingerprint !== def.function.fingerprint && isLastInstalled(reg.fingerprint, liveFn.body);
    // CREATE OR REPLACE FUNCTION either way: the triggers keep calling it, and the new body
    // takes over for every statement after the commit
    const why = !ours
      ? 'body differs from what bucardo installed (edited outside bucardo?)'
      : ctx.older
        ? `installed by an earlier bucardo (metadata version ${ctx.older}): replaced in place, its triggers keep calling it`
        : `capture options changed (${forWhom(capture)})`;
    add({
      action: 'update',
      objectType: 'function',
      object: `function ${fName}`,
      reason: why,
      diff: createTwoFilesPatch(`${fName} (live)`, `${fName} (wanted)`, liveFn.body, def.function.body, undefined, undefined, { context: 3 }),
      steps,
      phase: PHASE.function,
    });
  }
}

/**
 * The triggers of one captured table: on the table, on each of its partitions, and the
 * `log` trigger on its delta table (made with the delta table when `deltaMade`: a delta
 * table dropped and made again loses its triggers).
 */
function diffTriggers(ctx: DiffContext, capture: DesiredCapture, deltaMade: boolean): void {
  const { def, table } = capture;
  const { schema, add } = ctx;
  for (const trg of def.triggers) {
    const on = trg.table;
    const ondisp = displayName(on.schema, on.name);
    const log = trg.event === 'log';
    const partition = !log && (on.schema !== table.schema || on.name !== table.name);
    const live =
      log && deltaMade ? undefined : ctx.cat.installed.triggers.find((t) => t.tableSchema === on.schema && t.tableName === on.name && t.name === trg.name);
    const obj = `trigger ${displayIdent(trg.name)} on ${ondisp}`;
    const regName = `${trg.name} on ${ondisp}`;
    // a change that makes, replaces or enables a log trigger also dates the change index (markChangeIndex)
    const mark: Step[] = log ? [{ kind: 'mark_change_index', schema }] : [];
    const steps: Step[] = [createTrigger(trg), register(ctx, capture, 'trigger', regName, trg.fingerprint), ...mark];
    if (!live) {
      const what = `${forWhom(capture)}${partition ? `, partition ${ondisp}` : ''}, ${EVENT_LABEL[trg.event]}`;
      add({
        action: 'create',
        objectType: 'trigger',
        object: obj,
        reason: `${what}${wasOurs(ctx, 'trigger', regName) ? ' (missing: dropped outside bucardo?)' : ''}`,
        steps,
        phase: PHASE.trigger,
      });
      continue;
    }
    const mismatch = triggerMismatch(live, trg, def, schema);
    if (mismatch?.earlier) {
      // one statement: the table is never without its capture trigger (an upgrade under load)
      add({
        action: 'update',
        objectType: 'trigger',
        object: obj,
        reason: `installed by an earlier bucardo: ${mismatch.why}; replaced in place`,
        steps: [createTrigger(trg, 'replace_trigger'), register(ctx, capture, 'trigger', regName, trg.fingerprint), ...mark],
        phase: PHASE.trigger,
      });
    } else if (mismatch) {
      add({
        action: 'replace',
        objectType: 'trigger',
        object: obj,
        reason: `definition differs: ${mismatch.why}`,
        steps: [{ kind: 'drop_trigger', table: on, name: trg.name, ifExists: false }, ...steps],
        phase: PHASE.trigger,
      });
    } else if (live.enabled !== trg.enabled) {
      const state = { D: 'disabled', O: 'enabled', R: 'enabled for replica only', A: 'enabled always' }[live.enabled] ?? live.enabled;
      const want = trg.enabled === 'A' ? 'enabled always (makedelta)' : 'enabled';
      add({
        action: 'update',
        objectType: 'trigger',
        object: obj,
        reason: live.enabled === 'D' ? 'disabled outside bucardo: changes to the table are not being captured' : `is ${state}, wanted ${want}`,
        steps: [
          { kind: 'enable_trigger', table: on, name: trg.name, always: trg.enabled === 'A' },
          register(ctx, capture, 'trigger', regName, trg.fingerprint),
          ...mark,
        ],
        phase: PHASE.trigger,
      });
    }
  }
}

/** The step creating (or replacing) a capture trigger: what its DDL is made from, not what is only compared. */
function createTrigger(t: TriggerDef, kind: 'create_trigger' | 'replace_trigger' = 'create_trigger'): Step {
  return {
    kind,
    name: t.name,
    event: t.event,
    table: t.table,
    function: t.function,
    keyColumns: t.keyColumns,
    oldTable: t.oldTable,
    newTable: t.newTable,
    enabled: t.enabled,
  };
}

/** Capture objects of tables no longer captured here. */
function removeUnwantedCapture(ctx: DiffContext, desired: DesiredDatabase): void {
  const { schema, add } = ctx;
  const inst = ctx.cat.installed;
  const captures = [...desired.captures.values()];
  const wantedTriggers = new Set(captures.flatMap(({ def }) => def.triggers.map((t) => `${t.table.schema}\u0000${t.table.name}\u0000${t.name}`)));
  const wantedFunctions = new Set(captures.map(({ def }) => def.function.name));
  const wantedDeltas = new Set(captures.map(({ def }) => def.deltaTable.name));
  for (const t of inst.triggers) {
    if (wantedTriggers.has(`${t.tableSchema}\u0000${t.tableName}\u0000${t.name}`)) continue;
    if (t.tableSchema === schema && t.name === captureTriggerName(ctx.topology, t.tableName.slice('delta_'.length), 'log')) {
      // a log trigger: the table is no longer in a sync of CHANGE_INDEX_MIN_TABLES tables (or
      // captured at all); a run must not trust the index for it from a watermark before this
      const d = destroyTrigger(schema, t, `no sync of ${CHANGE_INDEX_MIN_TABLES} tables or more captures its table here: the change index no longer notes it`);
      add({ ...d, steps: [...d.steps, { kind: 'mark_change_index', schema }] });
      continue;
    }
    add(destroyTrigger(schema, t, 'its table is no longer captured by any sync of this database'));
  }
  for (const name of inst.functions.keys()) {
    if (wantedFunctions.has(name)) continue;
    const fName = `${schema}.${name}()`;
    add({
      action: 'destroy',
      objectType: 'function',
      object: `function ${fName}`,
      reason: 'its table is no longer captured here',
      steps: [
        { kind: 'drop_function', function: { schema, name }, ifExists: true },
        { kind: 'unregister_object', schema, objectType: 'function', objectName: fName },
      ],
      phase: PHASE.dropFunction,
    });
  }
  for (const name of inst.tables.keys()) {
    if (!name.startsWith('delta_') || wantedDeltas.has(name)) continue;
    const dName = `${schema}.${name}`;
    add({
      action: 'destroy',
      objectType: 'delta_table',
      object: `table ${dName}`,
      reason: 'its table is no longer captured here; changes still pending in it are dropped',
      steps: [
        { kind: 'drop_table', table: { schema, name }, ifExists: true },
        // and its notes in the change index (an install older than metadata 4 has none)
        ...(inst.tables.has(CHANGE_INDEX) ? [{ kind: 'forget_changes' as const, schema, tableId: name.slice('delta_'.length) }] : []),
        { kind: 'unregister_object', schema, objectType: 'delta_table', objectName: dName },
      ],
      phase: PHASE.dropDelta,
    });
  }
}

/** Syncs and their tables as registered in this database. */
function diffSyncs(ctx: DiffContext, desired: DesiredDatabase): void {
  const { schema, add } = ctx;
  const inst = ctx.cat.installed;
  const liveSyncs = new Map(inst.syncs.map((s) => [s.name, s]));
  for (const [name, s] of desired.syncs) {
    const live = liveSyncs.get(name);
    const step: Step = { kind: 'register_sync', schema, sync: name, syncKind: s.spec.kind, role: s.role, fingerprint: s.fingerprint, detail: s.detail };
    if (!live) {
      add({
        action: 'create',
        objectType: 'sync',
        object: `sync ${name}`,
        reason: `${s.spec.kind} sync, this database is a ${s.role}`,
        steps: [step],
        phase: PHASE.sync,
      });
    } else if (live.fingerprint !== s.fingerprint || live.role !== s.role || live.kind !== s.spec.kind) {
      const custom = live.detail ? describeCustomChanges(live.detail, s.detail) : [];
      const reason =
        live.role !== s.role ? `role changes from ${live.role} to ${s.role}` : `definition changed${custom.length ? `: ${custom.join('; ')}` : ''}`;
      add({ action: 'update', objectType: 'sync', object: `sync ${name}`, reason, steps: [step], phase: PHASE.sync });
    }
  }
  for (const s of inst.syncs) {
    if (desired.syncs.has(s.name)) continue;
    add({
      action: 'destroy',
      objectType: 'sync',
      object: `sync ${s.name}`,
      reason: 'not in the topology any more; its watermark goes too',
      steps: [{ kind: 'unregister_sync', schema, sync: s.name }],
      phase: PHASE.dropSync,
    });
  }
  const liveRel = new Map(inst.syncRelations.map((r) => [syncTableKey(r.sync, r.tableId), r]));
  // a receiver whose name, columns, filter or transform of a table changed (planner/custom.ts)
  const recopies = new Map<string, ReceivingChange>();
  for (const [name, s] of desired.syncs) {
    const live = liveSyncs.get(name);
    if (!live?.detail || s.spec.kind !== 'delta' || live.fingerprint === s.fingerprint) continue;
    for (const c of receivingChanges(live.detail, s.detail, desired.database)) {
      recopies.set(syncTableKey(name, tableId(c.table.schema, c.table.name)), c);
    }
  }
  for (const [k, st] of desired.syncTables) {
    const live = liveRel.get(k);
    const keyCols = st.table.key.map((c) => c.name);
    const obj = `sync ${st.sync}: table ${st.table.display}`;
    if (!live) {
      const copy = st.copyOnCreate;
      const reason = copy
        ? `new in the sync; onetimecopy ${copy}: the next run copies it from ${st.copyFrom} (${approxRows(st.table.estimatedRows)})`
        : 'new in the sync';
      add({
        action: 'create',
        objectType: 'sync_table',
        object: obj,
        reason,
        steps: [
          {
            kind: 'register_table',
            schema,
            sync: st.sync,
            tableId: st.table.id,
            table: { schema: st.table.schema, name: st.table.name },
            keyColumns: keyCols,
            copyPending: Boolean(copy),
          },
        ],
        phase: PHASE.syncTable,
      });
    } else if (recopies.has(k)) {
      const c = recopies.get(k)!;
      add({
        action: 'update',
        objectType: 'sync_table',
        object: obj,
        reason: c.recopy
          ? `${c.what}: the next run empties ${st.table.display} here and copies the rows again from ${st.copyFrom}`
          : `${c.what}: changes from now on follow it; rows already here (a source) are left as they are`,
        steps: [
          ...(live.keyColumns.join('\u0000') !== keyCols.join('\u0000')
            ? [{ kind: 'set_table_key', schema, sync: st.sync, tableId: st.table.id, keyColumns: keyCols } as const]
            : []),
          ...(c.recopy ? [{ kind: 'request_recopy', schema, sync: st.sync, tableId: st.table.id, reason: c.what } as const] : []),
        ],
        phase: PHASE.syncTable,
      });
    } else if (live.keyColumns.join('\u0000') !== keyCols.join('\u0000')) {
      add({
        action: 'update',
        objectType: 'sync_table',
        object: obj,
        reason: `replication key changes from (${live.keyColumns.join(', ')}) to (${keyCols.join(', ')})`,
        steps: [{ kind: 'set_table_key', schema, sync: st.sync, tableId: st.table.id, keyColumns: keyCols }],
        phase: PHASE.syncTable,
      });
    }
  }
  for (const r of inst.syncRelations) {
    if (desired.syncTables.has(syncTableKey(r.sync, r.tableId)) || !desired.syncs.has(r.sync)) continue;
    add({
      action: 'destroy',
      objectType: 'sync_table',
      object: `sync ${r.sync}: table ${displayName(r.tableSchema, r.tableName)}`,
      reason: 'removed from the sync',
      steps: [{ kind: 'unregister_table', schema, sync: r.sync, tableId: r.tableId }],
      phase: PHASE.dropSyncTable,
    });
  }
}

function destroyTrigger(schema: string, t: TriggerInfo, reason: string): Omit<Change, 'database'> {
  const tdisp = displayName(t.tableSchema, t.tableName);
  return {
    action: 'destroy',
    objectType: 'trigger',
    object: `trigger ${displayIdent(t.name)} on ${tdisp}`,
    reason,
    steps: [
      { kind: 'drop_trigger', table: { schema: t.tableSchema, name: t.tableName }, name: t.name, ifExists: true },
      { kind: 'unregister_object', schema, objectType: 'trigger', objectName: `${t.name} on ${tdisp}` },
    ],
    phase: PHASE.dropTrigger,
  };
}

/**
 * Why a live trigger is not the one wanted, or null when its definition matches; earlier:
 * it is a capture trigger of an earlier bucardo's design (an upgrade replaces it in place).
 */
function triggerMismatch(live: TriggerInfo, want: TriggerDef, def: CaptureDef, schema: string): { why: string; earlier?: boolean } | null {
  const differs = (why: string) => ({ why });
  if (live.functionSchema !== schema || live.functionName !== def.function.name)
    return differs(`calls ${displayName(live.functionSchema, live.functionName)}() instead of ${displayName(schema, def.function.name)}()`);
  if (live.type !== want.tgtype) return differs(`fires ${describeType(live.type)} instead of ${describeType(want.tgtype)}`);
  if (live.oldTable !== want.oldTable || live.newTable !== want.newTable) {
    if (want.event === 'update' && live.newTable === want.newTable)
      return want.oldTable ? differs('it does not keep the old rows (the table is partitioned now)') : { why: 'it keeps the old rows too', earlier: true };
    return differs('its transition tables were changed');
  }
  const key = want.event === 'keychange';
  if (live.hasWhen !== key) return differs(key ? 'its WHEN condition was removed' : 'a WHEN condition was added');
  if (key) {
    // after a change of the replication key the trigger must compare the new key's columns,
    // or an UPDATE of a new key column would not record the old key (the row would be duplicated)
    const compared = whenColumns(live.definition);
    if ([...compared].sort().join('\u0000') !== [...want.keyColumns].sort().join('\u0000')) {
      return differs(`its WHEN condition names (${compared.join(', ')}), not the key (${want.keyColumns.join(', ')})`);
    }
  }
  if ([...live.columns].sort().join('\u0000') !== [...want.columns].sort().join('\u0000')) {
    return key
      ? { why: `it fires only on UPDATE OF ${live.columns.join(', ')}, so it misses a key changed by a BEFORE trigger`, earlier: true }
      : differs('a column list was added');
  }
  return null;
}

/** The columns a key-change trigger's WHEN compares, from pg_get_triggerdef: `OLD.c IS DISTINCT FROM NEW.c`, c maybe quoted. */
export function whenColumns(definition: string): string[] {
  const out: string[] = [];
  for (const m of definition.matchAll(/\bold\.("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s+IS\s+DISTINCT\s+FROM\b/gi)) {
    const c = m[1].startsWith('"') ? m[1].slice(1, -1).replace(/""/g, '"') : m[1].toLowerCase();
    if (!out.includes(c)) out.push(c);
  }
  return out;
}

function describeType(t: number): string {
  const when = t & 2 ? 'BEFORE' : t & 64 ? 'INSTEAD OF' : 'AFTER';
  const ev = [t & 4 && 'INSERT', t & 8 && 'DELETE', t & 16 && 'UPDATE', t & 32 && 'TRUNCATE'].filter(Boolean).join(' OR ');
  return `${when} ${ev} FOR EACH ${t & 1 ? 'ROW' : 'STATEMENT'}`;
}

/**
 * The registry keeps the fingerprint of the body bucardo installed last: a live body with
 * that fingerprint is still the one bucardo installed (nobody edited it since).
 */
function isLastInstalled(registeredFp: string, liveBody: string): boolean {
  return registeredFp === fingerprintOf(liveBody);
}
