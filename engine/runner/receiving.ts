/**
 * How each receiving database takes a table (SPEC section 6): under another name
 * (`name:`, targets only), only some columns (`columns:`), only the rows matching a filter
 * (`where:`), through a transform module. Pure: the run plan's side of it.
 *
 * A table that no database takes its own way has no `receiving` views, and every step
 * runs exactly as before. Otherwise `tableOn(t, db)` is the table as `db` takes it: its
 * name there, the columns sent and their types there, the filter, the transform. The
 * receivers of one sender are grouped by what they need read from it (`streamGroups`):
 * one COPY out of the source per group, so a sync where every receiver takes the table
 * alike still reads each source once.
 */
import type { SyncContext, Receiving } from './context.js';
import type { RunTable } from './scope.js';
import type { DatabaseState, RelationInfo } from './types.js';
import { BucardoError } from '../errors.js';
import { displayName } from '../sql/ident.js';

/** Per database of the sync, how it takes `rel` when that is not as it is (absent: as it is). */
export function receivingOf(ctx: SyncContext, rel: RelationInfo): Map<string, Receiving> {
  const out = new Map<string, Receiving>();
  for (const d of ctx.databases) {
    const r = ctx.receivingFor(rel.schema, rel.name, d.name);
    if (r.name || r.columns || r.where || r.transform) out.set(d.name, r);
  }
  return out;
}

/**
 * The columns sent to `db` exist on the first source (`all`, its columns) and on `db`
 * (`there`), and hold the key: else the run fails before it reads anything (plan reports
 * the same problems, but a table can change after apply).
 */
export function assertReceivable(ctx: SyncContext, rel: RelationInfo, db: string, sent: string[], all: string[], there: Set<string>): void {
  const table = displayName(rel.schema, rel.name);
  const missingKey = rel.keyColumns.filter((k) => !sent.includes(k));
  if (missingKey.length) {
    throw new BucardoError(
      'bad_columns',
      `the columns sent to database ${db} of table ${table} (sync ${ctx.sync.name}) lack key column ${missingKey.map((k) => JSON.stringify(k)).join(', ')}`,
      {
        hint: 'add the key columns to `columns:` of that table entry, then run bucardo plan and apply',
      },
    );
  }
  for (const [where, names] of [
    [ctx.sources[0].name, new Set(all)],
    [db, there],
  ] as const) {
    const missing = sent.filter((c) => !names.has(c));
    if (missing.length) {
      throw new BucardoError(
        'bad_columns',
        `column ${missing.map((c) => JSON.stringify(c)).join(', ')} of table ${table}, sent to database ${db} (sync ${ctx.sync.name}), does not exist in database ${where}`,
        {
          hint: 'fix `columns:` of that table entry (exact names), or add the column, then run bucardo plan and apply',
        },
      );
    }
  }
}

/** The table as each database of `recv` takes it (RunTable.receiving). */
export function makeReceivingViews(t: RunTable, recv: Map<string, Receiving>, states: Map<string, DatabaseState>): Record<string, RunTable> {
  const out: Record<string, RunTable> = {};
  for (const [db, r] of recv) {
    const rel = states.get(db)!.relations.find((x) => x.tableId === t.tableId)!;
    const own = (rel.columns ?? []).map((c) => c.name);
    // the source's attribute order, whatever the order of the list
    const columns = r.columns ? t.columns.filter((c) => r.columns!.includes(c)).concat(r.columns.filter((c) => !t.columns.includes(c))) : t.columns;
    const types = columns.map((c) => {
      const x = rel.columns!.find((y) => y.name === c)!;
      return x.base ?? x.type;
    });
    out[db] = {
      ...t,
      schema: r.name?.schema ?? t.schema,
      name: r.name?.name ?? t.name,
      columns,
      types: { ...t.types, [db]: types },
      binary: t.binary && !r.transform,
      // delete then insert would lose what the receiver holds in the columns not sent
      ...(r.columns && own.some((c) => !columns.includes(c)) ? { subset: true } : {}),
      ...(r.where ? { where: r.where } : {}),
      ...(r.transform ? { transform: r.transform } : {}),
    };
    delete out[db].receiving;
  }
  return out;
}

/** The table as database `db` takes it. */
export function tableOn(t: RunTable, db: string): RunTable {
  return t.receiving?.[db] ?? t;
}

/** What a sender reads for the receivers of `view`: their columns, filter and format, from the sender's own table. */
export function sendOf(t: RunTable, view: RunTable): RunTable {
  return view === t ? t : { ...view, schema: t.schema, name: t.name };
}

/** Receivers that take the same rows from a sender: one read of the sender for all of them. */
export interface StreamGroup {
  /** The sender's side: its table, with the columns, filter and format of the group. */
  send: RunTable;
  /** The receivers, with the table as each takes it. */
  receivers: { db: string; view: RunTable }[];
}

/**
 * Groups `dbs` by what they need read: the columns, the filter, the format; a transform
 * gets its own group per database (its `ctx.database` differs). With no receiving views,
 * one group of every database, reading the table as it is.
 */
export function streamGroups(t: RunTable, dbs: string[]): StreamGroup[] {
  if (!t.receiving) return dbs.length ? [{ send: t, receivers: dbs.map((db) => ({ db, view: t })) }] : [];
  const groups = new Map<string, StreamGroup>();
  for (const db of dbs) {
    const view = tableOn(t, db);
    const key = JSON.stringify([view.columns, view.where ?? null, view.transform ? db : null, view.binary]);
    const g = groups.get(key);
    if (g) g.receivers.push({ db, view });
    else groups.set(key, { send: sendOf(t, view), receivers: [{ db, view }] });
  }
  return [...groups.values()];
}

/**
 * Whether the direct apply (delete every pending key, then COPY the rows in) suits these
 * receivers: not where some columns keep the receiver's values, nor through a transform
 * (it may leave a row alone, which a delete would have removed).
 */
export function directAllowed(t: RunTable, dbs: string[]): boolean {
  return !t.receiving || dbs.every((db) => !tableOn(t, db).subset && !tableOn(t, db).transform);
}
