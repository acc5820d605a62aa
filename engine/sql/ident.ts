/**
 * The one place identifiers and DDL literals are quoted. No name is ever spliced into SQL
 * without going through quoteIdent/qualify; runtime values are always bind parameters.
 * quoteLiteral exists only for DDL text (function bodies, COMMENT), where PostgreSQL
 * accepts no parameters.
 */
import { createHash } from 'node:crypto';

/** "name" with embedded double quotes doubled (pg's escapeIdentifier, without the client). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** "schema"."name" */
export function qualify(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/** A SQL string literal for DDL text only; E'' form when backslashes are present. */
export function quoteLiteral(value: string): string {
  const body = value.replace(/'/g, "''");
  return value.includes('\\') ? ` E'${body.replace(/\\/g, '\\\\')}'`.trim() : `'${body}'`;
}

/** Display form of a qualified name: SQL syntax, quoting only where needed. */
export function displayName(schema: string, name: string): string {
  return `${displayIdent(schema)}.${displayIdent(name)}`;
}

const RESERVED = new Set(
  (
    'all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate collation ' +
    'column concurrently constraint create cross current_catalog current_date current_role current_schema current_time ' +
    'current_timestamp current_user default deferrable desc distinct do else end except false fetch for foreign freeze ' +
    'from full grant group having ilike in initially inner intersect into is isnull join lateral leading left like limit ' +
    'localtime localtimestamp natural not notnull null offset on only or order outer overlaps placing primary references ' +
    'returning right select session_user similar some symmetric system_user table tablesample then to trailing true union ' +
    'unique user using variadic verbose when where window with'
  ).split(' '),
);

/** An identifier as a person would type it: bare when that folds back to itself. */
export function displayIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) && !RESERVED.has(name) ? name : quoteIdent(name);
}

/** Byte length in UTF-8 (PostgreSQL's NAMEDATALEN counts bytes). */
export function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** First `n` hex digits of sha256 over the parts joined by NUL. */
export function shortHash(parts: string[], n = 12): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, n);
}

/** sha256 hex of a text (fingerprints). */
export function fingerprint(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
