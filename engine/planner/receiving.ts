/**
 * The plan's checks of tables a database takes its own way (SPEC section 6): under
 * another name on a target (`name:`), only some columns (`columns:`). Pure, as the rest of
 * the planner: the catalogs' tables in, problems out.
 */
import type { SyncSpec, TableEntry, QualifiedName } from '../topology/types.js';
import type { TableInfo } from '../catalog/types.js';
import { displayName } from '../sql/ident.js';
import { receivingOn } from '../topology/receiving.js';

type Problem = (code: string, database: string, message: string, hint?: string) => void;

/** The table's name on `db` when a `name:` override renames it there (targets of the sync only). */
export function renamedOn(entry: TableEntry, spec: SyncSpec, db: string): QualifiedName | undefined {
  return entry.kind === 'name' ? receivingOn(entry, entry.targets?.get(db), spec.targets.includes(db)).name : undefined;
}

/** The columns sent to `db` when not all of them (a target's override, else the table's list). */
export function sentColumnsOn(entry: TableEntry, spec: SyncSpec, db: string): string[] | undefined {
  return entry.kind === 'name' ? receivingOn(entry, entry.targets?.get(db), spec.targets.includes(db)).columns : undefined;
}

/** The missing-table message for a renamed table: which table, under which name, where. */
export function missingRenamed(display: string, to: QualifiedName, spec: SyncSpec, db: string): [string, string] {
  const there = displayName(to.schema, to.name);
  return [
    `table ${there} (${display} renamed for ${db} by name:) of sync ${spec.name} does not exist on database ${db}`,
    `create it on ${db} with the columns it receives, or fix name: under targets.${db} of ${display}`,
  ];
}

/**
 * Every column list of the entry (the table's, each target's) holds the key and names
 * columns of the table on the first source (`ref`) that are not generated.
 */
export function checkSentColumns(entry: TableEntry, spec: SyncSpec, ref: TableInfo, refDb: string, key: string[], display: string, problem: Problem): void {
  if (entry.kind !== 'name') return;
  const lists: [string, string[]][] = [];
  if (entry.columns) lists.push(['every database', entry.columns]);
  for (const [db, o] of entry.targets ?? []) if (o.columns && spec.targets.includes(db)) lists.push([`database ${db}`, o.columns]);
  for (const [who, cols] of lists) {
    const noKey = key.filter((k) => !cols.includes(k));
    if (noKey.length) {
      problem(
        'bad_columns',
        refDb,
        `the columns of table ${display} sent to ${who} (sync ${spec.name}) lack key column${noKey.length > 1 ? 's' : ''} ${noKey.join(', ')}`,
        'add the key columns to that columns: list: a receiver finds its rows by key',
      );
    }
    for (const c of cols) {
      const col = ref.columns.find((x) => x.name === c);
      if (!col)
        problem(
          'bad_columns',
          refDb,
          `column ${c} of table ${display}, sent to ${who} (sync ${spec.name}), does not exist on database ${refDb}`,
          'columns: takes exact column names of the source table',
        );
      else if (col.generated)
        problem(
          'bad_columns',
          refDb,
          `column ${c} of table ${display}, sent to ${who} (sync ${spec.name}), is generated on database ${refDb}: its value is computed, not copied`,
          'leave it out of columns:',
        );
    }
  }
}
