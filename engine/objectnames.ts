/**
 * Names of the objects bucardo installs in a database (schema, delta tables, capture
 * functions and triggers) and of its channels and lock keys, derived from the topology
 * name and the user's table names (the names users write are in topology/relnames.ts).
 * PostgreSQL truncates identifiers at 63 bytes, so nothing derived embeds a user name:
 * tables are identified by a short hash of their exact schema and name, and the full
 * names are kept in the metadata (bucardo_<name>.installed, .sync_relation).
 */
import { shortHash } from './sql/ident.js';

/** The schema that holds every object of one topology in one database. */
export function schemaName(topology: string): string {
  return `bucardo_${topology}`;
}

/** The LISTEN/NOTIFY channel on which capture triggers kick the runner. */
export function kickChannel(topology: string): string {
  return `bucardo_${topology}_kick`;
}

/** Stable 12-hex id of a table: sha256(schema NUL table). */
export function tableId(schema: string, table: string): string {
  return shortHash([schema, table], 12);
}

/** Delta table (in the topology schema) of one captured table. */
export function deltaTableName(id: string): string {
  return `delta_${id}`;
}

/** Capture trigger function (in the topology schema) of one captured table. */
export function captureFunctionName(id: string): string {
  return `capture_${id}`;
}

/**
 * The capture triggers of a table: one statement-level trigger per write event, and
 * `keychange`, a row-level trigger that records the old key of an UPDATE that changes it;
 * `log` is on the table's delta table, and notes in `change_index` each transaction that
 * wrote into it (engine/sql/capture.ts).
 */
export type CaptureEvent = 'insert' | 'update' | 'delete' | 'truncate' | 'keychange' | 'before_truncate' | 'partition_truncate' | 'log';
export const CAPTURE_EVENTS: CaptureEvent[] = ['insert', 'update', 'delete', 'truncate', 'keychange', 'before_truncate', 'partition_truncate', 'log'];

/**
 * Trigger on the user's table. Prefixed with the topology so a person reading `\d table`
 * sees who installed it; at most 8+40+1+12+2 = 63 bytes.
 */
export function captureTriggerName(topology: string, id: string, event: CaptureEvent): string {
  return `bucardo_${topology}_${id}_${event[0]}`;
}

/** Advisory lock keys (two int4) used by apply and by the runner per sync. */
export const LOCK_NAMESPACE = 0x62756361; // 'buca'
