/**
 * The fence of a run (docs/protocol.md, step 1): every database of the sync opens its
 * write transaction and takes the sync's transaction-level advisory lock there, without
 * waiting. A run holds the lock in every database until it commits or rolls back, so two
 * runs of one sync never overlap on any database, whichever runner, topology file or
 * source order; a run whose session to a database dies loses the lock there together
 * with everything it wrote there, and can no longer commit.
 */

/** BEGIN and the try-lock, one round trip. `key`: two generated int4 (never user input). */
export function fenceSql(key: [number, number]): string {
  return `BEGIN; SELECT pg_try_advisory_xact_lock(${Math.trunc(key[0])}, ${Math.trunc(key[1])}) AS ok`;
}
