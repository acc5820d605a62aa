/**
 * Targets of other engines in a run (SPEC section 7; docs/targets.md, docs/protocol.md
 * "Targets of other engines"). They take part in the protocol's steps through the
 * receiver interface (engine/targets/receiver.ts), beside the PostgreSQL databases:
 *
 *   1. open     after the fence: each receiver's write transaction, its watermark and its
 *               tables checked; the watermark joins the resume rule (lowest run_seq)
 *   7. load     while the sources' read transactions still hold the run's snapshots:
 *               TRUNCATEs, onetimecopies, then the winners' rows, read by the same COPY
 *               text that stages them for PostgreSQL receivers
 *  10. commit   each receiver writes its watermark and commits BEFORE the PostgreSQL
 *               databases do: if one of them then fails, the run is redone from the older
 *               watermark and rewrites the same rows (idempotent writes), so nothing is
 *               lost or doubled; a receiver that fails fails the run before any
 *               PostgreSQL database commits, so no source confirms what it missed.
 *
 * The PostgreSQL path is untouched: its databases never wait for a receiver except at
 * these three points.
 */
import type pg from 'pg';
import type { RunInputs } from './inputs.js';
import type { RunTable, RunScope } from './scope.js';
import type { SourceRead } from './snapshot.js';
import type { SyncContext } from './context.js';
import type { DatabaseState } from './types.js';
import type { ForeignDatabaseSpec } from '../topology/types.js';
import { makeReceiver, type Receiver, type ReceiverState, type ReceiverTable } from '../targets/receiver.js';
import { resumeWatermark } from './scope.js';
import { newestTruncater } from './conflicts.js';
import { seqKey } from './sql/prepare.js';
import { readCopyRows } from './copytext.js';
import { sendWinnerRowsSql, sendWholeTableSql } from './sql/receiving.js';
import { BucardoError } from '../errors.js';

/** Rows handed to a receiver at a time: large enough that per-batch costs vanish, small enough to stay out of memory. */
const BATCH_ROWS = 5_000;
/** As receive.ts BY_KEY_MAX: up to this many pending keys, a source's rows are read one index probe per key. */
const BY_KEY_MAX = 10_000;

/** One receiver in a run: its open transaction, what it said, and the tables a onetimecopy is due for there. */
export interface ReceiverRun {
  spec: ForeignDatabaseSpec;
  receiver: Receiver;
  state: ReceiverState;
  copyDue: Set<string>;
  /** The relgroup's ascending sequences and the furthest value a source handed out (receivers with raiseSequences). */
  sequences: { name: string; value: bigint }[];
}

export interface ReceiverSet {
  list: ReceiverRun[];
  /** Rolls back and releases every receiver; safe to call twice. */
  close(): Promise<void>;
}

/** Step 1 for the receivers: each one's write transaction and watermark (a receiver that is unavailable fails the run). */
export async function openReceivers(ctx: SyncContext): Promise<ReceiverSet> {
  const list: ReceiverRun[] = [];
  const opened: Receiver[] = [];
  const close = async () => {
    await Promise.all(opened.map((r) => r.close().catch(() => {})));
  };
  try {
    for (const spec of ctx.foreign) {
      const receiver = await makeReceiver(spec);
      opened.push(receiver);
      await receiver.begin();
      const state = await receiver.readState(ctx.sync.name);
      if (!state) {
        throw new BucardoError('not_installed', `sync ${ctx.sync.name}: ${spec.type} database ${spec.name} has no bucardo bookkeeping table`, {
          hint: 'run bucardo apply first',
        });
      }
      list.push({ spec, receiver, state, copyDue: new Set(), sequences: [] });
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { list, close };
}

/** A run table as database `db` takes it (SPEC section 7: `schema.table` is `table` there, unless renamed). */
export function receiverTable(ctx: SyncContext, t: RunTable, db: string): ReceiverTable & { where?: string } {
  const recv = ctx.receivingFor(t.schema, t.name, db);
  if (recv.transform) {
    throw new BucardoError(
      'not_supported',
      `table ${t.display} of sync ${ctx.sync.name}: a transform for database ${db} is not supported on a non-PostgreSQL target yet`,
      {
        hint: 'remove transform from that target override',
      },
    );
  }
  const columns = recv.columns ?? t.columns;
  const types = t.types[ctx.sources[0].name];
  return {
    name: recv.name?.name ?? t.name,
    schema: recv.name?.schema ?? t.schema,
    display: t.display,
    keyColumns: t.keyColumns,
    columns,
    types: columns.map((c) => types[t.columns.indexOf(c)] ?? 'text'),
    ...(recv.where ? { where: recv.where } : {}),
  };
}

/**
 * After the scope is made: the receivers' tables checked (a missing one fails the run with
 * plan's message), their watermarks counted by the resume rule, the onetimecopies due.
 */
export async function scopeReceivers(ctx: SyncContext, states: Map<string, DatabaseState>, scope: RunScope, set: ReceiverSet): Promise<void> {
  for (const rr of set.list) {
    const problems = await rr.receiver.checkTables(scope.tables.map((t) => receiverTable(ctx, t, rr.spec.name)));
    if (problems.length) throw tableProblemError(rr.spec, problems[0]);
    if (rr.receiver.raiseSequences) rr.sequences = furthestSequenceValues(ctx, states);
    if (ctx.sync.kind === 'delta' && ctx.sync.onetimecopy !== 'never') {
      for (const t of scope.tables) if (!rr.state.tables.includes(t.tableId)) rr.copyDue.add(t.tableId);
    }
  }
  const all = [...ctx.databases.map((d) => states.get(d.name)!), ...set.list.map((r) => r.state)];
  const resume = resumeWatermark(all);
  scope.last = resume.snapshots;
  scope.lastSeq = resume.runSeq;
  scope.nextSeq = Math.max(scope.nextSeq, ...set.list.map((r) => r.state.runSeq + 1));
}

/** Per ascending sequence of the relgroup, the furthest value any source handed out (as scope.ts setvalsOf; descending ones are left alone). */
function furthestSequenceValues(ctx: SyncContext, states: Map<string, DatabaseState>): { name: string; value: bigint }[] {
  const out: { name: string; value: bigint }[] = [];
  for (const seq of ctx.sequences) {
    const k = seqKey(seq);
    if (BigInt(states.get(ctx.sources[0].name)!.sequenceShapes?.[k]?.inc ?? '1') <= 0n) continue;
    let far: bigint | null = null;
    for (const s of ctx.sources) {
      const v = states.get(s.name)!.sequences[k];
      if (v != null && (far === null || BigInt(v) > far)) far = BigInt(v);
    }
    if (far !== null) out.push({ name: seq.name, value: far });
  }
  return out;
}

/** The error of a table a receiver lacks (or lacks parts of), with the CREATE TABLE as the hint. */
export function tableProblemError(spec: ForeignDatabaseSpec, p: { table: ReceiverTable; problem: string; createTable: string }): BucardoError {
  return new BucardoError('missing_table', `table ${JSON.stringify(p.table.name)} (${p.table.display}) in ${spec.type} database ${spec.name} ${p.problem}`, {
    hint: `create it there, for example:\n${p.createTable}`,
  });
}

/** Step 7 for the receivers: TRUNCATEs, onetimecopies, then the winners' rows, in the sources' snapshots. */
export async function loadReceivers(inp: RunInputs, reads: SourceRead[]): Promise<string[]> {
  const { ctx, scope } = inp;
  const copied: string[] = [];
  for (const rr of inp.receivers?.list ?? []) {
    for (const t of scope.tables) {
      const rt = receiverTable(ctx, t, rr.spec.name);
      const send = { schema: t.schema, name: t.name, tableId: t.tableId, keyColumns: t.keyColumns, columns: rt.columns, binary: false, where: rt.where };
      // as receive.ts planWork: a TRUNCATE empties, and a copy is not made from rows older than another source's TRUNCATE
      const tr = newestTruncater(reads, t.tableId);
      if (tr) await rr.receiver.empty(rt);
      if (rr.copyDue.has(t.tableId) && (!tr || tr === reads[0])) {
        const skip = ctx.sync.onetimecopy === 'if_empty' && !tr && (await rr.receiver.hasRows(rt));
        if (!skip) {
          await rr.receiver.empty(rt);
          await readCopyRows(reads[0].client, sendWholeTableSql(send), BATCH_ROWS, (rows) => rr.receiver.insertRows(rt, rows));
          if (!copied.includes(t.display)) copied.push(t.display);
        }
      }
      for (const r of reads) {
        const n = r.pending.get(t.tableId)?.n ?? 0;
        if (!n) continue;
        const byKey = n <= BY_KEY_MAX && t.keyIndexedOn.includes(r.db);
        await readCopyRows(r.client, sendWinnerRowsSql(send, r.index, byKey), BATCH_ROWS, (rows) => rr.receiver.applyChanges(rt, rows));
      }
    }
  }
  return copied;
}

/** A fullcopy's share: every table emptied and loaded from the source's snapshot; the rows loaded per table (the most of any receiver). */
export async function copyIntoReceivers(inp: RunInputs, read: pg.Client): Promise<Record<string, number>> {
  const rows: Record<string, number> = {};
  for (const rr of inp.receivers?.list ?? []) {
    for (const t of inp.scope.tables) {
      const rt = receiverTable(inp.ctx, t, rr.spec.name);
      const send = { schema: t.schema, name: t.name, tableId: t.tableId, keyColumns: t.keyColumns, columns: rt.columns, binary: false, where: rt.where };
      await rr.receiver.empty(rt);
      const n = await readCopyRows(read, sendWholeTableSql(send), BATCH_ROWS, (batch) => rr.receiver.insertRows(rt, batch));
      rows[t.display] = Math.max(rows[t.display] ?? 0, n);
    }
  }
  return rows;
}

/** Step 10 for the receivers, before the PostgreSQL databases commit: the watermark, then commit. */
export async function commitReceivers(inp: RunInputs, snapshots: Record<string, string>, rows: number): Promise<void> {
  for (const rr of inp.receivers?.list ?? []) {
    if (rr.sequences.length) await rr.receiver.raiseSequences?.(rr.sequences);
    await rr.receiver.writeState(inp.ctx.sync.name, {
      runSeq: inp.scope.nextSeq,
      snapshots,
      tables: inp.scope.tables.map((t) => t.tableId),
      runId: inp.runId,
      finished: new Date().toISOString(),
      rows,
    });
    await rr.receiver.commit();
  }
}

/** One target of another engine as `bucardo status` shows it. */
export interface TargetStatus {
  sync: string;
  database: string;
  type: string;
  /** The sync's run_seq there (0: never committed there). */
  run_seq: number;
  /** When the last run committed there, and the rows it wrote. */
  last_written: string | null;
  rows: number | null;
}

/** Each receiver's bookkeeping for `ctx`'s sync (status); one that cannot be read goes to `unreadable`. */
export async function readReceiverStatus(
  ctx: SyncContext,
  unreadable: { sync: string; database: string; error: string }[],
): Promise<{ status: TargetStatus; state: ReceiverState }[]> {
  const out: { status: TargetStatus; state: ReceiverState }[] = [];
  for (const spec of ctx.foreign) {
    try {
      const r = await makeReceiver(spec);
      try {
        const state = await r.readState(ctx.sync.name);
        if (!state) throw new BucardoError('not_installed', 'no bucardo bookkeeping table (run bucardo apply)');
        out.push({
          status: { sync: ctx.sync.name, database: spec.name, type: spec.type, run_seq: state.runSeq, last_written: state.finished, rows: state.rows },
          state,
        });
      } finally {
        await r.close();
      }
    } catch (e) {
      unreadable.push({ sync: ctx.sync.name, database: spec.name, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return out;
}
