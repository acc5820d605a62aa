/**
 * The kick gate of one source database (docs/protocol.md, "Waking the runner").
 *
 * A NOTIFY serialises the commits of every notifying transaction of the cluster (PostgreSQL
 * takes a global lock from pre-commit to the end of commit so queue entries appear in
 * commit order): with durability on, one-row transactions lost ~45% of their rate to it
 * (pgbench, 4 clients: 4,092 tps with the NOTIFY against 7,214 without,
 * test/bench/capture.ts). A runner whose syncs are all streaming (each runs again within
 * its run interval anyway) does not need them. So the capture trigger notifies only when
 * it cannot take the gate lock, an advisory lock, in shared mode for its transaction; the
 * runner holds it exclusively, on this dedicated connection, while at least one of its
 * syncs reading from this database is idle (waiting for a wake-up).
 *
 * The lock carries the proof that no change is missed: a writer that skipped its NOTIFY
 * holds the shared lock until it commits or aborts, so when the runner's exclusive lock is
 * granted, every such writer has ended, and a run that starts after the grant sees all of
 * their changes. A sync therefore becomes idle only after a run that started after the
 * grant found nothing; until then it keeps polling. While the runner waits for the lock,
 * writers cannot take it (try-lock fails against a waiter) and notify.
 */
import type pg from 'pg';
import { connect } from '../connect.js';
import type { DatabaseSpec } from '../topology/types.js';
import { backoffMs } from './retry.js';
import { GATE_LOCK_SQL, GATE_UNLOCK_SQL } from './sql/wake.js';

export class KickGate {
  private client: pg.Client | null = null;
  private wanted = new Set<{ wake(): void }>();
  private held = false;
  private acquiring = false;
  private stopped = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;
  /** performance.now() of the latest grant (valid while held). */
  grantedAt = 0;

  constructor(
    readonly db: DatabaseSpec,
    private readonly key: [number, number],
    /** The lock was lost (connection closed): syncs that counted on it must run again. */
    private readonly onLost: () => void,
  ) {}

  /** True while some sync wants the gate (it waits for wake-ups). */
  get armed(): boolean {
    return this.wanted.size > 0;
  }

  /** True when the lock is held now and was granted at or before `t` (performance.now()). */
  heldSince(t: number): boolean {
    return this.held && this.grantedAt <= t;
  }

  /** `who` (a sync) goes idle and wants notifications. */
  arm(who: { wake(): void }): void {
    this.wanted.add(who);
    void this.acquire();
  }

  /** `who` streams (runs again soon by itself): it no longer needs notifications. */
  disarm(who: { wake(): void }): void {
    if (!this.wanted.delete(who)) return;
    void this.release();
  }

  private async acquire(): Promise<void> {
    if (this.held || this.acquiring || this.stopped || this.timer || this.wanted.size === 0) return;
    this.acquiring = true;
    try {
      if (!this.client) {
        const c = await connect(this.db, 'bucardo:gate');
        c.on('error', () => this.lost(c));
        c.on('end', () => this.lost(c));
        this.client = c;
      }
      // waits until every writer holding the shared lock (one that skipped its NOTIFY) has ended
      await this.client.query(GATE_LOCK_SQL, this.key);
      this.held = true;
      this.grantedAt = performance.now();
      this.attempt = 0;
      // the syncs polling for the gate make their last run now (it sees every skipped writer)
      for (const w of this.wanted) w.wake();
    } catch {
      this.drop();
      if (!this.stopped && this.wanted.size) {
        this.timer = setTimeout(
          () => {
            this.timer = null;
            void this.acquire();
          },
          backoffMs(++this.attempt, 10_000),
        );
      }
    } finally {
      this.acquiring = false;
    }
    if (this.stopped) await this.close();
    else if (this.held && this.wanted.size === 0) await this.release();
  }

  private async release(): Promise<void> {
    if (!this.held || this.wanted.size > 0 || !this.client) return;
    this.held = false;
    try {
      await this.client.query(GATE_UNLOCK_SQL, this.key);
    } catch {
      this.drop();
    }
    // armed again meanwhile
    if (this.wanted.size) void this.acquire();
  }

  private lost(c: pg.Client): void {
    if (this.client !== c) return;
    const was = this.held;
    this.drop();
    if (!this.stopped && was) this.onLost();
    if (!this.stopped && this.wanted.size && !this.acquiring) void this.acquire();
  }

  private drop(): void {
    const c = this.client;
    this.client = null;
    this.held = false;
    if (c) c.end().catch(() => {});
  }

  private async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    this.held = false;
    if (c) await c.end().catch(() => {});
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.acquiring) await this.close();
    else {
      // a waiting pg_advisory_lock: closing the connection ends it
      const c = this.client;
      this.client = null;
      if (c) await c.end().catch(() => {});
    }
  }
}
