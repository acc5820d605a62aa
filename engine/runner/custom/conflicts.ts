/**
 * `conflict: {custom: MODULE}` (SPEC section 6, docs/custom-code.md): step 4 of a run
 * (conflicts.ts) computed a table's conflicts on the hub with no winner; here the user's
 * `resolve(batch)` picks them, BATCH_SIZE conflicts per call, in key order:
 *
 *   1. a cursor over the conflict table yields each conflict's key, the sources that
 *      changed it and the time of each one's newest change;
 *   2. every such source's current row of those keys is read in that source's snapshot
 *      (one set-based query per source and batch), as PostgreSQL text values;
 *   3. resolve(batch) returns per conflict a source name (that source wins) or {row} (a
 *      merged row), checked here; a throw, a bad answer or BUCARDO's time limit fails the
 *      run, which has written nothing yet;
 *   4. the winners go back into the conflict table, so the losers forget their keys as with
 *      any strategy. A merged key has winner MERGED: every source forgets it, and the row
 *      is staged into every database of the sync after step 6 (stageMerged).
 *
 * The same inputs give the same batches (same keys, same order, same rows), so a
 * deterministic handler picks the same winners when a run is redone after a crash.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import type { RunInputs } from '../inputs.js';
import type { RunTable } from '../scope.js';
import type { SourceRead } from '../snapshot.js';
import type { Work } from '../receive.js';
import type { ModuleRef } from '../../topology/types.js';
import { loadRegisteredFunction } from '../../topology/modules.js';
import { type ErrorCode, BucardoError } from '../../errors.js';
import { callWithTimeout, describeUserError, UserCodeTimeout } from './call.js';
import { createStagingSql } from '../sql/apply.js';
import {
  MERGED,
  declareConflictCursorSql,
  fetchConflictsSql,
  CLOSE_CONFLICT_CURSOR_SQL,
  currentRowsSql,
  createWinnersSql,
  insertWinnersSql,
  applyWinnersSql,
  copyMergedIntoStagingSql,
} from '../sql/custom.js';

/** Conflicts per call of resolve(batch): bounded memory, and few calls. */
export const BATCH_SIZE = 10_000;

/** A row as a handler sees it and returns it: column -> PostgreSQL text form, null for SQL NULL. */
export type TextRow = Record<string, string | null>;

/** One conflict of a batch (SPEC section 6). */
export interface CustomConflict {
  key: TextRow;
  rows: Record<string, TextRow | null>;
  changed_at: Record<string, string>;
}

/** A merged row waiting to be staged: its values in RunTable.columns order, the newest change's time, the sources that changed the key (newest first). */
export interface MergedRow {
  values: (string | null)[];
  ts: string;
  senders: number[];
}

/** tableId -> merged rows of this run. */
export type MergedRows = Map<string, MergedRow[]>;

interface CursorRow {
  key: string[];
  srcs: number[];
  tss: string[];
}

/** Step 4 for one table with a custom strategy: winners into the conflict table, merged rows into `merged`. */
export async function resolveCustom(inp: RunInputs, reads: SourceRead[], t: RunTable, module: ModuleRef, merged: MergedRows): Promise<void> {
  const sync = inp.ctx.sync.name;
  const resolve = await loadRegisteredFunction(module, sync);
  const hub = reads[0].client;
  await hub.query(createWinnersSql(t.tableId, t.keyColumns));
  await hub.query(declareConflictCursorSql(t.tableId, t.keyColumns));
  for (;;) {
    const rows = (await hub.query<CursorRow>(fetchConflictsSql(BATCH_SIZE))).rows;
    if (!rows.length) break;
    for (const r of rows) r.tss = r.tss.map(isoTime);
    const conflicts = await readBatch(reads, t, rows);
    const fail = (code: ErrorCode, what: string, detail: string, cause?: unknown) =>
      new BucardoError(
        code,
        `sync ${sync}: conflict handler ${module.path} ${what} on table ${t.display} (first key ${JSON.stringify(conflicts[0].key)})${detail ? `: ${detail}` : ''}; nothing was written`,
        {
          cause,
          hint: 'fix the module, then run bucardo plan and bucardo apply (the runner runs only what apply registered); see docs/custom-code.md',
          details: { module: module.path, table: t.display, key: conflicts[0].key },
        },
      );
    let answer: unknown;
    try {
      answer = await callWithTimeout(resolve, [{ sync, table: t.display, conflicts }]);
    } catch (e) {
      if (e instanceof UserCodeTimeout) throw fail('conflict_handler_timeout', `did not return within ${e.ms / 1000} s`, '', e);
      throw fail('conflict_handler_failed', 'threw', describeUserError(e), e);
    }
    const answers = checkAnswer(answer, conflicts, t);
    if (typeof answers === 'string') throw fail('conflict_handler_invalid', 'returned an invalid result', answers);
    const names = inp.ctx.sources.map((s) => s.name);
    const winners = answers.map((a) => (typeof a === 'string' ? names.indexOf(a) : MERGED));
    const mergedHere = merged.get(t.tableId) ?? [];
    answers.forEach((a, i) => {
      if (typeof a === 'string') return;
      const { srcs, tss } = rows[i];
      const byTime = srcs.map((_, j) => j).sort((x, y) => (tss[x] === tss[y] ? srcs[x] - srcs[y] : tss[x] < tss[y] ? 1 : -1));
      mergedHere.push({ values: t.columns.map((c) => a[c]), ts: tss[byTime[0]], senders: byTime.map((j) => srcs[j]) });
    });
    if (mergedHere.length) merged.set(t.tableId, mergedHere);
    await hub.query(insertWinnersSql(t.tableId, t.keyColumns), [...t.keyColumns.map((_, k) => rows.map((r) => r.key[k])), winners]);
  }
  await hub.query(CLOSE_CONFLICT_CURSOR_SQL);
  await hub.query(applyWinnersSql(t.tableId, t.keyColumns));
}

/**
 * A timestamptz's text under the runner's session settings (TimeZone UTC, ISO style) as
 * ISO 8601 with all six fractional digits, so that times compare as strings too
 * ("2025-03-01 10:00:00.5+00" -> "2025-03-01T10:00:00.500000Z"). Anything else (a year
 * past 9999) is left as PostgreSQL wrote it.
 */
export function isoTime(pgText: string): string {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?\+00$/.exec(pgText);
  return m ? `${m[1]}T${m[2]}.${(m[3] ?? '').padEnd(6, '0')}Z` : pgText;
}

/** The batch: each conflict's key, and the current row of every source that changed it, read in that source's snapshot. */
async function readBatch(reads: SourceRead[], t: RunTable, rows: CursorRow[]): Promise<CustomConflict[]> {
  const out: CustomConflict[] = rows.map((r) => ({
    key: Object.fromEntries(t.keyColumns.map((c, k) => [c, r.key[k]])),
    rows: {},
    changed_at: {},
  }));
  const involved = [...new Set(rows.flatMap((r) => r.srcs))].sort((a, b) => a - b);
  await Promise.all(
    involved.map(async (s) => {
      const read = reads.find((r) => r.index === s)!;
      const mine = rows.map((r, i) => (r.srcs.includes(s) ? i : -1)).filter((i) => i >= 0);
      const keyTypes = t.keyColumns.map((k) => t.types[read.db][t.columns.indexOf(k)]);
      const res = await read.client.query<{ ord: string; row: TextRow | null }>(currentRowsSql(t, keyTypes), [
        ...t.keyColumns.map((_, k) => mine.map((i) => rows[i].key[k])),
        t.columns,
      ]);
      for (const r of res.rows) {
        const i = mine[Number(r.ord) - 1];
        out[i].rows[read.db] = r.row;
        out[i].changed_at[read.db] = rows[i].tss[rows[i].srcs.indexOf(s)];
      }
    }),
  );
  // sources in list order in every object, whatever order the reads finished in
  const order = reads.map((r) => r.db);
  const sorted = <T>(o: Record<string, T>) => Object.fromEntries(order.filter((d) => d in o).map((d) => [d, o[d]]));
  for (const c of out) {
    c.rows = sorted(c.rows);
    c.changed_at = sorted(c.changed_at);
  }
  return out;
}

/**
 * The handler's answer checked against its batch: per conflict, the name of a source that
 * changed the key (a key of `rows`) or a merged row with every column and the same key.
 * Returns the answers (names, or merged rows as text values) or what is wrong with it.
 */
export function checkAnswer(answer: unknown, conflicts: CustomConflict[], t: { keyColumns: string[]; columns: string[] }): (string | TextRow)[] | string {
  if (!Array.isArray(answer)) return `${show(answer)} instead of an array of ${conflicts.length} results`;
  if (answer.length !== conflicts.length) return `${answer.length} results for ${conflicts.length} conflicts`;
  const out: (string | TextRow)[] = [];
  for (let i = 0; i < answer.length; i++) {
    const a: unknown = answer[i];
    const c = conflicts[i];
    const at = `result ${i} (key ${JSON.stringify(c.key)})`;
    if (typeof a === 'string') {
      if (!(a in c.rows)) return `${at} is ${JSON.stringify(a)}, not a database that changed the key (${Object.keys(c.rows).join(', ')})`;
      out.push(a);
      continue;
    }
    const row = a && typeof a === 'object' && !Array.isArray(a) ? (a as { row?: unknown }).row : undefined;
    if (!row || typeof row !== 'object' || Array.isArray(row)) return `${at} is ${show(a)}: expected a database name or {row: {...}}`;
    const merged = textRow(row as Record<string, unknown>, t.columns);
    if (typeof merged === 'string') return `${at}: ${merged}`;
    const moved = t.keyColumns.find((k) => merged[k] !== c.key[k]);
    if (moved !== undefined) return `${at}: the merged row's ${moved} is ${JSON.stringify(merged[moved])}, not the key's ${JSON.stringify(c.key[moved])}`;
    out.push(merged);
  }
  return out;
}

/** A merged row as text values: every column, no other; strings, numbers, booleans, bigints, Dates or null. */
function textRow(row: Record<string, unknown>, columns: string[]): TextRow | string {
  const extra = Object.keys(row).filter((k) => !columns.includes(k));
  if (extra.length) return `the merged row has column ${extra.map((x) => JSON.stringify(x)).join(', ')}, which the table does not replicate`;
  const out: TextRow = {};
  for (const c of columns) {
    if (!(c in row) || row[c] === undefined) return `the merged row lacks column ${JSON.stringify(c)} (give every column; null for SQL NULL)`;
    const v = row[c];
    if (v === null || typeof v === 'string') out[c] = v;
    else if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'bigint' || typeof v === 'boolean') out[c] = String(v);
    else if (v instanceof Date && !Number.isNaN(v.getTime())) out[c] = v.toISOString();
    else return `the merged row's ${JSON.stringify(c)} is ${show(v)}: values are PostgreSQL text (a string), a number, a boolean, a Date or null`;
  }
  return out;
}

function show(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  try {
    const s = JSON.stringify(v);
    return s.length > 120 ? `${s.slice(0, 117)}...` : s;
  } catch {
    return String(v);
  }
}

/**
 * After step 6: the merged rows into the staging table of every database of the sync
 * (sources and targets alike; a database the run stages nothing else into for that table
 * gets a staging table now), staged like any change, with the newest change's time and
 * a sender, so that step 9's guarded apply defers the key where a source has a newer
 * local change, and hands it back to the sender to settle in the next run. The sender is
 * the source with the newest change, but never the receiver itself: the key then comes
 * back as a conflict between the merged row (on the sender) and the receiver's newer
 * change, which the handler sees again, instead of the receiver's change simply winning
 * (and a requeue would have to stream from a connection into itself).
 */
export async function stageMerged(inp: RunInputs, work: Work, merged: MergedRows): Promise<void> {
  const { ctx, scope, writers } = inp;
  for (const [tableId, list] of merged) {
    const t = scope.tables.find((x) => x.tableId === tableId)!;
    await Promise.all(
      ctx.databases.map(async (d) => {
        const w = writers.get(d.name)!;
        const m = work.staged.get(d.name) ?? new Map<string, number>();
        if (!m.has(tableId)) {
          await w.query(createStagingSql(d.name, [t]));
          m.set(tableId, 0);
          work.staged.set(d.name, m);
        }
        const sink = w.query(copyFrom(copyMergedIntoStagingSql(tableId, t.columns)));
        await pipeline(
          Readable.from(
            copyLines(
              list,
              ctx.sources.findIndex((x) => x.name === d.name),
            ),
          ),
          sink,
        );
        m.set(tableId, m.get(tableId)! + list.length);
      }),
    );
    work.rowsByTable[t.display] = (work.rowsByTable[t.display] ?? 0) + list.length;
  }
}

/** COPY text lines of merged rows for the receiver with source index `self` (-1: a target), ~64 kB per chunk. */
function* copyLines(list: MergedRow[], self: number): Generator<string> {
  let chunk = '';
  for (const r of list) {
    const sender = r.senders.find((s) => s !== self)!;
    chunk += `${[...r.values.map(copyText), 't', r.ts, String(sender)].join('\t')}\n`;
    if (chunk.length > 1 << 16) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

/** A value in COPY's text format: \N for NULL; backslash, newline, carriage return and tab escaped. */
export function copyText(v: string | null): string {
  if (v === null) return '\\N';
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
}
