/**
 * Relation (table and sequence) names as users write them in the topology file, and the
 * globs of `match:` / `exclude:`. Names in SQL syntax follow PostgreSQL's own rules
 * (scan.l / scansup.c `downcase_identifier`), so what a user types here means what it
 * would mean in psql. (The names bucardo derives for what it installs are in
 * ../objectnames.ts.)
 */
import { BucardoError } from '../errors.js';
import { byteLength, displayName } from '../sql/ident.js';
import type { QualifiedName } from './types.js';

/** PostgreSQL truncates identifiers longer than NAMEDATALEN-1 = 63 bytes. */
const MAX_IDENTIFIER_BYTES = 63;

// scan.l: ident_start = [A-Za-z\200-\377_], ident_cont adds [0-9\$]; every non-ASCII
// character is a letter as far as the lexer is concerned.
const UNQUOTED_RE = /^[A-Za-z_\u{80}-\u{10FFFF}][A-Za-z0-9_$\u{80}-\u{10FFFF}]*$/u;

/**
 * Parses `schema.table`, `table` (schema `public`), with SQL quoting: unquoted parts fold
 * to lower case (ASCII only, as PostgreSQL does for UTF-8), `"..."` keeps everything,
 * `""` inside quotes is one quote. Throws a BucardoError (code `bad_name`) whose message
 * says what is wrong; it does not echo the whole text, the caller names the entry.
 */
export function parseQualifiedName(text: string): QualifiedName {
  const parts = splitName(text.trim());
  if (parts.length > 2) {
    throw new BucardoError('bad_name', `has ${parts.length} dot-separated parts; write schema.table (database-qualified names are not supported)`, {
      hint: 'quote a part that contains a dot, as in "my.schema".table',
    });
  }
  const [schema, name] = parts.length === 1 ? ['public', parts[0]!] : [parts[0]!, parts[1]!];
  assertIdentifierLength(schema);
  assertIdentifierLength(name);
  return { schema, name };
}

function splitName(text: string): string[] {
  if (text === '') throw new BucardoError('bad_name', 'is empty');
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (text[i] === '"') {
      let part = '';
      i++;
      for (;;) {
        if (i >= text.length)
          throw new BucardoError('bad_name', 'has an unbalanced double quote', { hint: 'close the quoted part with ", and write "" for a quote inside it' });
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            part += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        part += text[i];
        i++;
      }
      if (part === '') throw new BucardoError('bad_name', 'has an empty quoted part ("")');
      parts.push(part);
    } else {
      let j = i;
      while (j < text.length && text[j] !== '.' && text[j] !== '"') j++;
      const raw = text.slice(i, j).replace(/[ \t]+$/, '');
      if (raw === '') throw new BucardoError('bad_name', 'has an empty part', { hint: 'write schema.table, without a leading, trailing or doubled dot' });
      if (!UNQUOTED_RE.test(raw)) {
        throw new BucardoError('bad_name', `has an unquoted part that is not a plain SQL identifier`, {
          hint: 'double-quote parts with spaces or special characters, as in "Sales EU"."Order Lines"',
        });
      }
      parts.push(raw.replace(/[A-Z]+/g, (s) => s.toLowerCase()));
      i = j;
    }
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (i >= text.length) return parts;
    if (text[i] !== '.')
      throw new BucardoError('bad_name', 'has text next to a quoted part', { hint: 'separate parts with a dot, and write "" for a quote inside quotes' });
    i++;
  }
}

/** Throws when PostgreSQL would silently truncate the name (so it would never match). */
export function assertIdentifierLength(name: string): void {
  const bytes = byteLength(name);
  if (bytes > MAX_IDENTIFIER_BYTES) {
    throw new BucardoError('bad_name', `has a part of ${bytes} bytes; PostgreSQL identifiers are at most ${MAX_IDENTIFIER_BYTES} bytes`);
  }
}

/** `schema.name` in SQL syntax, quoting only where needed: for messages. */
export function formatQualifiedName(q: QualifiedName): string {
  return displayName(q.schema, q.name);
}

/**
 * A glob over `schema.table` (exact names) as an anchored RegExp: `*` is any run of
 * characters (dots included), `?` one character, `\` makes the next one literal.
 */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) {
      re += escapeRegExp(pattern[++i]!);
    } else if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else re += escapeRegExp(c);
  }
  return new RegExp(`^${re}$`, 'su');
}

/** The glob that matches exactly this name, whatever characters it holds. */
export function exactGlob(q: QualifiedName): string {
  const esc = (s: string) => s.replace(/[\\*?]/g, '\\$&');
  return `${esc(q.schema)}.${esc(q.name)}`;
}

/** True when the glob has wildcards (is not just one escaped exact name). */
export function isGlob(pattern: string): boolean {
  return /(^|[^\\])(\\\\)*[*?]/.test(pattern);
}

function escapeRegExp(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
