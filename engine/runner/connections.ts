/**
 * The connections of one sync, kept open between runs (a run is a few dozen round trips;
 * opening connections each time would cost more than the run): per source a read
 * connection (the REPEATABLE READ snapshot) and, per database, a write connection, and
 * where a run leaves work behind, a maintenance connection. Any failure in a run closes
 * them all; the next run connects again.
 */
import os from 'node:os';
import type pg from 'pg';
import { connect } from '../connect.js';
import type { DatabaseSpec } from '../topology/types.js';
import { sessionMemorySql, clientCheckIntervalSql } from './sql/session.js';

/**
 * read: a source's REPEATABLE READ snapshot; write: each database's apply transaction;
 * maintain: what a run leaves behind (purge, ANALYZE after a copy), on a connection of its
 * own so that it never holds up the next run.
 */
export type Role = 'read' | 'write' | 'maintain';
export const ROLES: Role[] = ['read', 'write', 'maintain'];

/** A runner process, as status names it: the machine and the process id. */
export interface RunnerIdentity {
  host: string;
  pid: number;
}

/** This process. */
export function thisRunner(): RunnerIdentity {
  return { host: os.hostname(), pid: process.pid };
}

/** The server keeps this many bytes of an application_name. */
const APP_NAME_BYTES = 63;

/**
 * application_name of a runner's connection for a sync: `bucardo:SYNC:ROLE:PID@HOST`.
 * `bucardo status` finds a runner's sessions by the `bucardo:SYNC:ROLE` prefix and reads
 * who holds the sync's lock from the rest (pg_stat_activity is the only place another
 * session sees it: the metadata layout stays as it is). What does not fit in 63 bytes is
 * left off whole, never cut: a cut host name would name another machine.
 */
export function runnerAppName(sync: string, role: Role, who: RunnerIdentity = thisRunner()): string {
  const base = runnerAppPrefix(sync, role);
  for (const name of [`${base}:${who.pid}@${who.host}`, `${base}:${who.pid}`]) {
    if (Buffer.byteLength(name, 'utf8') <= APP_NAME_BYTES) return name;
  }
  return base;
}

/** What every runner's application_name for (sync, role) starts with. */
export function runnerAppPrefix(sync: string, role: Role): string {
  return `bucardo:${sync}:${role}`;
}

/** The runner named in an application_name made by runnerAppName (host null: it did not fit); null: none named. */
export function parseRunnerAppName(name: string): { host: string | null; pid: number } | null {
  const m = /^bucardo:[^:]+:[a-z]+:(\d+)(?:@(.+))?$/.exec(name);
  return m ? { pid: Number(m[1]), host: m[2] ?? null } : null;
}

/** Session memory of runner connections (per connection; a sync has 1-2 per database). */
const SESSION_TEMP_BUFFERS = '64MB';
const SESSION_WORK_MEM = '64MB';
const CLIENT_CHECK_INTERVAL = '1s';

export class SyncConnections {
  private clients = new Map<string, pg.Client>();
  private broken = new WeakSet<pg.Client>();
  private connecting = new Map<string, Promise<pg.Client>>();
  private deferred = new Set<Promise<void>>();

  /** `onDeferredError`: told of each failure of deferred work (which is otherwise ignored). */
  constructor(
    private readonly sync: string,
    private readonly onDeferredError: (e: unknown) => void = () => {},
  ) {}

  /**
   * An open client for (database, role); connects on first use. Callers that ask at the
   * same time share one connection attempt (a deferred purge and a deferred ANALYZE may
   * both want a database's maintenance connection).
   */
  get(db: DatabaseSpec, role: Role): Promise<pg.Client> {
    const k = `${role}\u0000${db.name}`;
    const c = this.clients.get(k);
    if (c && !this.broken.has(c)) return Promise.resolve(c);
    let p = this.connecting.get(k);
    if (!p) {
      p = this.open(db, role, c).then(
        (fresh) => {
          this.connecting.delete(k);
          this.clients.set(k, fresh);
          return fresh;
        },
        (e) => {
          this.connecting.delete(k);
          throw e;
        },
      );
      this.connecting.set(k, p);
    }
    return p;
  }

  private async open(db: DatabaseSpec, role: Role, old: pg.Client | undefined): Promise<pg.Client> {
    if (old) await old.end().catch(() => {});
    const fresh = await connect(db, runnerAppName(this.sync, role));
    // Runs hold changed keys and rows in temp tables and join them by hash: give them room
    // (temp_buffers must be set before the session's first temp table). Measured on 1M
    // changed rows (1 source, 1 target, 2 cores) the first run went from 12.1 s to 8.7 s.
    await fresh.query(sessionMemorySql(SESSION_TEMP_BUFFERS, SESSION_WORK_MEM)).catch(() => {});
    // A runner that dies mid-statement (SIGKILL, OOM) must not keep its run's fence and
    // locks until that statement ends: the server checks the client's socket this often
    // while a statement runs (PostgreSQL 14+; an older server has no such check).
    await fresh.query(clientCheckIntervalSql(CLIENT_CHECK_INTERVAL)).catch(() => {});
    fresh.on('error', () => this.broken.add(fresh));
    fresh.on('end', () => this.broken.add(fresh));
    return fresh;
  }

  /** Connects every (database, role) pair in parallel, so an unreachable database fails fast. */
  async all(dbs: DatabaseSpec[], role: Role): Promise<Map<string, pg.Client>> {
    const out = new Map<string, pg.Client>();
    const cs = await Promise.all(dbs.map((d) => this.get(d, role)));
    for (const [i, d] of dbs.entries()) out.set(d.name, cs[i]);
    return out;
  }

  /**
   * Work a run leaves after its outcome is settled (the purge of consumed deltas, ANALYZE
   * after a copy), on the maintenance connections: the run reports without waiting for
   * it, the next run's work on the same maintenance connection queues behind it (a pg
   * client runs its queries in order), and closeAll waits for it, so neither --once nor a
   * stop cuts it short. A failure is reported (onDeferredError) and otherwise ignored: the
   * next run does the same work again.
   */
  defer(work: Promise<unknown>): void {
    const p: Promise<void> = work
      .then(
        () => {},
        (e) => this.onDeferredError(e),
      )
      .finally(() => this.deferred.delete(p));
    this.deferred.add(p);
  }

  /**
   * Closes every connection: the run's own first (which rolls back whatever they hold:
   * deferred work may be waiting for one of their locks, an ANALYZE for a TRUNCATE's),
   * then, once the deferred work is done, the maintenance ones, including any it opened.
   */
  async closeAll(): Promise<void> {
    await this.endWhere((role) => role !== 'maintain');
    await Promise.all([...this.deferred]);
    await this.endWhere(() => true);
  }

  private async endWhere(pick: (role: Role) => boolean): Promise<void> {
    const picked = ([k]: [string, unknown]) => pick(k.slice(0, k.indexOf('\u0000')) as Role);
    await Promise.all([...this.connecting].filter(picked).map(([, p]) => p.catch(() => null)));
    const doomed = [...this.clients].filter(picked);
    for (const [k] of doomed) this.clients.delete(k);
    await Promise.all(doomed.map(([, c]) => c.end().catch(() => {})));
  }
}
