/**
 * Database entries of other engines (SPEC section 7): `type: sqlite` with a `path`,
 * `type: mariadb` and `type: redis` with a URL or discrete server fields. Each engine
 * accepts only its own fields, so a PostgreSQL field left on such an entry (or a SQLite
 * path on a server) is an error at that key rather than something silently ignored.
 */
import nodePath from 'node:path';
import type { BuildContext } from './build.js';
import { formatPath, type Path } from './source.js';
import type { ForeignDatabaseSpec, ServerConnectionSpec } from './types.js';

type Obj = Record<string, unknown>;

/** Every key a database entry may have; each engine takes some of them. */
const ALL_KEYS = ['url', 'host', 'port', 'dbname', 'user', 'password', 'sslmode', 'makedelta', 'path', 'database', 'db'] as const;

const ENGINES = {
  sqlite: { keys: ['path'], schemes: [], fields: 'type and path' },
  mariadb: {
    keys: ['url', 'host', 'port', 'user', 'password', 'database'],
    schemes: ['mysql:', 'mariadb:'],
    fields: 'url, or host, port, user, password and database',
  },
  redis: { keys: ['url', 'host', 'port', 'db', 'password'], schemes: ['redis:', 'rediss:'], fields: 'url, or host, port, db and password' },
} as const;

export function buildForeignDatabase(name: string, o: Obj, path: Path, ctx: BuildContext): ForeignDatabaseSpec | undefined {
  const type = o.type;
  if (type !== 'sqlite' && type !== 'mariadb' && type !== 'redis') return undefined; // the schema reported it
  const engine = ENGINES[type];
  for (const k of ALL_KEYS) {
    if (k in o && !(engine.keys as readonly string[]).includes(k))
      ctx.report([...path, k], 'key', `database "${name}" is a ${type} database: ${k} has no meaning there`, `a ${type} database has ${engine.fields}`);
  }
  const pos = ctx.pos(path, 'key');
  if (type === 'sqlite') {
    const rel = typeof o.path === 'string' ? o.path : undefined;
    if (!rel) {
      ctx.report(path, 'key', `database "${name}" is a sqlite database without a path`, 'give path: the database file, relative to the topology file');
      return undefined;
    }
    return { name, type, path: nodePath.resolve(nodePath.dirname(nodePath.resolve(ctx.file)), rel), pos };
  }
  const server = buildServer(name, type, o, path, ctx);
  if (!server) return undefined;
  return { name, type, path: '', server, pos };
}

function buildServer(name: string, type: 'mariadb' | 'redis', o: Obj, path: Path, ctx: BuildContext): ServerConnectionSpec | undefined {
  const s: ServerConnectionSpec = {};
  for (const k of ['url', 'host', 'user', 'password', 'database'] as const) if (typeof o[k] === 'string') s[k] = o[k] as string;
  const port = asNumber(o.port);
  if (port !== undefined) {
    if (port >= 1 && port <= 65535) s.port = port;
    else ctx.report([...path, 'port'], 'value', `${formatPath(path)}.port must be a port number from 1 to 65535`);
  }
  const db = asNumber(o.db);
  if (db !== undefined) s.db = db;
  const schemes = ENGINES[type].schemes as readonly string[];
  let url: URL | undefined;
  if (s.url !== undefined) {
    try {
      url = new URL(s.url);
    } catch {}
    if (!url || !schemes.includes(url.protocol)) {
      // Not echoed: a URL may carry a password.
      ctx.report(
        [...path, 'url'],
        'value',
        `database "${name}": url is not a valid ${schemes.map((p) => `${p}//`).join(' or ')} URL`,
        type === 'mariadb' ? 'write mysql://user:password@host:3306/database' : 'write redis://:password@host:6379/0',
      );
      return undefined;
    }
  }
  if (type === 'mariadb' && !s.database && !(url && url.pathname.length > 1)) {
    ctx.report(
      path,
      'key',
      `database "${name}" is a mariadb database without a database`,
      'give database: the MariaDB/MySQL database that holds the tables (or end the url with /database)',
    );
    return undefined;
  }
  if (type === 'redis' && url && url.pathname.length > 1 && !/^\/[0-9]{1,5}$/.test(url.pathname)) {
    ctx.report([...path, 'url'], 'value', `database "${name}": the url's path must be a database number (redis://host:6379/0)`);
    return undefined;
  }
  return s;
}

/** A number given as one, or as a string of digits (so ${env:...} can supply it). */
function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^[0-9]+$/.test(v)) return Number(v);
  return undefined;
}
