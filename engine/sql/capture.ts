/**
 * The capture objects bucardo installs for each captured table of a source database: a
 * delta table, a capture function, four statement-level triggers and one row-level
 * trigger for key-changing updates (partitioned tables: see CaptureOptions). captureDef
 * describes them as data; the DDL functions at the end make their text, for
 * engine/sql/steps.ts and for the fingerprints. bucardo's metadata tables are
 * engine/sql/metadata.ts's. Pure text generation: no pg here.
 *
 * Capture design (measured goal: the smallest cost to the source's writes):
 * - AFTER ... FOR EACH STATEMENT triggers with transition tables write one set-based
 *   INSERT ... SELECT per statement into the delta table, where a row trigger would run
 *   one INSERT per row. The UPDATE trigger keeps only the new rows (NEW TABLE): an
 *   OLD TABLE would store every old row too and need a UNION to fold the two key sets,
 *   and the old key matters only when the UPDATE changes it. That case has its own
 *   trigger, row-level `AFTER UPDATE ... WHEN (OLD.k IS DISTINCT FROM NEW.k)` (not `UPDATE
 *   OF <key columns>`: a BEFORE trigger of the application may change a key column that
 *   the UPDATE's SET list left out). Measured on a 100k-row UPDATE of pgbench_accounts: 354 ms
 *   with no capture, 493 ms with OLD and NEW tables, 425 ms this way (docs/benchmarks.md).
 * - A delta row is (key columns, _bucardo_txid xid8, _bucardo_ts timestamptz,
 *   _bucardo_origin text). The runner consumes deltas by snapshot visibility (see
 *   docs/protocol.md): a transaction's deltas become visible exactly when it commits, so
 *   no change can slip behind a watermark, whatever the commit order.
 * - `_bucardo_origin` is the `bucardo.origin` setting of the writing session: the runner
 *   sets it to the sync's name, so a sync never re-reads what it wrote itself even where
 *   makedelta captures it again for other syncs (cascades).
 * - With autokick, a trigger notifies the runner only when the runner has an idle sync
 *   (it then holds the kick gate, an advisory lock): a NOTIFY serialises commits.
 * - Triggers are ENABLE (fire only when session_replication_role is origin/local) so the
 *   runner's writes, made as `replica`, are not captured; ENABLE ALWAYS with makedelta.
 * - The delta table has no index: it holds only what some sync has not yet consumed
 *   (the runner purges consumed rows), the runner reads it whole, and every index would
 *   be one more write on the source's hot path. (xid8 has no BRIN operator class.)
 * - In a sync of CHANGE_INDEX_MIN_TABLES tables or more, the delta table has a trigger of
 *   its own (`log`, ENABLE ALWAYS, calling the same function): the first INSERT of a
 *   transaction into it adds (table id, transaction id) to `change_index`, whichever writer
 *   it comes from (these triggers, or the runner's requeue). A run reads that index to
 *   know which of those tables have pending changes instead of looking into every delta
 *   table: a one-row change in a 1,000-table sync costs the same as in a 2-table one
 *   (docs/protocol.md, step 3). Its cost to a writer, one more statement-level trigger per
 *   captured statement and one small INSERT per table per transaction (~28 us on a
 *   TPC-B-like transaction's four tables, docs/benchmarks.md), is paid only there: in a
 *   smaller sync a run probes every delta table at less than that.
 */
import { quoteIdent, qualify, quoteLiteral, fingerprint, shortHash } from './ident.js';
import type { QualifiedName } from '../topology/types.js';
import {
  LOCK_NAMESPACE,
  schemaName,
  kickChannel,
  tableId,
  deltaTableName,
  captureFunctionName,
  captureTriggerName,
  type CaptureEvent,
} from '../objectnames.js';

/**
 * The kick gate of a topology in each source database (engine/runner/gate.ts): an advisory
 * lock that a runner holds while one of its syncs is idle. A capture trigger with autokick
 * notifies only when it cannot take it in shared mode for its transaction.
 */
export function kickGateKey(topology: string): [number, number] {
  return [LOCK_NAMESPACE, parseInt(shortHash(['gate', topology], 8), 16) & 0x7fffffff];
}

/**
 * The two-phase-commit doorbell of a topology (engine/runner/doorbell.ts). PREPARE
 * TRANSACTION refuses a transaction that ran NOTIFY, so on a server where PREPARE is
 * possible at all (max_prepared_transactions > 0) a writer that finds the kick gate taken
 * does not notify: it holds this advisory lock in shared mode until it ends (carried into
 * a prepared transaction, so until COMMIT PREPARED) and bumps the `kick_seq` sequence,
 * which is not transactional. The runner polls both on such servers only.
 */
export function doorbellKey(topology: string): [number, number] {
  return [LOCK_NAMESPACE, parseInt(shortHash(['doorbell', topology], 8), 16) & 0x7fffffff];
}

/** The sequence a writer bumps when it rings the doorbell instead of notifying. */
export const KICK_SEQUENCE = 'kick_seq';

/** Columns that bucardo adds to a delta table; a key column may not use these names. */
export const DELTA_TXID = '_bucardo_txid';
export const DELTA_TS = '_bucardo_ts';
export const DELTA_ORIGIN = '_bucardo_origin';

/** One replication key column, with its type as format_type() prints it. */
export interface KeyColumn {
  name: string;
  type: string;
}

/**
 * A sync of this many tables or more gets the change index: below it, probing every delta
 * table costs a run less than the index would cost the writers (module header).
 */
export const CHANGE_INDEX_MIN_TABLES = 100;

export interface CaptureOptions {
  /** NOTIFY the runner on commit of a change to this table. */
  autokick: boolean;
  /** Capture writes made under session_replication_role = replica too (ENABLE ALWAYS). */
  makedelta: boolean;
  /** The delta table's `log` trigger notes its writers in the change index (a sync of CHANGE_INDEX_MIN_TABLES tables or more). */
  changeIndex?: boolean;
  /**
   * The table is partitioned here. An UPDATE that moves a row to another partition fires
   * no row-level UPDATE trigger (it becomes a DELETE and an INSERT on the partitions),
   * only the statement-level one, whose OLD TABLE does hold the moved row: so here the
   * UPDATE trigger keeps the old rows too, and there is no keychange trigger.
   */
  partitioned?: boolean;
  /**
   * Its partitions here (every level). PostgreSQL fires a table's statement-level
   * triggers only for statements that name that table: a write aimed at a partition fires
   * the partition's, not the partitioned table's. So every partition carries INSERT,
   * UPDATE and DELETE triggers of its own, calling the same function (each statement is
   * captured once, by the table it names). A TRUNCATE of one partition is captured by a
   * BEFORE TRUNCATE trigger on each leaf, as the deletion of every key it holds; a
   * TRUNCATE of the partitioned table fires those too, so its own BEFORE TRUNCATE trigger
   * sets a flag that they honour, and it is logged once, as a TRUNCATE of the table.
   */
  partitions?: (QualifiedName & { leaf: boolean })[];
}

export interface DeltaTableDef {
  name: string;
  /** The replication key: the delta table's first columns. */
  key: KeyColumn[];
  /** Columns in order, name and type (the key columns, then the three bucardo columns). */
  columns: KeyColumn[];
  fingerprint: string;
}

export interface FunctionDef {
  name: string;
  /** Exactly the text PostgreSQL will keep in pg_proc.prosrc. */
  body: string;
  fingerprint: string;
}

/** What CREATE TRIGGER of a capture trigger is made from (triggerDDL). */
export interface TriggerSpec {
  name: string;
  event: CaptureEvent;
  /** The table it is on: the captured table, or one of its partitions. */
  table: QualifiedName;
  /** The capture function it calls. */
  function: QualifiedName;
  /** The replication key: a keychange trigger fires for a row where one of these changed. */
  keyColumns: string[];
  /** Transition table names (REFERENCING OLD TABLE / NEW TABLE), or null. */
  oldTable: string | null;
  newTable: string | null;
  /** pg_trigger.tgenabled wanted: 'O' (origin/local only) or 'A' (always). */
  enabled: 'O' | 'A';
}

export interface TriggerDef extends TriggerSpec {
  /** What pg_trigger must show for it besides the above: tgtype bits, UPDATE OF columns. */
  tgtype: number;
  columns: string[];
  fingerprint: string;
}

export interface CaptureDef {
  id: string;
  table: QualifiedName;
  deltaTable: DeltaTableDef;
  function: FunctionDef;
  triggers: TriggerDef[];
}

/** pg_trigger.tgtype bits of each capture trigger: AFTER (no bit) or BEFORE = 2, the event, ROW = 1. */
const TGTYPE: Record<CaptureEvent, number> = {
  insert: 4,
  delete: 8,
  update: 16,
  truncate: 32,
  keychange: 1 | 16,
  before_truncate: 2 | 32,
  partition_truncate: 2 | 32,
  log: 4,
};

/** The capture objects of one source table, as data; their DDL is made by the functions below. */
export function captureDef(topology: string, table: QualifiedName, key: KeyColumn[], opts: CaptureOptions): CaptureDef {
  const s = schemaName(topology);
  const id = tableId(table.schema, table.name);
  const delta = deltaTableName(id);
  const fn = { schema: s, name: captureFunctionName(id) };
  const columns: KeyColumn[] = [
    ...key,
    { name: DELTA_TXID, type: 'xid8' },
    { name: DELTA_TS, type: 'timestamp with time zone' },
    { name: DELTA_ORIGIN, type: 'text' },
  ];
  const body = captureBody(topology, table, key, opts);
  return {
    id,
    table,
    deltaTable: { name: delta, key, columns, fingerprint: fingerprint(deltaTableDDL(topology, { schema: s, name: delta }, table, key).join(';\n')) },
    function: { name: fn.name, body, fingerprint: fingerprint(body) },
    triggers: captureTriggers(topology, table, fn, key, opts),
  };
}

/** The body of the capture function of one table (PL/pgSQL, as pg_proc.prosrc keeps it). */
function captureBody(topology: string, table: QualifiedName, key: KeyColumn[], opts: CaptureOptions): string {
  const s = schemaName(topology);
  const id = tableId(table.schema, table.name);
  const target = qualify(table.schema, table.name);
  const qDelta = qualify(s, deltaTableName(id));
  const cols = key.map((c) => quoteIdent(c.name)).join(', ');
  const partitions = opts.partitioned ? (opts.partitions ?? []) : [];
  const truncating = quoteLiteral(`bucardo.truncating_${id}`);
  // the delete of every key of one truncated partition (format() fills in the partition)
  const partitionKeys = `INSERT INTO ${qDelta} (${cols}, ${DELTA_TS}) SELECT ${cols}, $1 FROM ONLY %I.%I`.replace(/%(?!I)/g, '%%');
  const lines = [
    '',
    `-- bucardo ${topology}: capture of ${target.replace(/[\r\n]/g, ' ')}`,
    // names in the SQL below are the tables' columns; this function's own variables are
    // written qualified by the block label (a user column may be called anything)
    '#variable_conflict use_column',
    '<<bucardo_capture>>',
    'DECLARE',
    '  n bigint;',
    // the time of this change (not of its transaction's start): `latest` compares these,
    // and a transaction held open for minutes must not make its changes look old
    '  ts timestamptz := clock_timestamp();',
    'BEGIN',
    ...changeIndexBranch(s, id),
    ...(opts.partitioned
      ? []
      : [
          "  IF TG_LEVEL = 'ROW' THEN",
          '    -- an UPDATE changed the key of this row: its old key is a change too',
          `    INSERT INTO ${qDelta} (${cols}, ${DELTA_TS}) VALUES (${key.map((c) => `OLD.${quoteIdent(c.name)}`).join(', ')}, bucardo_capture.ts);`,
          '    RETURN NULL;',
          '  END IF;',
        ]),
    ...(partitions.length
      ? [
          "  IF TG_WHEN = 'BEFORE' THEN",
          `    IF TG_TABLE_SCHEMA = ${quoteLiteral(table.schema)} AND TG_TABLE_NAME = ${quoteLiteral(table.name)} THEN`,
          '      -- a TRUNCATE of the partitioned table: logged once, after; its partitions record nothing',
          `      PERFORM set_config(${truncating}, 'on', true);`,
          '      RETURN NULL;',
          `    ELSIF coalesce(current_setting(${truncating}, true), '') = 'on' THEN`,
          '      RETURN NULL;',
          '    END IF;',
          '    -- a TRUNCATE of this partition alone: each key it holds is deleted',
          `    EXECUTE format(${quoteLiteral(partitionKeys)}, TG_TABLE_SCHEMA, TG_TABLE_NAME) USING bucardo_capture.ts;`,
          "  ELSIF TG_OP = 'INSERT' THEN",
        ]
      : ["  IF TG_OP = 'INSERT' THEN"]),
    `    INSERT INTO ${qDelta} (${cols}, ${DELTA_TS}) SELECT ${cols}, bucardo_capture.ts FROM bucardo_new;`,
    "  ELSIF TG_OP = 'UPDATE' THEN",
    opts.partitioned
      ? `    INSERT INTO ${qDelta} (${cols}, ${DELTA_TS}) SELECT ${cols}, bucardo_capture.ts FROM (SELECT ${cols} FROM bucardo_new UNION SELECT ${cols} FROM bucardo_old) k;`
      : `    INSERT INTO ${qDelta} (${cols}, ${DELTA_TS}) SELECT ${cols}, bucardo_capture.ts FROM bucardo_new;`,
    "  ELSIF TG_OP = 'DELETE' THEN",
    `    INSERT INTO ${qDelta} (${cols}, ${DELTA_TS}) SELECT ${cols}, bucardo_capture.ts FROM bucardo_old;`,
    '  ELSE',
    `    INSERT INTO ${qualify(s, 'truncate_log')} (table_id, ${DELTA_TS}) VALUES (${quoteLiteral(id)}, bucardo_capture.ts);`,
    ...(partitions.length ? [`    PERFORM set_config(${truncating}, '', true);`] : []),
    '  END IF;',
  ];
  if (opts.autokick) {
    lines.push(
      '  GET DIAGNOSTICS n = ROW_COUNT;',
      // A NOTIFY serialises commits cluster-wide; it is needed only while a runner has an
      // idle sync, and then the runner holds the gate exclusively (docs/protocol.md). A
      // writer that takes the shared lock keeps it until it ends, which is what lets the
      // runner know, once it gets the gate, that no such writer is still in flight.
      `  IF n > 0 AND NOT pg_try_advisory_xact_lock_shared(${kickGateKey(topology).join(', ')}) THEN`,
      // PREPARE TRANSACTION refuses a transaction that notified; where PREPARE is possible
      // at all, ring the doorbell instead (doorbellKey: the runner polls it there only)
      "    IF current_setting('max_prepared_transactions') = '0' THEN",
      // identical notifications in one transaction are folded into one by PostgreSQL
      `      PERFORM pg_notify(${quoteLiteral(kickChannel(topology))}, ${quoteLiteral(id)});`,
      '    ELSE',
      `      PERFORM pg_advisory_xact_lock_shared(${doorbellKey(topology).join(', ')});`,
      `      PERFORM nextval(${quoteLiteral(qualify(s, KICK_SEQUENCE))}::regclass);`,
      '    END IF;',
      '  END IF;',
    );
  }
  lines.push('  RETURN NULL;', 'END', '');
  return lines.join('\n');
}

/**
 * The capture function's first lines: called by its delta table's `log` trigger (after any
 * INSERT into the delta table), it notes once per transaction that the transaction wrote
 * changes of this table. Once: a setting local to the transaction holds the transaction
 * id that last noted it (rolled back with the note when a savepoint is; a stale value
 * from another transaction can never match). The setting's name is per topology and table.
 */
function changeIndexBranch(schema: string, id: string): string[] {
  const noted = quoteLiteral(`bucardo.ci_${shortHash([schema, id])}`);
  return [
    `  IF TG_TABLE_SCHEMA = ${quoteLiteral(schema)} AND TG_TABLE_NAME = ${quoteLiteral(deltaTableName(id))} THEN`,
    `    IF current_setting(${noted}, true) IS DISTINCT FROM pg_current_xact_id()::text THEN`,
    `      INSERT INTO ${qualify(schema, CHANGE_INDEX)} (table_id) VALUES (${quoteLiteral(id)});`,
    `      PERFORM set_config(${noted}, pg_current_xact_id()::text, true);`,
    '    END IF;',
    '    RETURN NULL;',
    '  END IF;',
  ];
}

/** The table of (table id, transaction id) that the `log` triggers fill (engine/sql/metadata.ts). */
export const CHANGE_INDEX = 'change_index';

/**
 * The captured table's triggers; a partitioned table also gets a BEFORE TRUNCATE, and
 * each partition INSERT, UPDATE and DELETE (and, on a leaf, BEFORE TRUNCATE) triggers.
 */
function captureTriggers(topology: string, table: QualifiedName, fn: QualifiedName, key: KeyColumn[], opts: CaptureOptions): TriggerDef[] {
  const id = tableId(table.schema, table.name);
  const partitions = opts.partitioned ? (opts.partitions ?? []) : [];
  const onTable: CaptureEvent[] = opts.partitioned
    ? ['insert', 'update', 'delete', 'truncate', ...(partitions.length ? ['before_truncate' as const] : [])]
    : ['insert', 'update', 'delete', 'truncate', 'keychange'];
  const wanted: { event: CaptureEvent; on: QualifiedName }[] = [
    ...onTable.map((event) => ({ event, on: table })),
    ...(opts.changeIndex ? [{ event: 'log' as const, on: { schema: schemaName(topology), name: deltaTableName(id) } }] : []),
    ...partitions.flatMap((p) => [
      ...(['insert', 'update', 'delete'] as const).map((event) => ({ event, on: { schema: p.schema, name: p.name } })),
      ...(p.leaf ? [{ event: 'partition_truncate' as const, on: { schema: p.schema, name: p.name } }] : []),
    ]),
  ];
  return wanted.map(({ event, on }) => {
    const spec: TriggerSpec = {
      name: captureTriggerName(topology, id, event),
      event,
      table: on,
      function: fn,
      keyColumns: key.map((c) => c.name),
      oldTable: event === 'delete' || (event === 'update' && opts.partitioned) ? 'bucardo_old' : null,
      newTable: event === 'insert' || event === 'update' ? 'bucardo_new' : null,
      // the log notes every INSERT into the delta table, the runner's (as `replica`) too
      enabled: opts.makedelta || event === 'log' ? 'A' : 'O',
    };
    return { ...spec, tgtype: TGTYPE[event], columns: [], fingerprint: fingerprint(triggerDDL(spec).join(';\n')) };
  });
}

/** CREATE TABLE of a delta table, and its comment naming the captured table. */
export function deltaTableDDL(topology: string, delta: QualifiedName, captured: QualifiedName, key: KeyColumn[]): string[] {
  const qDelta = qualify(delta.schema, delta.name);
  return [
    `CREATE TABLE ${qDelta} (
${key.map((c) => `  ${quoteIdent(c.name)} ${c.type} NOT NULL,`).join('\n')}
  ${DELTA_TXID} xid8 NOT NULL DEFAULT pg_current_xact_id(),
  ${DELTA_TS} timestamptz NOT NULL DEFAULT now(),
  ${DELTA_ORIGIN} text DEFAULT current_setting('bucardo.origin', true))`,
    `COMMENT ON TABLE ${qDelta} IS ${quoteLiteral(`bucardo ${topology}: changed keys of ${qualify(captured.schema, captured.name)}`)}`,
  ];
}

/** CREATE OR REPLACE FUNCTION of a capture function with this body. */
export function functionDDL(fn: QualifiedName, body: string): string {
  // The header comment must not break the dollar quoting; pick a tag absent from the body.
  let tag = '$bucardo$';
  for (let i = 0; body.includes(tag); i++) tag = `$bucardo${i}$`;
  return `CREATE OR REPLACE FUNCTION ${qualify(fn.schema, fn.name)}() RETURNS trigger LANGUAGE plpgsql AS ${tag}${body}${tag}`;
}

/**
 * CREATE TRIGGER of a capture trigger, then ENABLE ALWAYS with makedelta. orReplace: CREATE
 * OR REPLACE TRIGGER, which also resets the trigger to ENABLE, hence the ENABLE ALWAYS after.
 */
export function triggerDDL(t: TriggerSpec, orReplace = false): string[] {
  const on = qualify(t.table.schema, t.table.name);
  const fn = `${qualify(t.function.schema, t.function.name)}()`;
  const ref =
    t.oldTable || t.newTable ? ` REFERENCING${t.oldTable ? ` OLD TABLE AS ${t.oldTable}` : ''}${t.newTable ? ` NEW TABLE AS ${t.newTable}` : ''}` : '';
  const keyCols = t.keyColumns.map(quoteIdent);
  // keychange: considered for every UPDATE (not UPDATE OF the key: a BEFORE trigger of
  // the application's may change the key of a row whose UPDATE never named it), and
  // queued only for a row whose key did change (WHEN, evaluated as the row is updated)
  const head = `CREATE ${orReplace ? 'OR REPLACE ' : ''}TRIGGER ${quoteIdent(t.name)}`;
  const create =
    t.event === 'keychange'
      ? `${head} AFTER UPDATE ON ${on} FOR EACH ROW WHEN (${keyCols.map((c) => `OLD.${c} IS DISTINCT FROM NEW.${c}`).join(' OR ')}) EXECUTE FUNCTION ${fn}`
      : t.event === 'log'
        ? `${head} AFTER INSERT ON ${on} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}`
        : t.event === 'before_truncate' || t.event === 'partition_truncate'
          ? `${head} BEFORE TRUNCATE ON ${on} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}`
          : `${head} AFTER ${t.event.toUpperCase()} ON ${on}${ref} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}`;
  return t.enabled === 'A' ? [create, enableTriggerDDL(t.table, t.name, true)] : [create];
}

/** ENABLE (fires for origin/local sessions) or ENABLE ALWAYS (for the runner's too: makedelta). */
export function enableTriggerDDL(table: QualifiedName, name: string, always: boolean): string {
  return `ALTER TABLE ${qualify(table.schema, table.name)} ${always ? 'ENABLE ALWAYS' : 'ENABLE'} TRIGGER ${quoteIdent(name)}`;
}
