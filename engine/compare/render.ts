/** `bucardo compare` output: text for people, JSON (format_version 1) for scripts. */
import type { CompareDifference, CompareResult } from './types.js';

export function renderCompareJson(r: CompareResult): string {
  return `${JSON.stringify(
    {
      format_version: '1',
      sync: r.sync,
      databases: r.databases,
      equal: r.equal,
      tables: r.tables.map((t) => ({
        table: t.table,
        equal: t.equal,
        rows: t.rows,
        differences: t.differences.map((d) => ({ key: d.key, kind: d.kind, databases: d.databases })),
        truncated: t.truncated,
        ...(t.notes ? { notes: t.notes } : {}),
      })),
    },
    null,
    2,
  )}\n`;
}

/** `k=v, k2=v2`, values as JSON where that reads better (strings quoted only when they need it). */
export function formatKey(key: Record<string, unknown>): string {
  return Object.entries(key)
    .map(
      ([k, v]) => `${/^[a-z_][a-z0-9_]*$/.test(k) ? k : JSON.stringify(k)}=${typeof v === 'string' && !/^[^\s,="]+$/.test(v) ? JSON.stringify(v) : String(v)}`,
    )
    .join(', ');
}

function describe(d: CompareDifference, reference: string): string {
  const on = d.databases.join(', ');
  switch (d.kind) {
    case 'missing':
      return `missing on ${on} (present on ${reference})`;
    case 'extra':
      return `extra on ${on} (absent on ${reference})`;
    case 'different':
      return `different on ${on} (from ${reference})`;
    default: {
      const never: never = d.kind;
      return never;
    }
  }
}

export function renderCompareText(r: CompareResult): string {
  const reference = r.databases[0];
  const lines: string[] = [];
  for (const t of r.tables) {
    const counts = Object.values(t.rows);
    const rows = counts.every((n) => n === counts[0])
      ? `${counts[0]} row${counts[0] === 1 ? '' : 's'} on each database`
      : `${Object.entries(t.rows)
          .map(([db, n]) => `${db} ${n}`)
          .join(', ')} rows`;
    lines.push(`${t.table}: ${t.equal ? 'equal' : 'DIFFERENT'} (${rows})`);
    for (const n of t.notes ?? []) lines.push(`  compared ${n}`);
    for (const d of t.differences) lines.push(`  ${formatKey(d.key)}: ${describe(d, reference)}`);
    if (t.truncated) lines.push(`  ... more differing keys not listed`);
  }
  const differing = r.tables.filter((t) => !t.equal).length;
  if (!r.tables.length) lines.push(`Sync ${r.sync} has no tables.`);
  else if (r.equal) lines.push(`Sync ${r.sync}: all ${r.tables.length} table${r.tables.length === 1 ? '' : 's'} equal on ${r.databases.join(', ')}.`);
  else lines.push(`Sync ${r.sync}: ${differing} of ${r.tables.length} table${r.tables.length === 1 ? '' : 's'} differ.`);
  return `${lines.join('\n')}\n`;
}
