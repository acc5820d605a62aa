/** MariaDB's value mapping (engine/targets/mariadb-values.ts) and SQL text (engine/sql/mariadb.ts), without a server. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mariadbCanonical, mariadbColumnTypeOf, mariadbExpected, mariadbValue } from '../../engine/targets/mariadb-values.js';
import { mariadbCreateTableSql, mariadbDeleteSql, mariadbUpsertSql, quoteMariadbIdent } from '../../engine/sql/mariadb.js';

test('names are quoted with backticks, embedded backticks doubled', () => {
  assert.equal(quoteMariadbIdent('items'), '`items`');
  assert.equal(quoteMariadbIdent('a`b; DROP TABLE x'), '`a``b; DROP TABLE x`');
  assert.equal(mariadbDeleteSql('t', ['a', 'b`'], 2), 'DELETE FROM `t` WHERE (`a`, `b```) IN ((?, ?), (?, ?))');
  assert.equal(mariadbDeleteSql('t', ['id'], 3), 'DELETE FROM `t` WHERE `id` IN (?, ?, ?)');
  assert.equal(mariadbUpsertSql('t', ['id', 'v'], ['id'], 2), 'INSERT INTO `t` (`id`, `v`) VALUES (?, ?), (?, ?) ON DUPLICATE KEY UPDATE `v` = VALUES(`v`)');
  assert.match(mariadbUpsertSql('t', ['id'], ['id'], 1), /ON DUPLICATE KEY UPDATE `id` = VALUES\(`id`\)$/, 'a key-only table updates nothing');
});

test("plan's hint declares each PostgreSQL type as its MariaDB column type", () => {
  const cases: [string, boolean, string][] = [
    ['smallint', false, 'SMALLINT'],
    ['integer', true, 'INT'],
    ['bigint', false, 'BIGINT'],
    ['boolean', false, 'BOOLEAN'],
    ['double precision', false, 'DOUBLE'],
    ['numeric(12,2)', false, 'DECIMAL(12,2)'],
    ['numeric(7)', false, 'DECIMAL(7,0)'],
    ['numeric(70,2)', false, 'LONGTEXT'],
    ['numeric', true, 'VARCHAR(255)'],
    ['timestamp(3) with time zone', false, 'DATETIME(6)'],
    ['timestamp without time zone', false, 'DATETIME(6)'],
    ['bytea', false, 'LONGBLOB'],
    ['bytea', true, 'VARBINARY(255)'],
    ['text', true, 'VARCHAR(255)'],
    ['jsonb', false, 'LONGTEXT'],
  ];
  for (const [t, key, want] of cases) assert.equal(mariadbColumnTypeOf(t, key), want, `${t}${key ? ' (key)' : ''}`);
  assert.match(mariadbCreateTableSql('t', [{ name: 'id', type: 'INT' }], ['id']), /ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;$/);
});

test('PostgreSQL text maps to MariaDB values, and compare sees both sides alike', () => {
  assert.equal(mariadbValue('bigint', '-9223372036854775808'), '-9223372036854775808');
  assert.equal(mariadbValue('bool', 't'), 1);
  assert.equal(mariadbValue('bool', 'f'), 0);
  assert.equal(mariadbValue('timestamptz', '2024-02-29 10:14:59.5+00'), '2024-02-29 10:14:59.5');
  assert.equal(mariadbValue('timestamptz', 'infinity'), 'infinity', 'left for the DATETIME to refuse');
  assert.deepEqual(mariadbValue('bytea', '\\x00ff'), Buffer.from([0, 255]));
  assert.equal(mariadbValue('float', 'NaN'), 'NaN');
  assert.equal(mariadbValue('text', null), null);
  const same = (c: Parameters<typeof mariadbExpected>[0], pgText: string, stored: string) =>
    assert.equal(mariadbCanonical(c, Buffer.from(stored)), mariadbExpected(c, pgText), `${c} ${pgText} ~ ${stored}`);
  same('numeric', '3', '3.00');
  same('numeric', '-0.50', '-0.5000');
  same('numeric', '0.00', '0');
  same('float', '-0', '0');
  same('float', '1e-45', '1e-45');
  same('timestamptz', '2024-01-01 00:00:00.5+00', '2024-01-01 00:00:00.500000');
  same('bool', 't', '1');
  assert.notEqual(mariadbCanonical('numeric', Buffer.from('3.01')), mariadbExpected('numeric', '3.1'));
  assert.notEqual(mariadbCanonical('text', Buffer.from('a ')), mariadbExpected('text', 'a'));
});
