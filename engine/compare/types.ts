/** What `bucardo compare` finds: per table, row counts per database and the first differing keys. */

export type DifferenceKind = 'missing' | 'extra' | 'different';

export interface CompareDifference {
  /** The key, column name -> value (numbers for integer keys that fit, else the value's text). */
  key: Record<string, unknown>;
  /**
   * Relative to the reference database (the sync's first source):
   * `missing` the reference has the key and these databases do not; `extra` these
   * databases have a key the reference lacks; `different` these databases hold other values.
   */
  kind: DifferenceKind;
  databases: string[];
}

export interface TableComparison {
  /** SQL syntax, quoting only where needed. */
  table: string;
  schema: string;
  name: string;
  equal: boolean;
  /** Row count per database, read in the same snapshot as the hashes. */
  rows: Record<string, number>;
  /** The first differing keys, in key order (at most `maxDifferences`). */
  differences: CompareDifference[];
  /** More differing keys exist than are listed. */
  truncated: boolean;
  /** The compared columns: non-generated, present on every database. */
  columns: string[];
  /** How databases that take the table their own way were compared (SPEC section 6): names, filters, columns, keys only. */
  notes?: string[];
}

export interface CompareResult {
  sync: string;
  /** Every database of the sync; the first is the reference. */
  databases: string[];
  equal: boolean;
  tables: TableComparison[];
}

export interface CompareOptions {
  /** Rows per chunk on the first pass (sampled on the reference). Default 10000. */
  chunkRows?: number;
  /** A differing chunk with at most this many rows on every database is compared row by row. Default 1000. */
  rowLevel?: number;
  /** Differing keys reported per table. Default 10. */
  maxDifferences?: number;
}
