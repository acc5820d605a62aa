/**
 * PostgreSQL values as MariaDB/MySQL stores them (SPEC section 7, docs/targets.md), from
 * the type classes shared by every engine (values.ts). Values are sent as text (or bytes)
 * and MariaDB converts them into the column's own type under strict mode: a value the
 * column cannot hold (NaN in a DOUBLE, `infinity` in a DATETIME, too many digits for a
 * DECIMAL) is an error of the run, which the receiver names by row key and column, and is
 * never stored as something else.
 */
import { byteaOf, type TypeClass } from './values.js';

/** A column type as plan's CREATE TABLE hint declares it. */
export type MariadbColumnType = string;

/** A value as mysql2 binds it into a `?`. */
export type MariadbValue = string | number | Buffer | null;

/** The column type plan's hint declares for a PostgreSQL type (format_type's text); `key`: part of the replication key (indexable). */
export function mariadbColumnTypeOf(pgType: string, key: boolean): MariadbColumnType {
  const t = pgType.toLowerCase();
  if (t === 'smallint') return 'SMALLINT';
  if (t === 'integer') return 'INT';
  if (t === 'bigint') return 'BIGINT';
  if (t === 'boolean') return 'BOOLEAN';
  if (t === 'real' || t === 'double precision') return 'DOUBLE';
  if (/^timestamp(\(\d\))? with(out)? time zone$/.test(t)) return 'DATETIME(6)';
  const n = /^numeric\((\d+)(?:,(\d+))?\)$/.exec(t);
  // DECIMAL stops at 65 digits, 38 after the point; beyond, and unconstrained, the exact text
  if (n && Number(n[1]) <= 65 && Number(n[2] ?? 0) <= 38) return `DECIMAL(${n[1]},${n[2] ?? 0})`;
  if (t === 'bytea') return key ? 'VARBINARY(255)' : 'LONGBLOB';
  // a LONGTEXT cannot be a key: VARCHAR(255) of utf8mb4 fits InnoDB's index limit
  return key ? 'VARCHAR(255)' : 'LONGTEXT';
}

const TS = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d(?:\.\d{1,6})?)(\+00)?$/;

/** One PostgreSQL text value (null: NULL) as sent to MariaDB. */
export function mariadbValue(c: TypeClass, text: string | null): MariadbValue {
  if (text === null) return null;
  switch (c) {
    case 'bool':
      return text === 't' ? 1 : 0;
    case 'bytea':
      return byteaOf(text);
    case 'timestamptz':
    case 'timestamp': {
      // the runner's session is UTC: the +00 goes; infinity, BC and years past 9999 stay text, which a DATETIME refuses
      const m = TS.exec(text);
      return m ? `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}` : text;
    }
    // integers, floats and numerics as their text: MariaDB parses it exactly (a JS number would lose bigint's digits)
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

const DECIMAL = /^(-?)(\d+)(?:\.(\d*?)0*)?$/;

/**
 * A value (its bytes as MariaDB returned them, or null) in the form compare matches:
 * bytes as hex, numbers as JavaScript prints them (a DOUBLE's -0 is read back as 0, and
 * both sides agree), decimals without the trailing zeros of the column's scale, DATETIMEs
 * with six fractional digits, the rest as its text.
 */
export function mariadbCanonical(c: TypeClass, raw: Buffer | null): string | null {
  if (raw === null) return null;
  if (c === 'bytea') return raw.toString('hex');
  return canonicalText(c, raw.toString('utf8'));
}

/** A PostgreSQL text value as mariadbCanonical gives it once written to MariaDB. */
export function mariadbExpected(c: TypeClass, text: string | null): string | null {
  const v = mariadbValue(c, text);
  if (v === null) return null;
  if (Buffer.isBuffer(v)) return v.toString('hex');
  return canonicalText(c, String(v));
}

const DATETIME = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.(\d{1,6}))?$/;

function canonicalText(c: TypeClass, s: string): string {
  if (c === 'float') return String(Number(s));
  if (c === 'timestamptz' || c === 'timestamp') {
    // a DATETIME(6) prints six fractional digits, PostgreSQL only those it needs
    const m = DATETIME.exec(s);
    return m ? `${m[1]}.${(m[2] ?? '').padEnd(6, '0')}` : s;
  }
  if (c === 'numeric') {
    const m = DECIMAL.exec(s);
    if (!m) return s;
    const digits = `${m[2].replace(/^0+(?=\d)/, '')}${m[3] ? `.${m[3]}` : ''}`;
    return /^[0.]+$/.test(digits) ? '0' : `${m[1]}${digits}`;
  }
  return s;
}
