/**
 * `compare` for tables that databases take their own way (SPEC section 6). The receivers
 * of a table are grouped by how they take it; each group is compared with the reference
 * (the first source) read the same way:
 *
 * - `name:` a target's table of that name is compared with the source table of the entry;
 * - `columns:` only the columns sent are compared (the receiver's others are its own);
 * - `where:` only the reference's rows matching the filter; a target is read whole (a row
 *   there that does not match is a difference), a source through the filter too (its own
 *   rows that do not match were never sent, and are its own);
 * - a transform: the receiver holds rows that no query of the reference can reproduce
 *   without running the module over every row, so only the keys are compared (a row the
 *   transform left out shows as missing).
 *
 * With no overrides there is one group of every database, compared as it always was.
 */
import type { Topology } from '../topology/types.js';
import { makeSyncContext } from '../runner/context.js';
import type { TableComparison } from './types.js';

/** How one database of a group is read. */
export interface GroupMember {
  database: string;
  schema: string;
  name: string;
  /** The filter to read it through (the reference always, a source too). */
  where?: string;
}

/** Databases compared together: the reference first. */
export interface CompareGroup {
  members: GroupMember[];
  /** The columns compared; absent: every column the members share. */
  columns?: string[];
  /** Compare the keys only (a transform). */
  keysOnly: boolean;
  /** What a reader of the output should know about this group (empty for the plain one). */
  note?: string;
}

/** The groups of one table of `syncName` over `databases` (reference first). */
export function compareGroups(topology: Topology, syncName: string, table: { schema: string; name: string }, databases: string[]): CompareGroup[] {
  const ctx = makeSyncContext(topology, syncName);
  const [ref, ...others] = databases;
  const sources = new Set(ctx.sync.sources);
  const groups = new Map<string, { dbs: string[]; r: ReturnType<typeof ctx.receivingFor> }>();
  for (const db of others) {
    const r = ctx.receivingFor(table.schema, table.name, db);
    const key = JSON.stringify([r.columns ?? null, r.where ?? null, r.transform?.path ?? null]);
    const g = groups.get(key);
    if (g) g.dbs.push(db);
    else groups.set(key, { dbs: [db], r });
  }
  if (!groups.size) groups.set('', { dbs: [], r: ctx.receivingFor(table.schema, table.name, ref) });
  return [...groups.values()].map(({ dbs, r }) => {
    const member = (db: string): GroupMember => {
      const own = db === ref ? undefined : ctx.receivingFor(table.schema, table.name, db).name;
      const filtered = db === ref || sources.has(db);
      return { database: db, schema: own?.schema ?? table.schema, name: own?.name ?? table.name, ...(r.where && filtered ? { where: r.where } : {}) };
    };
    const notes = [
      ...(r.where ? [`rows matching ${r.where}`] : []),
      ...(r.columns ? [`columns ${r.columns.join(', ')}`] : []),
      ...(r.transform ? [`keys only (transform ${r.transform.path})`] : []),
    ];
    const renamed = dbs.filter((db) => ctx.receivingFor(table.schema, table.name, db).name).map((db) => `${db} as ${member(db).schema}.${member(db).name}`);
    if (renamed.length) notes.unshift(renamed.join(', '));
    return {
      members: [ref, ...dbs].map(member),
      ...(r.columns ? { columns: r.columns } : {}),
      keysOnly: !!r.transform,
      ...(notes.length ? { note: `${dbs.join(', ')}: ${notes.join('; ')}` } : {}),
    };
  });
}

/** One table's comparisons, one per group, as one. */
export function mergeComparisons(parts: TableComparison[], maxDifferences: number): TableComparison {
  if (parts.length === 1) return parts[0];
  const [first] = parts;
  const differences = parts.flatMap((p) => p.differences);
  const rows: Record<string, number> = {};
  for (const p of parts) for (const [db, n] of Object.entries(p.rows)) if (!(db in rows)) rows[db] = n;
  const notes = parts.flatMap((p) => p.notes ?? []);
  return {
    ...first,
    equal: parts.every((p) => p.equal),
    rows,
    differences: differences.slice(0, maxDifferences),
    truncated: parts.some((p) => p.truncated) || differences.length > maxDifferences,
    ...(notes.length ? { notes } : {}),
  };
}
