/**
 * One run of one sync, whatever its kind (docs/protocol.md, steps 1 and 12): fence the
 * run in every database of the sync (busy: another runner has it; skip), read every
 * database's state in its fenced transaction, derive the run's scope, run. A failure
 * rolls everything back (the sync's connections are closed, which is also what makes a
 * half-done run impossible to commit) and is recorded in the `run` table of every
 * database that can still be reached. A sync with hooks (custom/hooks.ts) calls
 * before_sync once the state is read (it may skip the run), after_sync once it committed,
 * and on_error after a failure, which may have the run redone once.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { SyncContext } from './context.js';
import type { SyncConnections } from './connections.js';
import type { DatabaseState, RunResult } from './types.js';
import { readDatabaseState } from './sql/prepare.js';
import { fenceSql } from './sql/fence.js';
import { makeRunScope } from './scope.js';
import { runDelta } from './delta.js';
import { runFullcopy } from './fullcopy.js';
import { openReceivers, scopeReceivers } from './foreign.js';
import { failedRunSql } from './sql/state.js';
import { ROLLBACK_SQL } from './sql/transaction.js';
import { skippedRunSql } from './sql/custom.js';
import { makeRunHooks, type RunHooks } from './custom/hooks.js';
import type { LogEntry } from './log.js';
import { withClient } from '../connect.js';
import { BucardoError, describePgError } from '../errors.js';
import { SQLSTATE } from '../sqlstate.js';

/** skipped: before_sync vetoed the run (custom/hooks.ts); nothing was consumed. */
export type RunOutcome = { kind: 'done'; result: RunResult } | { kind: 'busy' } | { kind: 'skipped'; runId: string; reason: string };

/** A run that failed, with what to show and record. */
export class RunError extends BucardoError {
  constructor(
    readonly sync: string,
    readonly runId: string,
    readonly started: Date,
    cause: unknown,
  ) {
    const missing = ([SQLSTATE.undefined_table, SQLSTATE.invalid_schema_name, SQLSTATE.undefined_column, SQLSTATE.undefined_function] as string[]).includes(
      String((cause as { code?: unknown })?.code),
    );
    super(
      cause instanceof BucardoError ? cause.code : 'run_failed',
      cause instanceof BucardoError ? cause.message : `sync ${sync} failed: ${describePgError(cause)}`,
      {
        cause,
        hint:
          cause instanceof BucardoError
            ? cause.hint
            : missing
              ? 'an object the run needs is missing: run bucardo plan to see the drift, then bucardo apply'
              : undefined,
        details: cause instanceof BucardoError ? cause.details : undefined,
      },
    );
  }
}

/** How many times in a row a run starts again because a table it touches was altered as it started. */
const DETAILS_RESTARTS = 3;

export async function runSyncOnce(ctx: SyncContext, conns: SyncConnections, runner: string, log: (e: LogEntry) => void = () => {}): Promise<RunOutcome> {
  const runId = randomUUID();
  const started = new Date();
  const hooks = makeRunHooks(ctx, runId, log);
  let retried = false;
  for (let restarts = 0; ; ) {
    try {
      const outcome = await attemptRun(ctx, conns, runner, runId, started, hooks);
      if (outcome.kind === 'done') await hooks?.afterSync(outcome.result, conns);
      return outcome;
    } catch (e) {
      // closing the connections rolls back whatever is open and frees the fence
      await conns.closeAll();
      // a table the run touches was altered as it started: again at once, with the new
      // definition (sql/prepare.ts); not a failure, unless the table keeps changing
      if (e instanceof BucardoError && e.code === 'details_changed' && restarts++ < DETAILS_RESTARTS) continue;
      // on_error may repair the data and ask for the run again, once (custom/hooks.ts)
      if (hooks && !retried && (await hooks.onError(e, conns))) {
        retried = true;
        continue;
      }
      // recorded even when the fence was never taken (a database is down): the other
      // databases of the sync then show the failure in `bucardo status`
      await recordFailure(ctx, runId, started, runner, e);
      throw new RunError(ctx.sync.name, runId, started, e);
    }
  }
}

/** Steps 1 to 11 once: the fence, before_sync, the run of the sync's kind. */
async function attemptRun(ctx: SyncContext, conns: SyncConnections, runner: string, runId: string, started: Date, hooks: RunHooks | null): Promise<RunOutcome> {
  const fenced = await fence(ctx, conns);
  if (!fenced) return { kind: 'busy' };
  const { writers, states } = fenced;
  const scope = makeRunScope(ctx, states);
  // targets of other engines: opened under the fence, released whatever happens (foreign.ts)
  const receivers = ctx.foreign.length ? await openReceivers(ctx) : undefined;
  try {
    if (receivers) await scopeReceivers(ctx, states, scope, receivers);
    const skip = await hooks?.beforeSync(writers);
    if (skip) {
      await Promise.all([...writers.values()].map((w) => w.query(ROLLBACK_SQL)));
      await recordSkip(ctx, writers, runId, started, runner, skip);
      return { kind: 'skipped', runId, reason: skip };
    }
    const inputs = { ctx, conns, scope, states, writers, runId, started, runner, receivers };
    const result = ctx.sync.kind === 'fullcopy' ? await runFullcopy(inputs) : await runDelta(inputs);
    return { kind: 'done', result };
  } finally {
    await receivers?.close();
  }
}

/** A run that before_sync skipped, recorded (outside any transaction: the run's rolled back) where it can be; status shows its reason. */
async function recordSkip(ctx: SyncContext, writers: Map<string, pg.Client>, runId: string, started: Date, runner: string, reason: string): Promise<void> {
  await Promise.all(
    [...writers.values()].map((w) => w.query(skippedRunSql(ctx.schema), [runId, ctx.sync.name, started.toISOString(), reason, runner]).catch(() => {})),
  );
}

/**
 * Step 1: every database's write transaction takes the sync's lock, or nobody runs (null:
 * busy, every transaction rolled back); then each database's state, read under the fence,
 * where no other run can change it until this one ends. The write transactions stay open
 * for the whole run: commit.ts ends them, or, on a failure, closing the connections does.
 */
async function fence(ctx: SyncContext, conns: SyncConnections): Promise<{ writers: Map<string, pg.Client>; states: Map<string, DatabaseState> } | null> {
  const writers = await conns.all(ctx.databases, 'write');
  const locked = await Promise.all(
    ctx.databases.map(async (d) => {
      const res = (await writers.get(d.name)!.query(fenceSql(ctx.lockKey))) as unknown as pg.QueryResult<{ ok: boolean }>[];
      return res[1].rows[0].ok;
    }),
  );
  if (!locked.every(Boolean)) {
    await Promise.all([...writers.values()].map((w) => w.query(ROLLBACK_SQL)));
    return null;
  }
  const states = new Map<string, DatabaseState>();
  await Promise.all(
    ctx.databases.map(async (d) => {
      states.set(d.name, await readDatabaseState(writers.get(d.name)!, d.name, ctx.schema, ctx.sync.name, ctx.sequences, ctx.renamedOn(d.name)));
    }),
  );
  return { writers, states };
}

/** Step 12: writes the failed run into every reachable database of the sync (best effort, short timeouts). */
async function recordFailure(ctx: SyncContext, runId: string, started: Date, runner: string, e: unknown): Promise<void> {
  const message = e instanceof BucardoError ? e.message : describePgError(e);
  await Promise.all(
    ctx.databases.map((d) =>
      withClient(d, (c) => c.query(failedRunSql(ctx.schema), [runId, ctx.sync.name, started.toISOString(), message, runner]), 'bucardo:history').catch(
        () => {},
      ),
    ),
  );
}
