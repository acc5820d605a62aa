/**
 * Maintenance a run leaves behind (docs/protocol.md, step 11), on the sync's maintenance
 * connections, off the path of the next run: VACUUM of delta tables a purge emptied a lot
 * of, ANALYZE or VACUUM of the tables a copy loaded.
 */
import { qualify } from '../../sql/ident.js';
import { deltaTableName } from '../../objectnames.js';

export function vacuumDeltasSql(schema: string, tableIds: string[]): string {
  return `VACUUM ${tableIds.map((id) => qualify(schema, deltaTableName(id))).join(', ')}`;
}

/** analyze_after_copy / vacuum_after_copy of the tables loaded whole; null: neither is set. */
export function afterCopySql(tables: { schema: string; name: string }[], opts: { analyze: boolean; vacuum: boolean }): string | null {
  const names = tables.map((t) => qualify(t.schema, t.name)).join(', ');
  if (opts.vacuum) return `VACUUM ${opts.analyze ? '(ANALYZE) ' : ''}${names}`;
  if (opts.analyze) return `ANALYZE ${names}`;
  return null;
}
