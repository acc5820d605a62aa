/**
 * A sender's rows into receivers that may each take a table their own way (receiving.ts):
 * one COPY out of the sender per stream group, into every receiver of the group, through
 * the group's transform where it has one (transform.ts). For a table that every receiver
 * takes as it is there is one group, and the SQL is the same as without section 6.
 */
import type pg from 'pg';
import type { RunInputs } from './inputs.js';
import type { RunTable } from './scope.js';
import { copyBetween } from './copy.js';
import { streamGroups, tableOn, type StreamGroup } from './receiving.js';
import { makeTransformStream } from './transform.js';
import { sendWinnerRowsSql, sendWholeTableSql, sendPresentRowsSql } from './sql/receiving.js';
import { pendingKeysOnlyOutSql } from './sql/pending.js';
import { copyIntoStagingSql, copyIntoTableSql, createDeleteKeysSql, copyIntoDeleteKeysSql, directDeleteSql } from './sql/apply.js';

/** The group's transform as a stream (its one receiver's), or undefined. */
async function throughOf(inp: RunInputs, t: RunTable, g: StreamGroup, trailing: 0 | 3) {
  const tr = g.send.transform;
  if (!tr) return undefined;
  return makeTransformStream({
    module: tr,
    sync: inp.ctx.sync.name,
    table: t.display,
    database: g.receivers[0].db,
    columns: g.send.columns,
    keyColumns: t.keyColumns,
    trailing,
  });
}

/**
 * Step 6 for one sender and one table: the winners' rows into the staging table of each
 * receiver (sendWinnerRowsSql: a row out of the filter goes as deleted). Rows staged per
 * receiver (a transform may leave rows out).
 */
export async function stageRows(
  inp: RunInputs,
  from: { client: pg.Client; index: number },
  t: RunTable,
  receivers: string[],
  byKey: boolean,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const g of streamGroups(t, receivers)) {
    const into = g.receivers.map((x) => ({ client: inp.writers.get(x.db)!, sql: copyIntoStagingSql(x.view, x.view.columns) }));
    const n = await copyBetween(from.client, sendWinnerRowsSql(g.send, from.index, byKey), into, await throughOf(inp, t, g, 3));
    for (const x of g.receivers) out.set(x.db, n);
  }
  return out;
}

/** A whole table (onetimecopy, fullcopy) into each of `receivers`, matching rows only; the rows loaded (the most of any receiver). */
export async function copyTable(inp: RunInputs, from: pg.Client, t: RunTable, receivers: string[]): Promise<number> {
  let most = 0;
  for (const g of streamGroups(t, receivers)) {
    const into = g.receivers.map((x) => ({ client: inp.writers.get(x.db)!, sql: copyIntoTableSql(x.view, x.view.columns) }));
    most = Math.max(most, await copyBetween(from, sendWholeTableSql(g.send), into, await throughOf(inp, t, g, 0)));
  }
  return most;
}

/**
 * A large set of changes from one source to receivers that write nothing of their own:
 * the keys go to a temp table on every receiver, which deletes them, then the rows that
 * still exist (and match the receiver's filter) stream from the source straight into the
 * table by COPY (presentRowsSql). No staging table: COPY's batched inserts are what make
 * this ~2.5x faster than INSERT ... SELECT. Not for receivers taking some columns or a
 * transform (receiving.ts directAllowed).
 */
export async function applyDirect(inp: RunInputs, from: pg.Client, t: RunTable, receivers: string[]): Promise<void> {
  const on = receivers.map((db) => ({ w: inp.writers.get(db)!, view: tableOn(t, db) }));
  await Promise.all(on.map(({ w, view }) => w.query(createDeleteKeysSql(view))));
  await copyBetween(
    from,
    pendingKeysOnlyOutSql(t),
    on.map(({ w, view }) => ({ client: w, sql: copyIntoDeleteKeysSql(view) })),
  );
  await Promise.all(on.map(({ w, view }) => w.query(directDeleteSql(view))));
  for (const g of streamGroups(t, receivers)) {
    await copyBetween(
      from,
      sendPresentRowsSql(g.send),
      g.receivers.map((x) => ({ client: inp.writers.get(x.db)!, sql: copyIntoTableSql(x.view, x.view.columns) })),
    );
  }
}
