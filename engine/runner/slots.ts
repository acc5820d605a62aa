/**
 * A runner's bound on its connections: at most `max` syncs hold their connections open at
 * once (each sync keeps, per database, a write connection, a read connection on a source
 * and a maintenance connection; connections.ts). A sync takes a slot before each run and
 * keeps it afterwards, so a busy sync reuses its connections run after run; when every
 * slot is taken, a sync that wants to run closes the connections of the one idle longest
 * and takes its slot, or, when all of them are running, waits for one to finish.
 *
 * So, per database, the runner holds at most
 *   max x (1 write + 1 maintenance + 1 read where the database is a source)
 * plus one LISTEN and one kick-gate connection per source database, and one for the
 * metrics poller: with 50 syncs the old one-set-per-sync (150 on a source) exceeded
 * PostgreSQL's default max_connections of 100.
 */

/** The default of `bucardo run --max-connected-syncs`. */
export const DEFAULT_MAX_CONNECTED_SYNCS = 16;

interface Holder {
  busy: boolean;
  /** When it last finished a run (a sequence number). */
  lastUsed: number;
  /** Closes the holder's connections (awaited before its slot is handed on). */
  release: () => Promise<void>;
}

export class ConnectionSlots {
  private holders = new Map<object, Holder>();
  /** Syncs whose connections another sync is closing: they wait for that before taking a slot again. */
  private releasing = new Map<object, Promise<void>>();
  private waiters: (() => void)[] = [];
  /** Orders uses (a clock could tie). */
  private clock = 0;

  constructor(readonly max: number) {}

  /** Before a run of `who`: a slot, its own if it holds one; `release` closes its connections when another sync takes the slot. */
  async acquire(who: object, release: () => Promise<void>): Promise<void> {
    await this.releasing.get(who);
    for (;;) {
      const mine = this.holders.get(who);
      if (mine) {
        mine.busy = true;
        mine.release = release;
        return;
      }
      if (this.holders.size < this.max) {
        this.holders.set(who, { busy: true, lastUsed: ++this.clock, release });
        return;
      }
      const idle = [...this.holders].filter(([, h]) => !h.busy).sort((x, y) => x[1].lastUsed - y[1].lastUsed)[0];
      if (idle) {
        const [other, h] = idle;
        this.holders.delete(other);
        this.holders.set(who, { busy: true, lastUsed: ++this.clock, release });
        const closing = h.release().finally(() => this.releasing.delete(other));
        this.releasing.set(other, closing);
        await closing;
        return;
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** After a run of `who`: its slot is idle (kept, and taken from it only when another sync needs one). */
  done(who: object): void {
    const h = this.holders.get(who);
    if (h) {
      h.busy = false;
      h.lastUsed = ++this.clock;
    }
    this.wakeAll();
  }

  /** `who` stopped (its connections closed by itself): the slot is free. */
  leave(who: object): void {
    this.holders.delete(who);
    this.wakeAll();
  }

  /** How many syncs hold connections now (metrics, tests). */
  get held(): number {
    return this.holders.size;
  }

  private wakeAll(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
