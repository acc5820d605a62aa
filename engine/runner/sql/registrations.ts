/**
 * What apply registered: the runner runs the syncs installed in the databases, as apply
 * stored them, and reads them again every few seconds (runner.ts).
 */
import { qualify } from '../../sql/ident.js';

/** Each sync registered where this database is a source of it: name, fingerprint, stored definition. */
export function registrationsSql(schema: string): string {
  return `SELECT name, fingerprint, detail FROM ${qualify(schema, 'sync')} WHERE role = 'source' ORDER BY name`;
}
