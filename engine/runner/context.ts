/**
 * A sync as the runner sees it: its databases in order (sources first, in the order the
 * file lists them), the topology schema, its advisory-lock key, its sequences and the
 * per-table conflict overrides of its relgroup. Built from the topology file; the tables
 * themselves come from `sync_relation`, written by apply.
 */
import type {
  Topology,
  SyncSpec,
  DatabaseSpec,
  ForeignDatabaseSpec,
  ConflictStrategy,
  QualifiedName,
  TableEntry,
  ModuleRef,
  HooksSpec,
} from '../topology/types.js';
import {
  conflictFromRegistered,
  moduleFromRegistered,
  type RegisteredConflict,
  type RegisteredModule,
  type RegisteredOverride,
} from '../topology/registered.js';
import { schemaName, kickChannel, LOCK_NAMESPACE } from '../objectnames.js';
import { shortHash } from '../sql/ident.js';
import { BucardoError, makeUnknownSyncError } from '../errors.js';
import { globToRegExp } from '../topology/relnames.js';
import { receivingOn, type ReceivingOf } from '../topology/receiving.js';

export interface SyncContext {
  topology: Topology;
  sync: SyncSpec;
  /** The topology schema, bucardo_<name>. */
  schema: string;
  /** Sources then targets, each once. */
  databases: DatabaseSpec[];
  sources: DatabaseSpec[];
  targets: DatabaseSpec[];
  /** Targets of other engines (SPEC section 7): written through receivers (engine/runner/foreign.ts), outside `databases`. */
  foreign: ForeignDatabaseSpec[];
  /** Two int4 for pg_try_advisory_lock on the first source. */
  lockKey: [number, number];
  sequences: QualifiedName[];
  kickChannel: string;
  /** Channel on which the runner reports the end of a kicked run (bucardo kick --wait). */
  doneChannel: string;
  /** The strategy of one table: its relgroup entry's override, else the sync's. */
  strategyFor(schema: string, name: string): ConflictStrategy;
  /**
   * How database `db` receives a table (SPEC section 6): its name there, the columns sent,
   * the row filter, the transform. Undefined fields: as on the sources, all columns, every
   * row, no transform. A source receives only the table-level columns and filter.
   */
  receivingFor(schema: string, name: string, db: string): Receiving;
  /** The tables that database `db` holds under another name (`name:` overrides of a target). */
  renamedOn(db: string): { from: QualifiedName; to: QualifiedName }[];
  /** Fingerprint of the registered definition it was built from (null: built from the file). */
  fingerprint?: string | null;
}

/** How one database receives one table; see SyncContext.receivingFor. */
export type Receiving = ReceivingOf<ModuleRef>;

/** Advisory lock of one sync: (LOCK_NAMESPACE, 31-bit hash of topology NUL sync). */
export function syncLockKey(topology: string, sync: string): [number, number] {
  return [LOCK_NAMESPACE, parseInt(shortHash(['sync', topology, sync], 8), 16) & 0x7fffffff];
}

/** Channel on which runners report finished kicked runs. */
export function doneChannel(topology: string): string {
  return `bucardo_${topology}_done`;
}

export function makeSyncContext(topology: Topology, syncName: string): SyncContext {
  const sync = topology.syncs.get(syncName);
  if (!sync) {
    throw makeUnknownSyncError(topology, syncName);
  }
  const db = (n: string): DatabaseSpec => {
    const d = topology.databases.get(n);
    if (!d) throw new BucardoError('unknown_database', `sync ${sync.name} names database ${n}, which is not in ${topology.file}`);
    return d;
  };
  const relgroup = topology.relgroups.get(sync.relgroup);
  const entries: TableEntry[] = relgroup?.tables ?? [];
  const strategyFor = (schema: string, name: string) => {
    for (const e of entries) {
      if (!e.conflict) continue;
      if (e.kind === 'name' ? e.table.schema === schema && e.table.name === name : globMatch(e.pattern, `${schema}.${name}`)) return e.conflict;
    }
    return sync.conflict;
  };
  const named = entries.filter((e): e is Extract<TableEntry, { kind: 'name' }> => e.kind === 'name');
  const receivingFor = (schema: string, name: string, db: string): Receiving => {
    const e = named.find((x) => x.table.schema === schema && x.table.name === name);
    return e ? receivingOn(e, e.targets?.get(db), sync.targets.includes(db) || !!sync.foreignTargets?.includes(db)) : {};
  };
  return contextOf(
    topology,
    sync,
    db,
    (relgroup?.sequences ?? []).map((s) => s.seq),
    null,
    strategyFor,
    receivingFor,
    named.map((e) => e.table),
  );
}

/** The context of `sync`, with its databases looked up by `db`. */
function contextOf(
  topology: Topology,
  sync: SyncSpec,
  db: (name: string) => DatabaseSpec,
  sequences: QualifiedName[],
  fingerprint: string | null,
  strategyFor: SyncContext['strategyFor'],
  receivingFor: SyncContext['receivingFor'],
  /** The tables that may have a receiving override, for renamedOn. */
  overridable: QualifiedName[],
): SyncContext {
  // the renamed tables of a database, from the one rule of receivingFor
  const renamedOn = (db: string) =>
    overridable.flatMap((from) => {
      const to = receivingFor(from.schema, from.name, db).name;
      return to ? [{ from, to }] : [];
    });
  const sources = sync.sources.map(db);
  const targets = sync.targets.filter((t) => !sync.sources.includes(t)).map(db);
  const foreign = (sync.foreignTargets ?? []).map((n) => {
    const f = topology.foreignDatabases?.get(n);
    if (!f) throw new BucardoError('unknown_database', `sync ${sync.name} names database ${n}, which is not in ${topology.file}`);
    return f;
  });
  return {
    topology,
    sync,
    schema: schemaName(topology.name),
    databases: [...sources, ...targets],
    sources,
    targets,
    foreign,
    lockKey: syncLockKey(topology.name, sync.name),
    sequences,
    kickChannel: kickChannel(topology.name),
    doneChannel: doneChannel(topology.name),
    fingerprint,
    strategyFor,
    receivingFor,
    renamedOn,
  };
}

/**
 * What apply registered for a sync (the `detail` of bucardo_<name>.sync, planner/desired.ts
 * syncDetail): the sync's definition without positions, its resolved tables with their
 * per-table overrides, its sequences.
 */
export interface RegisteredSync {
  fingerprint: string;
  detail: Omit<SyncSpec, 'pos' | 'conflict' | 'hooks'> & {
    conflict: RegisteredConflict;
    hooks?: Partial<Record<keyof HooksSpec, RegisteredModule>>;
    tables?: {
      schema: string;
      name: string;
      conflict?: RegisteredConflict;
      columns?: string[];
      where?: string;
      targets?: Record<string, RegisteredOverride>;
    }[];
    sequences?: QualifiedName[];
  };
}

/**
 * A sync's context from what apply installed rather than from the file the runner started
 * with: a running runner follows every apply (docs/protocol.md). The file still gives the
 * databases' connections.
 */
export function makeRegisteredContext(topology: Topology, reg: RegisteredSync): SyncContext {
  const d = reg.detail;
  const mod = (m: RegisteredModule) => moduleFromRegistered(m, topology.file);
  const hooks: HooksSpec = Object.fromEntries(Object.entries(d.hooks ?? {}).map(([k, m]) => [k, mod(m)]));
  const sync: SyncSpec = {
    ...d,
    conflict: conflictFromRegistered(d.conflict, topology.file),
    hooks,
    pos: topology.syncs.get(d.name)?.pos ?? { line: 0, col: 0 },
  };
  const db = (n: string): DatabaseSpec => {
    const x = topology.databases.get(n);
    if (!x) {
      throw new BucardoError('unknown_database', `sync ${sync.name}, as installed, names database ${n}, which is not in ${topology.file}`, {
        hint: 'start the runner with the topology file that apply used',
      });
    }
    return x;
  };
  const tables = new Map((d.tables ?? []).map((t) => [`${t.schema}\u0000${t.name}`, t]));
  const overrides = new Map([...tables].filter(([, t]) => t.conflict).map(([k, t]) => [k, conflictFromRegistered(t.conflict!, topology.file)]));
  const receivingFor = (schema: string, name: string, db: string): Receiving => {
    const t = tables.get(`${schema}\u0000${name}`);
    if (!t) return {};
    const { transform, ...r } = receivingOn(t, t.targets?.[db], sync.targets.includes(db) || !!sync.foreignTargets?.includes(db));
    return transform ? { ...r, transform: mod(transform) } : r;
  };
  return contextOf(
    topology,
    sync,
    db,
    d.sequences ?? [],
    reg.fingerprint,
    (schema, name) => overrides.get(`${schema}\u0000${name}`) ?? sync.conflict,
    receivingFor,
    [...tables.values()].map((t) => ({ schema: t.schema, name: t.name })),
  );
}

/** The relgroup glob, with the topology's own syntax (`*`, `?`, backslash escapes). */
export function globMatch(pattern: string, text: string): boolean {
  return globToRegExp(pattern).test(text);
}
