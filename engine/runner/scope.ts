/**
 * A run's scope: what it works on, derived from what every database told us when it
 * started: the tables with their keys and the columns to copy, the watermark to resume
 * from, the onetimecopies due, and the sequence values to bring up. Pure: no pg here.
 * (Not a plan in the planner's sense, engine/planner: nothing here is a step to apply.)
 */
import type { DatabaseState, RelationInfo, SequenceShape } from './types.js';
import type { SyncContext } from './context.js';
import { BucardoError } from '../errors.js';
import { displayName } from '../sql/ident.js';
import { seqKey } from './sql/prepare.js';
import type { ForeignKey } from './sql/constraints.js';
import type { ModuleRef } from '../topology/types.js';
import { receivingOf, assertReceivable, makeReceivingViews } from './receiving.js';
import { deepFreeze } from './frozen.js';

export interface RunTable {
  tableId: string;
  schema: string;
  name: string;
  display: string;
  keyColumns: string[];
  /** Columns copied (attribute order of the first source). */
  columns: string[];
  /**
   * Per database, the type of each copied column there (format_type), in `columns` order:
   * a temp table for this table's rows is declared with them rather than made from the
   * table (`CREATE TEMP TABLE AS SELECT ... FROM table` would lock the table, and on a
   * source whose read snapshot is still open an application's queued TRUNCATE would then
   * make the run wait for itself).
   */
  types: Record<string, string[]>;
  /** Databases where a onetimecopy of this table is due. */
  copyInto: string[];
  /** Of copyInto, the targets that take the table again whatever onetimecopy says: emptied first (sync_recopy). */
  recopyInto: string[];
  /** Databases whose copy_pending flag is cleared by this run (copyInto, plus flags to drop). */
  copyClear: string[];
  /** Databases where the table has a btree index on exactly the key (rows can be read key by key, and in key order). */
  keyIndexedOn: string[];
  /** ... a unique, immediate one there (it arbitrates INSERT ... ON CONFLICT on a receiver that has writers). */
  keyUniqueOn: string[];
  /** Per database, its foreign keys there (this table the child): checked after the run writes (constraints.ts). */
  fks: Record<string, ForeignKey[]>;
  /**
   * COPY in binary: every copied column has the same built-in type in every database.
   * (A user-defined type's binary form embeds its oid, which differs between databases.)
   */
  binary: boolean;
  /** Row filter, SQL over the source row (SPEC section 6): a row that does not match is sent as deleted. */
  where?: string;
  /** Some columns of the receiver's table are not sent: its rows are updated in place, never replaced. */
  subset?: boolean;
  /** The module every sent row passes through (text COPY; transform.ts). */
  transform?: ModuleRef;
  /**
   * Per database that takes the table its own way (SPEC section 6: another name, some
   * columns, a filter, a transform): the table as that database takes it, with its name
   * there (receiving.ts tableOn). Absent: every database takes it as it is.
   */
  receiving?: Record<string, RunTable>;
}

/** A run's tables, watermark, numbering and sequences, as the fenced databases state them. */
export interface RunScope {
  tables: RunTable[];
  /** The watermark vector of the database with the lowest run_seq. */
  last: Record<string, string>;
  lastSeq: number;
  /**
   * run_seq of this run: one more than the highest of any database of the sync, so that
   * after a run that committed on some databases only, the lowest run_seq is always the
   * oldest watermark (a database that joined has none, 0).
   */
  nextSeq: number;
  /** run_seq each database holds now (0: no row); the run writes its state only over it. */
  expectedSeq: Map<string, number>;
  /** setval per database: [schema, name, value]. */
  setvals: Map<string, [string, string, string][]>;
}

/** Builds the run's scope; throws a clear error when a database is not ready for this sync. */
export function makeRunScope(ctx: SyncContext, states: Map<string, DatabaseState>): RunScope {
  for (const d of ctx.databases) {
    const st = states.get(d.name)!;
    if (!st.registered) {
      throw new BucardoError('not_installed', `sync ${ctx.sync.name} is not registered in database ${d.name}`, { hint: 'run bucardo apply first' });
    }
  }
  const tables = scopeTables(ctx, states);

  let highest = 0;
  const expectedSeq = new Map<string, number>();
  for (const d of ctx.databases) {
    const st = states.get(d.name)!;
    highest = Math.max(highest, st.runSeq);
    expectedSeq.set(d.name, st.runSeq);
  }
  const resume = resumeWatermark(ctx.databases.map((d) => states.get(d.name)!));
  return { tables, last: resume.snapshots, lastSeq: resume.runSeq, nextSeq: highest + 1, expectedSeq, setvals: setvalsOf(ctx, states) };
}

/**
 * The last scope's tables per sync context, and the relations they were made from: a run
 * whose databases all report the very same (unchanged, shared) relations reuses them.
 */
const scopeMemo = new WeakMap<SyncContext, { relations: RelationInfo[][]; tables: RunTable[] }>();

/** The tables of the first source's sync_relation, each checked and described in every database (RunTable). */
function scopeTables(ctx: SyncContext, states: Map<string, DatabaseState>): RunTable[] {
  const relations = ctx.databases.map((d) => states.get(d.name)!.relations);
  const memo = scopeMemo.get(ctx);
  if (memo && Object.isFrozen(relations[0]) && memo.relations.every((r, i) => r === relations[i])) return memo.tables;
  const tables = deepFreeze(makeScopeTables(ctx, states));
  scopeMemo.set(ctx, { relations, tables });
  return tables;
}

function makeScopeTables(ctx: SyncContext, states: Map<string, DatabaseState>): RunTable[] {
  const first = states.get(ctx.sources[0].name)!;
  const tables: RunTable[] = [];
  // by table id, per database: a lookup per table and database, not a scan (1,000 tables)
  const byId = new Map(ctx.databases.map((d) => [d.name, new Map(states.get(d.name)!.relations.map((r) => [r.tableId, r]))]));
  for (const rel of first.relations) {
    if (!rel.columns) throw missingTable(ctx, rel, ctx.sources[0].name);
    const recv = receivingOf(ctx, rel);
    let columns = rel.columns.map((c) => c.name);
    const copyInto: string[] = [];
    const copyClear: string[] = [];
    const recopyInto: string[] = [];
    const keyIndexedOn: string[] = [];
    const keyUniqueOn: string[] = [];
    for (const d of ctx.databases) {
      const mine = byId.get(d.name)!.get(rel.tableId);
      if (!mine?.columns) throw missingTable(ctx, rel, d.name, recv.get(d.name)?.name);
      if (mine.keyIndexed) keyIndexedOn.push(d.name);
      if (mine.keyUnique) keyUniqueOn.push(d.name);
      const names = new Set(mine.columns.map((c) => c.name));
      const sent = recv.get(d.name)?.columns;
      if (sent) {
        // a database taking some columns needs those only (the key among them)
        assertReceivable(
          ctx,
          rel,
          d.name,
          sent,
          rel.columns.map((c) => c.name),
          names,
        );
      } else if (ctx.sync.strict) {
        const missing = columns.filter((c) => !names.has(c));
        if (missing.length) {
          throw new BucardoError(
            'column_mismatch',
            `table ${displayName(rel.schema, rel.name)} in database ${d.name} lacks column ${missing.map((m) => JSON.stringify(m)).join(', ')} that database ${ctx.sources[0].name} has (sync ${ctx.sync.name} is strict)`,
            {
              hint: 'make the tables match, or set strict: false to replicate the common columns',
            },
          );
        }
      } else {
        columns = columns.filter((c) => names.has(c));
      }
      if (mine.recopy) {
        // a target whose name, columns, filter or transform changed: emptied and copied again,
        // whatever onetimecopy says (planner/custom.ts; never a source)
        copyClear.push(d.name);
        if (!ctx.sources.some((x) => x.name === d.name) && ctx.sync.kind === 'delta') {
          copyInto.push(d.name);
          recopyInto.push(d.name);
        }
      } else if (mine.copyPending) {
        copyClear.push(d.name);
        const isFirst = d.name === ctx.sources[0].name;
        if (!isFirst && ctx.sync.onetimecopy !== 'never' && ctx.sync.kind === 'delta') copyInto.push(d.name);
      }
    }
    const typeOf = (st: DatabaseState, c: string) =>
      byId
        .get(st.database)!
        .get(rel.tableId)!
        .columns!.find((x) => x.name === c);
    const binary = columns.every((c) => {
      const mine = typeOf(first, c)!;
      return (
        mine.builtin === true &&
        ctx.databases.every((d) => {
          const sent = recv.get(d.name)?.columns;
          if (sent && !sent.includes(c)) return true;
          const other = typeOf(states.get(d.name)!, c);
          return other?.builtin === true && other.type === mine.type;
        })
      );
    });
    for (const k of rel.keyColumns) {
      if (!columns.includes(k))
        throw new BucardoError(
          'bad_key',
          `key column ${JSON.stringify(k)} of table ${displayName(rel.schema, rel.name)} is not a copied column in every database of sync ${ctx.sync.name}`,
        );
    }
    const fks: Record<string, ForeignKey[]> = {};
    for (const d of ctx.databases) {
      const mine = byId.get(d.name)!.get(rel.tableId);
      fks[d.name] = (mine?.fks ?? []).map((f) => ({
        name: f.name,
        child: recv.get(d.name)?.name ?? { schema: rel.schema, name: rel.name },
        childCols: f.childCols,
        parent: { schema: f.parentSchema, name: f.parentName },
        parentCols: f.parentCols,
      }));
    }
    const types: Record<string, string[]> = {};
    // '' for a column a database does not take (a subset): its receiving view has its own types
    for (const d of ctx.databases)
      types[d.name] = columns.map((c) => {
        const x = typeOf(states.get(d.name)!, c);
        return x ? (x.base ?? x.type) : '';
      });
    const table: RunTable = {
      tableId: rel.tableId,
      schema: rel.schema,
      name: rel.name,
      display: displayName(rel.schema, rel.name),
      keyColumns: rel.keyColumns,
      columns,
      types,
      fks,
      copyInto,
      recopyInto,
      copyClear,
      keyIndexedOn,
      keyUniqueOn,
      binary,
    };
    if (recv.size) table.receiving = makeReceivingViews(table, recv, states);
    tables.push(table);
  }
  return tables;
}

/** setval per database: every sequence of the relgroup brought up to the furthest value a source handed out. */
function setvalsOf(ctx: SyncContext, states: Map<string, DatabaseState>): Map<string, [string, string, string][]> {
  const setvals = new Map<string, [string, string, string][]>();
  const sourceNames = new Set(ctx.sources.map((s) => s.name));
  for (const seq of ctx.sequences) {
    const k = seqKey(seq);
    const shape = (db: string) => states.get(db)!.sequenceShapes?.[k] ?? DEFAULT_SHAPE;
    // the furthest value any source handed out (ascending: the highest)
    const up = BigInt(shape(ctx.sources[0].name).inc) > 0n;
    if (ctx.databases.some((d) => states.get(d.name)!.sequences[k] !== undefined && BigInt(shape(d.name).inc) > 0n !== up)) continue; // mixed directions: leave alone
    let far: bigint | null = null;
    for (const s of ctx.sources) {
      const v = states.get(s.name)!.sequences[k];
      if (v != null && (far === null || (up ? BigInt(v) > far : BigInt(v) < far))) far = BigInt(v);
    }
    if (far === null) continue;
    for (const d of ctx.databases) {
      const cur = states.get(d.name)!.sequences[k];
      if (cur === undefined) continue; // missing here: bucardo plan reports it
      const to = sequenceTarget(far, shape(d.name), cur, sourceNames.has(d.name));
      if (to === null) continue;
      const list = setvals.get(d.name) ?? [];
      list.push([seq.schema, seq.name, to.toString()]);
      setvals.set(d.name, list);
    }
  }
  return setvals;
}

/**
 * The watermark a run resumes from (docs/protocol.md, "Watermarks"): the vector of the
 * database with the lowest run_seq, the oldest one; none ({}: everything pending) when
 * that database has no row yet (0). `bucardo status` counts pending changes from it too.
 */
export function resumeWatermark(states: { runSeq: number; snapshots: Record<string, string> }[]): { runSeq: number; snapshots: Record<string, string> } {
  let lowest: { runSeq: number; snapshots: Record<string, string> } | null = null;
  for (const st of states) if (!lowest || st.runSeq < lowest.runSeq) lowest = st;
  return { runSeq: lowest?.runSeq ?? 0, snapshots: lowest && lowest.runSeq > 0 ? lowest.snapshots : {} };
}

function missingTable(ctx: SyncContext, rel: RelationInfo, db: string, renamed?: { schema: string; name: string }): BucardoError {
  const as = renamed ? ` (named ${displayName(renamed.schema, renamed.name)} there)` : '';
  return new BucardoError('missing_table', `table ${displayName(rel.schema, rel.name)}${as} of sync ${ctx.sync.name} does not exist in database ${db}`, {
    hint: 'create it (every database of a sync has the same tables), then run bucardo plan and apply',
  });
}

const DEFAULT_SHAPE: SequenceShape = { start: '1', min: '1', max: '9223372036854775807', inc: '1' };

/**
 * Where one database's sequence must go so that it never hands out `far` (the furthest
 * value any source handed out) or anything before it again, or null to leave it alone.
 *
 * A target follows the sources: `far` itself, where its bounds allow. A source is moved
 * only to a value it could have handed out itself: the first one at or past `far` that is
 * congruent to its own start modulo its increment and within its MINVALUE/MAXVALUE. So
 * sources stepping by 2 from different starts keep to their own parity, and a source
 * with a range of its own is left alone when `far` is outside it (no such value exists):
 * per-source ranges keep working, and a source never hands out another source's values.
 */
export function sequenceTarget(far: bigint, shape: SequenceShape, current: string | null, isSource: boolean): bigint | null {
  const inc = BigInt(shape.inc);
  const min = BigInt(shape.min);
  const max = BigInt(shape.max);
  const up = inc > 0n;
  const start = BigInt(shape.start);
  // its next value is already past far
  const next = current === null ? start : BigInt(current) + inc;
  if (up ? next > far : next < far) return null;
  let to = far;
  if (isSource) {
    const step = up ? inc : -inc;
    const d = up ? far - start : start - far;
    const k = d <= 0n ? 0n : (d + step - 1n) / step; // ceil: the first of its own values at or past far
    to = up ? start + k * step : start - k * step;
  }
  if (to < min || to > max) return null;
  return to;
}
