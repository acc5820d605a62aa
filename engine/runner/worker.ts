/**
 * The loop of one sync. States:
 *
 *   idle ──wake (NOTIFY, kick, checktime, reconnect)──> running ──ok, rows moved──> running (again: more may be pending)
 *     ^                                                   │ ok, nothing moved ─────> idle (until checktime or a wake)
 *     │                                                   │ skipped (before_sync) ─> idle (5 s), then running
 *     │                                                   │ busy (another runner) ─> waiting (1-3 s), then running
 *     └──────────── retry delay (jittered, growing) ───── │ failed ───────────────> waiting (backoff), then running
 *
 * A wake that arrives while running makes the loop run once more. `--once` ends after the
 * first run that succeeded and started once every sync feeding its sources (a cascade:
 * makedelta on a database this sync reads) had finished: such a run reads a snapshot
 * taken after `run --once` began, so everything committed before that has reached every
 * database, however busy the sources stay. It also ends on a failure that a retry will not
 * fix.
 * Only this sync stops on a failure; the loop itself never ends until stop().
 */
import type { SyncContext } from './context.js';
import { SyncConnections } from './connections.js';
import type { ConnectionSlots } from './slots.js';
import { runSyncOnce, RunError } from './run.js';
import type { RunOutcome } from './run.js';
import { isRetryable, isContention, backoffMs } from './retry.js';
import type { LogEntry } from './log.js';
import { CONFLICT_LOG_CAP } from './log.js';
import type { RunResult } from './types.js';
import { describePgError } from '../errors.js';
import type { KickGate } from './gate.js';

/** A `bucardo kick --wait` waiting for the next run of this sync to finish. */
export interface KickRequest {
  id: string;
}

export interface WorkerHooks {
  /** The runner's bound on syncs holding connections: a slot is taken before each run. */
  slots: ConnectionSlots;
  log(e: LogEntry): void;
  /** Called after every run (metrics). */
  onRun(sync: string, r: RunResult | null, error: unknown): void;
  /** Reply to kicks once the run that started after them finished. */
  replyKicks(ctx: SyncContext, kicks: KickRequest[], ok: boolean, error?: string): void;
}

/** --once: give up on a retryable failure after this many attempts. */
const ONCE_ATTEMPTS = 6;
/** Daemon retry delays top out here, so a database that comes back is used again soon. */
const RETRY_CAP_MS = 10_000;
/**
 * Runs of one sync start at least this far apart (a wake-up after a quiet spell runs at
 * once). Under a stream of small transactions every run has a fixed cost on every database
 * (~25 round trips, temp tables, purge: ~18 ms of work for ~28 rows in the 100k one-row
 * benchmark, 3,616 runs back to back that took the source from 5,228 to 1,534 commits/s);
 * spacing them lets one run carry many transactions for at most this much added lag.
 */
const MIN_RUN_INTERVAL_MS = 100;
/**
 * After runs that kept finding work (a sustained stream), the spacing grows by
 * BUSY_STEP_MS per such run up to this: fewer, larger runs while the source is busy, for
 * at most ~100 ms more lag; the first run after a quiet spell still starts at once.
 */
const MAX_RUN_INTERVAL_MS = 200;
const BUSY_STEP_MS = 50;
/**
 * A sync that found nothing but does not hold the kick gate yet (gate.ts) polls, starting
 * at MIN_RUN_INTERVAL_MS and doubling up to this (a writer's transaction left open keeps the
 * gate from being granted).
 */
const MAX_POLL_MS = 1_000;
/**
 * After before_sync skipped a run, the next one starts this much later, wake-ups or not: a
 * veto (a maintenance window, a lagging consumer) usually lasts, and each run would call
 * the hook and record the skip again.
 */
const SKIP_RETRY_MS = 5_000;
/** A run that lost a deadlock or a serialization race is redone at once this many times in a row. */
const IMMEDIATE_RETRIES = 2;

/** Where a worker's loop is (the states of the header). */
export type WorkerState = 'idle' | 'running' | 'waiting' | 'stopped';

/** The loop's state carried from one run to the next. */
interface Pace {
  /** Failed runs in a row (the retry delay grows with it). */
  failures: number;
  /** --once: busy outcomes in a row. */
  busy: number;
  /** --once: the syncs feeding this one's sources have finished, so a run starting now counts. */
  upstreamDone: boolean;
  /** When the last run started (Date.now()). */
  lastStart: number;
  /** The spacing of runs, MIN_RUN_INTERVAL_MS to MAX_RUN_INTERVAL_MS. */
  interval: number;
  /** Polls in a row while the kick gates are not ours yet. */
  emptyPolls: number;
}

export class SyncWorker {
  state: WorkerState = 'idle';
  private conns: SyncConnections;
  private woken = false;
  private wakeUp: (() => void) | null = null;
  private stopping = false;
  private kicks: KickRequest[] = [];
  /** Kick gates of the sync's source databases (none with --once or without autokick). */
  private gates: KickGate[] = [];
  /** Resolves when the loop ended: true when (in --once) the sync succeeded. */
  readonly finished: Promise<boolean>;
  private resolveFinished!: (ok: boolean) => void;
  /** Ids of the sync's tables, from its last delta run; null until then (it wakes for any change). */
  private tables: Set<string> | null = null;
  /** --once: resolves when every sync feeding this one's sources has finished (Runner); null: none. */
  private upstream: Promise<unknown> | null = null;

  constructor(
    readonly ctx: SyncContext,
    private readonly runner: string,
    private readonly once: boolean,
    private readonly hooks: WorkerHooks,
  ) {
    this.conns = new SyncConnections(ctx.sync.name, (e) =>
      this.hooks.log({ event: 'maintenance_failed', level: 'warn', sync: ctx.sync.name, error: e instanceof Error ? e.message : describePgError(e) }),
    );
    this.finished = new Promise((r) => (this.resolveFinished = r));
  }

  /** Before start(), --once: runs that count start only after `p` (the syncs that feed this one's sources finished). */
  waitFor(p: Promise<unknown>): void {
    this.upstream = p;
  }

  /** Before start(): the kick gates of the source databases (docs/protocol.md). */
  setGates(gates: KickGate[]): void {
    this.gates = gates;
  }

  start(): void {
    void this.loop().then(
      (ok) => this.resolveFinished(ok),
      () => this.resolveFinished(false),
    );
  }

  /** Whether a change of table `id` concerns this sync: one of its tables, or its tables are not known yet. */
  holds(id: string): boolean {
    return this.tables === null || this.tables.has(id);
  }

  wake(kick?: KickRequest): void {
    if (kick) this.kicks.push(kick);
    this.woken = true;
    this.wakeUp?.();
  }

  /** Graceful: the current run finishes (or fails and rolls back); no new run starts. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeUp?.();
    await this.finished;
  }

  /** Waits for `ms` (null: forever) or a wake or stop; returns at once if a wake is pending. */
  private sleep(ms: number | null, honourWakes = true): Promise<void> {
    if (this.stopping || (honourWakes && this.woken)) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const done = () => {
        if (timer) clearTimeout(timer);
        this.wakeUp = null;
        resolve();
      };
      if (ms !== null) timer = setTimeout(done, ms);
      this.wakeUp = honourWakes
        ? done
        : () => {
            if (this.stopping) done();
          };
    });
  }

  private async loop(): Promise<boolean> {
    const pace: Pace = { failures: 0, busy: 0, upstreamDone: this.upstream === null, lastStart: 0, interval: MIN_RUN_INTERVAL_MS, emptyPolls: 0 };
    // --once: a run that starts after this settles counts (see the header)
    void this.upstream?.then(() => (pace.upstreamDone = true));
    this.woken = true; // first run at start: catch up
    try {
      while (!this.stopping) {
        const since = Date.now() - pace.lastStart;
        if (since < pace.interval) await this.sleep(pace.interval - since, false);
        if (this.stopping) break;
        const end = await this.runThenWait(pace);
        if (end !== undefined) return end;
      }
      return true;
    } finally {
      for (const g of this.gates) g.disarm(this);
      this.state = 'stopped';
      await this.conns.closeAll();
      this.hooks.slots.leave(this);
    }
  }

  /** One run and the wait its outcome calls for (the header's arrows); a boolean ends the loop with that result. */
  private async runThenWait(pace: Pace): Promise<boolean | undefined> {
    pace.lastStart = Date.now();
    const startedAt = performance.now();
    this.woken = false;
    const kicks = this.kicks.splice(0);
    this.state = 'running';
    const t0 = Date.now();
    const counts = pace.upstreamDone;
    await this.hooks.slots.acquire(this, () => this.conns.closeAll());
    try {
      const outcome = await runSyncOnce(this.ctx, this.conns, this.runner, (e) => this.hooks.log(e)).finally(() => this.hooks.slots.done(this));
      if (outcome.kind === 'skipped') return await this.afterSkipped(pace, outcome, kicks, counts);
      if (outcome.kind === 'busy') return await this.afterBusy(pace, kicks);
      return await this.afterDone(pace, outcome.result, kicks, counts, startedAt);
    } catch (e) {
      return await this.afterFailed(pace, e, kicks, t0);
    }
  }

  /** before_sync vetoed the run: nothing was consumed; --once counts it as its run. */
  private async afterSkipped(
    pace: Pace,
    outcome: Extract<RunOutcome, { kind: 'skipped' }>,
    kicks: KickRequest[],
    counts: boolean,
  ): Promise<boolean | undefined> {
    pace.busy = 0;
    pace.failures = 0;
    this.hooks.log({ event: 'skipped', level: 'info', sync: this.ctx.sync.name, runId: outcome.runId, reason: outcome.reason });
    if (kicks.length) this.hooks.replyKicks(this.ctx, kicks, true);
    if (this.once) return this.endOnce(pace, counts);
    this.state = 'idle';
    await this.sleep(SKIP_RETRY_MS, false);
    return undefined;
  }

  /** Another runner holds the sync: its kicks wait for the next run, which starts 1-3 s later. */
  private async afterBusy(pace: Pace, kicks: KickRequest[]): Promise<boolean | undefined> {
    this.kicks.unshift(...kicks);
    this.hooks.log({ event: 'busy', level: 'info', sync: this.ctx.sync.name });
    this.state = 'waiting';
    if (this.once && ++pace.busy > 120) return false;
    await this.sleep(1000 + Math.random() * 2000, false);
    return undefined;
  }

  /**
   * A run that succeeded: one that moved rows runs again soon (more may be pending); one
   * that found nothing waits for a wake or checktime, once the kick gates are held.
   */
  private async afterDone(pace: Pace, r: RunResult, kicks: KickRequest[], counts: boolean, startedAt: number): Promise<boolean | undefined> {
    pace.busy = 0;
    pace.failures = 0;
    this.hooks.onRun(this.ctx.sync.name, r, null);
    if (r.tableIds) this.tables = new Set(r.tableIds);
    if (r.wrote) this.logRun(r);
    if (kicks.length) this.hooks.replyKicks(this.ctx, kicks, true);
    if (this.once) return this.endOnce(pace, counts);
    if (r.wrote) {
      // streaming: this sync runs again by itself, no NOTIFY needed
      for (const g of this.gates) g.disarm(this);
      pace.interval = Math.min(MAX_RUN_INTERVAL_MS, pace.interval + BUSY_STEP_MS);
      pace.emptyPolls = 0;
      return undefined; // more may have arrived meanwhile
    }
    pace.interval = MIN_RUN_INTERVAL_MS;
    if (this.gates.length) {
      for (const g of this.gates) g.arm(this);
      if (!this.gates.every((g) => g.heldSince(startedAt))) {
        // a writer that skipped its NOTIFY may still commit: poll until the gate is ours
        this.state = 'idle';
        await this.sleep(Math.min(MAX_POLL_MS, MIN_RUN_INTERVAL_MS * 2 ** pace.emptyPolls++));
        return undefined;
      }
    }
    pace.emptyPolls = 0;
    this.state = 'idle';
    await this.sleep(this.ctx.sync.checktimeMs);
    return undefined;
  }

  /** --once: a run that counts ends the loop; an earlier one waits for the syncs upstream, then runs again. */
  private async endOnce(pace: Pace, counts: boolean): Promise<boolean | undefined> {
    if (counts) return true;
    await this.upstream;
    pace.upstreamDone = true;
    return undefined;
  }

  /** A failed run: retried after a jittered, growing delay (at once after a lost race); --once gives up on what a retry will not fix. */
  private async afterFailed(pace: Pace, e: unknown, kicks: KickRequest[], t0: number): Promise<boolean | undefined> {
    pace.failures++;
    this.hooks.onRun(this.ctx.sync.name, null, e);
    const retryable = isRetryable(e);
    const giveUp = this.once && (!retryable || pace.failures >= ONCE_ATTEMPTS);
    const retryMs = giveUp ? null : isContention(e) && pace.failures <= IMMEDIATE_RETRIES ? 0 : backoffMs(pace.failures, this.once ? 5_000 : RETRY_CAP_MS);
    const code = e instanceof RunError ? e.code : 'run_failed';
    this.hooks.log({
      event: 'run_failed',
      level: 'error',
      sync: this.ctx.sync.name,
      runId: e instanceof RunError ? e.runId : '',
      error: (e instanceof Error ? e.message : describePgError(e)) + (e instanceof RunError && e.hint ? ` (hint: ${e.hint})` : ''),
      code,
      retryMs,
      durationMs: Date.now() - t0,
    });
    if (kicks.length) this.hooks.replyKicks(this.ctx, kicks, false, e instanceof Error ? e.message : String(e));
    if (giveUp) return false;
    this.state = 'waiting';
    await this.sleep(retryMs, false);
    return undefined;
  }

  private logRun(r: RunResult): void {
    this.hooks.log({ event: 'run', level: 'info', result: r });
    const recs = r.conflictRecords ?? [];
    for (const c of recs.slice(0, CONFLICT_LOG_CAP)) this.hooks.log({ event: 'conflict', level: 'warn', sync: r.sync, conflict: c });
    if (r.conflicts > CONFLICT_LOG_CAP) this.hooks.log({ event: 'conflicts_more', level: 'warn', sync: r.sync, more: r.conflicts - CONFLICT_LOG_CAP });
  }
}
