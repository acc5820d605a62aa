/**
 * `bucardo status`: per sync, read from its databases (whichever can be reached): the
 * latest run, the conflicts counted, whether a run is in progress (the sync's advisory
 * lock is held on its first source), the changes still pending on its sources with the
 * age of the oldest, and whether a runner still runs it. Returns data; the CLI prints it.
 *
 * Stale: an idle run writes nothing (docs/protocol.md, step 4), so "when did a runner last
 * run this sync" is the latest of the last recorded run's end and the last activity of
 * the sync's runner connections (`bucardo:SYNC:read|write` in pg_stat_activity; a runner
 * keeps them open between runs and every run, idle or not, queries each database). A sync
 * with a checktime is stale when that is older than STALE_AFTER(checktime): a runner runs
 * it at least every checktime, and retries a failing one at least every 10 s.
 *
 * Runners: with two or more runners on one file (failover), which one holds each sync now
 * (the session holding its lock on the first source names its runner in its
 * application_name, connections.ts), which one ran it last (the run history's `runner`;
 * idle runs record nothing), and which are connected for it.
 */
import type pg from 'pg';
import type { Topology } from '../topology/types.js';
import { makeSyncContext, type SyncContext } from './context.js';
import { withClient } from '../connect.js';
import { ROLES, parseRunnerAppName, runnerAppPrefix } from './connections.js';
import { historySql, RUNNING_SQL, RUNNER_ACTIVITY_SQL, pendingCountSql } from './sql/status.js';
import { makeUnknownSyncError } from '../errors.js';
import { SQLSTATE } from '../sqlstate.js';
import { resumeWatermark } from './scope.js';
import { skipReason } from './sql/custom.js';
import { readReceiverStatus, type TargetStatus } from './foreign.js';

export interface LastRun {
  started: string;
  finished: string | null;
  rows: number;
  conflicts: number;
  error: string | null;
  /** The runner that recorded it (`host:pid`); not part of status's output. */
  runner?: string | null;
  /** Present when before_sync skipped the run: its reason (the run is no failure: error is null). */
  skipped?: string;
}

/** One sync, exactly the keys of SPEC section 3. */
export interface SyncStatus {
  name: string;
  enabled: boolean;
  state: 'idle' | 'running' | 'failed' | 'never_run';
  last_run: LastRun | null;
  conflicts_total: number;
  pending: number | null;
  lag_seconds: number | null;
}

/** A sync no runner has run for longer than its checktime allows. */
export interface StaleSync {
  sync: string;
  checktime_seconds: number;
  /** The last sign of a runner running it (ISO); null: none ever (never run, no runner connected). */
  last_activity: string | null;
  /** Seconds since last_activity; null with it. */
  seconds_since: number | null;
}

/** A runner process; host null: its application_name had no room for it. */
export interface RunnerRef {
  host: string | null;
  pid: number;
}

/** Who runs a sync (see the header). */
export interface SyncRunners {
  sync: string;
  /** The runner whose run holds the sync's lock now; null: no run in progress, or not a runner's session. */
  holding: RunnerRef | null;
  /** The runner of the latest recorded run. */
  last_run_by: RunnerRef | null;
  /** Runners with a connection open for the sync on a database status read, by pid. */
  connected: RunnerRef[];
}

/** A database of a sync that status could not read. */
export interface UnreadableDatabase {
  sync: string;
  database: string;
  error: string;
}

/**
 * The JSON of `status --format json`. Per sync exactly the SPEC's keys; what status adds
 * (stale syncs, unreadable databases) is at the top level, so a consumer that checks the
 * per-sync shape is not surprised.
 */
export interface StatusReport {
  format_version: '1';
  syncs: SyncStatus[];
  stale: StaleSync[];
  unreadable: UnreadableDatabase[];
  runners: SyncRunners[];
  /** Targets of other engines (SPEC section 7): each one's watermark and last write; absent when the topology has none. */
  targets?: TargetStatus[];
}

/** Margin above checktime before a sync counts as stale (ms): see the header. */
export function staleAfterMs(checktimeMs: number): number {
  return 2 * checktimeMs + 10_000;
}

/** application_name prefixes of a runner's connections for a sync (connections.ts), as the server keeps them (63 bytes). */
export function runnerApplicationNames(sync: string): string[] {
  return ROLES.map((role) => truncateBytes(runnerAppPrefix(sync, role), 63));
}

function truncateBytes(s: string, max: number): string {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= max) return s;
  let n = max;
  while (n > 0 && (b[n] & 0xc0) === 0x80) n--; // never cut a character in half
  return b.subarray(0, n).toString('utf8');
}

interface DbHistory {
  db: string;
  last_run: (LastRun & { run_id: string }) | null;
  conflicts_total: string;
  state: { run_seq: string; snapshots: Record<string, string> } | null;
  tables: string[];
  registered: boolean;
  runner_sessions: number;
  runner_active: Date | null;
  runner_names: string[];
  now: Date;
}

/** The report, and the problems met on the way (unreachable databases...), as sentences. */
export async function readStatus(topology: Topology, only?: string): Promise<{ report: StatusReport; problems: string[] }> {
  if (only && !topology.syncs.has(only)) {
    throw makeUnknownSyncError(topology, only);
  }
  const names = only ? [only] : [...topology.syncs.keys()];
  const unreadable: UnreadableDatabase[] = [];
  const stale: StaleSync[] = [];
  const runners: SyncRunners[] = [];
  const targets: TargetStatus[] = [];
  const syncs = await Promise.all(names.map((n) => syncStatus(makeSyncContext(topology, n), unreadable, stale, runners, targets)));
  const order = (s: string) => names.indexOf(s);
  unreadable.sort((a, b) => order(a.sync) - order(b.sync) || a.database.localeCompare(b.database));
  stale.sort((a, b) => order(a.sync) - order(b.sync));
  runners.sort((a, b) => order(a.sync) - order(b.sync));
  const problems = unreadable.map((u) => `sync ${u.sync}: database ${u.database}: ${u.error}`);
  targets.sort((a, b) => order(a.sync) - order(b.sync) || a.database.localeCompare(b.database));
  return { report: { format_version: '1', syncs, stale, unreadable, runners, ...(topology.foreignDatabases?.size ? { targets } : {}) }, problems };
}

const iso = (v: string | null) => (v === null ? null : new Date(v).toISOString());

async function syncStatus(
  ctx: SyncContext,
  unreadable: UnreadableDatabase[],
  staleOut: StaleSync[],
  runnersOut: SyncRunners[],
  targetsOut: TargetStatus[],
): Promise<SyncStatus> {
  const histories: DbHistory[] = [];
  let running = false;
  let holder: string | null = null;
  const appNames = runnerApplicationNames(ctx.sync.name);
  await Promise.all(
    ctx.databases.map((d) =>
      withClient(
        d,
        async (c) => {
          const h = await readHistory(c, ctx, appNames).catch(async (e: { code?: string }) => {
            if (e.code !== SQLSTATE.undefined_table && e.code !== SQLSTATE.invalid_schema_name) throw e;
            // not installed here (yet): only the runner's activity
            const a = (await c.query(RUNNER_ACTIVITY_SQL, [ctx.sync.name, appNames])).rows[0];
            return { last_run: null, conflicts_total: '0', state: null, tables: [], registered: false, ...a } as Omit<DbHistory, 'db'>;
          });
          histories.push({ db: d.name, ...h });
          if (d === ctx.sources[0]) ({ running, holder } = (await c.query<{ running: boolean; holder: string | null }>(RUNNING_SQL, ctx.lockKey)).rows[0]);
        },
        'bucardo:status',
      ).catch((e: unknown) => {
        unreadable.push({ sync: ctx.sync.name, database: d.name, error: e instanceof Error ? e.message : String(e) });
      }),
    ),
  );
  // the newest run any database knows of (a failed run may be recorded only where reachable)
  let last: DbHistory['last_run'] = null;
  let conflicts = 0;
  for (const h of histories) {
    if (h.last_run && (!last || h.last_run.started > last.started || (h.last_run.started === last.started && h.last_run.error && !last.error)))
      last = h.last_run;
    conflicts = Math.max(conflicts, Number(h.conflicts_total));
  }
  // targets of other engines count in the resume rule like any database (foreign.ts)
  const receivers = await readReceiverStatus(ctx, unreadable);
  targetsOut.push(...receivers.map((r) => r.status));
  // pending: from the watermark a run would resume from, on every reachable source
  const resume = resumeWatermark([
    ...histories.filter((h) => h.registered).map((h) => ({ runSeq: Number(h.state?.run_seq ?? 0), snapshots: h.state?.snapshots ?? {} })),
    ...receivers.map((r) => r.state),
  ]);
  let pending: number | null = null;
  let lag: number | null = null;
  const tableIds = histories.find((h) => h.db === ctx.sources[0].name)?.tables ?? histories.find((h) => h.registered)?.tables ?? [];
  if (ctx.sync.kind === 'delta' && histories.some((h) => h.registered)) {
    await Promise.all(
      ctx.sources.map((s) =>
        withClient(
          s,
          async (c) => {
            const snap = resume.snapshots[s.name] ?? '';
            const r = await c.query<{ n: string | null; lag: number | null }>(pendingCountSql(ctx.schema, tableIds), [snap, ctx.sync.name]);
            pending = (pending ?? 0) + Number(r.rows[0].n ?? 0);
            if (r.rows[0].lag !== null) lag = Math.max(lag ?? 0, r.rows[0].lag);
          },
          'bucardo:status',
        ).catch(() => {
          /* already named in `unreadable` by the first pass (or it went away since: pending is then partial) */
        }),
      ),
    );
    if (pending !== null && lag === null) lag = 0;
  }
  const skipped = skipReason(last?.error);
  const state: SyncStatus['state'] = running ? 'running' : !last ? 'never_run' : last.error && skipped === null ? 'failed' : 'idle';
  const stale = staleness(ctx, histories, last, running);
  if (stale) staleOut.push(stale);
  runnersOut.push(makeSyncRunners(ctx.sync.name, holder, last?.runner ?? null, histories));
  return {
    name: ctx.sync.name,
    enabled: ctx.sync.enabled,
    state,
    last_run: last
      ? {
          started: iso(last.started)!,
          finished: iso(last.finished),
          rows: Number(last.rows),
          conflicts: last.conflicts,
          error: skipped === null ? last.error : null,
          ...(skipped === null ? {} : { skipped }),
        }
      : null,
    conflicts_total: conflicts,
    pending,
    lag_seconds: lag === null ? null : Math.round((lag as number) * 1000) / 1000,
  };
}

/** Holder and connected runners from their application_names, the last run's from `host:pid`. */
function makeSyncRunners(sync: string, holder: string | null, lastRunner: string | null, histories: DbHistory[]): SyncRunners {
  const connected = new Map<number, RunnerRef>();
  for (const name of histories.flatMap((h) => h.runner_names ?? [])) {
    const r = parseRunnerAppName(name);
    if (r && (!connected.has(r.pid) || connected.get(r.pid)!.host === null)) connected.set(r.pid, r);
  }
  const at = lastRunner?.lastIndexOf(':') ?? -1;
  const pid = lastRunner && at >= 0 ? Number(lastRunner.slice(at + 1)) : Number.NaN;
  return {
    sync,
    holding: holder ? parseRunnerAppName(holder) : null,
    last_run_by: Number.isInteger(pid) ? { host: lastRunner!.slice(0, at), pid } : null,
    connected: [...connected.values()].sort((a, b) => a.pid - b.pid),
  };
}

/** Stale per the header; null when fine, unknowable (nothing read), disabled, or without a checktime. */
function staleness(ctx: SyncContext, histories: DbHistory[], last: DbHistory['last_run'], running: boolean): StaleSync | null {
  const checktime = ctx.sync.checktimeMs;
  if (!ctx.sync.enabled || checktime === null || running || !histories.length) return null;
  // a connected runner whose activity this role may not see: alive, as far as status can tell
  if (histories.some((h) => h.runner_sessions > 0 && h.runner_active === null)) return null;
  // ages on each server's own clock, so a skewed client clock does not matter
  let since: number | null = null;
  let at: Date | null = null;
  for (const h of histories) {
    const now = new Date(h.now).getTime();
    const marks = [h.runner_active ? new Date(h.runner_active) : null, h.last_run?.finished ? new Date(h.last_run.finished) : null];
    for (const m of marks) {
      if (!m) continue;
      const age = Math.max(0, (now - m.getTime()) / 1000);
      if (since === null || age < since) {
        since = age;
        at = m;
      }
    }
  }
  if (since === null && last) return null; // a run is recorded but not its end: a crash mid-run; the state says enough
  if (since !== null && since * 1000 <= staleAfterMs(checktime)) return null;
  return {
    sync: ctx.sync.name,
    checktime_seconds: checktime / 1000,
    last_activity: at ? at.toISOString() : null,
    seconds_since: since === null ? null : Math.round(since),
  };
}

async function readHistory(c: pg.Client, ctx: SyncContext, appNames: string[]): Promise<Omit<DbHistory, 'db'>> {
  const r = await c.query(historySql(ctx.schema), [ctx.sync.name, appNames]);
  return r.rows[0] as Omit<DbHistory, 'db'>;
}

/** 5m12s, 1h03m, 2d04h: a duration a person reads at a glance. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (seconds < 10 && seconds > 0 && s < 10) return `${Math.round(seconds * 10) / 10}s`;
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}
