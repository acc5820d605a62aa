/**
 * `compare` against targets of other engines (SPEC section 7): each table of the
 * reference (the first source, read in compare's snapshot) is mapped row by row as the
 * runner writes it (the receiver's `expected`), then matched by key with the rows the
 * receiver holds. Unlike the PostgreSQL comparison (chunk hashes on each server), this
 * holds the reference's rows of one table in memory, keyed: fine for the tables SQLite
 * targets hold; the chunked form needs hashing on the receiver's side, left for later.
 */
import type pg from 'pg';
import type { Topology } from '../topology/types.js';
import type { CompareDifference, TableComparison } from './types.js';
import { withReceiver, type Receiver, type ReceiverTable } from '../targets/receiver.js';
import { receivingOn } from '../topology/receiving.js';
import { readCopyRows } from '../runner/copytext.js';
import { BASE_TYPES_SQL, wholeTableTextSql } from '../runner/sql/foreign.js';
import { qualify } from '../sql/ident.js';

/** Rows read from the reference at a time. */
const BATCH_ROWS = 5_000;

/** The overrides of a relgroup's table entry for `db`, by exact name (a `match:` entry has none). */
function overrideOf(topology: Topology, sync: string, schema: string, name: string, db: string) {
  const rg = topology.relgroups.get(topology.syncs.get(sync)!.relgroup);
  const e = rg?.tables.find((x) => x.kind === 'name' && x.table.schema === schema && x.table.name === name);
  return e?.kind === 'name' ? receivingOn(e, e.targets?.get(db), true) : {};
}

/** Adds each foreign target of the sync to `results` (rows, differences, equal); returns their names. */
export async function compareForeignTargets(
  topology: Topology,
  sync: string,
  ref: pg.Client,
  /** The sync's tables with their keys, and their comparisons so far, in the same order. */
  tables: { key: string[] }[],
  results: TableComparison[],
  maxDifferences: number,
): Promise<string[]> {
  const names = topology.syncs.get(sync)!.foreignTargets ?? [];
  for (const db of names) {
    await withReceiver(topology.foreignDatabases!.get(db)!, async (r) => {
      for (const [i, res] of results.entries()) {
        const o = overrideOf(topology, sync, res.schema, res.name, db);
        const all = (await ref.query<{ name: string; type: string }>(BASE_TYPES_SQL, [qualify(res.schema, res.name)])).rows;
        const columns = o.columns ?? all.map((c) => c.name);
        const rt: ReceiverTable = {
          name: o.name?.name ?? res.name,
          schema: o.name?.schema ?? res.schema,
          display: res.table,
          keyColumns: tables[i].key,
          columns,
          types: columns.map((c) => all.find((x) => x.name === c)?.type ?? 'text'),
        };
        await compareOne(r, rt, ref, res, db, o.where, maxDifferences);
      }
    });
  }
  return names;
}

async function compareOne(
  r: Receiver,
  rt: ReceiverTable,
  ref: pg.Client,
  res: TableComparison,
  db: string,
  where: string | undefined,
  maxDifferences: number,
): Promise<void> {
  const keyAt = rt.keyColumns.map((k) => rt.columns.indexOf(k));
  const expected = new Map<string, { key: Record<string, unknown>; row: string }>();
  await readCopyRows(ref, wholeTableTextSql({ schema: res.schema, name: res.name }, rt.columns, where), BATCH_ROWS, (rows) => {
    for (const row of rows) {
      const mapped = r.expected(rt, row);
      expected.set(JSON.stringify(keyAt.map((i) => mapped[i])), {
        key: Object.fromEntries(rt.keyColumns.map((k, j) => [k, row[keyAt[j]]])),
        row: JSON.stringify(mapped),
      });
    }
  });
  const diffs: CompareDifference[] = [];
  let count = 0;
  let more = false;
  const add = (d: CompareDifference) => {
    if (diffs.length < maxDifferences) diffs.push(d);
    else more = true;
  };
  for await (const row of r.readRows(rt)) {
    count++;
    const k = JSON.stringify(keyAt.map((i) => row[i]));
    const want = expected.get(k);
    if (!want) add({ key: Object.fromEntries(rt.keyColumns.map((c, j) => [c, stripTag(row[keyAt[j]])])), kind: 'extra', databases: [db] });
    else if (want.row !== JSON.stringify(row)) add({ key: want.key, kind: 'different', databases: [db] });
    expected.delete(k);
  }
  for (const { key } of expected.values()) add({ key, kind: 'missing', databases: [db] });
  res.rows[db] = count;
  res.differences.push(...diffs);
  res.truncated ||= more;
  res.equal &&= diffs.length === 0;
}

/** A receiver's tagged value (`num:1`, `text:a`) as the key shown. */
function stripTag(v: unknown): unknown {
  return typeof v === 'string' ? v.slice(v.indexOf(':') + 1) : v;
}
