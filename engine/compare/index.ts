/**
 * `bucardo compare SYNC`: are the sync's tables the same on all its databases?
 *
 * Per table, without loading it into memory:
 *  1. cut the key space into chunks of ~chunkRows rows by sampling every n-th key on the
 *     reference (the first source), in one sorted pass;
 *  2. on every database, in parallel, count and hash each chunk (sums of the md5 of
 *     each row's text: no sort, constant memory);
 *  3. a chunk that differs is cut again, into ~16 parts sampled on the database holding
 *     the most rows of it, until it holds at most rowLevel rows everywhere; then its
 *     keys and row hashes are read and matched, and the differing keys reported in key
 *     order. It stops after maxDifferences keys per table.
 *
 * Each database is read in one REPEATABLE READ READ ONLY transaction, so its counts and
 * hashes come from one snapshot. The databases are read at (nearly) the same moment, not
 * in one snapshot: compare after the runner has caught up, or live changes show up.
 */
import type pg from 'pg';
import { BEGIN, connect } from '../connect.js';
import { readCatalog } from '../catalog/read.js';
import { resolveSyncs } from '../planner/resolve.js';
import { BucardoError, describePgError, makeUnknownSyncError } from '../errors.js';
import { displayName } from '../sql/ident.js';
import type { Topology } from '../topology/types.js';
import type { DatabaseCatalog, TableInfo } from '../catalog/types.js';
import { hashRange, readColumnOrder, rowHashes, sampleBoundaries, sortKeys, type ChunkHash, type KeyRange, type TableView } from './sql.js';
import type { CompareDifference, CompareOptions, CompareResult, TableComparison } from './types.js';
import { compareGroups, mergeComparisons } from './receiving.js';
import { compareForeignTargets } from './foreign.js';

export type { CompareResult, TableComparison, CompareDifference, CompareOptions } from './types.js';

const DEFAULTS: Required<CompareOptions> = { chunkRows: 10_000, rowLevel: 1_000, maxDifferences: 10 };
/** A differing chunk is cut into this many parts per level: log16 levels reach row level. */
const SPLIT = 16;
/** Safety net; each level shrinks the largest database's share ~16-fold, so 1e12 rows need ~7. */
const MAX_DEPTH = 24;

/** The tables of a sync, with their replication key (exact names). */
interface SyncTable {
  schema: string;
  name: string;
  key: string[];
}

export async function compareSync(topology: Topology, syncName: string, options: CompareOptions = {}): Promise<CompareResult> {
  const opts = { ...DEFAULTS, ...options };
  const spec = topology.syncs.get(syncName);
  if (!spec) {
    throw makeUnknownSyncError(topology, syncName);
  }
  const names = [...spec.sources, ...spec.targets];
  const clients = new Map<string, pg.Client>();
  try {
    await Promise.all(
      names.map(async (n) => {
        const c = await connect(topology.databases.get(n)!, 'bucardo compare');
        clients.set(n, c);
        await c.query(BEGIN.snapshot); // held across every table's COPY: ended by closing the connection
      }),
    );
    const catalogs = new Map<string, DatabaseCatalog>(
      await Promise.all(names.map(async (n) => [n, await read(n, () => readCatalog(clients.get(n)!, n, topology.name))] as const)),
    );
    const tables = syncTables(topology, syncName, catalogs);
    const results: TableComparison[] = [];
    for (const t of tables) {
      // one group of every database, unless some take the table their own way (receiving.ts)
      const parts: TableComparison[] = [];
      for (const g of compareGroups(topology, syncName, t, names)) {
        const infos = tableInfos(
          t,
          g.members.map((m) => ({ ...m, catalog: catalogs.get(m.database)! })),
        );
        const columns = g.keysOnly ? t.key : comparedColumns(t, infos, g.columns);
        const views = await Promise.all(
          g.members.map((m) =>
            read(m.database, () => makeView(clients.get(m.database)!, m.database, { ...t, schema: m.schema, name: m.name }, columns, m.where)),
          ),
        );
        const part = await compareTable(
          views,
          t,
          infos.map((i) => i.estimatedRows),
          opts,
        );
        parts.push(g.note ? { ...part, notes: [g.note] } : part);
      }
      results.push(mergeComparisons(parts, opts.maxDifferences));
    }
    const foreign = await compareForeignTargets(topology, syncName, clients.get(names[0])!, tables, results, opts.maxDifferences);
    return { sync: syncName, databases: [...names, ...foreign], equal: results.every((r) => r.equal), tables: results };
  } finally {
    await Promise.all([...clients.values()].map((c) => c.end().catch(() => {})));
  }
}

/** Runs a read on one database; a PostgreSQL error becomes a sentence naming the database. */
async function read<T>(database: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof BucardoError) throw e;
    throw new BucardoError('compare_failed', `reading database ${database} failed: ${describePgError(e)}`, { cause: e });
  }
}

/**
 * The sync's tables as apply recorded them in sync_relation on the first source; when
 * apply has not run, resolved from the topology against the catalogs, as plan does.
 */
function syncTables(topology: Topology, syncName: string, catalogs: Map<string, DatabaseCatalog>): SyncTable[] {
  const spec = topology.syncs.get(syncName)!;
  const first = catalogs.get(spec.sources[0])!;
  const recorded = first.installed.syncRelations.filter((r) => r.sync === syncName);
  if (recorded.length) return recorded.map((r) => ({ schema: r.tableSchema, name: r.tableName, key: r.keyColumns }));
  const { syncs, errors } = resolveSyncs(topology, catalogs);
  const mine = errors.filter((e) => e.sync === syncName);
  if (mine.length) {
    throw new BucardoError('compare_failed', `cannot resolve the tables of sync ${syncName}: ${mine.map((e) => e.message).join('; ')}`, {
      hint: mine[0].hint ?? 'run bucardo plan to see every problem',
    });
  }
  const resolved = syncs.find((s) => s.spec.name === syncName);
  return (resolved?.tables ?? []).map((t) => ({ schema: t.schema, name: t.name, key: t.key.map((k) => k.name) }));
}

/** The table on each database (under its name there), in order; throws when one lacks it. */
function tableInfos(t: SyncTable, on: { schema: string; name: string; catalog: DatabaseCatalog }[]): TableInfo[] {
  return on.map(({ schema, name, catalog: cat }) => {
    const table = cat.tables.find((x) => x.schema === schema && x.name === name);
    if (!table) {
      const as = schema !== t.schema || name !== t.name ? ` (named ${displayName(schema, name)} there)` : '';
      throw new BucardoError('missing_table', `table ${displayName(t.schema, t.name)}${as} does not exist on database ${cat.database}`, {
        hint: 'run bucardo plan: the sync cannot run either until the table exists everywhere',
      });
    }
    return table;
  });
}

/** Non-generated columns present on every database (of `only`, the columns sent, when given), in the reference's order; the key must be among them. */
function comparedColumns(t: SyncTable, infos: TableInfo[], only?: string[]): string[] {
  const [ref, ...others] = infos;
  const columns = ref.columns
    .filter((col) => (!only || only.includes(col.name)) && !col.generated && others.every((o) => o.columns.some((x) => x.name === col.name && !x.generated)))
    .map((col) => col.name);
  for (const k of t.key) {
    if (!columns.includes(k)) {
      throw new BucardoError('bad_key', `key column ${k} of table ${displayName(t.schema, t.name)} is missing or generated on some database of the sync`, {
        hint: 'run bucardo plan to see how the databases differ',
      });
    }
  }
  return columns;
}

async function makeView(c: pg.Client, database: string, t: SyncTable, columns: string[], where?: string): Promise<TableView> {
  const order = await readColumnOrder(c, t.schema, t.name);
  const keys = t.key.map((k) => ({ name: k, ...order.get(k)! }));
  return { database, client: c, schema: t.schema, name: t.name, keys, columns, ...(where ? { where } : {}) };
}

async function compareTable(views: TableView[], t: SyncTable, estimates: number[], opts: Required<CompareOptions>): Promise<TableComparison> {
  const ref = views[0];
  const table = displayName(t.schema, t.name);
  const whole: KeyRange = { lo: null, hi: null };
  // Chunks are sampled on the reference, unless another database holds far more rows
  // (by pg_class.reltuples), e.g. an empty reference: one chunk holding all of a big
  // table would only be cut again.
  const most = estimates.indexOf(Math.max(...estimates));
  const sampler = estimates[most]! > 2 * Math.max(estimates[0]!, 0) + opts.chunkRows ? views[most]! : ref;
  const chunks = cut(whole, await read(sampler.database, () => sampleBoundaries(sampler, whole, opts.chunkRows)));
  const hashes = await hashAll(views, chunks);
  const rows: Record<string, number> = {};
  views.forEach((v, i) => {
    rows[v.database] = hashes.reduce((sum, h) => sum + h[i].rows, 0);
  });
  const differences: CompareDifference[] = [];
  const state = { differences, truncated: false };
  let equal = true;
  for (let i = 0; i < chunks.length; i++) {
    if (same(hashes[i])) continue;
    equal = false;
    if (differences.length >= opts.maxDifferences) {
      state.truncated = true;
      break;
    }
    await drill(views, chunks[i], hashes[i], 0, opts, state);
  }
  return { table, schema: t.schema, name: t.name, equal, rows, differences, truncated: state.truncated, columns: ref.columns };
}

/** Consecutive ranges (lo, b1], (b1, b2], ..., (bn, hi]. */
function cut(r: KeyRange, bounds: string[][]): KeyRange[] {
  const out: KeyRange[] = [];
  let lo = r.lo;
  for (const b of bounds) {
    out.push({ lo, hi: b });
    lo = b;
  }
  out.push({ lo, hi: r.hi });
  return out;
}

/**
 * Hashes of every chunk on every database: result[chunk][database]. Databases in
 * parallel, chunks one after another on each (one connection runs one query at a time).
 */
async function hashAll(views: TableView[], chunks: KeyRange[]): Promise<ChunkHash[][]> {
  const perDb = await Promise.all(
    views.map((v) =>
      read(v.database, async () => {
        const out: ChunkHash[] = [];
        for (const r of chunks) out.push(await hashRange(v, r));
        return out;
      }),
    ),
  );
  return chunks.map((_, i) => views.map((_, j) => perDb[j][i]));
}

function same(h: ChunkHash[]): boolean {
  return h.every((x) => x.rows === h[0].rows && x.hash === h[0].hash);
}

async function drill(
  views: TableView[],
  range: KeyRange,
  hashes: ChunkHash[],
  depth: number,
  opts: Required<CompareOptions>,
  state: { differences: CompareDifference[]; truncated: boolean },
): Promise<void> {
  const max = Math.max(...hashes.map((h) => h.rows));
  if (max <= opts.rowLevel || depth >= MAX_DEPTH) {
    await compareRows(views, range, opts, state);
    return;
  }
  // Sample where the rows are: the database with the most rows in this range.
  const big = views[hashes.findIndex((h) => h.rows === max)];
  const step = Math.max(1, Math.ceil(max / SPLIT));
  const parts = cut(range, await read(big.database, () => sampleBoundaries(big, range, step)));
  const sub = await hashAll(views, parts);
  for (let i = 0; i < parts.length; i++) {
    if (same(sub[i])) continue;
    if (state.differences.length >= opts.maxDifferences) {
      state.truncated = true;
      return;
    }
    await drill(views, parts[i], sub[i], depth + 1, opts, state);
  }
}

/** Matches the keys and row hashes of a small range on every database. */
async function compareRows(
  views: TableView[],
  range: KeyRange,
  opts: Required<CompareOptions>,
  state: { differences: CompareDifference[]; truncated: boolean },
): Promise<void> {
  const ref = views[0];
  const perDb = await Promise.all(views.map((v) => read(v.database, () => rowHashes(v, range))));
  const byKey = new Map<string, { k: string[]; h: (string | undefined)[] }>();
  perDb.forEach((rows, j) => {
    for (const r of rows) {
      const id = JSON.stringify(r.k);
      let e = byKey.get(id);
      if (!e) {
        e = { k: r.k, h: new Array(views.length).fill(undefined) };
        byKey.set(id, e);
      }
      e.h[j] = r.h;
    }
  });
  const found: { k: string[]; diffs: Omit<CompareDifference, 'key'>[] }[] = [];
  for (const { k, h } of byKey.values()) {
    const diffs: Omit<CompareDifference, 'key'>[] = [];
    const dbs = (pred: (x: string | undefined) => boolean) => views.filter((_, j) => j > 0 && pred(h[j])).map((v) => v.database);
    if (h[0] === undefined) {
      diffs.push({ kind: 'extra', databases: dbs((x) => x !== undefined) });
    } else {
      const missing = dbs((x) => x === undefined);
      const different = dbs((x) => x !== undefined && x !== h[0]);
      if (missing.length) diffs.push({ kind: 'missing', databases: missing });
      if (different.length) diffs.push({ kind: 'different', databases: different });
    }
    if (diffs.length) found.push({ k, diffs });
  }
  const order = await read(ref.database, () =>
    sortKeys(
      ref,
      found.map((f) => f.k),
    ),
  );
  for (const i of order) {
    for (const d of found[i].diffs) {
      if (state.differences.length >= opts.maxDifferences) {
        state.truncated = true;
        return;
      }
      state.differences.push({ key: keyObject(ref, found[i].k), ...d });
    }
  }
}

/** Key values for people and JSON: integers as numbers where exact, everything else as its text. */
function keyObject(v: TableView, k: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  v.keys.forEach((col, i) => {
    const text = k[i];
    const n = Number(text);
    const integer = /^(smallint|integer|bigint)$/.test(col.type);
    out[col.name] = integer && Number.isSafeInteger(n) ? n : col.type === 'boolean' ? text === 't' || text === 'true' : text;
  });
  return out;
}
