// A custom conflict handler (docs/custom-code.md): a column-wise merge of counters.
//
// The table keeps one counter column per source, and each source only ever increments
// its own: east does `UPDATE page_hits SET hits_east = hits_east + 1`, west `hits_west`;
// the total is hits_east + hits_west. When both sources touch the same page between two
// runs, that is a conflict, and `latest` would keep one source's row whole, losing the
// other source's increments. Here every counter column takes the greatest value among
// the sources' rows (its own source's row holds its newest value: counters only grow),
// and every other column comes from the row with the newest change.
//
// Why not add the two sources' values: a row holds totals, not increments, and a conflict
// does not carry the value before the changes, so summing would count the common part
// twice. And the greatest value is idempotent: when a run is redone after a crash and
// one database already holds the merged row, merging again gives the same row (the
// winner of a conflict must not depend on how often it is computed).
//
// Values arrive and leave as PostgreSQL text (bigint exactly: compared as BigInt). A
// deleted row (null) is not merged: the newest change wins the key, delete or not.

/** Counter columns: every column whose name starts with hits_. */
const COUNTER = /^hits_/;

export function resolve(batch) {
  return batch.conflicts.map((c) => {
    // the database with the newest change (ISO times sort as text)
    const newest = Object.keys(c.changed_at).reduce((a, b) => (c.changed_at[b] > c.changed_at[a] ? b : a));
    const rows = Object.values(c.rows);
    if (rows.some((r) => r === null)) return newest;
    const merged = { ...c.rows[newest] };
    for (const col of Object.keys(merged)) {
      if (!COUNTER.test(col)) continue;
      const values = rows.map((r) => r[col]).filter((v) => v !== null);
      merged[col] = values.length ? values.reduce((a, b) => (BigInt(b) > BigInt(a) ? b : a)) : null;
    }
    return { row: merged };
  });
}
