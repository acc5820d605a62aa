/**
 * How a receiving database takes a table (SPEC section 6), the one place the rule is
 * written: a target of the sync takes its `targets:` override field by field, falling back
 * to the table entry's own `columns` and `where`; a source of the sync takes only the
 * entry's. Used on the topology as loaded and on a sync's registered definition alike.
 */
import type { QualifiedName } from './types.js';

export interface ReceivingOf<M> {
  name?: QualifiedName;
  columns?: string[];
  where?: string;
  transform?: M;
}

/** `override`: the entry's `targets:` override for the database, if any; `isTarget`: the database is a target of the sync. */
export function receivingOn<M>(entry: { columns?: string[]; where?: string }, override: ReceivingOf<M> | undefined, isTarget: boolean): ReceivingOf<M> {
  const o = isTarget ? override : undefined;
  const columns = o?.columns ?? entry.columns;
  const where = o?.where ?? entry.where;
  return {
    ...(o?.name ? { name: o.name } : {}),
    ...(columns ? { columns } : {}),
    ...(where ? { where } : {}),
    ...(o?.transform ? { transform: o.transform } : {}),
  };
}
