/**
 * `bucardo status`: per sync, read from its databases (whichever can be reached): the
 * latest run, the conflicts counted, whether a run is in progress (the sync's advisory
 * lock is held on its first source), and the changes still pending on its sources with
 * the age of the oldest. Returns data; the CLI prints it.
 */
import type pg from 'pg';
import type { Topology } from '../topology/types.js';
import { makeSyncContext, type SyncContext } from './context.js';
import { withClient } from '../connect.js';
import { historySql, RUNNING_SQL, pendingCountSql } from './sql/status.js';
import { BucardoError } from '../errors.js';

export interface LastRun {
  started: string;
  finished: string | null;
  rows: number;
  conflicts: number;
  error: string | null;
}

export interface SyncStatus {
  name: string;
  enabled: boolean;
  state: 'idle' | 'running' | 'failed' | 'never_run';
  last_run: LastRun | null;
  conflicts_total: number;
  pending: number | null;
  lag_seconds: number | null;
}

export interface StatusReport {
  format_version: '1';
  syncs: SyncStatus[];
}

interface DbHistory {
  db: string;
  last_run: (LastRun & { run_id: string }) | null;
  conflicts_total: string;
  state: { run_seq: string; snapshots: Record<string, string> } | null;
  tables: string[];
  registered: boolean;
}

/** The report, and the problems met on the way (unreachable databases...). */
export async function readStatus(topology: Topology, only?: string): Promise<{ report: StatusReport; problems: string[] }> {
  if (only && !topology.syncs.has(only)) {
    throw new BucardoError('unknown_sync', `sync ${only} is not in ${topology.file} (syncs: ${[...topology.syncs.keys()].join(', ') || 'none'})`);
  }
  const names = only ? [only] : [...topology.syncs.keys()];
  const problems: string[] = [];
  const syncs = await Promise.all(names.map((n) => syncStatus(makeSyncContext(topology, n), problems)));
  return { report: { format_version: '1', syncs }, problems };
}

const iso = (v: string | null) => (v === null ? null : new Date(v).toISOString());

async function syncStatus(ctx: SyncContext, problems: string[]): Promise<SyncStatus> {
  const histories: DbHistory[] = [];
  let running = false;
  const clients = new Map<string, boolean>();
  await Promise.all(
    ctx.databases.map((d) =>
      withClient(d, async (c) => {
        clients.set(d.name, true);
        const h = await readHistory(c, ctx).catch((e: { code?: string }) => {
          if (e.code === '42P01' || e.code === '3F000') return null;
          throw e;
        });
        if (h) histories.push({ db: d.name, ...h });
        if (d === ctx.sources[0]) running = (await c.query<{ running: boolean }>(RUNNING_SQL, ctx.lockKey)).rows[0].running;
      }, 'bucardo:status').catch((e: unknown) => {
        problems.push(`sync ${ctx.sync.name}: database ${d.name}: ${e instanceof Error ? e.message : String(e)}`);
      }),
    ),
  );
  // the newest run any database knows of (a failed run may be recorded only where reachable)
  let last: DbHistory['last_run'] = null;
  let conflicts = 0;
  for (const h of histories) {
    if (h.last_run && (!last || h.last_run.started > last.started || (h.last_run.started === last.started && h.last_run.error && !last.error))) last = h.last_run;
    conflicts = Math.max(conflicts, Number(h.conflicts_total));
  }
  // pending: from the lowest watermark, on every reachable source
  let lowest: DbHistory['state'] | undefined;
  for (const h of histories) if (h.registered && (lowest === undefined || Number(h.state?.run_seq ?? 0) < Number(lowest?.run_seq ?? 0))) lowest = h.state;
  let pending: number | null = null;
  let lag: number | null = null;
  const tableIds = histories.find((h) => h.db === ctx.sources[0].name)?.tables ?? histories[0]?.tables ?? [];
  if (ctx.sync.kind === 'delta' && histories.length) {
    await Promise.all(
      ctx.sources.map((s) =>
        withClient(s, async (c) => {
          const snap = lowest && Number(lowest.run_seq) > 0 ? (lowest.snapshots[s.name] ?? '') : '';
          const r = await c.query<{ n: string | null; lag: number | null }>(pendingCountSql(ctx.schema, tableIds), [snap, ctx.sync.name]);
          pending = (pending ?? 0) + Number(r.rows[0].n ?? 0);
          if (r.rows[0].lag !== null) lag = Math.max(lag ?? 0, r.rows[0].lag);
        }, 'bucardo:status').catch(() => {}),
      ),
    );
    if (pending !== null && lag === null) lag = 0;
  }
  const state: SyncStatus['state'] = running ? 'running' : !last ? 'never_run' : last.error ? 'failed' : 'idle';
  return {
    name: ctx.sync.name,
    enabled: ctx.sync.enabled,
    state,
    last_run: last ? { started: iso(last.started)!, finished: iso(last.finished), rows: Number(last.rows), conflicts: last.conflicts, error: last.error } : null,
    conflicts_total: conflicts,
    pending,
    lag_seconds: lag === null ? null : Math.round((lag as number) * 1000) / 1000,
  };
}

async function readHistory(c: pg.Client, ctx: SyncContext): Promise<Omit<DbHistory, 'db'>> {
  const r = await c.query(historySql(ctx.schema), [ctx.sync.name]);
  return r.rows[0] as Omit<DbHistory, 'db'>;
}
