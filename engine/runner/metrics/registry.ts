/**
 * The metrics of one runner, on a prom-client Registry of its own (not prom-client's
 * global one: two runners in one process, as in the tests, must not share counters), with
 * prom-client's default process metrics. docs/metrics.md lists every metric with its
 * labels and an example alert; keep it in step with the HELP texts here.
 *
 * Fed by the runner after every run (record) and by its log entries (observeLog: busy
 * skips, LISTEN errors), and by the PendingPoller (setPending: pending changes and lag).
 * Every sync the runner runs shows from the start, with zeros, so a rate() has a series
 * to start from.
 */
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import type { RunResult } from '../types.js';
import type { LogEntry } from '../log.js';
import type { SyncContext } from '../context.js';

/** Upper bounds (seconds) of the run duration histogram: an idle run takes ~5 ms, a big first copy minutes. */
export const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];

/** A run's per-database row counts, when the run reports them (forward-compatible with RunResult). */
type RunWithReceivers = RunResult & { rowsByDatabase?: Record<string, number> };

/** A sync as /healthz shows it: the runner's state of it, or `failing` while its latest run failed. */
export type HealthState = 'idle' | 'running' | 'waiting' | 'failing' | 'stopped';

export interface Health {
  /** 200 when up; 503 when shutting down or when every sync's latest run failed. */
  code: 200 | 503;
  body: { status: 'ok' | 'shutting_down' | 'failing'; syncs: Record<string, HealthState> };
}

const RESULTS = ['ok', 'idle', 'failed'] as const;

export class Metrics {
  private readonly registry = new Registry();
  // first in the exposition: what identifies the runner
  private readonly up = this.gauge('bucardo_up', 'Always 1 while the runner serves metrics.', []);
  private readonly about = this.gauge('bucardo_info', 'The runner: its topology and its name (host:pid); always 1.', ['topology', 'runner']);
  private readonly startTime = this.gauge('bucardo_start_time_seconds', 'When the runner started, seconds since the epoch.', []);
  private readonly runs = this.counter('bucardo_runs_total', 'Runs finished, by result: ok (replicated something), idle (nothing pending), failed.', [
    'sync',
    'result',
  ]);
  private readonly rows = this.counter('bucardo_rows_total', 'Changed rows replicated (each row once, whatever the number of receiving databases).', ['sync']);
  private readonly tableRows = this.counter('bucardo_table_rows_total', 'Changed rows replicated, per table.', ['sync', 'table']);
  private readonly databaseRows = this.counter(
    'bucardo_database_rows_total',
    'Changed rows written into each receiving database (syncs with one source; see docs/metrics.md).',
    ['sync', 'database'],
  );
  private readonly conflicts = this.counter('bucardo_conflicts_total', 'Conflicts resolved (or skipped).', ['sync']);
  private readonly errors = this.counter('bucardo_errors_total', 'Failed runs.', ['sync']);
  private readonly busy = this.counter('bucardo_busy_total', 'Runs skipped because another runner was running the sync.', ['sync']);
  private readonly failingGauge = this.gauge('bucardo_sync_failing', '1 when the latest run of the sync failed, else 0.', ['sync']);
  private readonly lastSuccess = this.gauge(
    'bucardo_last_success_timestamp_seconds',
    'End of the latest successful run, seconds since the epoch (absent before the first).',
    ['sync'],
  );
  private readonly pending = this.gauge(
    'bucardo_pending_changes',
    'Changes captured on a source database and not yet replicated by the sync (refreshed every few seconds and after each run).',
    ['sync', 'database'],
  );
  private readonly lag = this.gauge(
    'bucardo_lag_seconds',
    'Age of the oldest pending change on a source database (its transaction start time to now); 0 when nothing is pending.',
    ['sync', 'database'],
  );
  private readonly sourceUp = this.gauge('bucardo_source_up', '1 when the latest pending/lag poll of a source database succeeded, else 0.', ['database']);
  private readonly listenErrors = this.counter(
    'bucardo_listen_errors_total',
    'Failures of the LISTEN connection to a source database (each followed by a reconnect).',
    ['database'],
  );
  private readonly durations = new Histogram({
    name: 'bucardo_run_duration_seconds',
    help: 'Duration of finished runs (idle and failed ones included).',
    labelNames: ['sync'],
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });

  /** Every sync declared, and whether its latest run failed (for /healthz; bucardo_sync_failing says the same to Prometheus). */
  private readonly failing = new Map<string, boolean>();
  /** Sync -> its context: its sources (setPending), its receivers (bucardo_database_rows_total). */
  private readonly contexts = new Map<string, SyncContext>();
  private states: () => ReadonlyMap<string, string> = () => new Map();
  private shuttingDown = false;
  /** Called after each run with the sync's name (the poller refreshes its sources). */
  onRecorded: ((sync: string) => void) | null = null;

  constructor(info: { topology?: string; runner?: string } = {}) {
    this.up.set(1);
    this.about.set({ topology: info.topology ?? '', runner: info.runner ?? '' }, 1);
    this.startTime.set(Date.now() / 1000);
    // prom-client's process metrics: process_cpu_seconds_total, process_resident_memory_bytes, process_start_time_seconds, nodejs_*...
    collectDefaultMetrics({ register: this.registry });
  }

  private counter<T extends string>(name: string, help: string, labelNames: T[]): Counter<T> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  private gauge<T extends string>(name: string, help: string, labelNames: T[]): Gauge<T> {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  /** The content type of render()'s text (exposition format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Declares the syncs run, so they show (with zeros) before their first run; `states`: the runner's view of each (Runner.state). */
  addSyncs(contexts: SyncContext[], states?: () => ReadonlyMap<string, string>): void {
    for (const c of contexts) {
      this.contexts.set(c.sync.name, c);
      this.declare(c.sync.name);
    }
    if (states) this.states = states;
  }

  private declare(sync: string): void {
    if (this.failing.has(sync)) return;
    this.failing.set(sync, false);
    for (const result of RESULTS) this.runs.inc({ sync, result }, 0);
    for (const c of [this.rows, this.conflicts, this.errors, this.busy]) c.inc({ sync }, 0);
    this.failingGauge.set({ sync }, 0);
    this.durations.zero({ sync });
  }

  /** After every run: r on success, error on failure. */
  record(sync: string, r: RunResult | null, error: unknown): void {
    this.declare(sync);
    if (error || !r) {
      this.runs.inc({ sync, result: 'failed' });
      this.errors.inc({ sync });
      this.setFailing(sync, true);
      const started = (error as { started?: unknown })?.started;
      if (started instanceof Date) this.durations.observe({ sync }, (Date.now() - started.getTime()) / 1000);
    } else {
      this.setFailing(sync, false);
      this.lastSuccess.set({ sync }, r.finished.getTime() / 1000);
      this.durations.observe({ sync }, (r.finished.getTime() - r.started.getTime()) / 1000);
      this.runs.inc({ sync, result: r.wrote ? 'ok' : 'idle' });
      if (r.wrote) this.recordRows(sync, r);
    }
    this.onRecorded?.(sync);
  }

  private recordRows(sync: string, r: RunResult): void {
    this.rows.inc({ sync }, r.rows);
    this.conflicts.inc({ sync }, r.conflicts);
    for (const [table, n] of Object.entries(r.rowsByTable)) this.tableRows.inc({ sync, table }, n);
    for (const [database, n] of Object.entries(receivedRows(r, this.contexts.get(sync)))) this.databaseRows.inc({ sync, database }, n);
  }

  private setFailing(sync: string, failing: boolean): void {
    this.failing.set(sync, failing);
    this.failingGauge.set({ sync }, failing ? 1 : 0);
  }

  /** Log entries that count: busy skips, LISTEN connection errors. */
  observeLog(e: LogEntry): void {
    if (e.event === 'busy') {
      this.declare(e.sync);
      this.busy.inc({ sync: e.sync });
    } else if (e.event === 'listen_error') this.listenErrors.inc({ database: e.database });
  }

  /** The poller's reading of one source database: per sync, pending and lag; null: it could not be read. */
  setPending(database: string, bySync: Map<string, { n: number; lag: number }> | null): void {
    this.sourceUp.set({ database }, bySync === null ? 0 : 1);
    for (const sync of this.failing.keys()) {
      const v = bySync?.get(sync);
      if (v) {
        this.pending.set({ sync, database }, v.n);
        this.lag.set({ sync, database }, Math.round(v.lag * 1000) / 1000);
      } else if (bySync === null || this.contexts.get(sync)?.sources.some((s) => s.name === database)) {
        // absent rather than stale: a source that cannot be read has no number to show
        this.pending.remove({ sync, database });
        this.lag.remove({ sync, database });
      }
    }
  }

  /** From the first signal on, /healthz answers 503. */
  setShuttingDown(): void {
    this.shuttingDown = true;
  }

  health(): Health {
    const live = this.states();
    const syncs: Record<string, HealthState> = {};
    for (const [name, failing] of this.failing) {
      const s = live.get(name);
      syncs[name] = failing && s !== 'running' && s !== 'stopped' ? 'failing' : ((s ?? 'idle') as HealthState);
    }
    const all = [...this.failing.values()];
    if (this.shuttingDown) return { code: 503, body: { status: 'shutting_down', syncs } };
    if (all.length > 0 && all.every(Boolean)) return { code: 503, body: { status: 'failing', syncs } };
    return { code: 200, body: { status: 'ok', syncs } };
  }

  /** The exposition text (contentType). */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}

/**
 * Rows each receiving database got in a run: the run's own per-database counts when it
 * has them; else exact for one source (every other database of the sync gets every row);
 * else unknown (several sources: a database receives all rows but those it won itself).
 */
function receivedRows(r: RunWithReceivers, ctx: SyncContext | undefined): Record<string, number> {
  if (r.rowsByDatabase) return r.rowsByDatabase;
  if (ctx?.sources.length !== 1) return {};
  const src = ctx.sources[0].name;
  return Object.fromEntries(ctx.databases.filter((d) => d.name !== src).map((d) => [d.name, r.rows]));
}
