/**
 * LISTEN on one database, on a dedicated connection that is re-opened after any failure
 * with a jittered, growing delay. After every (re)connect the owner is told to catch up
 * (`onConnect`): notifications sent while the connection was down are lost, the deltas are
 * not. Also used to NOTIFY replies to `bucardo kick --wait`.
 */
import type pg from 'pg';
import { connect } from '../connect.js';
import type { DatabaseSpec } from '../topology/types.js';
import { backoffMs } from './retry.js';
import { listenSql, NOTIFY_SQL } from './sql/wake.js';

export class Listener {
  private client: pg.Client | null = null;
  private stopped = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Set once the first LISTEN is in place (or failed); tests and `--once` do not wait on it. */
  connected = false;

  constructor(
    readonly db: DatabaseSpec,
    private readonly channels: string[],
    private readonly onNotify: (channel: string, payload: string) => void,
    private readonly onConnect: () => void,
    private readonly onError: (e: unknown, retryMs: number) => void,
  ) {}

  start(): void {
    void this.open();
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    let c: pg.Client | null = null;
    try {
      c = await connect(this.db, 'bucardo:listen');
      const client = c;
      client.on('notification', (n) => this.onNotify(n.channel, n.payload ?? ''));
      client.on('error', () => this.lost(client));
      client.on('end', () => this.lost(client));
      for (const ch of this.channels) await client.query(listenSql(ch));
      if (this.stopped) {
        await client.end().catch(() => {});
        return;
      }
      this.client = client;
      this.attempt = 0;
      this.connected = true;
      this.onConnect();
    } catch (e) {
      if (c) await c.end().catch(() => {});
      this.retry(e);
    }
  }

  private lost(c: pg.Client): void {
    if (this.client !== c) return;
    this.client = null;
    this.connected = false;
    c.end().catch(() => {});
    this.retry(new Error(`the LISTEN connection to database ${this.db.name} was lost`));
  }

  private retry(e: unknown): void {
    if (this.stopped || this.timer) return;
    const ms = backoffMs(++this.attempt, 10_000);
    this.onError(e, ms);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.open();
    }, ms);
  }

  /** NOTIFY on this database (best effort: false when not connected). */
  async notify(channel: string, payload: string): Promise<boolean> {
    const c = this.client;
    if (!c) return false;
    try {
      await c.query(NOTIFY_SQL, [channel, payload]);
      return true;
    } catch {
      return false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => {});
  }
}
