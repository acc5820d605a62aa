/**
 * The pure parts of SPEC section 6 in the runner: COPY text fields through a transform,
 * how receivers are grouped into one read of a source each, and that a table nobody takes
 * its own way is read and written with exactly the SQL of before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeField, encodeField, toText } from '../../engine/runner/transform.js';
import { streamGroups, directAllowed, tableOn, sendOf } from '../../engine/runner/receiving.js';
import { sendWinnerRowsSql, sendWholeTableSql, sendPresentRowsSql, subsetApplySql } from '../../engine/runner/sql/receiving.js';
import { winnerRowsSql, wholeTableSql, presentRowsSql } from '../../engine/runner/sql/pending.js';
import type { RunTable } from '../../engine/runner/scope.js';
import type { ModuleRef } from '../../engine/topology/types.js';

const table = (over: Partial<RunTable> = {}): RunTable => ({
  tableId: 'abc',
  schema: 'public',
  name: 'orders',
  display: 'public.orders',
  keyColumns: ['id'],
  columns: ['id', 'region', 'total'],
  types: { a: ['integer', 'text', 'integer'], b: ['integer', 'text', 'integer'], c: ['integer', 'text', 'integer'] },
  copyInto: [],
  recopyInto: [],
  copyClear: [],
  keyIndexedOn: ['a', 'b', 'c'],
  keyUniqueOn: ['a', 'b', 'c'],
  fks: {},
  binary: true,
  ...over,
});
const mod: ModuleRef = { path: './m.js', file: '/x/m.js', sha256: 'f', export: 'transform', pos: { line: 1, col: 1 } };

test('COPY text fields: NULL, escapes and every value a transform may return', () => {
  for (const v of [null, '', 'plain', 'tab\there', 'new\nline\r', 'back\\slash', '\\N', 'ünï ✓']) assert.equal(decodeField(encodeField(v)), v);
  assert.equal(encodeField(null), '\\N');
  assert.equal(encodeField('a\\N'), 'a\\\\N');
  assert.equal(decodeField('a\\bb\\fc\\vd'), 'a\bb\fc\vd');
  assert.deepEqual(
    [toText(3), toText(10n), toText(true), toText(false), toText(undefined), toText({ a: [1] }), toText(Buffer.from([1, 255]))],
    ['3', '10', 't', 'f', null, '{"a":[1]}', '\\x01ff'],
  );
  assert.equal(toText(new Date('2024-01-02T03:04:05.678Z')), '2024-01-02T03:04:05.678Z');
});

test('no overrides: one group of every receiver, and the SQL of before', () => {
  const t = table();
  const [g, ...more] = streamGroups(t, ['b', 'c']);
  assert.equal(more.length, 0);
  assert.equal(g.send, t);
  assert.equal(sendWinnerRowsSql(g.send, 0, true), winnerRowsSql(t, t.columns, 0, true));
  assert.equal(sendWinnerRowsSql(g.send, 1, false), winnerRowsSql(t, t.columns, 1, false));
  assert.equal(sendWholeTableSql(g.send), wholeTableSql(t, t.columns));
  assert.equal(sendPresentRowsSql(g.send), presentRowsSql(t, t.columns));
  assert.ok(directAllowed(t, ['b', 'c']));
  assert.deepEqual(streamGroups(t, []), []);
});

test('receivers grouped by what they read: a rename alone shares the plain read; a filter, columns or a transform do not', () => {
  const base = table();
  const t = table({
    receiving: {
      b: { ...base, schema: 'reporting', name: 'orders_eu' },
      c: { ...base, where: "region = 'EU'" },
      d: { ...base, columns: ['id', 'total'], subset: true },
      e: { ...base, transform: mod, binary: false },
      f: { ...base, transform: mod, binary: false },
    },
  });
  const groups = streamGroups(t, ['a', 'b', 'c', 'd', 'e', 'f']);
  assert.deepEqual(
    groups.map((g) => g.receivers.map((r) => r.db)),
    [['a', 'b'], ['c'], ['d'], ['e'], ['f']],
  );
  assert.equal(groups[0].receivers[1].view.name, 'orders_eu', 'b writes into its own table');
  assert.ok(
    groups.every((g) => g.send.schema === 'public' && g.send.name === 'orders'),
    'every group reads the source table',
  );
  assert.equal(tableOn(t, 'a'), t);
  assert.equal(sendOf(t, tableOn(t, 'c')).where, "region = 'EU'");
  assert.ok(directAllowed(t, ['a', 'b', 'c']));
  assert.ok(!directAllowed(t, ['a', 'd']), 'columns kept by the receiver: no delete then COPY');
  assert.ok(!directAllowed(t, ['e']), 'a transform may leave a row alone');
});

test('a filter is read in a subquery of the table alone; a subset updates in place', () => {
  const t = table({ where: "region = 'EU'" });
  const byKey = sendWinnerRowsSql(t, 2, true);
  assert.match(
    byKey,
    /LEFT JOIN LATERAL \(SELECT "public"\."orders"\."region", "public"\."orders"\."total", \(\(region = 'EU'\) IS TRUE\) AS _bucardo_match FROM "public"\."orders" WHERE "public"\."orders"\."id" = k\."id" OFFSET 0\) t ON true/,
  );
  assert.match(
    sendWinnerRowsSql(t, 2, false),
    /LEFT JOIN \(SELECT "id", "region", "total", \(\(region = 'EU'\) IS TRUE\) AS _bucardo_match FROM "public"\."orders"\) t ON t\."id" = k\."id"/,
  );
  assert.match(sendWholeTableSql(t), /FROM "public"\."orders" WHERE \(region = 'EU'\)\) TO STDOUT WITH \(FORMAT binary\)$/);
  const sql = subsetApplySql({
    tableId: 'abc',
    schema: 'public',
    name: 'orders',
    keyColumns: ['id'],
    columns: ['id', 'total'],
    analyze: false,
    sorted: true,
    subset: true,
  });
  assert.deepEqual(
    sql.map((s) => s.split(' ')[0]),
    ['DELETE', 'UPDATE', 'INSERT'],
  );
  assert.match(sql[1], /SET "total" = s\."total"/);
  assert.equal(
    subsetApplySql({ tableId: 'abc', schema: 'public', name: 'orders', keyColumns: ['id'], columns: ['id'], analyze: false, sorted: false }).length,
    2,
    'only the key sent: nothing to update',
  );
});
