/**
 * `bucardo init --from URL`: a starter topology from an existing database, so nobody types
 * 200 table names. Every table with a usable key goes into one relgroup (in SQL syntax);
 * the others are listed in a comment with the reason; the sequences of the chosen tables
 * come along; one example sync to a placeholder target keeps the file valid as written.
 * The password of URL is never written: the file reads it from an environment variable.
 */
import YAML from 'yaml';
import { withClient } from '../connect.js';
import { BucardoError } from '../errors.js';
import { displayName } from '../sql/ident.js';
import { globToRegExp } from '../topology/relnames.js';
import type { DatabaseSpec } from '../topology/types.js';
import type { TableInfo } from '../catalog/types.js';
import { readInitSource, type InitSource } from './read.js';

export interface InitOptions {
  /** Globs over the exact schema.table (`*`, `?`, `\` escapes); none: every table. */
  tables?: string[];
  /** What goes after `$schema=` on the first line. */
  schemaRef: string;
}

export interface StarterTopology {
  text: string;
  /** Database key used in the file. */
  database: string;
  tables: string[];
  keyless: { table: string; reason: string }[];
  sequences: string[];
}

/** Connects to URL, reads it, and renders the starter topology. */
export async function makeStarterTopology(url: string, opts: InitOptions): Promise<StarterTopology> {
  const parsed = parseSourceUrl(url);
  const db: DatabaseSpec = { name: parsed.key, connection: { url }, makedelta: false, pos: { line: 1, col: 1 } };
  const source = await withClient(db, (c) => readInitSource(c, parsed.key), 'bucardo init');
  return renderStarterTopology(source, parsed, opts);
}

export interface SourceUrl {
  /** Database key in the topology (from the database name). */
  key: string;
  /** The URL as it goes into the file: password replaced by ${env:KEY_PASSWORD:-}. */
  fileUrl: string;
  /** The URL for messages: no password at all. */
  shownUrl: string;
  passwordVar: string;
  hadPassword: boolean;
  user: string;
  dbname: string;
  port: string;
}

export function parseSourceUrl(url: string): SourceUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new BucardoError('bad_url', 'the --from value is not a postgres:// URL', { hint: 'write it as postgres://user[:password]@host[:port]/dbname' });
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new BucardoError('bad_url', `the --from URL starts with ${u.protocol}//, not postgres://`, {
      hint: 'write it as postgres://user[:password]@host[:port]/dbname',
    });
  }
  const dbname = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const user = decodeURIComponent(u.username);
  let key = (dbname || user || 'source').replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 63);
  if (!/^[A-Za-z_]/.test(key)) key = `db_${key}`.slice(0, 63);
  if (key === 'target') key = 'source';
  const passwordVar = `${key.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}_PASSWORD`;
  const hadPassword = u.password !== '' || u.searchParams.has('password');
  u.searchParams.delete('password');
  const search = u.searchParams.toString();
  const rest = `${u.host}${u.pathname}${search ? `?${search}` : ''}`;
  const userPart = u.username;
  const fileUrl = `${u.protocol}//${userPart}${userPart ? `:\${env:${passwordVar}:-}@` : ''}${rest}`;
  const shownUrl = `${u.protocol}//${userPart ? `${userPart}@` : ''}${rest}`;
  return { key, fileUrl, shownUrl, passwordVar, hadPassword, user, dbname, port: u.port || '5432' };
}

const yamlScalar = (s: string) => YAML.stringify(s, { lineWidth: 0 }).trimEnd();
/** Names may hold newlines; a comment line must not. */
const commentSafe = (s: string) => s.replace(/[\r\n]/g, (c) => (c === '\n' ? '\\n' : '\\r'));

function keylessReason(t: TableInfo, source: InitSource): string {
  const idx = source.unusableIndexes.filter((i) => i.schema === t.schema && i.table === t.name);
  if (!idx.length) return 'no primary key and no unique index';
  const why = idx.map((i) => {
    const parts: string[] = [];
    if (i.partial) parts.push('partial');
    if (i.expression) parts.push('on an expression');
    if (i.invalid) parts.push('invalid');
    if (i.nullableColumns.length) parts.push(`on nullable column${i.nullableColumns.length === 1 ? '' : 's'} ${i.nullableColumns.join(', ')}`);
    return `unique index ${i.index} is ${parts.join(' and ') || 'not usable'}`;
  });
  return `no primary key; ${why.join('; ')}`;
}

/** What goes into the starter topology: the tables --tables picks, split by whether they have a usable key. */
interface StarterContents {
  keyed: TableInfo[];
  keyless: { table: string; reason: string }[];
  /** Sequences of the keyed tables, and free-standing ones --tables picks. */
  sequences: string[];
  views: InitSource['views'];
}

export function renderStarterTopology(source: InitSource, src: SourceUrl, opts: InitOptions): StarterTopology {
  const contents = pickStarterContents(source, opts);
  const tables = contents.keyed.map((t) => displayName(t.schema, t.name));
  const L = [
    ...headerLines(contents, src, opts),
    ...databaseLines(src),
    ...relgroupLines(contents, src.key),
    ...syncLines(src.key),
    ...notReplicatedLines(contents),
  ];
  return { text: `${L.join('\n')}\n`, database: src.key, tables, keyless: contents.keyless, sequences: contents.sequences };
}

function pickStarterContents(source: InitSource, opts: InitOptions): StarterContents {
  const res = (opts.tables ?? []).map((p) => globToRegExp(p));
  const wanted = (schema: string, name: string) => !res.length || res.some((re) => re.test(`${schema}.${name}`));
  const picked = source.catalog.tables.filter((t) => wanted(t.schema, t.name));
  const keyed = picked.filter((t) => t.primaryKey?.length || t.uniqueKeys.length);
  const keyless = picked
    .filter((t) => !(t.primaryKey?.length || t.uniqueKeys.length))
    .map((t) => ({ table: displayName(t.schema, t.name), reason: keylessReason(t, source) }));
  const keyedSet = new Set(keyed.map((t) => `${t.schema}\u0000${t.name}`));
  const sequences = source.sequences
    .filter((s) => (s.table ? keyedSet.has(`${s.table.schema}\u0000${s.table.name}`) : wanted(s.schema, s.name)))
    .map((s) => displayName(s.schema, s.name));
  const views = source.views.filter((v) => wanted(v.schema, v.name));
  return { keyed, keyless, sequences, views };
}

/** The schema line, where the file came from, what it holds, and what to do next. */
function headerLines({ keyed, keyless }: StarterContents, src: SourceUrl, opts: InitOptions): string[] {
  const rows = keyed.reduce((n, t) => n + Math.max(0, t.estimatedRows), 0);
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const L: string[] = [];
  L.push(`# yaml-language-server: $schema=${opts.schemaRef}`);
  L.push('#');
  L.push(`# Starter topology written by \`bucardo init\` from ${commentSafe(src.shownUrl)} at ${now}.`);
  // reltuples is -1 until a table is first analysed: no estimate rather than a wrong one.
  const estimate = keyed.every((t) => t.estimatedRows >= 0) && keyed.length ? ` (about ${rows} rows)` : '';
  L.push(
    `# ${keyed.length} table${keyed.length === 1 ? '' : 's'} with a usable key${estimate} ${keyed.length === 1 ? 'is' : 'are'} in relgroup ${src.key}` +
      (keyless.length ? `; ${keyless.length} without one ${keyless.length === 1 ? 'is' : 'are'} listed at the end.` : '.'),
  );
  L.push('# Next: point the target at the database that receives the changes, review the sync,');
  L.push('# then: bucardo validate && bucardo plan');
  L.push('version: 1');
  L.push('');
  return L;
}

/** The source (its password from an environment variable) and a placeholder target. */
function databaseLines(src: SourceUrl): string[] {
  const k = src.key;
  const L: string[] = [];
  L.push('databases:');
  L.push(`  ${k}:`);
  L.push(`    # No password is written here: set ${src.passwordVar} (percent-encoded), or leave it`);
  L.push('    # unset to use PGPASSWORD or ~/.pgpass.');
  L.push(`    url: ${yamlScalar(src.fileUrl)}`);
  L.push('  target:');
  L.push('    # A placeholder: set TARGET_URL, or write the URL here. It needs the same tables');
  L.push('    # (pg_dump --schema-only of the source makes them).');
  L.push(`    url: ${yamlScalar(`\${env:TARGET_URL:-postgres://${src.user ? `${src.user}@` : ''}target.example.com:${src.port}/${src.dbname}}`)}`);
  L.push('');
  return L;
}

/** One relgroup: every keyed table (a partitioned one with a note), then their sequences. */
function relgroupLines({ keyed, sequences }: StarterContents, k: string): string[] {
  const L: string[] = [];
  L.push('relgroups:');
  L.push(`  ${k}:`);
  if (keyed.length) {
    L.push('    tables:');
    for (const t of keyed) {
      const parts = t.kind === 'p' ? (t.partitions ?? []) : [];
      const note =
        t.kind === 'p'
          ? `   # partitioned: its ${parts.length} partition${parts.length === 1 ? '' : 's'} follow${parts.length === 1 ? 's' : ''} it, writes aimed at a partition included`
          : '';
      L.push(`      - ${yamlScalar(displayName(t.schema, t.name))}${note}`);
    }
    if (keyed.some((t) => t.kind === 'p')) {
      L.push('    # Create a new partition on every database of the sync, then run bucardo plan and apply:');
      L.push('    # plan lists it (its capture triggers), and refuses a partition a receiver lacks.');
    }
  } else {
    L.push('    tables: []   # no table with a usable key matched');
  }
  if (sequences.length) {
    L.push('    # Sequences of these tables: every database gets the highest value seen on any source.');
    L.push('    sequences:');
    for (const s of sequences) L.push(`      - ${yamlScalar(s)}`);
  }
  L.push('');
  return L;
}

/** One example sync from the source to the target, its main options as comments. */
function syncLines(k: string): string[] {
  const L: string[] = [];
  L.push('syncs:');
  L.push(`  ${k}:`);
  L.push(`    relgroup: ${k}`);
  L.push(`    sources: [${k}]`);
  L.push('    targets: [target]');
  L.push('    # onetimecopy: if_empty     # first run copies each table whole: never | always | if_empty');
  L.push('    # autokick: true            # a commit on a source wakes the runner');
  L.push('    # checktime: 30s            # also run at least this often');
  L.push('    # For multi-source, list both databases under sources: and pick a conflict strategy:');
  L.push(`    # sources: [${k}, target]`);
  L.push('    # conflict: latest          # latest | latest_table | latest_sync | {priority: [...]} | random | skip | abort');
  return L;
}

/** Comments on what the file leaves out: views, and tables without a usable key (with the reason). */
function notReplicatedLines({ views, keyless }: StarterContents): string[] {
  const L: string[] = [];
  if (views.length) {
    L.push('');
    L.push('# Not replicated: views and materialized views hold no rows of their own. Create them on every');
    L.push('# database (pg_dump --schema-only); refresh a materialized view where it is read.');
    for (const v of views) L.push(`#   ${commentSafe(displayName(v.schema, v.name))}${v.materialized ? ' (materialized view)' : ' (view)'}`);
  }
  if (keyless.length) {
    L.push('');
    L.push('# Tables without a usable key (a primary key, or a unique index on NOT NULL columns).');
    L.push('# bucardo cannot replicate them as they are: add a primary key, or add the table above as');
    L.push('#   - {name: schema.table, key: [columns that identify a row]}');
    for (const t of keyless) L.push(`#   ${commentSafe(t.table)}: ${commentSafe(t.reason)}`);
  }
  return L;
}
