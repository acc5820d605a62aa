/** The value mapping of targets of other engines (engine/targets/values.ts) and COPY text fields (engine/runner/copytext.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { typeClassOf, sqliteValue, sqliteAffinityOf, isoTimestamp } from '../../engine/targets/values.js';
import { unescapeCopyField } from '../../engine/runner/copytext.js';

test('types as format_type prints them fall into their classes', () => {
  const cases: [string, string][] = [
    ['smallint', 'int'],
    ['integer', 'int'],
    ['bigint', 'bigint'],
    ['real', 'float'],
    ['double precision', 'float'],
    ['numeric', 'numeric'],
    ['numeric(12,2)', 'numeric'],
    ['boolean', 'bool'],
    ['bytea', 'bytea'],
    ['timestamp with time zone', 'timestamptz'],
    ['timestamp(3) with time zone', 'timestamptz'],
    ['timestamp without time zone', 'timestamp'],
    ['integer[]', 'text'],
    ['jsonb', 'text'],
    ['"my type"', 'text'],
  ];
  for (const [t, c] of cases) assert.equal(typeClassOf(t), c, t);
  assert.equal(sqliteAffinityOf('numeric'), 'TEXT', 'numeric is exact only as TEXT');
  assert.equal(sqliteAffinityOf('bool'), 'INTEGER');
});

test('PostgreSQL text maps to SQLite values', () => {
  assert.equal(sqliteValue('bigint', '-9223372036854775808'), -9223372036854775808n);
  assert.equal(sqliteValue('int', '42'), 42);
  assert.equal(sqliteValue('float', 'NaN'), 'NaN');
  assert.equal(sqliteValue('float', '-Infinity'), '-Infinity');
  assert.equal(sqliteValue('float', '1.7976931348623157e+308'), 1.7976931348623157e308);
  assert.equal(sqliteValue('bool', 't'), 1);
  assert.equal(sqliteValue('bool', 'f'), 0);
  assert.deepEqual(sqliteValue('bytea', '\\x00ff'), Buffer.from([0, 255]));
  assert.equal(sqliteValue('numeric', '0.10'), '0.10');
  assert.equal(sqliteValue('text', null), null);
  assert.equal(isoTimestamp('2024-02-29 10:14:59.5+00'), '2024-02-29T10:14:59.500000Z');
  assert.equal(isoTimestamp('2024-02-29 10:14:59'), '2024-02-29T10:14:59.000000');
  assert.equal(isoTimestamp('infinity'), 'infinity');
  assert.equal(isoTimestamp('0044-03-15 12:00:00+00 BC'), '0044-03-15 12:00:00+00 BC');
});

test('COPY text fields are unescaped, \\N alone is NULL', () => {
  assert.equal(unescapeCopyField('\\N'), null);
  assert.equal(unescapeCopyField('a\\tb\\nc\\\\d\\r'), 'a\tb\nc\\d\r');
  assert.equal(unescapeCopyField('\\\\N'), '\\N');
  assert.equal(unescapeCopyField('\\x41\\101'), 'AA');
  assert.equal(unescapeCopyField('plain ☃'), 'plain ☃');
});
