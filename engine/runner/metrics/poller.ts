/**
 * The pending/lag poller of a runner's metrics: every REFRESH_MS, and soon after each run,
 * one query per source database (engine/runner/sql/status.ts pendingBySyncSql) for the
 * changes each sync has not consumed yet and the age of the oldest, fed to Metrics.setPending.
 */
import type pg from 'pg';
import type { SyncContext } from '../context.js';
import type { DatabaseSpec } from '../../topology/types.js';
import type { Metrics } from './registry.js';
import { connect } from '../../connect.js';
import { pendingBySyncSql, syncTablesSql } from '../sql/status.js';

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
  private dbs = new Map<
    string,
    {
      spec: DatabaseSpec;
      syncs: SyncContext[];
      client: pg.Client | null;
      tables: Map<string, string[]> | null;
      tablesAt: number;
      busy: Promise<void> | null;
      again: boolean;
      timer: NodeJS.Timeout | null;
    }
  >();
  private interval: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly metrics: Metrics,
    contexts: SyncContext[],
    private readonly refreshMs = REFRESH_MS,
  ) {
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
      const r = await e.client.query<{ sync: string; n: string; lag: number }>(
        pendingBySyncSql(
          schema,
          names.map((n) => ({ tableIds: tables.get(n) ?? [] })),
        ),
        [name, names],
      );
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
