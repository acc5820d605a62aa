/**
 * The two-phase-commit doorbell of one source database (docs/protocol.md, "Waking the
 * runner"). PREPARE TRANSACTION refuses a transaction that ran NOTIFY, so where PREPARE is
 * possible at all (max_prepared_transactions > 0) a capture trigger that finds the kick
 * gate taken does not notify: it takes the doorbell lock in shared mode for its
 * transaction (a prepared transaction keeps it until COMMIT PREPARED) and bumps the
 * `kick_seq` sequence (not transactional: visible at once). While a sync of this database
 * waits for wake-ups, this polls both, one tiny statement every POLL_MS, and wakes the
 * syncs when the lock is held or the counter moved, and once more at the poll after:
 *
 *   A writer's change becomes visible when it ends (at t_end). Let p be the first poll
 *   after it rang. If p comes after t_end, the counter moved since the poll before: wake,
 *   and the run starts after t_end. Otherwise the writer still held the lock at p, and at
 *   every poll until it ended; the first poll after t_end follows a poll that saw the lock
 *   held: wake. Either way a run starts after the change became visible.
 *
 * On a server with max_prepared_transactions = 0 the triggers notify as before and this
 * polls nothing.
 */
import type pg from 'pg';
import { connect } from '../connect.js';
import type { DatabaseSpec } from '../topology/types.js';
import { MAX_PREPARED_SQL, doorbellPollSql } from './sql/wake.js';
import { backoffMs } from './retry.js';

/** Poll period while a sync waits for wake-ups: the latency a prepared or doorbell-ringing write adds at most. */
const POLL_MS = 50;

export class Doorbell {
  private client: pg.Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private attempt = 0;
  /** null: not known yet; false: PREPARE impossible on this server (nothing to poll). */
  private needed: boolean | null = null;
  private lastCount: string | null = null;
  private lastFlag = false;

  constructor(
    readonly db: DatabaseSpec,
    private readonly schema: string,
    private readonly key: [number, number],
    /** True while a sync of this database waits for wake-ups (its kick gate is wanted). */
    private readonly active: () => boolean,
    private readonly ring: () => void,
    private readonly onError: (e: unknown) => void,
  ) {}

  start(): void {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped || this.needed === false) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.tick();
    }, ms);
  }

  private async tick(): Promise<void> {
    try {
      if (!this.client) {
        const c = await connect(this.db, 'bucardo:doorbell');
        c.on('error', () => this.drop(c));
        this.client = c;
        const r = await c.query<{ m: string }>(MAX_PREPARED_SQL);
        this.needed = r.rows[0].m !== '0';
        if (!this.needed) {
          await this.close();
          return;
        }
      }
      if (this.active()) {
        const r = await this.client.query<{ held: boolean; n: string }>(doorbellPollSql(this.schema), this.key);
        const { held, n } = r.rows[0];
        const flag = held || (this.lastCount !== null && n !== this.lastCount);
        if (flag || this.lastFlag) this.ring();
        this.lastFlag = flag;
        this.lastCount = n;
      } else {
        // not waiting: the syncs run anyway; start afresh when one waits again
        this.lastFlag = false;
        this.lastCount = null;
      }
      this.attempt = 0;
      this.schedule(POLL_MS);
    } catch (e) {
      this.onError(e);
      if (this.client) this.drop(this.client);
      // lost track: a write may have rung meanwhile
      this.ring();
      this.schedule(backoffMs(++this.attempt, 10_000));
    }
  }

  private drop(c: pg.Client): void {
    if (this.client !== c) return;
    this.client = null;
    c.end().catch(() => {});
  }

  private async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => {});
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.close();
  }
}
