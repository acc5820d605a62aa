/**
 * Values a run reuses from the last one instead of building them again: the tables'
 * details when their catalog fingerprint is unchanged (sql/prepare.ts), the scope's
 * tables made from them (scope.ts) and the probe statement (sql/pending.ts). At 1,000
 * tables, copying or rebuilding them cost 20-30 ms of every run. They are frozen, so a
 * change to one that would leak into the next run throws where it is made instead.
 */

/** `v`, and everything reachable from it, frozen (in place); returns `v`. */
export function deepFreeze<T>(v: T): T {
  if (v === null || typeof v !== 'object' || Object.isFrozen(v)) return v;
  Object.freeze(v);
  for (const x of Object.values(v as object)) deepFreeze(x);
  return v;
}
