/**
 * PostgreSQL values as other engines store them (SPEC section 7, docs/targets.md). Rows
 * reach a receiver as PostgreSQL's own text (COPY text format, under the fixed session
 * settings of engine/connect.ts: UTC, ISO dates, shortest exact floats), so the mapping is
 * a function of the column's type and that text alone. The type classes are shared by
 * every engine; what each class becomes is the engine's (sqliteValue here for SQLite).
 */

/** How a PostgreSQL type travels to another engine. */
export type TypeClass = 'int' | 'bigint' | 'float' | 'numeric' | 'bool' | 'bytea' | 'timestamptz' | 'timestamp' | 'text';

/** The class of a type as format_type prints it (a domain is given as its base type). */
export function typeClassOf(pgType: string): TypeClass {
  const t = pgType.toLowerCase();
  if (t.endsWith('[]')) return 'text'; // arrays keep PostgreSQL's text form
  if (t === 'smallint' || t === 'integer') return 'int';
  if (t === 'bigint') return 'bigint';
  if (t === 'real' || t === 'double precision') return 'float';
  if (t === 'numeric' || t.startsWith('numeric(')) return 'numeric';
  if (t === 'boolean') return 'bool';
  if (t === 'bytea') return 'bytea';
  if (/^timestamp(\(\d\))? with time zone$/.test(t)) return 'timestamptz';
  if (/^timestamp(\(\d\))? without time zone$/.test(t)) return 'timestamp';
  return 'text';
}

/** A SQLite column's affinity for a class: what plan's CREATE TABLE hint declares. */
export type SqliteAffinity = 'INTEGER' | 'REAL' | 'TEXT' | 'BLOB';

export function sqliteAffinityOf(c: TypeClass): SqliteAffinity {
  switch (c) {
    case 'int':
    case 'bigint':
    case 'bool':
      return 'INTEGER';
    case 'float':
      return 'REAL';
    case 'bytea':
      return 'BLOB';
    // numeric as TEXT: a REAL (or NUMERIC affinity) keeps 15-17 significant digits only
    case 'numeric':
    case 'timestamptz':
    case 'timestamp':
    case 'text':
      return 'TEXT';
    default: {
      const never: never = c;
      throw new Error(`unknown type class ${String(never)}`);
    }
  }
}

/** A value as better-sqlite3 binds it. */
export type SqliteValue = string | number | bigint | Buffer | null;

const TS = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(\+00)?$/;

/**
 * A timestamp's PostgreSQL text (`2024-02-29 10:14:59.999999+00`) as ISO 8601 with six
 * fractional digits (`2024-02-29T10:14:59.999999Z`; without time zone, no `Z`): sortable as
 * text and exact to the microsecond. infinity, -infinity and years BC keep PostgreSQL's text.
 */
export function isoTimestamp(text: string): string {
  const m = TS.exec(text);
  if (!m) return text;
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${(m[7] ?? '').padEnd(6, '0')}${m[8] ? 'Z' : ''}`;
}

/** bytea's text output (hex: `\x0a0b`) as bytes. */
export function byteaOf(text: string): Buffer {
  return Buffer.from(text.startsWith('\\x') ? text.slice(2) : text, 'hex');
}

/** One PostgreSQL text value (null: NULL) as SQLite stores it. */
export function sqliteValue(c: TypeClass, text: string | null): SqliteValue {
  if (text === null) return null;
  switch (c) {
    case 'int':
      return Number(text);
    case 'bigint':
      return BigInt(text);
    case 'float':
      // NaN would bind as NULL and the infinities are no SQL literal: they stay text
      return text === 'NaN' || text === 'Infinity' || text === '-Infinity' ? text : Number(text);
    case 'bool':
      return text === 't' ? 1 : 0;
    case 'bytea':
      return byteaOf(text);
    case 'timestamptz':
    case 'timestamp':
      return isoTimestamp(text);
    case 'numeric':
    case 'text':
      return text;
    default: {
      const never: never = c;
      throw new Error(`unknown type class ${String(never)}`);
    }
  }
}
