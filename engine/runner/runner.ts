/**
 * The runner: one SyncWorker per enabled sync, each independent, and one Listener per
 * source database (LISTEN on the topology's kick channel), shared by the syncs reading
 * from it. A notification wakes every sync with that database as a source (a capture
 * trigger's payload is a table id); a `bucardo kick` payload names one sync and may ask
 * for a reply when its next run finished. start()/stop() are safe to call twice.
 *
 * What runs is what apply installed: the syncs registered in the databases (their
 * definition as apply stored it), not the file as it was when the runner started. Every
 * RELOAD_MS the runner reads the registrations again and starts, stops or rebuilds workers
 * accordingly (a sync added, removed, enabled, disabled, or changed in any option), each
 * logged as a `reload` line; tables, keys and onetimecopies are read by every run anyway.
 * The file gives the databases' connections, and the syncs not installed yet (their runs
 * fail with a message saying to apply).
 */
import os from 'node:os';
import type pg from 'pg';
import type { Topology, DatabaseSpec } from '../topology/types.js';
import { makeSyncContext, makeRegisteredContext, type SyncContext, type RegisteredSync } from './context.js';
import { SyncWorker, type KickRequest, type WorkerState } from './worker.js';
import { Listener } from './listener.js';
import type { LogEntry } from './log.js';
import type { RunResult } from './types.js';
import { describePgError, makeUnknownSyncError } from '../errors.js';
import { parseKickPayload } from './kick.js';
import { KickGate } from './gate.js';
import { kickGateKey, doorbellKey } from '../sql/capture.js';
import { Doorbell } from './doorbell.js';
import { connect } from '../connect.js';
import { schemaName, kickChannel } from '../objectnames.js';
import { SQLSTATE } from '../sqlstate.js';
import { registrationsSql } from './sql/registrations.js';
import { ConnectionSlots, DEFAULT_MAX_CONNECTED_SYNCS } from './slots.js';

/** A capture trigger's NOTIFY payload: a table id (objectnames.ts tableId). */
const TABLE_ID = /^[0-9a-f]{12}$/;

/** How often a daemon reads the registrations again (an apply takes effect within this). */
const RELOAD_MS = 5_000;

export interface RunnerOptions {
  topology: Topology;
  /** Sync names to run (default: every enabled sync). */
  syncs?: string[];
  once: boolean;
  log: (e: LogEntry) => void;
  /** Metrics hook, called after every run. */
  onRun?: (sync: string, r: RunResult | null, error: unknown) => void;
  /** At most this many syncs hold their connections open at once (slots.ts; default DEFAULT_MAX_CONNECTED_SYNCS). */
  maxConnectedSyncs?: number;
}

export class Runner {
  readonly name = `${os.hostname()}:${process.pid}`;
  private readonly workers = new Map<string, SyncWorker>();
  private listeners = new Map<string, Listener>();
  private gates = new Map<string, KickGate>();
  private doorbells: Doorbell[] = [];
  private registryClients = new Map<string, pg.Client>();
  private reloadTimer: NodeJS.Timeout | null = null;
  private reloading: Promise<void> | null = null;
  private started = false;
  private booted: Promise<void> | null = null;
  private stopped: Promise<void> | null = null;
  private readonly slots: ConnectionSlots;

  constructor(private readonly opts: RunnerOptions) {
    this.slots = new ConnectionSlots(opts.maxConnectedSyncs ?? DEFAULT_MAX_CONNECTED_SYNCS);
    const topo = opts.topology;
    for (const n of opts.syncs ?? []) {
      if (!topo.syncs.has(n)) {
        throw makeUnknownSyncError(topo, n);
      }
    }
    // until the registrations are read (start), the file's view
    for (const s of topo.syncs.values()) {
      if (!this.selected(s.name) || !s.enabled) continue;
      this.workers.set(s.name, this.makeWorker(makeSyncContext(topo, s.name)));
    }
  }

  private selected(name: string): boolean {
    return !this.opts.syncs?.length || this.opts.syncs.includes(name);
  }

  private makeWorker(ctx: SyncContext): SyncWorker {
    return new SyncWorker(ctx, this.name, this.opts.once, {
      slots: this.slots,
      log: this.opts.log,
      onRun: (s, r, e) => this.opts.onRun?.(s, r, e),
      replyKicks: (c, k, ok, err) => this.replyKicks(c, k, ok, err),
    });
  }

  /** Each sync this runner runs and where its loop is now: a copy, taken at the call. */
  state(): ReadonlyMap<string, WorkerState> {
    return new Map([...this.workers].map(([name, w]) => [name, w.state]));
  }

  /** The contexts of the syncs this runner runs. */
  contexts(): SyncContext[] {
    return [...this.workers.values()].map((w) => w.ctx);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.booted = this.boot();
  }

  private async boot(): Promise<void> {
    await this.reload(true);
    if (this.opts.once) await this.closeRegistry(); // read once: a --once runner exits when its syncs are done
    this.opts.log({ event: 'start', level: 'info', syncs: [...this.workers.keys()], once: this.opts.once });
    if (this.opts.once) this.wireOnceBarriers();
    for (const w of this.workers.values()) this.launch(w);
    if (!this.opts.once && !this.stopped) {
      this.reloadTimer = setInterval(() => {
        if (!this.reloading) this.reloading = this.reload(false).finally(() => (this.reloading = null));
      }, RELOAD_MS);
    }
  }

  /** Starts a worker, with the wake-ups of its source databases (daemon only). */
  private launch(w: SyncWorker): void {
    if (!this.opts.once) {
      for (const s of w.ctx.sources) this.watch(s);
      if (w.ctx.sync.autokick) w.setGates(w.ctx.sources.map((s) => this.gates.get(s.name)).filter((g): g is KickGate => Boolean(g)));
    }
    w.start();
  }

  /** Workers reading from database `db` now. */
  private readers(db: string): SyncWorker[] {
    return [...this.workers.values()].filter((w) => w.ctx.sources.some((s) => s.name === db));
  }

  /** LISTEN, and the kick gate and 2PC doorbell, on one source database (once). */
  private watch(db: DatabaseSpec): void {
    if (this.listeners.has(db.name)) return;
    const topo = this.opts.topology;
    const wakeAll = () => {
      for (const w of this.readers(db.name)) w.wake();
    };
    const l = new Listener(
      db,
      [kickChannel(topo.name)],
      (_ch, payload) => this.onNotify(db.name, payload),
      // once LISTEN is in place (first time or after a reconnect), catch up: commits
      // notified before it was were not heard
      wakeAll,
      (e, retryMs) =>
        this.opts.log({ event: 'listen_error', level: 'warn', database: db.name, error: e instanceof Error ? e.message : describePgError(e), retryMs }),
    );
    this.listeners.set(db.name, l);
    l.start();
    // kick gate: the capture triggers notify only while a sync of ours is idle (gate.ts)
    const g = new KickGate(db, kickGateKey(topo.name), wakeAll);
    this.gates.set(db.name, g);
    const bell = new Doorbell(
      db,
      schemaName(topo.name),
      doorbellKey(topo.name),
      () => g.armed,
      wakeAll,
      (e) =>
        this.opts.log({
          event: 'listen_error',
          level: 'warn',
          database: db.name,
          error: `doorbell: ${e instanceof Error ? e.message : describePgError(e)}`,
          retryMs: 0,
        }),
    );
    this.doorbells.push(bell);
    bell.start();
  }

  /**
   * Reads what is installed in every database and makes the workers match it. The first
   * time (`initial`) it only builds the contexts; afterwards it starts, stops and rebuilds
   * workers, and logs each change.
   */
  private async reload(initial: boolean): Promise<void> {
    const regs = await this.readRegistrations();
    if (!regs) return; // nothing could be read: keep what runs
    const topo = this.opts.topology;
    const say = (sync: string, change: 'added' | 'removed' | 'enabled' | 'disabled' | 'changed', what: string) => {
      if (!initial) this.opts.log({ event: 'reload', level: 'info', sync, change, detail: what });
    };
    for (const [name, reg] of regs) {
      if (!this.selected(name) || this.stopped) continue;
      const cur = this.workers.get(name);
      const enabled = reg.detail.enabled !== false;
      if (!enabled) {
        if (cur) {
          this.workers.delete(name);
          if (!initial) await cur.stop();
          say(name, 'disabled', 'enabled: false; its changes keep being captured');
        }
        continue;
      }
      if (cur && cur.ctx.fingerprint === reg.fingerprint) continue;
      let ctx: SyncContext;
      try {
        ctx = makeRegisteredContext(topo, reg);
      } catch (e) {
        this.opts.log({ event: 'reload_failed', level: 'warn', sync: name, error: e instanceof Error ? e.message : String(e) });
        continue;
      }
      const w = this.makeWorker(ctx);
      if (cur) {
        this.workers.delete(name);
        if (!initial) await cur.stop();
      }
      this.workers.set(name, w);
      if (!initial) this.launch(w);
      if (cur) say(name, 'changed', describeChange(cur.ctx, ctx));
      else
        say(
          name,
          'added',
          `${ctx.sync.kind} sync of ${ctx.sources.map((s) => s.name).join(', ')} to ${ctx.targets.map((s) => s.name).join(', ') || 'each other'}`,
        );
    }
    // installed before, not any more (a sync the file names but never installed keeps its
    // worker: its runs say to apply)
    for (const [name, w] of this.workers) {
      if (regs.has(name) || !w.ctx.fingerprint) continue;
      this.workers.delete(name);
      if (!initial) await w.stop();
      say(name, 'removed', 'no longer installed');
    }
  }

  private async closeRegistry(): Promise<void> {
    const cs = [...this.registryClients.values()];
    this.registryClients.clear();
    await Promise.all(cs.map((c) => c.end().catch(() => {})));
  }

  /** sync name -> its registration (from the first database that has it), or null when no database answered. */
  private async readRegistrations(): Promise<Map<string, RegisteredSync> | null> {
    const topo = this.opts.topology;
    const out = new Map<string, RegisteredSync>();
    let answered = 0;
    await Promise.all(
      [...topo.databases.values()].map(async (db) => {
        try {
          let c = this.registryClients.get(db.name);
          if (!c) {
            c = await connect(db, 'bucardo:registry');
            const client = c;
            client.on('error', () => this.registryClients.delete(db.name));
            this.registryClients.set(db.name, c);
          }
          const r = await c.query<{ name: string; fingerprint: string; detail: RegisteredSync['detail'] }>(registrationsSql(schemaName(topo.name)));
          answered++;
          for (const row of r.rows) if (!out.has(row.name)) out.set(row.name, { fingerprint: row.fingerprint, detail: row.detail });
        } catch (e) {
          const c = this.registryClients.get(db.name);
          this.registryClients.delete(db.name);
          c?.end().catch(() => {});
          if ((e as { code?: string }).code === SQLSTATE.undefined_table || (e as { code?: string }).code === SQLSTATE.invalid_schema_name) answered++; // not installed here
        }
      }),
    );
    return answered ? out : null;
  }

  /**
   * --once: a sync waits for the syncs that write into one of its sources where those
   * writes are captured again (makedelta), so that what they deliver there is passed on.
   * An edge that closes a cycle is left out (two syncs feeding each other both run once).
   */
  private wireOnceBarriers(): void {
    const topo = this.opts.topology;
    const ws = [...this.workers.values()];
    const recaptured = (db: string) => topo.databases.get(db)?.makedelta || [...topo.relgroups.values()].some((g) => g.tables.some((t) => t.makedelta));
    const feeds = (u: SyncWorker, v: SyncWorker) =>
      u !== v &&
      v.ctx.sources.some(
        (s) => u.ctx.databases.some((d) => d.name === s.name && !(u.ctx.sources.length === 1 && u.ctx.sources[0].name === s.name)) && recaptured(s.name),
      );
    const edges = new Map(ws.map((v) => [v, new Set<SyncWorker>()]));
    const reaches = (from: SyncWorker, to: SyncWorker, seen = new Set<SyncWorker>()): boolean => {
      if (from === to) return true;
      if (seen.has(from)) return false;
      seen.add(from);
      return [...edges.get(from)!].some((x) => reaches(x, to, seen));
    };
    for (const v of ws) for (const u of ws) if (feeds(u, v) && !reaches(v, u)) edges.get(u)!.add(v);
    for (const v of ws) {
      const ups = ws.filter((u) => edges.get(u)!.has(v));
      if (ups.length) v.waitFor(Promise.all(ups.map((u) => u.finished)));
    }
  }

  private onNotify(db: string, payload: string): void {
    const kick = parseKickPayload(payload);
    const ws = this.readers(db);
    if (kick) {
      const w = ws.find((x) => x.ctx.sync.name === kick.sync);
      if (w) w.wake(kick.id ? { id: kick.id } : undefined);
      return;
    }
    // a capture trigger's payload is the id of the table it changed: only the syncs that
    // hold that table run (with 50 syncs on a database, a one-row change woke all 50);
    // anything else wakes every sync reading the database
    const table = TABLE_ID.test(payload) ? payload : null;
    for (const w of ws) if (!table || w.holds(table)) w.wake();
  }

  private replyKicks(ctx: SyncContext, kicks: KickRequest[], ok: boolean, error?: string): void {
    for (const k of kicks) {
      const payload = JSON.stringify({ sync: ctx.sync.name, id: k.id, ok, error: error?.slice(0, 4000) });
      // the kicker listens on the first source, where it sent the kick
      void this.listeners.get(ctx.sources[0].name)?.notify(ctx.doneChannel, payload);
    }
  }

  /**
   * --once: resolves when every sync finished, true when none failed. A daemon: when it
   * was stopped (its workers come and go with the registrations meanwhile).
   */
  async finished(): Promise<boolean> {
    await this.booted;
    if (!this.opts.once) {
      await this.stoppedSignal;
      return true;
    }
    const oks = await Promise.all([...this.workers.values()].map((w) => w.finished));
    return oks.every(Boolean);
  }

  private onStopped!: () => void;
  private readonly stoppedSignal = new Promise<void>((resolve) => (this.onStopped = resolve));

  /** Graceful stop: current runs finish or roll back, no new run starts. */
  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = (async () => {
        if (this.reloadTimer) clearInterval(this.reloadTimer);
        await this.booted?.catch(() => {});
        await this.reloading?.catch(() => {});
        await Promise.all([...this.workers.values()].map((w) => w.stop()));
        await Promise.all([...this.listeners.values()].map((l) => l.stop()));
        await Promise.all([...this.gates.values()].map((g) => g.stop()));
        await Promise.all(this.doorbells.map((b) => b.stop()));
        await this.closeRegistry();
        this.onStopped();
      })();
    }
    return this.stopped;
  }
}

/** What changed between two definitions of a sync, for the reload line. */
function describeChange(a: SyncContext, b: SyncContext): string {
  const out: string[] = [];
  const x = a.sync as unknown as Record<string, unknown>;
  const y = b.sync as unknown as Record<string, unknown>;
  for (const k of Object.keys(y)) {
    if (k === 'pos' || k === 'name') continue;
    if (JSON.stringify(x[k]) !== JSON.stringify(y[k])) out.push(`${k} ${JSON.stringify(x[k])} -> ${JSON.stringify(y[k])}`);
  }
  const seqs = (c: SyncContext) =>
    c.sequences
      .map((s) => `${s.schema}.${s.name}`)
      .sort()
      .join(',');
  if (seqs(a) !== seqs(b)) out.push(`sequences [${seqs(a)}] -> [${seqs(b)}]`);
  return out.join('; ') || 'tables or per-table options';
}
