/**
 * Step 4 of a delta run (docs/protocol.md): the keys pending on two or more sources are
 * brought together on the first source (the hub), each gets a winner by the strategy, and
 * every loser forgets the key: afterwards a key is pending on at most one source, its
 * winner. A TRUNCATE pending on a source counts as a change of every key at its time.
 */
import { createHash } from 'node:crypto';
import type { RunInputs } from './inputs.js';
import type { SourceRead } from './snapshot.js';
import type { RunTable } from './scope.js';
import type { ConflictRecord } from './types.js';
import type { ConflictStrategy } from '../topology/types.js';
import type { SyncContext } from './context.js';
import { BucardoError } from '../errors.js';
import { copyBetween } from './copy.js';
import { pendingKeysOutSql } from './sql/pending.js';
import * as C from './sql/conflicts.js';
import { CONFLICT_DETAIL_CAP } from './log.js';
import { resolveCustom, type MergedRows } from './custom/conflicts.js';
import { MERGED } from './sql/custom.js';

export interface Conflicts {
  count: number;
  records: ConflictRecord[];
  /** Rows merged by custom handlers (tableId -> rows), staged into every database after step 6. */
  merged: MergedRows;
}

/** The newest pending TRUNCATE of a table: its source (ties: the one listed first), or null. */
export function newestTruncater(reads: SourceRead[], tableId: string): SourceRead | null {
  let best: SourceRead | null = null;
  for (const r of reads) {
    const ts = r.truncates.get(tableId);
    if (ts === undefined) continue;
    if (!best || ts > best.truncates.get(tableId)!) best = r; // UTC ISO text (connect.ts) sorts as time
  }
  return best;
}

export async function resolveConflicts(inp: RunInputs, reads: SourceRead[]): Promise<Conflicts> {
  const { ctx, scope } = inp;
  const out: Conflicts = { count: 0, records: [], merged: new Map() };
  if (reads.length < 2) return out;
  const hub = reads[0];
  const seed = createHash('sha256')
    .update(JSON.stringify([ctx.sync.name, scope.lastSeq, scope.last]))
    .digest('hex')
    .slice(0, 16);
  const names = ctx.sources.map((s) => s.name);
  for (const t of scope.tables) {
    const having = reads.filter((r) => (r.pending.get(t.tableId)?.n ?? 0) > 0);
    const truncers = reads.filter((r) => r.truncates.has(t.tableId));
    const involved = new Set([...having, ...truncers]);
    if (!having.length || involved.size < 2) continue;
    const strategy = ctx.strategyFor(t.schema, t.name);
    const rule = winnerRule(
      ctx,
      strategy,
      t,
      [...involved].sort((a, b) => a.index - b.index),
      seed,
    );
    for (const r of having) {
      if (r.index === 0) continue;
      await hub.client.query(C.createShippedSql(ctx.schema, r.index, t.tableId, t.keyColumns));
      await copyBetween(r.client, pendingKeysOutSql(t.tableId, t.keyColumns), [
        { client: hub.client, sql: C.copyIntoShippedSql(r.index, t.tableId, t.keyColumns) },
      ]);
    }
    const [create, count] = C.conflictSql(
      t.tableId,
      t.keyColumns,
      having.map((r) => r.index),
      truncers.map((r) => r.index),
      rule === 'abort' || rule === 'custom' ? { kind: 'none' } : rule,
    );
    await hub.client.query(create, truncers.length ? [truncers.map((r) => r.truncates.get(t.tableId)!)] : []);
    const n = Number((await hub.client.query<{ n: string }>(count)).rows[0].n);
    if (n === 0) continue;
    out.count += n;
    if (rule === 'custom' && strategy.kind === 'custom') await resolveCustom(inp, reads, t, strategy.module, out.merged);
    const cap = rule === 'abort' ? 20 : Math.max(0, CONFLICT_DETAIL_CAP - out.records.length);
    if (cap > 0) {
      const det = await hub.client.query<{ key: Record<string, unknown>; winner: number | null; srcs: number[]; tss: string[] }>(
        C.conflictDetailSql(t.tableId, t.keyColumns, cap),
      );
      for (const d of det.rows) {
        out.records.push({
          table: t.display,
          schema: t.schema,
          name: t.name,
          key: d.key,
          winner: d.winner === null || d.winner === MERGED ? null : names[d.winner],
          ...(d.winner === MERGED ? { merged: true } : {}),
          changed: d.srcs.map((s, i) => ({ database: names[s], at: d.tss[i] })),
        });
      }
    }
    if (rule === 'abort') {
      const shown = out.records
        .slice(0, 5)
        .map((r) => JSON.stringify(r.key))
        .join(', ');
      throw new BucardoError(
        'conflict_abort',
        `sync ${ctx.sync.name} found ${n} conflicting key${n === 1 ? '' : 's'} in table ${t.display} (${shown}${n > 5 ? ', ...' : ''}) and its conflict strategy is abort: nothing was written`,
        {
          hint: 'resolve the rows by hand on the sources (or pick another strategy), then run again',
          details: { table: t.display, keys: out.records.map((r) => r.key) },
        },
      );
    }
    // losers (everyone with skip) forget the conflicting keys
    for (const r of having) {
      if (r.index === 0) {
        const del = await hub.client.query(C.dropLostSql(t.tableId, t.keyColumns, true));
        r.pending.get(t.tableId)!.n -= del.rowCount ?? 0;
        continue;
      }
      await r.client.query(C.createLostSql(t.tableId, t.keyColumns));
      await copyBetween(hub.client, C.lostKeysOutSql(t.tableId, t.keyColumns, r.index), [
        { client: r.client, sql: C.copyIntoLostSql(t.tableId, t.keyColumns) },
      ]);
      const del = await r.client.query(C.dropLostSql(t.tableId, t.keyColumns, false));
      r.pending.get(t.tableId)!.n -= del.rowCount ?? 0;
    }
  }
  return out;
}

/** The strategy of one table as a SQL winner rule, given each involved source's newest change. */
function winnerRule(ctx: SyncContext, strategy: ConflictStrategy, t: RunTable, reads: SourceRead[], seed: string): C.WinnerRule | 'abort' | 'custom' {
  // UTC ISO text (the session settings of connect.ts) sorts as time, to the microsecond
  const newest = (...ts: (string | null | undefined)[]) => ts.reduce<string | null>((m, x) => (x && (!m || x > m) ? x : m), null);
  const byNewest = (tsOf: (r: SourceRead) => string | null) =>
    [...reads]
      .sort((a, b) => {
        const ta = tsOf(a) ?? '';
        const tb = tsOf(b) ?? '';
        return ta === tb ? a.index - b.index : ta < tb ? 1 : -1;
      })
      .map((r) => r.index);
  switch (strategy.kind) {
    case 'latest':
      return { kind: 'latest' };
    case 'latest_table':
      return { kind: 'rank', rank: byNewest((r) => newest(r.pending.get(t.tableId)?.ts, r.truncates.get(t.tableId))) };
    case 'latest_sync':
      return { kind: 'rank', rank: byNewest((r) => newest(...[...r.pending.values()].map((p) => p.ts), ...r.truncates.values())) };
    case 'priority': {
      const names = ctx.sources.map((s) => s.name);
      const listed = strategy.order.map((n) => names.indexOf(n)).filter((i) => i >= 0);
      return { kind: 'rank', rank: [...listed, ...names.map((_, i) => i).filter((i) => !listed.includes(i))] };
    }
    case 'random':
      return { kind: 'random', seed };
    case 'skip':
      return { kind: 'none' };
    case 'abort':
      return 'abort';
    case 'custom':
      return 'custom'; // custom/conflicts.ts, once the conflicts are known
    default: {
      const never: never = strategy;
      throw new Error(`unknown strategy ${JSON.stringify(never)}`);
    }
  }
}
