/**
 * Prometheus metrics of a runner (`bucardo run --metrics-port N`), text exposition format
 * 0.0.4 served by node:http (no dependency), and a health endpoint. docs/metrics.md lists
 * every metric with its labels and an example alert; keep it in step with METRIC_HELP.
 *
 * Two sources feed it:
 *   - the runner: after every run, record() (runs, rows, conflicts, errors, durations);
 *     the log entries (busy skips, LISTEN errors) through observeLog();
 *   - the PendingPoller: every REFRESH_MS, and soon after each run, one query per source
 *     database (engine/runner/sql/status.ts pendingBySyncSql) for the pending changes and
 *     the age of the oldest, per sync.
 */
import http from 'node:http';
import type pg from 'pg';
import type { RunResult } from './types.js';
import type { LogEntry } from './log.js';
import type { SyncContext } from './context.js';
import type { DatabaseSpec } from '../topology/types.js';
import { connect } from '../connect.js';
import { pendingBySyncSql, syncTablesSql } from './sql/status.js';

/** Upper bounds (seconds) of the run duration histogram: an idle run takes ~5 ms, a big first copy minutes. */
export const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];

/** A run's per-database row counts, when the run reports them (forward-compatible with RunResult). */
type RunWithReceivers = RunResult & { rowsByDatabase?: Record<string, number> };

interface SyncMetrics {
  runs: { ok: number; idle: number; failed: number };
  rows: number;
  rowsByTable: Map<string, number>;
  rowsByDatabase: Map<string, number>;
  conflicts: number;
  errors: number;
  busy: number;
  lastOk: number | null;
  failing: boolean;
  /** Cumulative bucket counts, same order as DURATION_BUCKETS; then sum and count. */
  buckets: number[];
  durationSum: number;
  durationCount: number;
  /** Source database -> pending changes and lag (seconds), as last polled. */
  pending: Map<string, { n: number; lag: number }>;
}

export type HealthState = 'idle' | 'running' | 'waiting' | 'failing' | 'stopped';

export interface Health {
  /** 200 when up; 503 when shutting down or when every sync's latest run failed. */
  code: 200 | 503;
  body: { status: 'ok' | 'shutting_down' | 'failing'; syncs: Record<string, HealthState> };
}

export class Metrics {
  private syncs = new Map<string, SyncMetrics>();
  private contexts = new Map<string, SyncContext>();
  private listenErrors = new Map<string, number>();
  private sourceUp = new Map<string, boolean>();
  private states: () => Map<string, string> = () => new Map();
  private readonly startTime = Date.now();
  private shuttingDown = false;
  /** Called after each run with the sync's name (the poller refreshes its sources). */
  onRecorded: ((sync: string) => void) | null = null;

  constructor(private readonly info: { topology?: string; runner?: string } = {}) {}

  /** Declares the syncs run, so they show (with zeros) before their first run. */
  addSyncs(contexts: SyncContext[], states?: () => Map<string, string>): void {
    for (const c of contexts) {
      this.contexts.set(c.sync.name, c);
      this.get(c.sync.name);
    }
    if (states) this.states = states;
  }

  private get(sync: string): SyncMetrics {
    let m = this.syncs.get(sync);
    if (!m) {
      m = {
        runs: { ok: 0, idle: 0, failed: 0 }, rows: 0, rowsByTable: new Map(), rowsByDatabase: new Map(), conflicts: 0, errors: 0, busy: 0,
        lastOk: null, failing: false, buckets: DURATION_BUCKETS.map(() => 0), durationSum: 0, durationCount: 0, pending: new Map(),
      };
      this.syncs.set(sync, m);
    }
    return m;
  }

  /** After every run: r on success, error on failure. */
  record(sync: string, r: RunResult | null, error: unknown): void {
    const m = this.get(sync);
    if (error || !r) {
      m.runs.failed++;
      m.errors++;
      m.failing = true;
      const started = (error as { started?: unknown })?.started;
      if (started instanceof Date) this.observe(m, (Date.now() - started.getTime()) / 1000);
      this.onRecorded?.(sync);
      return;
    }
    m.failing = false;
    m.lastOk = r.finished.getTime();
    this.observe(m, (r.finished.getTime() - r.started.getTime()) / 1000);
    if (!r.wrote) {
      m.runs.idle++;
      this.onRecorded?.(sync);
      return;
    }
    m.runs.ok++;
    m.rows += r.rows;
    m.conflicts += r.conflicts;
    for (const [t, n] of Object.entries(r.rowsByTable)) m.rowsByTable.set(t, (m.rowsByTable.get(t) ?? 0) + n);
    for (const [db, n] of Object.entries(receivedRows(r as RunWithReceivers, this.contexts.get(sync)))) m.rowsByDatabase.set(db, (m.rowsByDatabase.get(db) ?? 0) + n);
    this.onRecorded?.(sync);
  }

  /** Log entries that count: busy skips, LISTEN connection errors. */
  observeLog(e: LogEntry): void {
    if (e.event === 'busy') this.get(e.sync).busy++;
    else if (e.event === 'listen_error') this.listenErrors.set(e.database, (this.listenErrors.get(e.database) ?? 0) + 1);
  }

  private observe(m: SyncMetrics, seconds: number): void {
    DURATION_BUCKETS.forEach((b, i) => {
      if (seconds <= b) m.buckets[i]++;
    });
    m.durationSum += seconds;
    m.durationCount++;
  }

  /** The poller's reading of one source database: per sync, pending and lag; null: it could not be read. */
  setPending(database: string, bySync: Map<string, { n: number; lag: number }> | null): void {
    this.sourceUp.set(database, bySync !== null);
    for (const [name, m] of this.syncs) {
      const v = bySync?.get(name);
      if (v) m.pending.set(database, v);
      else if (bySync === null || this.contexts.get(name)?.sources.some((s) => s.name === database)) m.pending.delete(database);
    }
  }

  /** From the first signal on, /healthz answers 503. */
  setShuttingDown(): void {
    this.shuttingDown = true;
  }

  health(): Health {
    const live = this.states();
    const syncs: Record<string, HealthState> = {};
    for (const [name, m] of this.syncs) {
      const s = live.get(name);
      syncs[name] = m.failing && s !== 'running' && s !== 'stopped' ? 'failing' : ((s ?? 'idle') as HealthState);
    }
    const all = [...this.syncs.values()];
    const failing = all.length > 0 && all.every((m) => m.failing);
    if (this.shuttingDown) return { code: 503, body: { status: 'shutting_down', syncs } };
    if (failing) return { code: 503, body: { status: 'failing', syncs } };
    return { code: 200, body: { status: 'ok', syncs } };
  }

  /** The exposition text. (`_now` is kept for callers of the former signature; nothing here depends on the clock.) */
  render(_now?: number): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string, samples: [Record<string, string>, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of samples) out.push(`${name}${labelText(labels)} ${formatValue(v)}`);
    };
    const per = <T>(f: (name: string, m: SyncMetrics) => T[]): T[] => [...this.syncs].flatMap(([n, m]) => f(n, m));
    const cpu = process.cpuUsage();
    family('bucardo_up', 'gauge', 'Always 1 while the runner serves metrics.', [[{}, 1]]);
    family('bucardo_info', 'gauge', 'The runner: its topology and its name (host:pid); always 1.', [[{ topology: this.info.topology ?? '', runner: this.info.runner ?? '' }, 1]]);
    family('bucardo_start_time_seconds', 'gauge', 'When the runner started, seconds since the epoch.', [[{}, this.startTime / 1000]]);
    family('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.', [[{}, Math.round(Date.now() / 1000 - process.uptime())]]);
    family('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', [[{}, (cpu.user + cpu.system) / 1e6]]);
    family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [[{}, process.memoryUsage.rss()]]);
    family('bucardo_runs_total', 'counter', 'Runs finished, by result: ok (replicated something), idle (nothing pending), failed.',
      per((s, m) => (['ok', 'idle', 'failed'] as const).map((res) => [{ sync: s, result: res }, m.runs[res]] as [Record<string, string>, number])));
    family('bucardo_rows_total', 'counter', 'Changed rows replicated (each row once, whatever the number of receiving databases).', per((s, m) => [[{ sync: s }, m.rows]]));
    family('bucardo_table_rows_total', 'counter', 'Changed rows replicated, per table.', per((s, m) => [...m.rowsByTable].map(([t, n]) => [{ sync: s, table: t }, n] as [Record<string, string>, number])));
    family('bucardo_database_rows_total', 'counter', 'Changed rows written into each receiving database (syncs with one source; see docs/metrics.md).',
      per((s, m) => [...m.rowsByDatabase].map(([d, n]) => [{ sync: s, database: d }, n] as [Record<string, string>, number])));
    family('bucardo_conflicts_total', 'counter', 'Conflicts resolved (or skipped).', per((s, m) => [[{ sync: s }, m.conflicts]]));
    family('bucardo_errors_total', 'counter', 'Failed runs.', per((s, m) => [[{ sync: s }, m.errors]]));
    family('bucardo_busy_total', 'counter', 'Runs skipped because another runner was running the sync.', per((s, m) => [[{ sync: s }, m.busy]]));
    family('bucardo_sync_failing', 'gauge', '1 when the latest run of the sync failed, else 0.', per((s, m) => [[{ sync: s }, m.failing ? 1 : 0]]));
    family('bucardo_last_success_timestamp_seconds', 'gauge', 'End of the latest successful run, seconds since the epoch (absent before the first).',
      per((s, m) => (m.lastOk === null ? [] : [[{ sync: s }, m.lastOk / 1000] as [Record<string, string>, number]])));
    family('bucardo_pending_changes', 'gauge', 'Changes captured on a source database and not yet replicated by the sync (refreshed every few seconds and after each run).',
      per((s, m) => [...m.pending].map(([d, p]) => [{ sync: s, database: d }, p.n] as [Record<string, string>, number])));
    family('bucardo_lag_seconds', 'gauge', 'Age of the oldest pending change on a source database (its transaction start time to now); 0 when nothing is pending.',
      per((s, m) => [...m.pending].map(([d, p]) => [{ sync: s, database: d }, Math.round(p.lag * 1000) / 1000] as [Record<string, string>, number])));
    family('bucardo_source_up', 'gauge', '1 when the latest pending/lag poll of a source database succeeded, else 0.', [...this.sourceUp].map(([d, ok]) => [{ database: d }, ok ? 1 : 0]));
    family('bucardo_listen_errors_total', 'counter', 'Failures of the LISTEN connection to a source database (each followed by a reconnect).', [...this.listenErrors].map(([d, n]) => [{ database: d }, n]));
    out.push('# HELP bucardo_run_duration_seconds Duration of finished runs (idle and failed ones included).', '# TYPE bucardo_run_duration_seconds histogram');
    for (const [s, m] of this.syncs) {
      DURATION_BUCKETS.forEach((b, i) => out.push(`bucardo_run_duration_seconds_bucket${labelText({ sync: s, le: String(b) })} ${m.buckets[i]}`));
      out.push(`bucardo_run_duration_seconds_bucket${labelText({ sync: s, le: '+Inf' })} ${m.durationCount}`);
      out.push(`bucardo_run_duration_seconds_sum${labelText({ sync: s })} ${formatValue(Math.round(m.durationSum * 1e6) / 1e6)}`);
      out.push(`bucardo_run_duration_seconds_count${labelText({ sync: s })} ${m.durationCount}`);
    }
    return out.join('\n') + '\n';
  }
}

/**
 * Rows each receiving database got in a run: the run's own per-database counts when it
 * has them; else exact for one source (every other database of the sync gets every row);
 * else unknown (several sources: a database receives all rows but those it won itself).
 */
function receivedRows(r: RunWithReceivers, ctx: SyncContext | undefined): Record<string, number> {
  if (r.rowsByDatabase) return r.rowsByDatabase;
  if (!ctx || ctx.sources.length !== 1) return {};
  const src = ctx.sources[0].name;
  return Object.fromEntries(ctx.databases.filter((d) => d.name !== src).map((d) => [d.name, r.rows]));
}

/** Label values escaped per the exposition format: backslash, double quote, newline. */
export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : '\\' + c));
}

function labelText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Pending/lag refresh period; each refresh is one query per source database. */
export const REFRESH_MS = 5_000;
/** Sync tables are re-read this often (an apply may have added some). */
const TABLES_MS = 60_000;
/** After a run, a refresh of its sources follows at most this soon (runs back to back share one). */
const AFTER_RUN_MS = 250;

/**
 * Reads pending changes and lag on every source database of the syncs, on a connection
 * of its own per database (application_name `bucardo:metrics`), reconnecting on failure.
 * A database that cannot be read loses its pending/lag series (absent, not stale) and
 * gets bucardo_source_up 0.
 */
export class PendingPoller {
  private dbs = new Map<string, { spec: DatabaseSpec; syncs: SyncContext[]; client: pg.Client | null; tables: Map<string, string[]> | null; tablesAt: number; busy: Promise<void> | null; again: boolean; timer: NodeJS.Timeout | null }>();
  private interval: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly metrics: Metrics, contexts: SyncContext[], private readonly refreshMs = REFRESH_MS) {
    for (const ctx of contexts) {
      if (ctx.sync.kind !== 'delta') continue;
      for (const s of ctx.sources) {
        const e = this.dbs.get(s.name) ?? { spec: s, syncs: [], client: null, tables: null, tablesAt: 0, busy: null, again: false, timer: null };
        e.syncs.push(ctx);
        this.dbs.set(s.name, e);
      }
    }
  }

  start(): void {
    if (this.interval || this.stopped) return;
    this.metrics.onRecorded = (sync) => this.soon(sync);
    for (const name of this.dbs.keys()) void this.refresh(name);
    this.interval = setInterval(() => {
      for (const name of this.dbs.keys()) void this.refresh(name);
    }, this.refreshMs);
    this.interval.unref();
  }

  /** A refresh of the sync's source databases shortly (after a run). */
  private soon(sync: string): void {
    for (const [name, e] of this.dbs) {
      if (!e.syncs.some((c) => c.sync.name === sync) || e.timer || this.stopped) continue;
      e.timer = setTimeout(() => {
        e.timer = null;
        void this.refresh(name);
      }, AFTER_RUN_MS);
      e.timer.unref();
    }
  }

  /** One refresh of one database; a refresh asked for while one runs runs once more after it. */
  refresh(name: string): Promise<void> {
    const e = this.dbs.get(name)!;
    if (this.stopped) return Promise.resolve();
    if (e.busy) {
      e.again = true;
      return e.busy;
    }
    e.busy = (async () => {
      do {
        e.again = false;
        await this.poll(name).catch(() => {});
      } while (e.again && !this.stopped);
    })().finally(() => (e.busy = null));
    return e.busy;
  }

  private async poll(name: string): Promise<void> {
    const e = this.dbs.get(name)!;
    const schema = e.syncs[0].schema;
    try {
      e.client ??= await connect(e.spec, 'bucardo:metrics');
      const names = e.syncs.map((c) => c.sync.name);
      if (!e.tables || Date.now() - e.tablesAt > TABLES_MS) {
        const r = await e.client.query<{ sync: string; tables: string[] }>(syncTablesSql(schema), [names]);
        e.tables = new Map(r.rows.map((x) => [x.sync, x.tables]));
        e.tablesAt = Date.now();
      }
      const tables = e.tables;
      const r = await e.client.query<{ sync: string; n: string; lag: number }>(pendingBySyncSql(schema, names.map((n) => ({ tableIds: tables.get(n) ?? [] }))), [name, names]);
      if (this.stopped) return;
      this.metrics.setPending(name, new Map(r.rows.map((x) => [x.sync, { n: Number(x.n), lag: Number(x.lag) }])));
    } catch {
      // a table dropped by an apply (42P01) or a lost connection: read the tables again, reconnect
      e.tables = null;
      const c = e.client;
      e.client = null;
      await c?.end().catch(() => {});
      if (!this.stopped) this.metrics.setPending(name, null);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.interval) clearInterval(this.interval);
    for (const e of this.dbs.values()) if (e.timer) clearTimeout(e.timer);
    await Promise.all([...this.dbs.values()].map((e) => e.busy));
    await Promise.all([...this.dbs.values()].map((e) => e.client?.end().catch(() => {})));
  }
}

/** The metrics HTTP server; close() also ends open keep-alive connections. */
export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Serves GET /metrics and GET /healthz on every interface (like other exporters: scrapers
 * run elsewhere), port 0: any free port.
 */
export function serveMetrics(metrics: Metrics, port: number, host?: string): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' });
      res.end();
    } else if (path === '/metrics' || path === '/') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : metrics.render());
    } else if (path === '/healthz') {
      const h = metrics.health();
      res.writeHead(h.code, { 'content-type': 'application/json' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(h.body) + '\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: try /metrics or /healthz\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve({
        port: typeof addr === 'object' && addr ? addr.port : port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
