/**
 * PostgreSQL rows as Redis keys and hash fields (SPEC section 7, docs/targets.md "Redis").
 * A row of `schema.table` is the hash `schema.table:KEY` (the key columns' values joined
 * with `:`), one field per non-NULL column. Values are PostgreSQL's text (under the
 * runner's fixed settings), except timestamps (ISO 8601, UTC, microseconds), booleans
 * (`1`/`0`) and bytea (the raw bytes: RESP is binary-safe).
 *
 * Escaping, so that two different rows or tables never share a key and a TRUNCATE's SCAN
 * pattern matches its own table only: in the schema and table names `\`, `.` and `:` get a
 * backslash; in a key value `\` and `:` do (a NULL key value is `\N`, which no escaped value
 * can be). Plain names and values (`public.items:42`, `shop.orders:eu:7`) are unchanged.
 */
import { byteaOf, isoTimestamp, type TypeClass } from './values.js';

/** A field value as HSET takes it. */
export type RedisValue = string | Buffer;

/** One PostgreSQL text value (non-NULL) as the hash field holds it. */
export function redisValue(c: TypeClass, text: string): RedisValue {
  switch (c) {
    case 'bool':
      return text === 't' ? '1' : '0';
    case 'bytea':
      return byteaOf(text);
    case 'timestamptz':
    case 'timestamp':
      return isoTimestamp(text);
    // integers, floats (shortest exact text, NaN, Infinity, -0), numerics and the rest: PostgreSQL's text
    case 'int':
    case 'bigint':
    case 'float':
    case 'numeric':
    case 'text':
      return text;
    default: {
      const never: never = c;
      throw new Error(`unknown type class ${String(never)}`);
    }
  }
}

/** A key column's value as a part of the key: its field text, a bytea as lowercase hex (no `\x`). */
export function redisKeyPart(c: TypeClass, text: string | null): string {
  if (text === null) return '\\N';
  const v = redisValue(c, text);
  return escapeValue(typeof v === 'string' ? v : v.toString('hex'));
}

function escapeValue(v: string): string {
  return v.replace(/[\\:]/g, (ch) => `\\${ch}`);
}

function escapeName(v: string): string {
  return v.replace(/[\\.:]/g, (ch) => `\\${ch}`);
}

/** `schema.table`, escaped: what every key of the table starts with, before its `:`. */
export function redisTablePrefix(schema: string, table: string): string {
  return `${escapeName(schema)}.${escapeName(table)}`;
}

/** The hash of one row: `prefix:part1:part2` (parts from redisKeyPart). */
export function redisRowKey(prefix: string, parts: string[]): string {
  return `${prefix}:${parts.join(':')}`;
}

/** SCAN's MATCH pattern for every key of a table: the prefix with glob characters escaped, then `:*`. */
export function redisScanPattern(prefix: string): string {
  return `${prefix.replace(/[\\*?[\]]/g, (ch) => `\\${ch}`)}:*`;
}

/** A row key's parts back (unescaped; `\N` is null), or null when the key is not one of the prefix's. */
export function redisKeyParts(prefix: string, key: string): (string | null)[] | null {
  if (!key.startsWith(`${prefix}:`)) return null;
  const parts: (string | null)[] = [];
  let cur = '';
  let nul = false;
  const rest = key.slice(prefix.length + 1);
  for (let i = 0; i < rest.length; i++) {
    const ch = rest[i];
    if (ch === '\\' && i + 1 < rest.length) {
      const next = rest[++i];
      if (next === 'N') nul = true;
      else cur += next;
    } else if (ch === ':') {
      parts.push(nul ? null : cur);
      cur = '';
      nul = false;
    } else cur += ch;
  }
  parts.push(nul ? null : cur);
  return parts;
}

/** The hash holding a sync's watermark in a Redis database (docs/targets.md). */
export function redisStateKey(sync: string): string {
  return `bucardo:sync_state:${sync}`;
}
