/**
 * PostgreSQL reads for targets of other engines that the run's own SQL does not cover:
 * compare reads the reference table whole, with the base type of each column (a domain's
 * rows map as its base type's, as the runner maps them: sql/prepare.ts reads `base` too).
 */
import { qualify, quoteIdent } from '../../sql/ident.js';

/** $1 the table as `"schema"."name"`: its copied columns (not dropped, not generated) with their base types, in attribute order. */
export const BASE_TYPES_SQL = `SELECT a.attname AS name,
  format_type(CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END) AS type
FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum`;

/** Every row of `columns` (through the row filter, when there is one), as COPY text. */
export function wholeTableTextSql(t: { schema: string; name: string }, columns: string[], where?: string): string {
  return `COPY (SELECT ${columns.map(quoteIdent).join(', ')} FROM ${qualify(t.schema, t.name)}${where ? ` WHERE (${where})` : ''}) TO STDOUT`;
}
