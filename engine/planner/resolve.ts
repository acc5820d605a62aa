/**
 * Resolves each sync's relgroup against the live catalogs: `match:` globs and `exclude`
 * (on the first source), presence of every table on every database of the sync, the
 * replication key, column agreement under `strict`, and the privileges (planner/privileges.ts)
 * of the role each database's user is checked for. Pure: catalogs in, resolved syncs and problems out.
 */
import type { Topology, SyncSpec, RelgroupSpec, TableEntry, ConflictStrategy, QualifiedName, TargetOverride } from '../topology/types.js';
import type { DatabaseCatalog, TableInfo, PartitionInfo } from '../catalog/types.js';
import type { PlanProblem } from './types.js';
import type { KeyColumn } from '../sql/capture.js';
import { DELTA_TXID, DELTA_TS, DELTA_ORIGIN } from '../sql/capture.js';
import { displayName } from '../sql/ident.js';
import { tableId } from '../objectnames.js';
import { globToRegExp } from '../topology/relnames.js';
import { checkedAs, replicationRoleLack, sequenceLacks, tableLacks } from './privileges.js';
import { renamedOn, sentColumnsOn, missingRenamed, checkSentColumns } from './receiving.js';

export interface ResolvedTable {
  schema: string;
  name: string;
  id: string;
  display: string;
  key: KeyColumn[];
  conflict?: ConflictStrategy;
  autokick?: boolean;
  makedelta?: boolean;
  /** Columns sent to every receiver (absent: all). */
  columns?: string[];
  /** Row filter for every receiver (absent: every row). */
  where?: string;
  /** Per target database: its name, columns, filter, transform. */
  targets?: Map<string, TargetOverride>;
  /** Estimated rows on the first source (for onetimecopy notes). */
  estimatedRows: number;
  /** Databases where the table is partitioned (its capture differs: captureDef). */
  partitionedOn: string[];
  /** Its partitions there (every level), which carry capture triggers too. */
  partitions: Map<string, PartitionInfo[]>;
}

export interface ResolvedSync {
  spec: SyncSpec;
  tables: ResolvedTable[];
  sequences: QualifiedName[];
}

const find = (cat: DatabaseCatalog, schema: string, name: string): TableInfo | undefined => cat.tables.find((t) => t.schema === schema && t.name === name);

type Problem = (code: string, database: string, message: string, hint?: string) => void;

/** What the checks of one sync share: its spec and relgroup, the catalogs, where problems go. */
interface SyncScope {
  topology: Topology;
  catalogs: Map<string, DatabaseCatalog>;
  spec: SyncSpec;
  rg: RelgroupSpec;
  /** The first source's catalog: the reference the others are compared against. */
  first: DatabaseCatalog;
  errors: PlanProblem[];
  warnings: PlanProblem[];
}

/** A table of the first source and the relgroup entry (a name or a match) that picked it. */
interface Picked {
  table: TableInfo;
  entry: TableEntry;
}

/**
 * Resolves every sync whose databases all have a catalog. Syncs touching a database
 * without one (unreachable: already an error) are skipped.
 */
export function resolveSyncs(
  topology: Topology,
  catalogs: Map<string, DatabaseCatalog>,
): { syncs: ResolvedSync[]; errors: PlanProblem[]; warnings: PlanProblem[] } {
  const errors: PlanProblem[] = [];
  const warnings: PlanProblem[] = [];
  const syncs: ResolvedSync[] = [];
  for (const spec of topology.syncs.values()) {
    const dbs = [...spec.sources, ...spec.targets];
    if (!dbs.every((d) => catalogs.has(d))) continue;
    const rg = topology.relgroups.get(spec.relgroup);
    if (!rg) continue; // validation reports it
    const scope: SyncScope = { topology, catalogs, spec, rg, first: catalogs.get(spec.sources[0])!, errors, warnings };
    const tables: ResolvedTable[] = [];
    for (const picked of pickTables(scope).values()) {
      const table = checkTable(scope, picked);
      if (table) tables.push(table);
    }
    checkDatabaseNeeds(scope);
    syncs.push({ spec, tables, sequences: resolveSequences(scope) });
  }
  return { syncs, errors, warnings };
}

/** The relgroup's table list, from the first source's catalog: named tables and `match:` globs, less `exclude`. */
function pickTables(scope: SyncScope): Map<string, Picked> {
  const picked = new Map<string, Picked>();
  const add = (table: TableInfo, entry: TableEntry) => {
    const k = `${table.schema}\u0000${table.name}`;
    if (!picked.has(k)) picked.set(k, { table, entry });
  };
  for (const entry of scope.rg.tables) {
    if (entry.kind === 'name') {
      const t = pickNamed(scope, entry);
      if (t) add(t, entry);
    } else {
      for (const t of pickMatched(scope, entry)) add(t, entry);
    }
  }
  for (const ex of scope.rg.exclude) {
    const re = globToRegExp(ex.pattern);
    for (const [k, v] of picked) if (re.test(`${v.table.schema}.${v.table.name}`)) picked.delete(k);
  }
  return picked;
}

/** A named table of the relgroup on the first source; a partition or a missing table is an error. */
function pickNamed(scope: SyncScope, entry: Extract<TableEntry, { kind: 'name' }>): TableInfo | undefined {
  const { topology, spec, rg, first, errors } = scope;
  const t = find(first, entry.table.schema, entry.table.name);
  const part = t ? undefined : first.partitionsOf.find((p) => p.schema === entry.table.schema && p.name === entry.table.name);
  if (part) {
    errors.push({
      code: 'partition_named',
      database: first.database,
      sync: spec.name,
      object: displayName(entry.table.schema, entry.table.name),
      message: `table ${displayName(entry.table.schema, entry.table.name)} of relgroup ${rg.name} (${topology.file}:${entry.pos.line}) is a partition of ${displayName(part.rootSchema, part.rootName)} on database ${first.database}`,
      hint: `list the partitioned table ${displayName(part.rootSchema, part.rootName)} instead: its partitions follow it, writes aimed at any partition included`,
    });
    return undefined;
  }
  if (!t) {
    errors.push({
      code: 'missing_table',
      database: first.database,
      sync: spec.name,
      object: displayName(entry.table.schema, entry.table.name),
      message: `table ${displayName(entry.table.schema, entry.table.name)} of relgroup ${rg.name} (${topology.file}:${entry.pos.line}) does not exist on database ${first.database}`,
      hint: 'create it there, or fix the name in the topology (unquoted names fold to lower case)',
    });
  }
  return t;
}

/** The first source's tables a `match:` glob selects; partitions matched without their root are an error. */
function pickMatched(scope: SyncScope, entry: Extract<TableEntry, { kind: 'match' }>): TableInfo[] {
  const { topology, spec, rg, first, errors, warnings } = scope;
  const re = globToRegExp(entry.pattern);
  const hits = first.tables.filter((t) => re.test(`${t.schema}.${t.name}`));
  const parts = first.partitionsOf.filter((p) => re.test(`${p.schema}.${p.name}`));
  const roots = [...new Set(parts.map((p) => displayName(p.rootSchema, p.rootName)))].filter((r) => !hits.some((h) => displayName(h.schema, h.name) === r));
  if (roots.length) {
    errors.push({
      code: 'partition_named',
      database: first.database,
      sync: spec.name,
      object: entry.pattern,
      message: `match "${entry.pattern}" of relgroup ${rg.name} (${topology.file}:${entry.pos.line}) matches partitions of ${roots.join(', ')} on database ${first.database}, but not the partitioned table${roots.length > 1 ? 's' : ''}`,
      hint: `list ${roots.join(', ')} instead: partitions follow their partitioned table (a match skips partitions)`,
    });
  }
  if (!hits.length && !roots.length) {
    warnings.push({
      code: 'empty_match',
      database: first.database,
      sync: spec.name,
      message: `match "${entry.pattern}" of relgroup ${rg.name} (${topology.file}:${entry.pos.line}) matches no table on database ${first.database}`,
    });
  }
  return hits;
}

/**
 * One picked table on every database of the sync: its key, its presence, its columns,
 * its partitions, the privileges. Undefined when any of these is an error.
 */
function checkTable(scope: SyncScope, { table, entry }: Picked): ResolvedTable | undefined {
  const { spec, first, errors } = scope;
  const display = displayName(table.schema, table.name);
  let ok = true;
  const problem: Problem = (code, database, message, hint) => {
    errors.push({ code, database, sync: spec.name, object: display, message, hint });
    ok = false;
  };
  const keyNames = resolveKey(table, entry);
  if (!keyNames) {
    problem(
      'no_key',
      first.database,
      `table ${display} (sync ${spec.name}) has no primary key and no unique index on NOT NULL columns on database ${first.database}`,
      'add a primary key, or name the replication columns with `key: [...]` on the table entry',
    );
    return undefined;
  }
  const keyCols = keyColumns(first.database, table, keyNames, display, problem);
  checkSentColumns(entry, spec, table, first.database, keyNames, display, problem);
  const partitionedOn: string[] = [];
  const partitions = new Map<string, PartitionInfo[]>();
  for (const dbName of [...spec.sources, ...spec.targets]) {
    const t = checkOnDatabase(scope, table, entry, keyNames, display, dbName, problem);
    if (t?.kind === 'p') {
      partitionedOn.push(dbName);
      partitions.set(dbName, t.partitions ?? []);
    }
  }
  checkPartitions(scope, table, display, partitions, problem);
  if (!ok) return undefined;
  return {
    schema: table.schema,
    name: table.name,
    id: tableId(table.schema, table.name),
    display,
    key: keyCols,
    conflict: entry.conflict,
    autokick: entry.autokick,
    makedelta: entry.makedelta,
    ...(entry.kind === 'name' ? { columns: entry.columns, where: entry.where, targets: entry.targets } : {}),
    estimatedRows: table.estimatedRows,
    partitionedOn,
    partitions,
  };
}

/** The key's columns with their types on the first source; a missing or reserved name is an error. */
function keyColumns(firstDb: string, table: TableInfo, keyNames: string[], display: string, problem: Problem): KeyColumn[] {
  const keyCols: KeyColumn[] = [];
  for (const k of keyNames) {
    const col = table.columns.find((c) => c.name === k);
    if (!col)
      problem('bad_key', firstDb, `key column ${k} of table ${display} does not exist on database ${firstDb}`, 'fix the `key:` list of that table entry');
    else if ([DELTA_TXID, DELTA_TS, DELTA_ORIGIN].includes(k))
      problem('bad_key', firstDb, `key column ${k} of table ${display} uses a name bucardo reserves for its delta tables`, 'choose another key');
    else keyCols.push({ name: col.name, type: col.type });
  }
  return keyCols;
}

/**
 * The table on one database of the sync (under its `name:` there, if renamed): present,
 * its columns agreeing with the first source's, its key NOT NULL on a delta source, the
 * privileges granted. Returns the table there, if present.
 */
function checkOnDatabase(
  scope: SyncScope,
  table: TableInfo,
  entry: TableEntry,
  keyNames: string[],
  display: string,
  dbName: string,
  problem: Problem,
): TableInfo | undefined {
  const { spec, first, warnings } = scope;
  const cat = scope.catalogs.get(dbName)!;
  const renamed = renamedOn(entry, spec, dbName);
  const t = find(cat, renamed?.schema ?? table.schema, renamed?.name ?? table.name);
  if (!t) {
    if (renamed) problem('missing_table', dbName, ...missingRenamed(display, renamed, spec, dbName));
    else
      problem(
        'missing_table',
        dbName,
        `table ${display} (sync ${spec.name}) does not exist on database ${dbName}`,
        `create it on ${dbName} with the same columns as on ${first.database}`,
      );
    return undefined;
  }
  if (t !== table)
    compareColumns(
      spec,
      table,
      t,
      first.database,
      dbName,
      renamed ? `${display} (${displayName(t.schema, t.name)} on ${dbName})` : display,
      problem,
      warnings,
      sentColumnsOn(entry, spec, dbName),
    );
  // a NULL in a key column would make the application's write fail in the change log
  for (const k of keyNames) {
    const col = t.columns.find((c) => c.name === k);
    if (col && !col.notNull && spec.sources.includes(dbName) && spec.kind === 'delta') {
      problem(
        'nullable_key',
        dbName,
        `key column ${k} of table ${display} is nullable on database ${dbName} (sync ${spec.name}): an application's INSERT of a NULL there would fail in bucardo's change log, and a NULL key cannot be matched on the other databases`,
        `declare it NOT NULL there (ALTER TABLE ${display} ALTER COLUMN ${k} SET NOT NULL), or choose another key`,
      );
    }
  }
  // a missing privilege is an error, but the table stays resolved: a role that merely
  // cannot check or change its capture must not be told to destroy it
  for (const l of tableLacks(checkedAs(cat), spec, cat, t)) scope.errors.push({ code: 'privilege', database: dbName, sync: spec.name, object: display, ...l });
  return t;
}

/** A partitioned table: every leaf partition of the first source exists on the others (rows route by partition there). */
function checkPartitions(scope: SyncScope, table: TableInfo, display: string, partitions: Map<string, PartitionInfo[]>, problem: Problem): void {
  const { spec, first, catalogs } = scope;
  const firstParts = partitions.get(first.database);
  if (!firstParts) return;
  for (const dbName of [...spec.sources, ...spec.targets]) {
    if (dbName === first.database || !catalogs.get(dbName)!.tables.some((x) => x.schema === table.schema && x.name === table.name)) continue;
    const theirs = new Set((partitions.get(dbName) ?? []).map((p) => `${p.schema}\u0000${p.name}`));
    const missing = firstParts.filter((p) => p.leaf && !theirs.has(`${p.schema}\u0000${p.name}`)).map((p) => displayName(p.schema, p.name));
    if (missing.length) {
      problem(
        'missing_partition',
        dbName,
        `partitioned table ${display} (sync ${spec.name}) lacks partition${missing.length > 1 ? 's' : ''} ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ` and ${missing.length - 10} more` : ''} on database ${dbName}, which database ${first.database} has`,
        `create ${missing.length > 1 ? 'them' : 'it'} on ${dbName} (rows of ${display} are written there through the partitioned table), then run bucardo plan`,
      );
    }
  }
}

/** Database-wide needs of the role checked there: session_replication_role for the runner. */
function checkDatabaseNeeds(scope: SyncScope): void {
  const { spec, catalogs, errors } = scope;
  for (const dbName of [...spec.sources, ...spec.targets]) {
    const cat = catalogs.get(dbName)!;
    const l = replicationRoleLack(checkedAs(cat), spec, cat);
    if (l) errors.push({ code: 'privilege', database: dbName, sync: spec.name, ...l });
  }
}

/** The relgroup's sequences, each of which must exist on every database of the sync. */
function resolveSequences(scope: SyncScope): QualifiedName[] {
  const { topology, spec, rg, catalogs, errors } = scope;
  const sequences: QualifiedName[] = [];
  for (const { seq, pos } of rg.sequences) {
    for (const dbName of [...spec.sources, ...spec.targets]) {
      const cat = catalogs.get(dbName)!;
      const s = cat.sequences.find((x) => x.schema === seq.schema && x.name === seq.name);
      for (const l of s ? sequenceLacks(checkedAs(cat), cat, s) : [])
        errors.push({ code: 'privilege', database: dbName, sync: spec.name, object: displayName(seq.schema, seq.name), ...l });
      if (!s) {
        errors.push({
          code: 'missing_sequence',
          database: dbName,
          sync: spec.name,
          object: displayName(seq.schema, seq.name),
          message: `sequence ${displayName(seq.schema, seq.name)} of relgroup ${rg.name} (${topology.file}:${pos.line}) does not exist on database ${dbName}`,
        });
      }
    }
    sequences.push(seq);
  }
  return sequences;
}

function resolveKey(table: TableInfo, entry: TableEntry): string[] | null {
  if (entry.kind === 'name' && entry.key?.length) return entry.key;
  if (table.primaryKey?.length) return table.primaryKey;
  return table.uniqueKeys[0] ?? null;
}

/** Same column names and types everywhere (strict), else warn and replicate the common columns. */
function compareColumns(
  spec: SyncSpec,
  ref: TableInfo,
  other: TableInfo,
  refDb: string,
  otherDb: string,
  display: string,
  problem: (code: string, database: string, message: string, hint?: string) => void,
  warnings: PlanProblem[],
  sent?: string[],
): void {
  const diffs: string[] = [];
  const refCols = new Map(ref.columns.map((c) => [c.name, c]));
  const otherCols = new Map(other.columns.map((c) => [c.name, c]));
  // a database taking some columns (columns:) needs those only; its others are its own
  for (const c of sent ? ref.columns.filter((x) => sent.includes(x.name)) : ref.columns) {
    const o = otherCols.get(c.name);
    if (!o) diffs.push(`column ${c.name} is missing on ${otherDb}`);
    else if (o.type !== c.type) diffs.push(`column ${c.name} is ${c.type} on ${refDb} but ${o.type} on ${otherDb}`);
    else if (o.generated !== c.generated)
      diffs.push(`column ${c.name} is ${c.generated ? '' : 'not '}generated on ${refDb} but ${o.generated ? '' : 'not '}on ${otherDb}`);
  }
  if (!sent) for (const c of other.columns) if (!refCols.has(c.name)) diffs.push(`column ${c.name} exists on ${otherDb} but not on ${refDb}`);
  if (!diffs.length) return;
  if (spec.strict) {
    problem(
      'column_mismatch',
      otherDb,
      `table ${display} differs between ${refDb} and ${otherDb} (sync ${spec.name}): ${diffs.join('; ')}`,
      'make the tables match, or set `strict: false` on the sync to replicate the common columns only',
    );
  } else {
    warnings.push({
      code: 'column_mismatch',
      database: otherDb,
      sync: spec.name,
      object: display,
      message: `table ${display} differs between ${refDb} and ${otherDb}: ${diffs.join('; ')}; only the common columns replicate`,
    });
  }
}
