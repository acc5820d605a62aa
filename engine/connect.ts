/**
 * Connections to the topology's databases. Every session bucardo opens gets the same
 * fixed settings, so values travel as exact text whatever the server's or database's
 * defaults are (TimeZone, DateStyle, IntervalStyle, extra_float_digits, client_encoding),
 * and so that no server default meant for applications changes what bucardo does:
 *
 * - jit=off: a run is dozens of short statements, and a plan over a partitioned table can
 *   cross jit_above_cost: Debian's PostgreSQL JIT-compiled the runner's join over a
 *   55-partition table on every run, 0.8-1.2 s per run instead of under 1 ms (issue 10).
 * - statement_timeout=0, lock_timeout=0, idle_in_transaction_session_timeout=0: a
 *   timeout tuned for web requests must not cut a large copy, and a run's read transaction
 *   idles while the run works on other databases (the runner sets its own lock waits).
 * - row_security=off: a replication session must read every row; with a policy in the way
 *   PostgreSQL then fails the query instead of silently leaving rows out.
 */
import pg from 'pg';
import type { DatabaseSpec, ConnectionSpec } from './topology/types.js';
import { BucardoError, describePgError } from './errors.js';

/** Session settings for every bucardo connection. */
export const SESSION_OPTIONS = [
  '-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3 -c client_encoding=UTF8',
  '-c jit=off -c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0 -c row_security=off',
].join(' ');

/** Connection settings for pg, from a URL or the discrete fields; libpq's env/pgpass rules for what is absent. */
export function clientConfig(db: DatabaseSpec, applicationName = 'bucardo'): pg.ClientConfig {
  const c = db.connection;
  const cfg: pg.ClientConfig = c.url ? parseUrl(c.url) : {};
  if (c.host !== undefined) cfg.host = c.host;
  if (c.port !== undefined) cfg.port = c.port;
  if (c.dbname !== undefined) cfg.database = c.dbname;
  if (c.user !== undefined) cfg.user = c.user;
  if (c.password !== undefined) cfg.password = c.password;
  const sslmode = c.sslmode ?? (cfg as { sslmode?: string }).sslmode;
  delete (cfg as { sslmode?: string }).sslmode;
  if (sslmode && sslmode !== 'disable' && sslmode !== 'allow' && sslmode !== 'prefer') {
    cfg.ssl = sslmode === 'require' ? { rejectUnauthorized: false } : { rejectUnauthorized: true };
  }
  cfg.host ??= process.env.PGHOST ?? 'localhost';
  cfg.port ??= process.env.PGPORT ? Number(process.env.PGPORT) : 5432;
  cfg.user ??= process.env.PGUSER ?? process.env.USER ?? 'postgres';
  cfg.database ??= process.env.PGDATABASE ?? cfg.user;
  // absent password: pg reads PGPASSWORD, then ~/.pgpass (PGPASSFILE) itself
  cfg.options = SESSION_OPTIONS;
  cfg.application_name = applicationName;
  cfg.connectionTimeoutMillis ??= 10_000;
  cfg.keepAlive = true;
  return cfg;
}

function parseUrl(url: string): pg.ClientConfig & { sslmode?: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new BucardoError('bad_url', `the database URL ${redactUrl(url)} is not a valid postgres:// URI`);
  }
  const out: pg.ClientConfig & { sslmode?: string } = {};
  if (u.hostname) out.host = decodeURIComponent(u.hostname.replace(/^\[|\]$/g, ''));
  if (u.port) out.port = Number(u.port);
  if (u.username) out.user = decodeURIComponent(u.username);
  if (u.password) out.password = decodeURIComponent(u.password);
  const db = u.pathname.replace(/^\//, '');
  if (db) out.database = decodeURIComponent(db);
  const host = u.searchParams.get('host');
  if (host) out.host = host;
  const sslmode = u.searchParams.get('sslmode');
  if (sslmode) out.sslmode = sslmode;
  return out;
}

/** The URL with its password replaced by *****; safe to print. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)([^@]*)@/i, '$1*****@').replace(/([?&]password=)[^&]*/gi, '$1*****');
}

/** user@host:port/dbname of a database; never the password. */
export function describeDatabase(db: DatabaseSpec): string {
  const c: ConnectionSpec = db.connection;
  if (c.url) {
    try {
      const p = parseUrl(c.url);
      return `${p.user ? `${p.user}@` : ''}${c.host ?? p.host ?? 'localhost'}:${c.port ?? p.port ?? 5432}/${c.dbname ?? p.database ?? ''}`;
    } catch {
      return redactUrl(c.url);
    }
  }
  return `${c.user ? `${c.user}@` : ''}${c.host ?? 'localhost'}:${c.port ?? 5432}/${c.dbname ?? ''}`;
}

/** Any password-looking text removed from a message (belt and braces for error paths). */
export function redactSecrets(text: string, secrets: (string | undefined)[] = []): string {
  let s = text.replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)([^@\s]*)@/gi, '$1*****@');
  for (const secret of secrets) if (secret && secret.length >= 3) s = s.split(secret).join('*****');
  return s;
}

/** Opens a connection; a failure becomes one sentence naming the database. */
export async function connect(db: DatabaseSpec, applicationName = 'bucardo'): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(db, applicationName));
  client.on('error', () => {
    /* reported by the query that fails */
  });
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => {});
    throw new BucardoError(
      'unreachable',
      `cannot connect to database ${db.name} (${describeDatabase(db)}): ${redactSecrets(describePgError(e), [db.connection.password])}`,
      {
        hint: 'check that the server is up and the connection settings in the topology are right',
        cause: e,
      },
    );
  }
  return client;
}

/** Runs fn with a connection that is always closed afterwards. */
export async function withClient<T>(db: DatabaseSpec, fn: (c: pg.Client) => Promise<T>, applicationName = 'bucardo'): Promise<T> {
  const c = await connect(db, applicationName);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** How a transaction of withTransaction begins. */
export const BEGIN = {
  write: 'BEGIN',
  /** One consistent view of the catalog or the data, changing nothing. */
  snapshot: 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
} as const;

/**
 * fn inside a transaction on `c`: COMMIT when it returns, ROLLBACK when it throws (the
 * error is rethrown; a failed ROLLBACK, on a broken connection, is not the error to show).
 * Not for transactions that span several steps (the runner's fenced writes, its read
 * snapshots) nor around a COPY stream: a failed COPY leaves the connection unable to
 * answer a ROLLBACK (engine/runner/sql/transaction.ts).
 */
export async function withTransaction<T>(c: pg.Client, begin: (typeof BEGIN)[keyof typeof BEGIN], fn: (c: pg.Client) => Promise<T>): Promise<T> {
  await c.query(begin);
  let result: T;
  try {
    result = await fn(c);
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  }
  await c.query('COMMIT');
  return result;
}
