/**
 * Settings of a runner's sync connections for their whole session (connections.ts says
 * why each value), on top of the fixed ones every bucardo connection gets (engine/connect.ts).
 */
import { quoteLiteral } from '../../sql/ident.js';

/** Room for the temp tables and hash joins of a run; temp_buffers must be set before the session's first temp table. */
export function sessionMemorySql(tempBuffers: string, workMem: string): string {
  return `SET temp_buffers = ${quoteLiteral(tempBuffers)}; SET work_mem = ${quoteLiteral(workMem)}`;
}

/** How often the server checks, while a statement runs, that the runner is still there (PostgreSQL 14+). */
export function clientCheckIntervalSql(interval: string): string {
  return `SET client_connection_check_interval = ${quoteLiteral(interval)}`;
}
