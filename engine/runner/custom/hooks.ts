/**
 * A sync's hooks (SPEC section 6, docs/custom-code.md), called by run.ts around one run:
 *
 *   before_sync  after the fence, before the run reads anything pending; ctx.query runs in
 *                the run's own write transaction of that database (a savepoint around
 *                each statement). `{skip: "reason"}`: the run rolls back, nothing consumed.
 *   after_sync   after the run committed everywhere, with ctx.summary; ctx.query runs on
 *                the run's write connection, each statement committing on its own. A
 *                failure is logged: the run has committed.
 *   on_error     after a run failed and rolled back, with ctx.error; ctx.query runs in a
 *                fresh transaction per database that holds the sync's fence again, and
 *                those commit when the hook returns (roll back when it throws): a repair
 *                must be committed before the retry, whose reads see the sources through
 *                snapshots of their own. `{retry: true}`: run.ts redoes the run, once.
 *
 * Every hook gets at most userCodeTimeoutMs() (30 s); ctx.log lines go to the runner's log.
 */
import type pg from 'pg';
import type { SyncContext } from '../context.js';
import type { SyncConnections } from '../connections.js';
import type { LogEntry } from '../log.js';
import type { RunResult } from '../types.js';
import type { HooksSpec, ModuleRef } from '../../topology/types.js';
import { loadRegisteredFunction } from '../../topology/modules.js';
import { BucardoError, describePgError } from '../../errors.js';
import { callWithTimeout, describeUserError, UserCodeTimeout } from './call.js';
import { makeSummary, type RunSummary } from './summary.js';
import { fenceSql } from '../sql/fence.js';
import { HOOK_SAVEPOINT_SQL, HOOK_RELEASE_SQL, HOOK_UNDO_SQL } from '../sql/custom.js';
import { COMMIT_SQL, ROLLBACK_SQL } from '../sql/transaction.js';

export type HookName = keyof HooksSpec;

/** ctx.error of on_error. */
export interface HookError {
  message: string;
  /** bucardo's error code (constraint_violation, conflict_handler_failed...), or the SQLSTATE of a PostgreSQL error. */
  code: string;
  database: string | null;
  table: string | null;
  /** The keys at fault, where the run named them (a unique or foreign-key violation). */
  keys?: unknown[];
  constraint?: string;
}

/** The `ctx` argument of a hook. */
export interface HookContext {
  sync: string;
  run_id: string;
  log(message: unknown): void;
  query(database: string, sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;
  summary?: RunSummary;
  error?: HookError;
}

export interface RunHooks {
  /** before_sync in the run's write transactions: the reason to skip the run, or null. Throws when the hook fails. */
  beforeSync(writers: Map<string, pg.Client>): Promise<string | null>;
  /** after_sync; never throws. */
  afterSync(result: RunResult, conns: SyncConnections): Promise<void>;
  /** on_error (the run's connections are closed already); true: redo the run. Never throws. */
  onError(error: unknown, conns: SyncConnections): Promise<boolean>;
}

/** Statements that would end or split the transaction a hook's query runs in. */
const TRANSACTION_CONTROL = /^\s*(BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE|SET\s+TRANSACTION)\b/i;

/** What the hooks of one run share: the sync, the run, where their log lines go. */
interface HookRun {
  ctx: SyncContext;
  runId: string;
  say(hook: HookName, level: 'info' | 'warn', message: string): void;
}

/** The hooks of one run, or null when the sync has none (the run then does exactly what it did before hooks existed). */
export function makeRunHooks(ctx: SyncContext, runId: string, log: (e: LogEntry) => void): RunHooks | null {
  const refs = ctx.sync.hooks;
  if (!refs.before_sync && !refs.after_sync && !refs.on_error) return null;
  const sync = ctx.sync.name;
  const run: HookRun = { ctx, runId, say: (hook, level, message) => log({ event: 'hook', level, sync, hook, message }) };

  return {
    async beforeSync(writers) {
      if (!refs.before_sync) return null;
      const r = await callHook(run, 'before_sync', refs.before_sync, async (db) => writers.get(db)!, true, {});
      return skipReason(sync, refs.before_sync, r);
    },

    async afterSync(result, conns) {
      if (!refs.after_sync) return;
      const byName = new Map(ctx.databases.map((d) => [d.name, d]));
      try {
        await callHook(run, 'after_sync', refs.after_sync, (db) => conns.get(byName.get(db)!, 'write'), false, { summary: makeSummary(ctx, result) });
      } catch (e) {
        run.say('after_sync', 'warn', `${e instanceof Error ? e.message : String(e)} (the run itself committed)`);
      }
    },

    async onError(error, conns) {
      if (!refs.on_error) return false;
      return callOnError(run, refs.on_error, error, conns);
    },
  };
}

/** Calls one hook with a ctx whose query() goes through `clientFor`, usable only while the hook runs. */
async function callHook(
  run: HookRun,
  hook: HookName,
  ref: ModuleRef,
  clientFor: (db: string) => Promise<pg.Client>,
  savepoint: boolean,
  extra: Partial<HookContext>,
): Promise<unknown> {
  const sync = run.ctx.sync.name;
  const fn = await loadRegisteredFunction(ref, sync);
  let open = true;
  const hookCtx: HookContext = {
    sync,
    run_id: run.runId,
    log: (message) => run.say(hook, 'info', typeof message === 'string' ? message : describeUserError(message)),
    query: makeHookQuery(run.ctx, hook, clientFor, savepoint, () => open),
    ...extra,
  };
  try {
    return await callWithTimeout(fn, [hookCtx]);
  } catch (e) {
    const hint = 'fix the module, then run bucardo plan and bucardo apply (the runner runs only what apply registered); see docs/custom-code.md';
    const details = { hook, module: ref.path };
    if (e instanceof UserCodeTimeout)
      throw new BucardoError('hook_timeout', `sync ${sync}: hook ${hook} (${ref.path}) did not return within ${e.ms / 1000} s`, { cause: e, hint, details });
    throw new BucardoError('hook_failed', `sync ${sync}: hook ${hook} (${ref.path}) threw: ${describeUserError(e)}`, { cause: e, hint, details });
  } finally {
    open = false;
  }
}

/** ctx.query of one hook call: checked, and (with `savepoint`) each statement in a savepoint of the run's transaction. */
function makeHookQuery(
  ctx: SyncContext,
  hook: HookName,
  clientFor: (db: string) => Promise<pg.Client>,
  savepoint: boolean,
  isOpen: () => boolean,
): HookContext['query'] {
  const sync = ctx.sync.name;
  // statements a hook runs at the same time on one database go one after another, each in its own savepoint
  const queues = new Map<string, Promise<unknown>>();
  const inTurn = <T>(db: string, work: () => Promise<T>): Promise<T> => {
    const next = (queues.get(db) ?? Promise.resolve()).then(work, work);
    queues.set(
      db,
      next.catch(() => {}),
    );
    return next;
  };
  return async (database, sql, params = []) => {
    if (!isOpen()) throw new Error(`ctx.query: ${hook} has returned (or timed out); the run's connections are not the hook's any more`);
    if (!ctx.databases.some((d) => d.name === database))
      throw new Error(`ctx.query: database ${database} is not in sync ${sync} (${ctx.databases.map((d) => d.name).join(', ')})`);
    if (typeof sql !== 'string' || TRANSACTION_CONTROL.test(sql))
      throw new Error('ctx.query: give one SQL statement that does not begin or end a transaction (the run owns the transaction)');
    const c = await clientFor(database);
    if (!savepoint) return pick(await c.query(sql, params));
    // a failed statement must not leave the run's transaction aborted: the hook may catch it
    return inTurn(database, async () => {
      await c.query(HOOK_SAVEPOINT_SQL);
      try {
        const r = await c.query(sql, params);
        await c.query(HOOK_RELEASE_SQL);
        return pick(r);
      } catch (e) {
        await c.query(HOOK_UNDO_SQL).catch(() => {});
        throw e;
      }
    });
  };
}

/** before_sync's answer: the reason to skip the run, or null to go on; anything else is an error. */
function skipReason(sync: string, ref: ModuleRef, r: unknown): string | null {
  const skip = r && typeof r === 'object' ? (r as { skip?: unknown }).skip : undefined;
  if (skip === undefined || skip === null || skip === false) return null;
  if (typeof skip !== 'string' || !skip.trim()) {
    throw new BucardoError(
      'hook_invalid',
      `sync ${sync}: hook before_sync (${ref.path}) returned {skip: ${JSON.stringify(skip)}}: the reason to skip must be a non-empty string`,
      {
        hint: 'return {skip: "why"} to skip the run, or nothing to go on',
      },
    );
  }
  return skip;
}

/**
 * on_error, its queries in repair transactions opened on demand, which commit when it
 * returns (roll back when it throws). True: redo the run (it asked, and every repair committed).
 */
async function callOnError(run: HookRun, ref: ModuleRef, error: unknown, conns: SyncConnections): Promise<boolean> {
  const { ctx, runId, say } = run;
  const repairs = new Map<string, Promise<pg.Client>>();
  const clientFor = (db: string) => {
    let p = repairs.get(db);
    if (!p) {
      p = openRepair(ctx, conns, db);
      repairs.set(db, p);
    }
    return p;
  };
  let answer: unknown;
  let returned = false;
  try {
    answer = await callHook(run, 'on_error', ref, clientFor, true, { error: hookError(error) });
    returned = true;
  } catch (e) {
    say('on_error', 'warn', e instanceof Error ? e.message : String(e));
  }
  const ended = await Promise.all(
    [...repairs].map(async ([db, p]) => {
      try {
        await (await p).query(returned ? COMMIT_SQL : ROLLBACK_SQL);
        return true;
      } catch (e) {
        if (returned) say('on_error', 'warn', `the repair on database ${db} did not commit: ${describePgError(e)}`);
        return false;
      }
    }),
  );
  const retry = returned && ended.every(Boolean) && Boolean(answer && typeof answer === 'object' && (answer as { retry?: unknown }).retry === true);
  if (retry) say('on_error', 'info', `redoing run ${runId} once, as on_error asked`);
  return retry;
}

/** on_error's transaction on one database: fresh, holding the sync's fence (no other run starts meanwhile). */
async function openRepair(ctx: SyncContext, conns: SyncConnections, db: string): Promise<pg.Client> {
  const c = await conns.get(ctx.databases.find((d) => d.name === db)!, 'write');
  const res = (await c.query(fenceSql(ctx.lockKey))) as unknown as pg.QueryResult<{ ok: boolean }>[];
  if (!res[1].rows[0].ok) {
    await c.query(ROLLBACK_SQL);
    throw new Error(`ctx.query: another run of sync ${ctx.sync.name} holds database ${db} now`);
  }
  return c;
}

function pick(r: pg.QueryResult): { rows: Record<string, unknown>[]; rowCount: number | null } {
  return { rows: r.rows, rowCount: r.rowCount };
}

/** ctx.error from whatever the run threw. */
export function hookError(e: unknown): HookError {
  const be = e instanceof BucardoError ? e : null;
  const d = be?.details ?? {};
  const code = (e as { code?: unknown } | null)?.code;
  return {
    message: be ? be.message : e instanceof Error ? describePgError(e) : String(e),
    code: typeof code === 'string' ? code : 'run_failed',
    database: typeof d.database === 'string' ? d.database : null,
    table: typeof d.table === 'string' ? d.table : null,
    ...(Array.isArray(d.keys) ? { keys: d.keys } : {}),
    ...(typeof d.constraint === 'string' ? { constraint: d.constraint } : {}),
  };
}
