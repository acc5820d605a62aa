/**
 * The runner: one SyncWorker per selected enabled sync, each independent, and one
 * Listener per source database (LISTEN on the topology's kick channel), shared by the
 * syncs reading from it. A notification wakes every sync with that database as a source
 * (a capture trigger's payload is a table id); a `bucardo kick` payload names one sync
 * and may ask for a reply when its next run finished. start()/stop() are safe to call twice.
 */
import os from 'node:os';
import type { Topology } from '../topology/types.js';
import { makeSyncContext, type SyncContext } from './context.js';
import { SyncWorker, type KickRequest } from './worker.js';
import { Listener } from './listener.js';
import type { LogEntry } from './log.js';
import type { RunResult } from './types.js';
import { BucardoError, describePgError } from '../errors.js';
import { parseKickPayload } from './kick.js';
import { KickGate } from './gate.js';
import { kickGateKey, doorbellKey } from '../sql/capture.js';
import { Doorbell } from './doorbell.js';

export interface RunnerOptions {
  topology: Topology;
  /** Sync names to run (default: every enabled sync). */
  syncs?: string[];
  once: boolean;
  log: (e: LogEntry) => void;
  /** Metrics hook, called after every run. */
  onRun?: (sync: string, r: RunResult | null, error: unknown) => void;
}

export class Runner {
  readonly name = `${os.hostname()}:${process.pid}`;
  readonly workers = new Map<string, SyncWorker>();
  private listeners = new Map<string, Listener>();
  private gates = new Map<string, KickGate>();
  private doorbells: Doorbell[] = [];
  private started = false;
  private stopped: Promise<void> | null = null;

  constructor(private readonly opts: RunnerOptions) {
    const topo = opts.topology;
    const names = opts.syncs?.length ? opts.syncs : [...topo.syncs.values()].filter((s) => s.enabled).map((s) => s.name);
    for (const n of opts.syncs ?? []) {
      if (!topo.syncs.has(n)) {
        throw new BucardoError('unknown_sync', `sync ${n} is not in ${topo.file} (syncs: ${[...topo.syncs.keys()].join(', ') || 'none'})`, { hint: 'check the --sync name' });
      }
    }
    for (const n of names) {
      const ctx = makeSyncContext(topo, n);
      if (!ctx.sync.enabled) continue;
      this.workers.set(n, new SyncWorker(ctx, this.name, opts.once, {
        log: opts.log,
        onRun: (s, r, e) => opts.onRun?.(s, r, e),
        replyKicks: (c, k, ok, err) => this.replyKicks(c, k, ok, err),
      }));
    }
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
      u !== v && v.ctx.sources.some((s) => u.ctx.databases.some((d) => d.name === s.name && !(u.ctx.sources.length === 1 && u.ctx.sources[0].name === s.name)) && recaptured(s.name));
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

  /** The contexts of the syncs this runner runs. */
  contexts(): SyncContext[] {
    return [...this.workers.values()].map((w) => w.ctx);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.opts.log({ event: 'start', level: 'info', syncs: [...this.workers.keys()], once: this.opts.once });
    if (this.opts.once) this.wireOnceBarriers();
    if (!this.opts.once) {
      const byDb = new Map<string, SyncWorker[]>();
      for (const w of this.workers.values()) for (const s of w.ctx.sources) byDb.set(s.name, [...(byDb.get(s.name) ?? []), w]);
      for (const [dbName, ws] of byDb) {
        const db = this.opts.topology.databases.get(dbName)!;
        const ctx = ws[0].ctx;
        const l = new Listener(
          db,
          [ctx.kickChannel],
          (_ch, payload) => this.onNotify(ws, payload),
          () => {
            // once LISTEN is in place (first time or after a reconnect), catch up: commits
            // notified before it was were not heard
            for (const w of ws) w.wake();
          },
          (e, retryMs) => this.opts.log({ event: 'listen_error', level: 'warn', database: dbName, error: e instanceof Error ? e.message : describePgError(e), retryMs }),
        );
        this.listeners.set(dbName, l);
        l.start();
      }
      // kick gates: the capture triggers notify only while a sync of ours is idle (gate.ts)
      const byName = new Map<string, KickGate>();
      for (const [dbName, ws] of byDb) {
        if (!ws.some((w) => w.ctx.sync.autokick)) continue;
        const db = this.opts.topology.databases.get(dbName)!;
        const g = new KickGate(db, kickGateKey(this.opts.topology.name), () => {
          for (const w of ws) w.wake();
        });
        this.gates.set(dbName, g);
        byName.set(dbName, g);
        const bell = new Doorbell(db, ws[0].ctx.schema, doorbellKey(this.opts.topology.name), () => g.armed, () => {
          for (const w of ws) w.wake();
        }, (e) => this.opts.log({ event: 'listen_error', level: 'warn', database: dbName, error: `doorbell: ${e instanceof Error ? e.message : describePgError(e)}`, retryMs: 0 }));
        this.doorbells.push(bell);
        bell.start();
      }
      for (const w of this.workers.values()) {
        if (w.ctx.sync.autokick) w.setGates(w.ctx.sources.map((s) => byName.get(s.name)!).filter(Boolean));
      }
    }
    for (const w of this.workers.values()) w.start();
  }

  private onNotify(ws: SyncWorker[], payload: string): void {
    const kick = parseKickPayload(payload);
    if (kick) {
      const w = ws.find((x) => x.ctx.sync.name === kick.sync);
      if (w) w.wake(kick.id ? { id: kick.id } : undefined);
      return;
    }
    for (const w of ws) w.wake();
  }

  private replyKicks(ctx: SyncContext, kicks: KickRequest[], ok: boolean, error?: string): void {
    for (const k of kicks) {
      const payload = JSON.stringify({ sync: ctx.sync.name, id: k.id, ok, error: error?.slice(0, 4000) });
      // the kicker listens on the first source, where it sent the kick
      void this.listeners.get(ctx.sources[0].name)?.notify(ctx.doneChannel, payload);
    }
  }

  /** Resolves when every sync finished (--once); true when none failed. */
  async finished(): Promise<boolean> {
    const oks = await Promise.all([...this.workers.values()].map((w) => w.finished));
    return oks.every(Boolean);
  }

  /** Graceful stop: current runs finish or roll back, no new run starts. */
  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = (async () => {
        await Promise.all([...this.workers.values()].map((w) => w.stop()));
        await Promise.all([...this.listeners.values()].map((l) => l.stop()));
        await Promise.all([...this.gates.values()].map((g) => g.stop()));
        await Promise.all(this.doorbells.map((b) => b.stop()));
      })();
    }
    return this.stopped;
  }
}
