/**
 * Plans and applies a topology against its databases.
 *
 * apply, per database, in one transaction each:
 *   BEGIN; advisory lock (topology-wide key, waits up to LOCK_WAIT, then fails clearly);
 *   re-read the catalog under the lock and re-plan (a concurrent apply that got there first
 *   leaves nothing to do, so two applies end consistent); run each change's statements
 *   with a short lock_timeout (DDL on a busy table must not queue every writer behind it);
 *   then COMMIT every database in turn. Any failure before the commits rolls back all.
 * Locks are taken in a fixed order (sorted database names) so two applies cannot deadlock.
 */
import type pg from 'pg';
import type { Topology } from '../topology/types.js';
import type { Change, Plan } from '../planner/types.js';
import { computePlan, syncedDatabases, type CatalogResult } from '../planner/plan.js';
import { readCatalog } from '../catalog/read.js';
import { connect, withTransaction, BEGIN } from '../connect.js';
import { BucardoError, describePgError } from '../errors.js';
import { LOCK_NAMESPACE, schemaName } from '../objectnames.js';
import { toStatements } from '../sql/steps.js';
import { SQLSTATE } from '../sqlstate.js';
import { planForeignTargets, executeForeignChange } from './foreign.js';

/** How long apply waits for another apply/destroy of the same topology on a database. */
export const LOCK_WAIT = '60s';
/** How long one DDL statement may wait for a table lock before apply gives up. */
export const DDL_LOCK_TIMEOUT = '15s';

/** Why a database could not be read, as a plan problem (the planner makes it an error or a warning). */
function unreadable(name: string, e: unknown): CatalogResult {
  const message = e instanceof BucardoError ? e.message : `reading the catalog of database ${name} failed: ${describePgError(e)}`;
  return { ok: false, error: { code: 'unreachable', database: name, message, hint: e instanceof BucardoError ? e.hint : undefined } };
}

/** Reads every database's catalog in parallel, those in no sync too (what was installed there must go). */
export async function readCatalogs(topology: Topology, names = [...topology.databases.keys()]): Promise<Map<string, CatalogResult>> {
  const results = await Promise.all(
    names.map(async (name): Promise<[string, CatalogResult]> => {
      const db = topology.databases.get(name)!;
      let c: pg.Client | null = null;
      try {
        c = await connect(db, 'bucardo plan');
        const catalog = await withTransaction(c, BEGIN.snapshot, (tx) => readCatalog(tx, name, topology.name));
        return [name, { ok: true, catalog }];
      } catch (e) {
        return [name, unreadable(name, e)];
      } finally {
        await c?.end().catch(() => {});
      }
    }),
  );
  return new Map(results);
}

/** Reads every catalog (I/O), then plans with the pure computePlan. */
export async function readCatalogsAndPlan(topology: Topology, opts: { destroy?: boolean } = {}): Promise<Plan> {
  const results = await readCatalogs(topology);
  const plan = computePlan(topology, results, opts);
  if (!opts.destroy) await planForeignTargets(topology, results, plan);
  return plan;
}

/** The advisory lock of apply/destroy for one topology (second key from the name). */
const LOCK_SQL = `SELECT pg_advisory_xact_lock($1::int, hashtext($2))`;

export interface ApplySession {
  /** The changes to make, computed under the locks, in execution order. */
  changes: Change[];
  /** Databases with a transaction open (changes or not). */
  databases: string[];
  /** Set when the plan had to be recomputed because the databases changed since it was shown. */
  replanned: boolean;
  execute(change: Change): Promise<void>;
  commit(database: string): Promise<void>;
  rollbackAll(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenOptions {
  destroy?: boolean;
  /** From a plan file: refuse unless every database still has exactly these fingerprints. */
  expectedFingerprints?: Record<string, string>;
  /** The plan that was shown and approved; with autoApprove false, a different fresh plan is refused. */
  shown?: Plan;
  autoApprove?: boolean;
  /** The topology file as given, recorded in meta. */
  file?: string;
}

const changeKey = (c: Change) => `${c.database}\u0000${c.action}\u0000${c.object}`;

/**
 * Connects to every database, locks, re-reads and re-plans under the locks, and returns a
 * session that executes the changes. Throws (after rolling back) when the plan has errors
 * or the state differs from a plan file's. A database in no sync that cannot be reached is
 * left out (the plan warns about it): no sync needs it.
 */
export async function openApply(topology: Topology, opts: OpenOptions = {}): Promise<ApplySession> {
  const names = [...topology.databases.keys()].sort();
  const synced = syncedDatabases(topology);
  const results = new Map<string, CatalogResult>();
  const clients = new Map<string, pg.Client>();
  const closeAll = async () => {
    await Promise.all([...clients.values()].map((c) => c.end().catch(() => {})));
    clients.clear();
  };
  const rollbackAll = async () => {
    await Promise.all([...clients.values()].map((c) => c.query('ROLLBACK').catch(() => {})));
  };
  try {
    for (const name of names) {
      let c: pg.Client;
      try {
        c = await connect(topology.databases.get(name)!, opts.destroy ? 'bucardo destroy' : 'bucardo apply');
      } catch (e) {
        if (synced.has(name)) throw e;
        results.set(name, unreadable(name, e));
        continue;
      }
      clients.set(name, c);
      await beginLocked(c, topology.name, name);
    }
    // one connection each: read every catalog at once
    await Promise.all([...clients].map(async ([name, c]) => results.set(name, { ok: true, catalog: await readCatalog(c, name, topology.name) })));
    const plan = computePlan(topology, results, { destroy: opts.destroy });
    if (!opts.destroy) await planForeignTargets(topology, results, plan);
    if (plan.errors.length) {
      throw new BucardoError('plan_errors', plan.errors.map((e) => e.message + (e.hint ? ` (${e.hint})` : '')).join('\n'), {
        hint: 'fix these, then run plan again',
      });
    }
    let replanned = false;
    if (opts.expectedFingerprints) {
      assertFingerprints(plan, opts.expectedFingerprints);
    } else if (opts.shown && !sameChanges(opts.shown, plan)) {
      replanned = true;
      if (!opts.autoApprove) {
        throw new BucardoError('stale_plan', 'the databases changed between the plan shown and its approval; nothing was changed', {
          hint: 'run apply again to see the current plan',
        });
      }
    }
    return {
      changes: plan.changes,
      databases: [...clients.keys()],
      replanned,
      async execute(change) {
        if (await executeForeignChange(topology, change)) return;
        await executeChange(clients.get(change.database)!, change);
      },
      async commit(database) {
        await commitDatabase(clients.get(database)!, database, topology, plan, opts);
      },
      rollbackAll,
      close: closeAll,
    };
  } catch (e) {
    await rollbackAll();
    await closeAll();
    throw e;
  }
}

/** Opens the transaction of one database and takes the topology's advisory lock in it; then DDL waits DDL_LOCK_TIMEOUT at most. */
async function beginLocked(c: pg.Client, topologyName: string, name: string): Promise<void> {
  await c.query('BEGIN');
  await c.query(`SET LOCAL lock_timeout = '${LOCK_WAIT}'`);
  try {
    await c.query(LOCK_SQL, [LOCK_NAMESPACE, `apply:${topologyName}`]);
  } catch (e) {
    if ((e as { code?: string }).code === SQLSTATE.lock_not_available) {
      throw new BucardoError('apply_locked', `another bucardo apply or destroy of topology ${topologyName} has held database ${name} for over ${LOCK_WAIT}`, {
        hint: 'wait for it to finish, then run this command again',
      });
    }
    throw e;
  }
  await c.query(`SET LOCAL lock_timeout = '${DDL_LOCK_TIMEOUT}'`);
}

/** A plan file applies only to the databases it was made from: the same ones, each with the same fingerprint. */
function assertFingerprints(plan: Plan, expected: Record<string, string>): void {
  for (const [db, fp] of Object.entries(expected)) {
    if (plan.fingerprints[db] !== fp) {
      throw new BucardoError(
        'stale_plan',
        `database ${db} changed since the plan file was made, so the plan no longer describes what apply would do; nothing was changed`,
        {
          hint: 'run bucardo plan -o again, review it, and apply the new plan file',
        },
      );
    }
  }
  for (const db of Object.keys(plan.fingerprints)) {
    if (!(db in expected))
      throw new BucardoError('stale_plan', `the plan file does not cover database ${db}; nothing was changed`, { hint: 'run bucardo plan -o again' });
  }
}

/** Whether the plan made under the locks lists the same changes as the one shown for approval. */
function sameChanges(shown: Plan, plan: Plan): boolean {
  return shown.changes.map(changeKey).join('\n') === plan.changes.map(changeKey).join('\n');
}

/**
 * A change's statements in as few round trips as their parameters allow: consecutive
 * statements without parameters go as one multi-statement text (simple protocol), each
 * one with parameters on its own. A 1,000-table apply sends ~10 statements per table and
 * database; one round trip each spent more time in socket writes than in the DDL.
 */
export function batchStatements(statements: { text: string; values?: unknown[] }[]): { text: string; values?: unknown[] }[] {
  const out: { text: string; values?: unknown[] }[] = [];
  let plain: string[] = [];
  const flush = () => {
    if (plain.length) out.push({ text: plain.join(';\n') });
    plain = [];
  };
  for (const st of statements) {
    if (st.values?.length) {
      flush();
      out.push(st);
    } else plain.push(st.text);
  }
  flush();
  return out;
}

/** Runs one change's statements; a failure names the change (and a lock wait's likely cause). */
async function executeChange(c: pg.Client, change: Change): Promise<void> {
  for (const st of batchStatements(change.steps.flatMap(toStatements) as { text: string; values?: unknown[] }[])) {
    try {
      await c.query(st.text, st.values?.length ? st.values : undefined);
    } catch (e) {
      const code = (e as { code?: string }).code;
      const hint =
        code === SQLSTATE.lock_not_available
          ? `a long transaction holds a lock on that table; retry when it has finished (apply waits ${DDL_LOCK_TIMEOUT})`
          : undefined;
      throw new BucardoError('apply_failed', `${change.action} of ${change.object} on database ${change.database} failed: ${describePgError(e)}`, {
        hint,
        cause: e,
      });
    }
  }
}

/** Commits one database, recording last_apply in its meta first when it changed and its schema stays. */
async function commitDatabase(c: pg.Client, database: string, topology: Topology, plan: Plan, opts: OpenOptions): Promise<void> {
  const changed = plan.changes.some((ch) => ch.database === database);
  const schemaStays = !opts.destroy && !plan.changes.some((ch) => ch.database === database && ch.objectType === 'schema' && ch.action === 'destroy');
  if (changed && schemaStays) {
    for (const st of toStatements({
      kind: 'set_meta',
      schema: schemaName(topology.name),
      key: 'last_apply',
      value: JSON.stringify({ at: new Date().toISOString(), file: opts.file ?? null }),
    })) {
      await c.query(st.text, st.values);
    }
  }
  await c.query('COMMIT');
}
