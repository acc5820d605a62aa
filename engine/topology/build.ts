/**
 * RawTopology (plain data from YAML, already checked against the schema, or not) ->
 * Topology: defaults filled in, names folded, durations parsed. It tolerates anything the
 * schema rejected (skipping it silently: the schema reported it), so that the semantic
 * checks still run and the user sees every problem of the file at once.
 */
import { BucardoError } from '../errors.js';
import { parseDuration, DURATION_EXAMPLES } from './duration.js';
import { assertIdentifierLength, exactGlob, isGlob, parseQualifiedName } from './relnames.js';
import { formatPath, type Path } from './source.js';
import { buildModuleRef } from './modules.js';
import { buildForeignDatabase } from './foreign.js';
import type {
  ConflictStrategy,
  ConnectionSpec,
  DatabaseSpec,
  DeleteMethod,
  HooksSpec,
  Isolation,
  OneTimeCopy,
  Pos,
  QualifiedName,
  RelgroupSpec,
  SyncSpec,
  TableEntry,
  TargetOverride,
  Topology,
} from './types.js';

/** The untrusted form: whatever the YAML held. */
export type RawTopology = unknown;

/** Every default of the format, in one place. */
const DEFAULTS = {
  name: 'main',
  runHistoryMs: 14 * 24 * 3600 * 1000,
  makedelta: false,
  kind: 'delta',
  conflict: { kind: 'latest' } as ConflictStrategy,
  onetimecopy: 'if_empty' as OneTimeCopy,
  autokick: true,
  checktimeMs: null,
  enabled: true,
  deletemethod: 'truncate' as DeleteMethod,
  strict: true,
  isolation: 'repeatable read' as Isolation,
  lockTables: false,
  analyzeAfterCopy: true,
  vacuumAfterCopy: false,
  rebuildIndex: false,
} as const;

export interface BuildContext {
  /** The topology file as given (module paths are relative to its folder). */
  file: string;
  report(path: Path, at: 'key' | 'value', message: string, hint?: string): void;
  pos(path: Path, at: 'key' | 'value'): Pos;
}

/** Where each built object came from, for the semantic checks' positions. */
export type Origins = WeakMap<object, Path>;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const bool = (v: unknown, d: boolean): boolean => (typeof v === 'boolean' ? v : d);
const oneOf = <T extends string>(v: unknown, allowed: readonly T[], d: T): T => (allowed.includes(v as T) ? (v as T) : d);
const entries = (v: unknown): [string, unknown][] => (isObj(v) ? Object.entries(v) : []);

export function buildTopology(raw: RawTopology, file: string, ctx: BuildContext): { topology: Topology; origins: Origins } {
  const origins: Origins = new WeakMap();
  const root = isObj(raw) ? raw : {};
  const name = str(root.name);
  const topology: Topology = {
    file,
    name: name !== undefined && /^[a-z][a-z0-9_]{0,39}$/.test(name) ? name : DEFAULTS.name,
    runHistoryMs: DEFAULTS.runHistoryMs,
    databases: new Map(),
    foreignDatabases: new Map(),
    relgroups: new Map(),
    syncs: new Map(),
  };
  if (typeof root.run_history === 'string' || typeof root.run_history === 'number') {
    const ms = parseDuration(root.run_history);
    if (ms === null) ctx.report(['run_history'], 'value', `run_history: ${JSON.stringify(root.run_history)} is not a duration`, DURATION_EXAMPLES);
    else if (ms < 60_000)
      ctx.report(
        ['run_history'],
        'value',
        `run_history: ${JSON.stringify(root.run_history)} is less than a minute`,
        'keep at least a few hours of run history: bucardo status and the conflict log read it',
      );
    else topology.runHistoryMs = ms;
  }
  for (const [db, v] of entries(root.databases)) {
    const type = isObj(v) ? v.type : undefined;
    if (type !== undefined && type !== 'postgres') {
      const spec = buildForeignDatabase(db, v as Obj, ['databases', db], ctx);
      if (spec) topology.foreignDatabases!.set(db, spec);
      continue;
    }
    const spec = buildDatabase(db, v, ['databases', db], ctx);
    origins.set(spec, ['databases', db]);
    topology.databases.set(db, spec);
  }
  for (const [g, v] of entries(root.relgroups)) {
    const spec = buildRelgroup(g, v, ['relgroups', g], ctx, origins);
    origins.set(spec, ['relgroups', g]);
    topology.relgroups.set(g, spec);
  }
  for (const [s, v] of entries(root.syncs)) {
    const spec = buildSync(s, v, ['syncs', s], ctx, origins);
    origins.set(spec, ['syncs', s]);
    topology.syncs.set(s, spec);
    splitForeignTargets(spec, topology, ['syncs', s], ctx);
  }
  return { topology, origins };
}

const SSLMODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;

function buildDatabase(name: string, v: unknown, path: Path, ctx: BuildContext): DatabaseSpec {
  const o = isObj(v) ? v : {};
  const c: ConnectionSpec = {};
  for (const k of ['url', 'host', 'dbname', 'user', 'password'] as const) {
    const s = str(o[k]);
    if (s !== undefined) c[k] = s;
  }
  const port = typeof o.port === 'string' && /^[0-9]+$/.test(o.port) ? Number(o.port) : o.port;
  if (typeof port === 'number' && Number.isInteger(port)) {
    if (port >= 1 && port <= 65535) c.port = port;
    else if (typeof o.port === 'string') ctx.report([...path, 'port'], 'value', `${formatPath(path)}.port must be a port number from 1 to 65535`);
  }
  if (SSLMODES.includes(o.sslmode as (typeof SSLMODES)[number])) c.sslmode = o.sslmode as ConnectionSpec['sslmode'];
  if (c.url !== undefined && !isPostgresUri(c.url)) {
    // Not echoed: a URL may carry a password.
    ctx.report(
      [...path, 'url'],
      'value',
      `database "${name}": url is not a valid postgres:// or postgresql:// URI`,
      'write postgres://user@host:port/dbname, percent-encoding special characters in the user and password',
    );
  }
  for (const k of ['path', 'database', 'db'] as const) {
    if (k in o)
      ctx.report(
        [...path, k],
        'key',
        `database "${name}" is a postgres database: ${k} belongs to another type`,
        'set type: sqlite for a SQLite file, mariadb or redis for those servers',
      );
  }
  // Only when nothing else was written: a typo'd key is reported as unknown, more helpfully.
  if (isObj(v) && Object.keys(v).every((k) => k === 'makedelta' || k === 'password' || k === 'sslmode')) {
    ctx.report(
      path,
      'key',
      `database "${name}" has no url, host or dbname: it would only reach libpq's default database`,
      'give a url, or host/port/dbname/user',
    );
  }
  return { name, connection: c, makedelta: bool(o.makedelta, DEFAULTS.makedelta), pos: ctx.pos(path, 'key') };
}

/**
 * A sync's targets of other engines move to foreignTargets (the PostgreSQL protocol never
 * sees them); such a database among the sources is an error at that entry, since it has
 * no capture of its own to send from.
 */
function splitForeignTargets(spec: SyncSpec, t: Topology, path: Path, ctx: BuildContext): void {
  spec.sources.forEach((db, i) => {
    const f = t.foreignDatabases?.get(db);
    if (f)
      ctx.report(
        [...path, 'sources', i],
        'value',
        `sync "${spec.name}" names database "${db}" (type ${f.type}) in sources: a ${f.type} database can only be a target`,
        'move it to targets',
      );
  });
  spec.sources = spec.sources.filter((db) => !t.foreignDatabases?.has(db));
  const foreign = spec.targets.filter((db) => t.foreignDatabases?.has(db));
  if (!foreign.length) return;
  spec.targets = spec.targets.filter((db) => !t.foreignDatabases?.has(db));
  spec.foreignTargets = foreign;
}

function isPostgresUri(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'postgres:' || u.protocol === 'postgresql:';
  } catch {
    return false;
  }
}

function buildRelgroup(name: string, v: unknown, path: Path, ctx: BuildContext, origins: Origins): RelgroupSpec {
  const o = isObj(v) ? v : {};
  const tables: TableEntry[] = [];
  const seen = new Map<string, number>();
  const rawTables = Array.isArray(o.tables) ? o.tables : [];
  rawTables.forEach((t, i) => {
    const entry = buildTableEntry(t, [...path, 'tables', i], ctx);
    if (!entry) return;
    origins.set(entry, [...path, 'tables', i]);
    if (entry.conflict) origins.set(entry.conflict, [...path, 'tables', i, 'conflict']);
    if (entry.kind === 'name') {
      const id = `${entry.table.schema}\0${entry.table.name}`;
      const first = seen.get(id);
      if (first !== undefined) {
        ctx.report(
          [...path, 'tables', i],
          'value',
          `relgroup "${name}" lists table ${display(entry.table)} twice (also entry ${first + 1})`,
          'keep one entry per table',
        );
      } else seen.set(id, i);
    }
    tables.push(entry);
  });
  const exclude: RelgroupSpec['exclude'] = [];
  (Array.isArray(o.exclude) ? o.exclude : []).forEach((e, i) => {
    if (typeof e !== 'string' || e === '') return;
    const p: Path = [...path, 'exclude', i];
    if (isGlob(e)) exclude.push({ pattern: e, pos: ctx.pos(p, 'value') });
    else {
      const q = parseName(e, p, 'table', ctx);
      if (q) exclude.push({ pattern: exactGlob(q), pos: ctx.pos(p, 'value') });
    }
  });
  const sequences: RelgroupSpec['sequences'] = [];
  (Array.isArray(o.sequences) ? o.sequences : []).forEach((s, i) => {
    const p: Path = [...path, 'sequences', i];
    let q: QualifiedName | undefined;
    if (typeof s === 'string') q = parseName(s, p, 'sequence', ctx);
    else if (isObj(s) && typeof s.sequence === 'string') q = exactName(s.schema, s.sequence, p, 'sequence', ctx);
    if (q) sequences.push({ seq: q, pos: ctx.pos(p, 'value') });
  });
  return { name, tables, exclude, sequences, pos: ctx.pos(path, 'key') };
}

function buildTableEntry(t: unknown, path: Path, ctx: BuildContext): TableEntry | null {
  const pos = ctx.pos(path, 'value');
  if (typeof t === 'string') {
    const table = parseName(t, path, 'table', ctx);
    return table ? { kind: 'name', table, pos } : null;
  }
  if (!isObj(t)) return null;
  const options = {
    ...('conflict' in t ? optional('conflict', buildConflict(t.conflict, [...path, 'conflict'], ctx)) : {}),
    ...(typeof t.autokick === 'boolean' ? { autokick: t.autokick } : {}),
    ...(typeof t.makedelta === 'boolean' ? { makedelta: t.makedelta } : {}),
  };
  const key = Array.isArray(t.key) && t.key.length > 0 && t.key.every((k) => typeof k === 'string' && k !== '') ? { key: t.key as string[] } : {};
  if (typeof t.match === 'string' && t.name === undefined && t.table === undefined) {
    if (!t.match.includes('.') && !t.match.includes('*')) {
      ctx.report(
        [...path, 'match'],
        'value',
        `match pattern ${JSON.stringify(t.match)} can match no table: it is a glob over schema.table`,
        `write ${JSON.stringify(`public.${t.match}`)}`,
      );
    }
    return { kind: 'match', pattern: t.match, ...options, pos };
  }
  let table: QualifiedName | undefined;
  if (typeof t.name === 'string' && t.table === undefined) table = parseName(t.name, [...path, 'name'], 'table', ctx);
  else if (typeof t.table === 'string' && t.name === undefined) table = exactName(t.schema, t.table, path, 'table', ctx);
  const receiving = {
    ...optional('columns', stringList(t.columns)),
    ...(typeof t.where === 'string' && t.where.trim() !== '' ? { where: t.where } : {}),
    ...optional('targets', buildTargetOverrides(t.targets, [...path, 'targets'], ctx)),
  };
  return table ? { kind: 'name', table, ...key, ...options, ...receiving, pos } : null;
}

function optional<K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };
}

function parseName(text: string, path: Path, what: 'table' | 'sequence', ctx: BuildContext): QualifiedName | undefined {
  try {
    return parseQualifiedName(text);
  } catch (e) {
    if (!(e instanceof BucardoError)) throw e;
    ctx.report(path, 'value', `${what} name ${JSON.stringify(text)} ${e.message}`, e.hint);
    return undefined;
  }
}

function exactName(schema: unknown, name: string, path: Path, what: 'table' | 'sequence', ctx: BuildContext): QualifiedName | undefined {
  const q = { schema: typeof schema === 'string' && schema !== '' ? schema : 'public', name };
  for (const [k, part] of [
    ['schema', q.schema],
    [what, q.name],
  ] as const) {
    try {
      assertIdentifierLength(part);
    } catch (e) {
      if (!(e instanceof BucardoError)) throw e;
      ctx.report([...path, k], 'value', `${what} ${k === 'schema' ? 'schema ' : ''}name ${JSON.stringify(part)} ${e.message}`);
      return undefined;
    }
  }
  return q;
}

function display(q: QualifiedName): string {
  return JSON.stringify(`${q.schema}.${q.name}`);
}

const SIMPLE_CONFLICTS = ['latest', 'latest_table', 'latest_sync', 'random', 'skip', 'abort'] as const;

function buildConflict(v: unknown, at: Path, ctx: BuildContext): ConflictStrategy | undefined {
  if (typeof v === 'string' && (SIMPLE_CONFLICTS as readonly string[]).includes(v)) return { kind: v as (typeof SIMPLE_CONFLICTS)[number] };
  if (isObj(v) && Array.isArray(v.priority) && Object.keys(v).length === 1)
    return { kind: 'priority', order: v.priority.filter((d): d is string => typeof d === 'string') };
  if (isObj(v) && typeof v.custom === 'string' && v.custom !== '' && Object.keys(v).length === 1) {
    return { kind: 'custom', module: buildModuleRef(v.custom, ctx.file, 'resolve', [...at, 'custom'], ctx) };
  }
  return undefined;
}

const stringList = (v: unknown): string[] | undefined =>
  Array.isArray(v) && v.length > 0 && v.every((k) => typeof k === 'string' && k !== '') ? (v as string[]) : undefined;

/** `targets:` of a table entry: per target database, its name, columns, filter and transform. */
function buildTargetOverrides(v: unknown, path: Path, ctx: BuildContext): Map<string, TargetOverride> | undefined {
  if (!isObj(v)) return undefined;
  const out = new Map<string, TargetOverride>();
  for (const [db, o] of entries(v)) {
    if (!isObj(o)) continue;
    const p: Path = [...path, db];
    const ov: TargetOverride = { database: db, pos: ctx.pos(p, 'key') };
    if (typeof o.name === 'string') ov.name = parseName(o.name, [...p, 'name'], 'table', ctx);
    const columns = stringList(o.columns);
    if (columns) ov.columns = columns;
    if (typeof o.where === 'string' && o.where.trim() !== '') ov.where = o.where;
    if (typeof o.transform === 'string' && o.transform !== '') ov.transform = buildModuleRef(o.transform, ctx.file, 'transform', [...p, 'transform'], ctx);
    out.set(db, ov);
  }
  return out;
}

function buildSync(name: string, v: unknown, path: Path, ctx: BuildContext, origins: Origins): SyncSpec {
  const o = isObj(v) ? v : {};
  const names = (x: unknown) => (Array.isArray(x) ? x.filter((d): d is string => typeof d === 'string') : []);
  let checktimeMs: number | null = DEFAULTS.checktimeMs;
  if (typeof o.checktime === 'string' || typeof o.checktime === 'number') {
    checktimeMs = parseDuration(o.checktime);
    if (checktimeMs === null)
      ctx.report([...path, 'checktime'], 'value', `${formatPath(path)}.checktime: ${JSON.stringify(o.checktime)} is not a duration`, DURATION_EXAMPLES);
    else if (checktimeMs === 0) {
      checktimeMs = null;
      ctx.report([...path, 'checktime'], 'value', `${formatPath(path)}.checktime must be more than zero`, 'remove checktime to run only on kicks');
    }
  }
  const hooks: HooksSpec = {};
  if (isObj(o.hooks)) {
    for (const k of ['before_sync', 'after_sync', 'on_error'] as const) {
      const s = str(o.hooks[k]);
      if (s) hooks[k] = buildModuleRef(s, ctx.file, k, [...path, 'hooks', k], ctx);
    }
  }
  const conflict = 'conflict' in o ? buildConflict(o.conflict, [...path, 'conflict'], ctx) : undefined;
  const spec: SyncSpec = {
    name,
    kind: oneOf(o.kind, ['delta', 'fullcopy'] as const, DEFAULTS.kind),
    relgroup: str(o.relgroup) ?? '',
    sources: names(o.sources),
    targets: names(o.targets),
    conflict: conflict ?? DEFAULTS.conflict,
    onetimecopy: oneOf(o.onetimecopy, ['never', 'always', 'if_empty'] as const, DEFAULTS.onetimecopy),
    autokick: bool(o.autokick, DEFAULTS.autokick),
    checktimeMs,
    enabled: bool(o.enabled, DEFAULTS.enabled),
    deletemethod: oneOf(o.deletemethod, ['truncate', 'delete', 'truncate_cascade'] as const, DEFAULTS.deletemethod),
    strict: bool(o.strict, DEFAULTS.strict),
    isolation: oneOf(o.isolation, ['repeatable read', 'serializable'] as const, DEFAULTS.isolation),
    lockTables: bool(o.lock_tables, DEFAULTS.lockTables),
    analyzeAfterCopy: bool(o.analyze_after_copy, DEFAULTS.analyzeAfterCopy),
    vacuumAfterCopy: bool(o.vacuum_after_copy, DEFAULTS.vacuumAfterCopy),
    rebuildIndex: bool(o.rebuild_index, DEFAULTS.rebuildIndex),
    hooks,
    pos: ctx.pos(path, 'key'),
  };
  if (conflict) origins.set(spec.conflict, [...path, 'conflict']);
  return spec;
}
